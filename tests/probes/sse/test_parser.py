"""The SSE parser against the WHATWG standard's own examples (9.2.6), then line ends, the
BOM, fields, bounds, and every way a stream can be cut into chunks."""

from __future__ import annotations

import codecs
import random

import pytest

from monitor.probes.sse.parser import BOM, Event, Parser, TooLarge


def parse(stream: bytes, *, chunk: int | None = None) -> tuple[list[Event], Parser]:
    parser = Parser()
    events: list[Event] = []
    step = chunk or max(len(stream), 1)
    for i in range(0, len(stream), step):
        events += parser.feed(stream[i:i + step])
    events += parser.close()
    return events, parser


# (name, stream, [(type, data, id)])
SPEC_EXAMPLES = [
    ("three messages, one over two lines",
     b"data: This is the first message.\n\ndata: This is the second message, it\n"
     b"data: has two lines.\n\ndata: This is the third message.\n\n",
     [(None, "This is the first message.", None),
      (None, "This is the second message, it\nhas two lines.", None),
      (None, "This is the third message.", None)]),
    ("typed events",
     b"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\n"
     b"data: 113411\n\n",
     [("add", "73857293", None), ("remove", "2153", None), ("add", "113411", None)]),
    ("comment, ids, an id reset, one space dropped",
     b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\n"
     b"data:  third event\n\n",
     [(None, "first event", "1"), (None, "second event", ""), (None, " third event", "")]),
    ("the end of the stream does not dispatch",
     b"data: first event\nid: 1\n\ndata: never dispatched\n",
     [(None, "first event", "1")]),
    ("empty data, a newline, a pending block discarded",
     b"data\n\ndata\ndata\n\ndata:\n",
     [(None, "", None), (None, "\n", None)]),
    ("with and without the space",
     b"data:test\n\ndata: test\n\n",
     [(None, "test", None), (None, "test", None)]),
]

MORE = [
    ("CRLF line ends", b"event: a\r\ndata: 1\r\n\r\n", [("a", "1", None)]),
    ("CR line ends", b"event: a\rdata: 1\r\r", [("a", "1", None)]),
    ("mixed line ends", b"data: 1\r\n\rdata: 2\n\r\n", [(None, "1", None), (None, "2", None)]),
    ("a BOM at the start is dropped", b"\xef\xbb\xbfdata: 1\n\n", [(None, "1", None)]),
    ("a BOM elsewhere is data", b"data: \xef\xbb\xbf1\n\n", [(None, "\ufeff1", None)]),
    ("unknown fields are ignored", b"foo: bar\ndata: 1\n\n", [(None, "1", None)]),
    ("an id with NUL is ignored", b"id: 7\n\nid: a\x00b\ndata: 1\n\n", [(None, "1", "7")]),
    ("event without data fires nothing", b"event: ping\n\ndata: 1\n\n", [(None, "1", None)]),
    ("empty event field has no type", b"event:\ndata: 1\n\n", [(None, "1", None)]),
    ("the type does not leak into the next event",
     b"event: a\ndata: 1\n\ndata: 2\n\n", [("a", "1", None), (None, "2", None)]),
    ("the id persists", b"id: 5\ndata: 1\n\ndata: 2\n\n", [(None, "1", "5"), (None, "2", "5")]),
    ("colon in the value", b"data: {\"a\": \"b:c\"}\n\n", [(None, "{\"a\": \"b:c\"}", None)]),
    ("invalid UTF-8 is replaced", b"data: \xff\n\n", [(None, "\ufffd", None)]),
    ("OpenAI style", b'data: {"object": "chat.completion.chunk"}\n\ndata: [DONE]\n\n',
     [(None, '{"object": "chat.completion.chunk"}', None), (None, "[DONE]", None)]),
]


@pytest.mark.parametrize(("name", "stream", "expected"), SPEC_EXAMPLES + MORE,
                         ids=[r[0] for r in SPEC_EXAMPLES + MORE])
@pytest.mark.parametrize("chunk", [None, 1, 2, 3, 7])
def test_events(name: str, stream: bytes, expected: list[tuple[str | None, str, str | None]],
                chunk: int | None) -> None:
    """Whole, and cut every 1, 2, 3 and 7 bytes: through CRLFs and UTF-8 sequences."""
    events, _ = parse(stream, chunk=chunk)
    assert [(e.type, e.data, e.id) for e in events] == expected


def test_comments_are_counted_and_are_not_events() -> None:
    events, parser = parse(b": ping\n\n: ping\ndata: 1\n\n:\n\n")
    assert [e.data for e in events] == ["1"] and parser.comments == 3


def test_retry_takes_digits_only() -> None:
    events, _ = parse(b"retry: 3000\ndata: 1\n\nretry: 3s\ndata: 2\n\n")
    assert [e.retry for e in events] == [3000, 3000]


def test_a_split_crlf_is_one_line_end() -> None:
    parser = Parser()
    assert parser.feed(b"data: 1\r") == []
    assert parser.feed(b"\n") == []
    assert [e.data for e in parser.feed(b"\r\n")] == ["1"]


def test_a_line_without_end_is_bounded() -> None:
    parser = Parser(max_bytes=100)
    with pytest.raises(TooLarge, match="line longer than 100"):
        parser.feed(b"data: " + b"x" * 200)


def test_an_event_is_bounded() -> None:
    parser = Parser(max_bytes=100)
    with pytest.raises(TooLarge, match="data is longer than 100"):
        parser.feed(b"data: xxxxxxxxxx\n" * 20)


# Streams with LF line ends, which a parser with no event begun reads a block at a time
# (a block of one data line is an event whole): they read as line by line.
BLOCKS = [
    b'data: {"object": "chat.completion.chunk"}\n\n' * 5 + b"data: [DONE]\n\n",
    b"data:no space\n\ndata:\n\ndata\n\ndata: \n\n",
    b"\n\n\n\ndata: 1\n\n\n\n\ndata: 2\n\n\n",
    b"event: a\ndata: 1\n\ndata: 2\n\nevent: b\n\ndata: 3\n\n",
    b"id: 7\ndata: 1\n\ndata: 2\n\nid\n\ndata: 3\n\nretry: 50\ndata: 4\n\nretry: x\n\ndata: 5\n\n",
    b": comment\n\n: another\ndata: 1\n\n:\n\ndata: 2\n: inside\n\n",
    b"data: a\ndata: b\n\ndata: c\n\n",
    b"data: 1\n\ndata: never dispatched",
    b"data: 1\n\ndata: 2\n",
    'data: é€😀\n\ndata: \ufeff\n\n'.encode(),
    b"data: \xff\n\ndata: ok\n\n",
    b"foo: bar\n\ndata: 1\nfoo\n\n",
    b"datax: 1\n\ndata: 2\n\n",
    b"data: " + b"x" * 9 + b"\n\ndata: " + b"x" * 10 + b"\n\ndata: " + b"x" * 11 + b"\n\n",
    b"data: 1\n\n" + b"y" * 12,
    b"data: 1\n\nevent: long-" + b"z" * 12 + b"\ndata: 2\n\n",
]


class LineParser(Parser):
    """The reference of the parser's short cuts: every chunk decoded by codecs' own
    incremental UTF-8 decoder and read line by line, never a block or an event whole."""

    def __init__(self, max_bytes: int = 1024 * 1024) -> None:
        super().__init__(max_bytes)
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def feed(self, chunk: bytes) -> list[Event]:
        text = self.decoder.decode(chunk)
        if self._at_start and text:
            self._at_start = False
            text = text.removeprefix(BOM)
        return self._lines(self._rest + text, final=False)

    def close(self) -> list[Event]:
        self._rest += self.decoder.decode(b"", final=True)
        return super().close()


def cuts(stream: bytes, how: str | int | None, seed: int = 0) -> list[bytes]:
    """``stream`` cut into chunks: whole (None), every N bytes, after each event's blank
    line ("events": one event a chunk, a stream's common chunk), or at random places."""
    if how is None:
        return [stream]
    if isinstance(how, int):
        return [stream[i:i + how] for i in range(0, len(stream), how)]
    if how == "events":
        parts = stream.split(b"\n\n")
        return [p + b"\n\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    rng = random.Random(seed)
    points = sorted(rng.sample(range(1, len(stream)), min(len(stream) - 1, rng.randint(1, 6))))
    return [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]


def read(parser: Parser, chunks: list[bytes]) -> tuple[object, int]:
    out: list[object] = []
    try:
        for chunk in chunks:
            out += parser.feed(chunk)
        out += parser.close()
    except TooLarge as exc:
        out.append(str(exc))
    return out, parser.comments


EVERY = BLOCKS + [s for _, s, _ in SPEC_EXAMPLES + MORE] + [
    b"data: 1\n\n" * 3,
    b"data:1\n\ndata:\n\ndata: \n\ndata:  2\n\n",
    b"data: 1\r\n\r\ndata: 2\n\n",
    b"data: a\rb\n\ndata: c\n\n",
    b"\xef\xbb\xbfdata: 1\n\n\xef\xbb\xbfdata: 2\n\n",
    "data: é\n\ndata: 😀\n\n".encode(),
    b"data: 1\n\n" + b"data: " + b"x" * 10 + b"\n\n" + b"data: " + b"x" * 11 + b"\n\n",
    b"event: a\n\ndata: 1\n\n",
    b"id: 3\n\ndata: 1\n\nretry: 10\n\ndata: 2\n\n",
]


@pytest.mark.parametrize("how", [None, "events", 1, 5, 16, "random"])
@pytest.mark.parametrize("stream", EVERY, ids=lambda s: repr(s[:20]))
def test_short_cuts_read_as_lines(stream: bytes, how: str | int | None) -> None:
    """Whole chunks, one event a chunk (the common case, read without a split), cuts
    through lines and characters, and random cuts: as codecs' decoder and the line
    algorithm alone read them."""
    for seed in range(20 if how == "random" else 1):
        for bound in (1024, 11):  # within and beyond a small bound on a line and on data
            chunks = cuts(stream, how, seed)
            assert read(Parser(bound), chunks) == read(LineParser(bound), chunks), chunks
