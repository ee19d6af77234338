"""The transcript keeps at most 64 frames of at most 256 bytes each, redacted."""

from __future__ import annotations

from monitor.keep import Keeper
from monitor.probes.transcript import Transcript
from monitor.redact import REDACTED, Redactor
from monitor.result import TRANSCRIPT_BYTES, TRANSCRIPT_FRAMES

TOKEN = "tok-" + "A1b2C3d4" * 8


def test_bounded_in_count_and_size() -> None:
    t = Transcript(Keeper(Redactor()), t0=10.0)
    for i in range(TRANSCRIPT_FRAMES + 36):
        t.add("received", "text", "x" * 5000, now=10.0 + i / 1000)
    frames, omitted = t.frames()
    assert len(frames) == TRANSCRIPT_FRAMES and omitted == 36
    assert all(len(f.data.encode()) <= TRANSCRIPT_BYTES + 3 for f in frames)  # + "…"
    assert frames[0].size == 5000 and frames[1].offset_ms == 1.0


def test_redacted_before_the_cut() -> None:
    redactor = Redactor()
    redactor.add_token("p", TOKEN)
    t = Transcript(Keeper(redactor), t0=0.0)
    # The token straddles byte 256: redacted whole, no fragment left.
    t.add("sent", "text", "y" * 230 + TOKEN, now=0.0)
    t.add("received", "binary", TOKEN.encode(), now=0.001)
    t.add("received", "close", f"1011 {TOKEN}", now=0.002)
    frames, _ = t.frames()
    for f in frames:
        assert TOKEN[:8] not in f.data.replace("y", "")
    assert frames[1].data == REDACTED and frames[2].data == f"1011 {REDACTED}"
    assert [f.kind for f in frames] == ["text", "binary", "close"]


def test_pings_are_hex() -> None:
    t = Transcript(Keeper(Redactor()), t0=0.0)
    t.add("received", "ping", b"\x01\x02", now=0.0)
    assert t.frames()[0][0].data == "0102"


def test_size_is_utf8_bytes_and_offset_from_start() -> None:
    t = Transcript(Keeper(Redactor()), t0=5.0)
    for payload in ("ascii", "é€😀", "\ud800 lone surrogate", "", b"\xff\x00"):
        t.add("received", "text", payload, now=5.0125)
    frames, _ = t.frames()
    assert [f.size for f in frames] == [5, 9, len("? lone surrogate"), 0, 2]
    assert {f.offset_ms for f in frames} == {12.5}
