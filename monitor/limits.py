"""Every bound on what a target can make synthmon hold, read or write, in one place.

A target is hostile until proven otherwise: whatever it sends is cut to a bound before it
is kept, so that one bad target costs the daemon a fixed amount, whatever it sends and for
as long as it sends it. Before these bounds existed, one WebSocket target flooding frames
of new types during an ``expect_events`` step grew the daemon to 6.1 GB in 35 s (every
frame and type kept, an 847 MB log line), and one HTTP target with 100 headers of 8 KB
made every failed run keep 800 KB. The goal (issue 20): any single hostile target costs
under 50 MB of RSS and its run ends within its timeout + 1 s.

Where they apply: :mod:`monitor.keep` (the one place that turns what a target sent into
kept evidence), the probes' readers (:mod:`monitor.probes.net`, the HTTP body, the
WebSocket steps), the run history and the log.
"""

from __future__ import annotations

# --------------------------------------------------------------------------- evidence

# The first 1 KiB of a body or message: the product's promise ("the first 1 KiB of any
# body or message"), enough to recognise a JSON error or an HTML page.
EXCERPT_BYTES = 1024
# A string is redacted before it is cut, over this much more than what is kept, so that a
# secret straddling the cut is replaced whole rather than leaving a fragment the pattern no
# longer recognises; a secret longer than this margin would be needed to leave one. It also
# bounds the redaction's work on a string of any length.
REDACT_MARGIN = 8 * 1024
# A short string from a server: a content type, close reason (123 bytes at most by
# RFC 6455), subprotocol, Retry-After, a header name. Real ones are far shorter.
TEXT_CHARS = 256
# A redirect's Location, as each hop of a chain is kept (follow_redirects): enough for the
# path and the query that tell a login loop or an https -> http hop.
LOCATION_CHARS = 256
# One header value kept as evidence. Real values (a cookie, a CSP, a long Link) fit.
HEADER_VALUE_CHARS = 1024
# Headers kept of one answer, by count and by size (names and values together): the
# headers that tell what answered (server, content type, location, via) come first in
# every real answer; 100 headers of 8 KB made 800 KB of evidence per run.
HEADERS_KEPT = 64
HEADERS_BYTES = 8 * 1024
# The detail and the hint: synthmon's own words (the longest under 600 characters) around
# strings a server chose (a reason phrase, a close reason, event types).
DETAIL_CHARS = 2048
# An event type as kept (in events seen, frames seen, a matched spelling): a "type" longer
# than this is not a type name. The flood of 60 KB types kept every one whole.
TYPE_CHARS = 100
# Event types named in a detail ("seen: a, b, ..."); the rest are counted.
TYPES_LISTED = 20
# Event types kept in order as ``events_seen``; the rest are counted.
EVENTS_SEEN_KEPT = 64
# Messages of a failed events step kept with their type under every candidate path
# (``frames_seen``); the transcript keeps the conversation itself.
FRAMES_KEPT = 32
# Messages of a wait typed under every candidate path (for frames seen and the drift hint):
# the first this many; a passing stream of thousands of chunks costs no more than this.
FRAMES_TYPED = 256
# ... which are held untyped while they stay within this many bytes as received, and typed
# only if the wait fails: a passing stream of small chunks never pays for the typing, and a
# flood of large messages is typed as it comes and not held (parsed JSON costs several
# times its text).
HELD_BYTES = 64 * 1024
# Spellings near an expected event, remembered to suggest ``aliases:`` after a failed step:
# a flood of near-miss names must not grow the list.
NEAR_NAMES_KEPT = 16
# The transcript of a WebSocket conversation: this many frames with the start of each.
TRANSCRIPT_FRAMES = 64
TRANSCRIPT_BYTES = 256

# --------------------------------------------------------------------------- reading

# Bodies are read in chunks of this size, up to the probe's ``max_body_bytes``.
READ_CHUNK = 64 * 1024
# aiohttp's own bounds on an answer's head, written out so that they are ours: at most this
# many header lines of at most this many bytes each (a head of ~1 MB at most).
HTTP_MAX_HEADERS = 128
HTTP_MAX_FIELD_SIZE = 8190
# The start of a failed upgrade's answer kept raw, to read its status line and headers when
# websockets gave up on its body (over 1 MiB, or an endless chunked body).
HEAD_CAPTURE = 16 * 1024
# More pings than this within one second is a flood, not a heartbeat: answering each costs
# CPU that every other probe would pay for in latency, so the probe hangs up.
PING_FLOOD = 100
# Data is fed to websockets in slices of this size, so that a flood is caught after one
# slice (about a hundred frames) rather than after a whole 256 KiB read.
FEED_SLICE = 16 * 1024
# Messages websockets may hold received but not yet read before it stops reading the
# socket: with frames up to ``max_message_bytes`` (1 MiB by default) this bounds what a
# flood can park in memory; the events step reads faster than a server can write.
WS_MAX_QUEUE = 16
# An events step handles at most this many messages that arrived back to back before it
# lets the event loop run (other probes, the deadline's timer) and checks its deadline:
# with frames already queued, reading one never waits, so a flood would otherwise never
# let the step's timeout fire.
YIELD_EVERY = 32

# --------------------------------------------------------------------------- keeping

# Full evidence (headers, bodies, frames, transcript) the history keeps of one probe's
# runs, in bytes of kept text; beyond it the oldest runs keep only their outcome, detail,
# codes and hint. About a hundred ordinary failed runs fit; worst-case ones, about a dozen.
HISTORY_EVIDENCE_BYTES = 1024 * 1024
# One log event: each string value cut to this many characters, all of them together to
# LOG_LINE_CHARS, each list or mapping to LOG_ITEMS, so that no log line outgrows what a log
# shipper takes whole (Docker's json-file driver splits lines at 16 KiB; others take
# 16-64 KB). A run's line holds a detail and a hint (DETAIL_CHARS each) and short fields.
LOG_VALUE_CHARS = 4096
LOG_LINE_CHARS = 12 * 1024
LOG_ITEMS = 64
# A traceback (the ``exception`` of an event) is synthmon's own and is needed whole to fix
# what raised it; it may still quote a server's words, so it is bounded too, more widely.
LOG_TRACEBACK_CHARS = 32 * 1024

__all__ = [
    "DETAIL_CHARS",
    "EVENTS_SEEN_KEPT",
    "EXCERPT_BYTES",
    "FEED_SLICE",
    "FRAMES_KEPT",
    "FRAMES_TYPED",
    "HEADERS_BYTES",
    "HEADERS_KEPT",
    "HEADER_VALUE_CHARS",
    "HEAD_CAPTURE",
    "HELD_BYTES",
    "HISTORY_EVIDENCE_BYTES",
    "HTTP_MAX_FIELD_SIZE",
    "HTTP_MAX_HEADERS",
    "LOCATION_CHARS",
    "LOG_ITEMS",
    "LOG_LINE_CHARS",
    "LOG_TRACEBACK_CHARS",
    "LOG_VALUE_CHARS",
    "NEAR_NAMES_KEPT",
    "PING_FLOOD",
    "READ_CHUNK",
    "REDACT_MARGIN",
    "TEXT_CHARS",
    "TRANSCRIPT_BYTES",
    "TRANSCRIPT_FRAMES",
    "TYPES_LISTED",
    "TYPE_CHARS",
    "WS_MAX_QUEUE",
    "YIELD_EVERY",
]
