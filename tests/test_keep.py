"""monitor.keep, the one place where what a target sent becomes kept evidence: control
characters made visible one for one, secrets redacted before the cut, every string bounded;
and the structure that makes it the only way in (the records take only Kept strings, and
nothing else makes one)."""

from __future__ import annotations

import ast
import dataclasses
import typing
from pathlib import Path

import pytest

from monitor import limits, result
from monitor.keep import CONTROL, MORE, Keeper, Kept, has_control, printable
from monitor.redact import REDACTED, Redactor
from tests.support.servers import ROOT

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJrZWVwIn0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"


def keeper() -> Keeper:
    r = Redactor()
    r.add_token("p", TOKEN)
    return Keeper(r)


# --------------------------------------------------------------------------- printable

# What a hostile target may put into a string a terminal shows: each is made visible.
ESCAPES = {
    "clear screen": ("\x1b[2J\x1b[H", "␛[2J␛[H"),
    "window title (OSC 0)": ("\x1b]0;pwned\x07", "␛]0;pwned␇"),
    "hyperlink (OSC 8)": ("\x1b]8;;http://evil/\x1b\\click\x1b]8;;\x1b\\",
                          "␛]8;;http://evil/␛\\click␛]8;;␛\\"),
    "colour": ("\x1b[31mred\x1b[0m", "␛[31mred␛[0m"),
    "C1 CSI": ("\x9b2J", "\ufffd2J"),
    "C1 OSC": ("\x9d0;title\x9c", "\ufffd0;title\ufffd"),
    "backspace over text": ("ok\x08\x08no", "ok␈␈no"),
    "carriage return alone": ("shown\rhidden", "shown␍hidden"),
    "NUL and DEL": ("a\x00b\x7f", "a␀b␡"),
    "bidi override": ("abc\u202edcba\u202c", "abc\ufffddcba\ufffd"),
    "bidi isolate": ("x\u2066y\u2069", "x\ufffdy\ufffd"),
}


@pytest.mark.parametrize("case", list(ESCAPES), ids=list(ESCAPES))
def test_control_characters_are_made_visible_one_for_one(case: str) -> None:
    raw, shown = ESCAPES[case]
    assert has_control(raw)
    assert printable(raw) == shown
    assert len(printable(raw)) == len(raw)  # one for one: windows and cuts stay put
    assert not has_control(printable(raw))


def test_text_keeps_tab_newline_and_crlf() -> None:
    text = "a\tb\nc\r\nd"
    assert printable(text) == text and not has_control(text)


def test_every_c0_and_c1_character_is_replaced() -> None:
    for code in [*range(0x20), *range(0x7F, 0xA0)]:
        ch = chr(code)
        if ch in "\t\n":
            continue
        out = printable(f"a{ch}b")
        assert ch not in out and len(out) == 3, hex(code)


# --------------------------------------------------------------------------- keeping


def test_redacted_before_the_cut_and_cut_after() -> None:
    k = keeper()
    # The token straddles the bound: replaced whole, no fragment of it kept.
    shown = k.text("x" * 240 + TOKEN, limit=limits.TEXT_CHARS)
    assert shown == "x" * 240 + REDACTED
    shown = k.text("x" * 250 + TOKEN + "y" * 100, limit=limits.TEXT_CHARS)
    assert shown == "x" * 250 + REDACTED[:6] + MORE
    assert k.text(f"Bearer {TOKEN}") == f"Bearer {REDACTED}"
    assert k.text(None) is None and k.words(None) == ""


def test_a_secret_cannot_hide_behind_control_characters() -> None:
    """Control characters are replaced, not removed: a token split by one stays split
    (never rejoined into the real thing after redaction), and never reaches a terminal."""
    k = keeper()
    shown = k.text(TOKEN[:30] + "\x1b" + TOKEN[30:], limit=1000)
    assert shown is not None and TOKEN not in shown and "\x1b" not in shown


@pytest.mark.parametrize(("method", "limit", "unit"), [
    ("text", limits.TEXT_CHARS, "chars"),
    ("words", limits.DETAIL_CHARS, "chars"),
    ("excerpt", limits.EXCERPT_BYTES, "bytes"),
    ("type_name", limits.TYPE_CHARS, "chars"),
])
def test_every_kind_of_string_is_bounded_whatever_its_size(method: str, limit: int,
                                                           unit: str) -> None:
    k = keeper()
    for size in (0, limit - 1, limit, limit + 1, 10 * limits.REDACT_MARGIN, 8 << 20):
        for value in ("é" * size, "\x1b" * size):
            shown = getattr(k, method)(value)
            if shown is None:
                assert size == 0
                continue
            def measure(text: str) -> int:
                return len(text.encode()) if unit == "bytes" else len(text)
            assert measure(shown) <= limit + measure(MORE), (method, size, measure(shown))
            assert "\x1b" not in shown
            assert shown.endswith(MORE) == (measure(printable(value[:limit + 1])) > limit), (
                method, size)


def test_bytes_are_decoded_and_kept_like_text() -> None:
    k = keeper()
    assert k.excerpt(b"\x1b[2J" + TOKEN.encode() + b"\xff") == f"␛[2J{REDACTED}\ufffd"
    assert k.text(bytearray(b"ok")) == "ok"


def test_headers_hide_credentials_and_stay_within_count_and_size() -> None:
    k = keeper()
    items = [("Authorization", f"Bearer {TOKEN}"), ("Content-Type", f"Bearer {TOKEN}"),
             ("Sec-WebSocket-Protocol", f"jwt.{TOKEN}, jwt-auth"), ("X-Esc", "\x1b]0;t\x07")]
    kept, omitted = k.headers(items)
    assert kept == ((("Authorization", f"Bearer {REDACTED}")),
                    ("Content-Type", f"Bearer {REDACTED}"),
                    ("Sec-WebSocket-Protocol", f"jwt.{REDACTED}, jwt-auth"),
                    ("X-Esc", "␛]0;t␇")) and omitted == 0
    # 100 headers of 8 KB (the target): a few KB kept, the rest counted.
    many = [(f"X-Filler-{i}", "v" * 8000) for i in range(100)] + [("Location", "/moved")]
    kept, omitted = k.headers(many)
    assert sum(len(n) + len(v) for n, v in kept) <= limits.HEADERS_BYTES
    assert len(kept) + omitted == 101
    assert kept[-1] == ("Location", "/moved")  # a short one after the padded ones still fits
    kept, omitted = k.headers([(f"H{i}", "v") for i in range(500)])
    assert len(kept) == limits.HEADERS_KEPT and omitted == 500 - limits.HEADERS_KEPT


# --------------------------------------------------------------------------- structure

KEEP = ROOT / "monitor" / "keep.py"


def test_only_monitor_keep_makes_a_kept_string() -> None:
    """``Kept(...)`` is a cast to the type checker: anywhere but monitor/keep.py it would
    let a raw server string into the evidence unchecked."""
    offenders = []
    for path in sorted((ROOT / "monitor").rglob("*.py")):
        if path == KEEP:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and (
                    (isinstance(node.func, ast.Name) and node.func.id == "Kept")
                    or (isinstance(node.func, ast.Attribute) and node.func.attr == "Kept")):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id == "cast" and "Kept" in ast.unparse(node):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} (cast)")
    assert offenders == []


# Fields whose strings come from the config or from synthmon itself, never from a target
# (``measures``: the names of a kind's numbers).
FROM_CONFIG = {("Result", "measures"), ("Evidence", "step_name"), ("EventMatch", "event"),
               ("EventMatch", "path"),
               ("Evidence", "duplicates"), ("FrameTypes", "types"), ("Frame", "direction"),
               ("Frame", "kind"), ("StepTiming", "name"), ("EventTiming", "step"),
               ("EventTiming", "event"), ("Result", "probe"), ("Result", "type"),
               ("Result", "target"), ("Result", "trace_id"), ("Result", "span_id"),
               ("Result", "variant"), ("Result", "phases"), ("Result", "step"),
               ("StepResult", "name"), ("StepResult", "type"), ("StepResult", "values")}


def _mentions_plain_str(hint: object) -> bool:
    if hint is str:
        return True
    return any(_mentions_plain_str(a) for a in typing.get_args(hint))


def test_every_string_of_the_evidence_records_is_a_kept_one() -> None:
    """A new evidence field typed ``str`` would take a raw server string: each one is Kept,
    or listed above as coming from the config (FrameTypes' paths are, its values Kept)."""
    records = [result.Evidence, result.Diagnosis, result.EventMatch, result.FrameTypes,
               result.Frame, result.Redirect, result.Result, result.StepTiming,
               result.EventTiming, result.StepResult]
    raw = []
    for record in records:
        hints = typing.get_type_hints(record)
        for f in dataclasses.fields(record):
            if _mentions_plain_str(hints[f.name]) and (record.__name__, f.name) not in FROM_CONFIG:
                raw.append(f"{record.__name__}.{f.name}: {hints[f.name]}")
    assert raw == []
    assert typing.get_type_hints(result.Evidence)["detail"] is Kept
    hints = typing.get_type_hints(result.FrameTypes)["types"]
    assert "Kept" in str(hints)


def test_the_limits_live_in_one_module() -> None:
    """Each bound is defined once, in monitor/limits.py; the modules that use one import it."""
    names = [n for n in limits.__all__ if n.isupper()]
    defined: dict[str, list[str]] = {}
    for path in sorted((ROOT / "monitor").rglob("*.py")):
        if path == ROOT / "monitor" / "limits.py":
            continue
        for node in ast.parse(path.read_text(), str(path)).body:
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Name) and t.id in names:
                        defined.setdefault(t.id, []).append(str(path.relative_to(ROOT)))
    assert defined == {}
    assert Path(limits.__file__).read_text().count("\n# ") >= len(names) // 2  # with a why


def test_headers_as_aiohttp_gives_them() -> None:
    """aiohttp's header names are ``istr``, a str subclass (which cannot be interned)."""
    from multidict import CIMultiDict, istr

    kept, omitted = keeper().headers(CIMultiDict({istr("Server"): "nginx",
                                                  istr("X-Esc"): "\x1b[2J"}).items())
    assert kept == (("Server", "nginx"), ("X-Esc", "␛[2J")) and omitted == 0
    assert all(type(part) is str for pair in kept for part in pair)


# --------------------------------------------------------------------------- header memo

def test_a_remembered_header_is_redacted_once_its_secret_is_known() -> None:
    """The memo of headers kept as received follows the secrets: a value remembered
    before a token existed is redacted as soon as the token is registered (a new token,
    a new long-lived secret alike), and kept as it was again after."""
    r = Redactor()
    k = Keeper(r)
    leaky = ("X-Echo", f"you sent {TOKEN}")
    assert k.header(*leaky) == leaky  # no secret known yet: as received
    assert r.header_memo  # remembered
    r.add_token("p", TOKEN)
    assert k.header(*leaky) == ("X-Echo", f"you sent {REDACTED}")
    assert k.header(*leaky) == ("X-Echo", f"you sent {REDACTED}")  # and the next run too
    other = ("X-Other", "key-0123456789 here")
    assert k.header(*other) == other
    r.add("key-0123456789")
    assert k.header(*other) == ("X-Other", f"{REDACTED} here")


def test_the_header_memo_keeps_only_short_headers_shown_as_received() -> None:
    """Nothing a credential header held lingers in the memo, nor anything redacted, long
    or made visible; and it stays within its bound however many headers come."""
    from monitor.keep import MEMO_HEADER_CHARS, MEMO_HEADERS

    k = keeper()
    r = k.redactor
    assert k.header("Authorization", "Bearer abc") == ("Authorization", f"Bearer {REDACTED}")
    assert k.header("Set-Cookie", "sid=abc; Path=/") == ("Set-Cookie", REDACTED)
    assert k.header("X-Echo", TOKEN) == ("X-Echo", REDACTED)
    assert k.header("X-Bell", "a\x07b") == ("X-Bell", "a␇b")
    long_value = "v" * MEMO_HEADER_CHARS
    assert k.header("X-Long", long_value) == ("X-Long", long_value)
    assert r.header_memo == {}
    for i in range(3 * MEMO_HEADERS):
        pair = (f"X-Request-Id-{i % 7}", f"id-{i}")
        assert k.header(*pair) == pair
        assert len(r.header_memo) <= MEMO_HEADERS
    # Remembered or not, the same kept pair, and the same (interned) objects.
    first = k.header("Server", "nginx")
    again = k.header("Server", "nginx")
    assert first == again == ("Server", "nginx")
    assert first[1] is again[1]


@pytest.mark.parametrize("value", ["chat.completion.chunk", f"type-{TOKEN}", "a\x1b[2Jb",
                                   "x" * (limits.TYPE_CHARS + 1), "é" * 90, ""])
def test_a_type_name_kept_again_reads_as_new(value: str) -> None:
    """type_name remembers the last short name it kept; the same name, asked again, reads
    as a keeper that never saw it keeps it, and a secret learnt in between is redacted."""
    redactor = Redactor()
    keep = Keeper(redactor)
    assert keep.type_name(value) == keep.type_name(value) == Keeper(redactor).type_name(value)
    redactor.add_token("late", TOKEN)  # a flow step extracts the token mid-run
    again = keep.type_name(value)
    assert again == Keeper(redactor).type_name(value)
    assert TOKEN not in again


@pytest.mark.parametrize("value", [
    '{"object": "chat.completion.chunk"}', "a\x1b[2Jb", "line\rover", "crlf\r\n", "tab\tok",
    f"Bearer {TOKEN}", "x" * limits.EXCERPT_BYTES, "x" * (limits.EXCERPT_BYTES + 1),
    "y" * (limits.EXCERPT_BYTES - 5) + TOKEN, "é" * 10, "\x7f", "<redacted>"])
def test_an_excerpt_of_text_reads_as_of_its_bytes(value: str) -> None:
    """excerpt's short cut for short ASCII text agrees with the general path (which bytes
    always take)."""
    redactor = Redactor()
    redactor.add_token("p", TOKEN)
    keep = Keeper(redactor)
    assert keep.excerpt(value) == keep.excerpt(value.encode())
    assert keep.excerpt(value, 40) == keep.excerpt(value.encode(), 40)


@pytest.mark.parametrize("value", [
    b"ok\n", b'{"object": "chat.completion.chunk"}', b"a\x1b[2Jb", b"line\rover", b"tab\tok",
    f"Bearer {TOKEN}".encode(), b"x" * limits.EXCERPT_BYTES, b"x" * (limits.EXCERPT_BYTES + 1),
    b"y" * (limits.EXCERPT_BYTES - 5) + TOKEN.encode(), "é".encode() * 10, b"\x7f",
    b"\xff\xfe", b"<redacted>"])
def test_an_excerpt_of_a_body_reads_as_the_general_path_reads_it(value: bytes) -> None:
    """excerpt's short cut for short ASCII bytes (a body) agrees with the general path,
    which a bytearray always takes."""
    redactor = Redactor()
    redactor.add_token("p", TOKEN)
    keep = Keeper(redactor)
    assert keep.excerpt(value) == keep.excerpt(bytearray(value))
    assert keep.excerpt(value, 40) == keep.excerpt(bytearray(value), 40)


def test_no_printable_character_is_a_control_one() -> None:
    """has_control and printable trust str.isprintable before the regex: that holds only
    if no printable code point is one CONTROL matches. Every code point is checked."""
    assert not [c for c in range(0x110000) if chr(c).isprintable() and CONTROL.search(chr(c))]
    for text in ("plain", "tab\t", "nl\n", "crlf\r\n", "cr\r", "esc\x1b", "c1\x85", "\u202e",
                 "\xa0nbsp", "\u2028", "é€😀", ""):
        assert has_control(text) == (CONTROL.search(text) is not None), repr(text)
