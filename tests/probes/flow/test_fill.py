"""Values filled into the next step (issue 23), table-tested on the real spec models: URL
values percent-encoded, header values refused with a line break, JSON values keeping their
type, only the places a kind declares, and the parts without a reference left as they are."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.config.schema import HttpSpec, WebSocketSpec
from monitor.probes.flow.extract import Value
from monitor.probes.flow.fill import FillError, fill, needs_fill

HTTP_PLACES = ("url", "headers.*", "json_body.**", "body", "expect.json.**")
WS_PLACES = ("url", "headers.*", "steps.*.send.**", "steps.*.expect.json.**")
VALUES = {("login", "token"): Value("eyJ.a.b", "eyJ.a.b", True),
          ("thread", "id"): Value("thread_1", "thread_1", False),
          ("thread", "num"): Value("42", 42, False),
          ("thread", "odd"): Value("a/b?c=d&e f", "a/b?c=d&e f", False),
          ("thread", "nl"): Value("x\r\nX-Evil: 1", "x\r\nX-Evil: 1", False),
          ("thread", "obj"): Value('{"a":1}', {"a": 1}, False)}


def http(**spec: Any) -> HttpSpec:
    return HttpSpec.model_validate({"url": "http://h/api", **spec})


@pytest.mark.parametrize(("spec", "field", "expected"), [
    ({"url": "http://h/api/threads/${steps.thread.id}"}, "url", "http://h/api/threads/thread_1"),
    ({"url": "http://h/t/${steps.thread.odd}?q=${steps.thread.odd}"}, "url",
     "http://h/t/a%2Fb%3Fc%3Dd%26e%20f?q=a%2Fb%3Fc%3Dd%26e%20f"),
    ({"headers": {"Authorization": "Bearer ${steps.login.token}"}}, "headers",
     {"Authorization": "Bearer eyJ.a.b"}),
    ({"json_body": {"thread_id": "${steps.thread.id}", "n": "${steps.thread.num}",
                    "text": "about ${steps.thread.num}", "o": "${steps.thread.obj}",
                    "list": ["${steps.thread.id}", 1]}}, "json_body",
     {"thread_id": "thread_1", "n": 42, "text": "about 42", "o": {"a": 1},
      "list": ["thread_1", 1]}),
    ({"method": "POST", "body": "id=${steps.thread.id}&n=${steps.thread.num}"}, "body",
     "id=thread_1&n=42"),
])
def test_values_go_where_they_are_used(spec: dict[str, Any], field: str,
                                       expected: Any) -> None:
    before = http(**spec)
    assert needs_fill(before, HTTP_PLACES)
    after = fill(before, HTTP_PLACES, VALUES)
    assert getattr(after, field) == expected
    assert after.expect is before.expect and after.tls is before.tls  # the rest as it was


def test_expectations_compare_with_values_and_other_places_are_left_alone() -> None:
    before = http(expect={"json": {"id": "${steps.thread.id}", "n": {"eq": "${steps.thread.num}"}},
                          "body_regex": "${steps.thread.id}"})
    after = fill(before, HTTP_PLACES, VALUES)
    assert after.expect.json_ == {"id": "thread_1", "n": {"eq": 42}}
    assert after.expect.body_regex == "${steps.thread.id}"  # not a place: check refuses it
    plain = http(headers={"X-A": "b"})
    assert not needs_fill(plain, HTTP_PLACES)
    assert fill(plain, HTTP_PLACES, VALUES) is plain


def test_a_header_value_with_a_line_break_is_refused_without_showing_it() -> None:
    with pytest.raises(FillError) as info:
        fill(http(headers={"X-Thread": "${steps.thread.nl}"}), HTTP_PLACES, VALUES)
    assert str(info.value) == "a value cannot go into the X-Thread header: it has a line break"
    assert "Evil" not in str(info.value)


def test_a_value_that_is_not_there_is_an_error_not_a_string_sent_as_written() -> None:
    with pytest.raises(FillError, match=r"\$\{steps.thread.gone\} has no value"):
        fill(http(url="http://h/${steps.thread.gone}"), HTTP_PLACES, VALUES)


def test_websocket_send_payloads_and_expectations() -> None:
    before = WebSocketSpec.model_validate({
        "url": "ws://h/api/v1/websocket",
        "headers": {"Authorization": "Bearer ${steps.login.token}"},
        "steps": [{"expect": {"json": {"type": "connect"}}},
                  {"send": {"json": {"type": "user_message", "thread_id": "${steps.thread.id}",
                                     "payload": {"content": "ping ${trace_id}"}}}},
                  {"send": {"text": "raw ${steps.thread.num}"}},
                  {"expect": {"json": {"thread_id": "${steps.thread.id}"}}}]})
    after = fill(before, WS_PLACES, VALUES)
    assert after.headers == {"Authorization": "Bearer eyJ.a.b"}
    sends = [s.send for s in after.steps if s.send is not None]
    assert sends[0].json_ == {"type": "user_message", "thread_id": "thread_1",
                              "payload": {"content": "ping ${trace_id}"}}  # run's own vars kept
    assert sends[1].text == "raw 42"
    assert after.steps[3].expect is not None
    assert after.steps[3].expect.json_ == {"thread_id": "thread_1"}
    assert after.steps[0] is before.steps[0]
