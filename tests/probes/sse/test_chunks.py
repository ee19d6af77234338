"""A chunk's events are judged together (``judge_chunk``): however a stream is cut into
chunks, it ends the same way, with the same count, transcript, types seen and matcher
state as when each event came in a chunk of its own. Pure: no sockets, one clock value."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.config import load_text
from monitor.config.schema.sse import SseSpec
from monitor.keep import Keeper
from monitor.probes.sse.run import Stop, Stream, begin, judge_chunk
from monitor.redact import Redactor

CHAT = """
probes:
  - name: chat
    sse:
      url: http://127.0.0.1:9/v1/chat/completions
      events:
        field: [event, data.object]
        types: [chat.completion.chunk]
        count: {chat.completion.chunk: {min: 2}}
      done: "[DONE]"
"""
TYPED = """
probes:
  - name: typed
    sse:
      url: http://127.0.0.1:9/stream
      events:
        types: [message_start, content_block_delta, message_stop]
        count: {content_block_delta: 2}
        fail_on: [error]
"""
PLAIN = """
probes:
  - name: plain
    sse:
      url: http://127.0.0.1:9/stream
      done: "[DONE]"
"""
SPECS = {"chat": CHAT, "typed": TYPED, "plain": PLAIN}

CHUNK = b'data: {"object": "chat.completion.chunk", "choices": [{"delta": {"content": "x"}}]}\n\n'
STREAMS: dict[str, bytes] = {
    "openai style": CHUNK * 3 + b"data: [DONE]\n\n",
    "done mid-stream, more after it": CHUNK + b"data: [DONE]\n\n" + CHUNK * 2,
    "data that is not JSON": CHUNK + b"data: not json {\n\n" + CHUNK,
    "huge data": b'data: {"object": "chat.completion.chunk", "pad": "' + b"x" * 300_000
                 + b'"}\n\n' + CHUNK + b"data: [DONE]\n\n",
    "no event field, another type": b'data: {"object": "other"}\n\n' + CHUNK * 2,
    "a BOM and CR line ends": b"\xef\xbb\xbf" + CHUNK.replace(b"\n", b"\r") + CHUNK.replace(
        b"\n", b"\r\n") + b"data: [DONE]\r\n\r\n",
    "typed events": b"event: message_start\ndata: {}\n\n"
                    + b"event: content_block_delta\ndata: {\"i\": 1}\n\n" * 3
                    + b"event: message_stop\ndata: {}\n\n",
    "typed events out of order": b"event: message_stop\ndata: {}\n\n"
                                 b"event: message_start\ndata: {}\n\n",
    "fail_on mid-chunk": b"event: message_start\ndata: {}\n\nevent: error\ndata: {}\n\n"
                         b"event: message_stop\ndata: {}\n\n",
    "an auth error as data": b'data: {"type": "error", "error_code": "AUTH_FAILED"}\n\n',
    "comments, ids, several data lines": b": heartbeat\nid: 7\ndata: {\"object\":\ndata: "
                                         b"\"chat.completion.chunk\"}\n\n: hb\n\n" + CHUNK,
    "non-ASCII data": 'data: {"object": "chat.completion.chunk", "t": "é€😀"}\n\n'.encode()
                      * 2,
    "invalid UTF-8": b"data: \xff\xfe\n\n" + CHUNK,
}


def spec_of(name: str) -> SseSpec:
    spec = load_text(SPECS[name], env={}).probes[0].spec.sse
    assert isinstance(spec, SseSpec)
    return spec


def per_event(stream: bytes) -> list[bytes]:
    """Each event in a chunk of its own: cut after every line end that ends a block."""
    chunks, start = [], 0
    for i in range(len(stream)):
        if stream[i:i + 2] in (b"\n\n", b"\r\r") or stream[i:i + 4] == b"\r\n\r\n":
            end = i + (4 if stream[i:i + 4] == b"\r\n\r\n" else 2)
            chunks.append(stream[start:end])
            start = end
    return [c for c in [*chunks, stream[start:]] if c]


def judge(spec: SseSpec, chunks: list[bytes]) -> dict[str, Any]:
    """Everything a run keeps of its events, after ``chunks`` and the end of the stream."""
    stream = Stream(spec=spec, t_request=100.0)
    parser = begin(stream, Keeper(Redactor()), None)
    ended: object = None
    try:
        for chunk in [*chunks, b""]:
            ended = judge_chunk(spec, stream, parser, chunk, 0.25, False)
            if ended is not None:
                break
    except Stop as stop:
        ended = (stop.outcome, stop.detail, stop.hint)
    matcher = stream.matcher
    seen = matcher.seen if matcher is not None else stream.seen
    assert seen is not None and stream.transcript is not None
    state: dict[str, Any] = {
        "ended": ended, "count": stream.count, "done": stream.done_seen,
        "timeline": (stream.first, stream.last, stream.max_gap),
        "last": stream.last_event, "comments": stream.comments,
        "transcript": stream.transcript.frames(), "seen": (list(seen.kept), seen.count)}
    if matcher is not None:
        state["matcher"] = (matcher.still(), matcher.timings, matcher.matches,
                            matcher.duplicates, dict(matcher.arrivals), matcher.short,
                            matcher.frames_seen(), matcher.hint())
    return state


@pytest.mark.parametrize("spec", sorted(SPECS))
@pytest.mark.parametrize("name", sorted(STREAMS))
def test_batches_judge_as_events_one_by_one(spec: str, name: str) -> None:
    sse, stream = spec_of(spec), STREAMS[name]
    alone = judge(sse, per_event(stream))
    assert alone["count"] > 0
    assert judge(sse, [stream]) == alone  # every event in one chunk
    if len(stream) < 10_000:  # cut anywhere, a character or a line end split included
        assert judge(sse, [stream[i:i + 3] for i in range(0, len(stream), 3)]) == alone
    assert judge(sse, [stream[:len(stream) // 2], stream[len(stream) // 2:]]) == alone


def test_the_table_reaches_every_ending() -> None:
    """The table above is worth its rows: it ends in done, in a failing event (in
    order, fail_on, not JSON, an auth error) and at the end of the stream."""
    endings = {str(judge(spec_of(spec), [stream])["ended"])
               for spec in SPECS for stream in STREAMS.values()}
    for words in ("DONE", "COMPLETE", "EOF", "before", "fail_on", "not JSON", "AUTH_REJECTED"):
        assert any(words in e for e in endings), words
