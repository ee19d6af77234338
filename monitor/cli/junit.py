"""``synthmon once --format junit``: the results as a JUnit XML report, for CI systems that
gate a deploy on it (GitLab, Jenkins, GitHub Actions reporters).

One ``testsuite``; one ``testcase`` per :class:`Case`, with the run's time; a ``failure``
carrying the outcome (its type) and the detail; the evidence, redacted, in ``system-out``.
Written with junitparser (maintained, no dependencies of its own).
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from junitparser import Failure, JUnitXml, TestCase, TestSuite

from monitor.result import Result
from monitor.web.summary import seen

SUITE = "synthmon"
# XML 1.0 cannot carry most control characters, even escaped; a body excerpt may hold them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class Case:
    """One testcase: a probe's run, or one variant's run of a probe (``NAME@VARIANT``)."""

    name: str
    result: Result


def cases(results: Iterable[Result]) -> list[Case]:
    """A case per result, named as everywhere (monitor.runname): a probe run in several
    variants is one case per variant, ``NAME@VARIANT``, so that no CI viewer folds them."""
    return [Case(r.key, r) for r in results]


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("\N{REPLACEMENT CHARACTER}", text)


def junit_report(all_cases: Sequence[Case], evidence: Callable[[Result], dict[str, Any]],
                 redact: Callable[[str], str], wall_seconds: float | None = None,
                 started: datetime | None = None) -> bytes:
    """The JUnit XML document (UTF-8) of ``all_cases``. ``evidence`` gives what goes into
    system-out; every text is passed through ``redact`` on its way into the report."""
    suite = TestSuite(SUITE)
    for case in all_cases:
        r = case.result
        tc = TestCase(_xml_text(redact(case.name)), classname=f"{SUITE}.{r.type}",
                      time=round(r.duration_seconds, 6))
        if not r.success:
            detail = redact(r.evidence.detail) or r.outcome.value
            failure = Failure(_xml_text(f"{r.outcome.value}: {detail}"), r.outcome.value)
            failure.text = _xml_text(redact(seen(r)))
            tc.result = [failure]
        tc.system_out = _xml_text(redact(json.dumps(evidence(r), indent=2,
                                                    ensure_ascii=False)))
        suite.add_testcase(tc)
    suite.update_statistics()  # type: ignore[no-untyped-call]  # junitparser: untyped
    if wall_seconds is not None:
        # The probes run concurrently: the suite took the longest of them, not the sum.
        suite.time = round(wall_seconds, 6)
    # UTC without an offset: the stricter JUnit schemas (windyroad's) allow no other form.
    suite.timestamp = (started or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    suite.hostname = socket.gethostname()
    xml = JUnitXml(SUITE)
    xml.add_testsuite(suite)
    xml.update_statistics()  # type: ignore[no-untyped-call]
    body: bytes = xml.tostring()  # type: ignore[no-untyped-call]
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body + b"\n"
