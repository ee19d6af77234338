"""The loop's exception handler keeps uvloop#437's orphaned connect errors out of stderr,
and everything else where asyncio's default handler puts it."""

from __future__ import annotations

import asyncio
import gc
import ssl

import pytest

from monitor import eventloop


async def _orphan(exc: BaseException) -> None:
    # What uvloop leaves behind: a future whose exception is set after its awaiter is gone.
    fut = asyncio.get_running_loop().create_future()
    fut.set_exception(exc)
    del fut
    gc.collect()
    await asyncio.sleep(0)


@pytest.mark.parametrize("loop_name", eventloop.CHOICES)
def test_an_orphaned_certificate_error_is_not_a_traceback(
        loop_name: str, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    eventloop.run(_orphan(ssl.SSLCertVerificationError(1, "certificate has expired")),
                  loop_name)
    eventloop.run(_orphan(ConnectionResetError(104, "reset by peer")), loop_name)
    captured = capsys.readouterr()
    assert "never retrieved" not in captured.err + captured.out + caplog.text
    assert "Traceback" not in captured.err + caplog.text


@pytest.mark.parametrize("loop_name", eventloop.CHOICES)
def test_other_orphaned_errors_still_reach_the_default_handler(
        loop_name: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("ERROR", logger="asyncio"):
        eventloop.run(_orphan(ValueError("a bug of ours")), loop_name)
    assert "Future exception was never retrieved" in caplog.text
    assert "a bug of ours" in caplog.text
