"""The variant label and the event histogram, parsed with prometheus-client's own parser."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

from monitor.config import load_text
from monitor.outcomes import Outcome
from monitor.result import EventTiming, Result
from monitor.sinks.metrics import Surfacer

CONFIG = """\
auth:
  jwt: {type: jwt, secret_env: X, claims: {sub: a, iss: i}}
probes:
  - name: neg
    websocket:
      url: ws://127.0.0.1:9/ws
      auth: jwt
      expect_rejected: true
      variants: [no_token, wrong_issuer]
  - name: golden
    websocket:
      url: ws://127.0.0.1:9/ws
      steps:
        - name: events
          expect_events: {types: [agent_started, agent_completed]}
"""


def samples(text: bytes, name: str) -> list[tuple[dict[str, str], float]]:
    return [(s.labels, s.value) for fam in text_string_to_metric_families(text.decode())
            for s in fam.samples if s.name == name]


def result(probe: str, outcome: Outcome, variant: str | None = None,
           events: tuple[EventTiming, ...] = ()) -> Result:
    return Result(probe=probe, type="websocket", target="ws://127.0.0.1:9/ws", outcome=outcome,
                  started_at=time.time(), duration_seconds=0.1, variant=variant, events=events)


def test_each_variant_has_its_own_series() -> None:
    s = Surfacer()
    s.configure(load_text(CONFIG, env={"X": "xxxx-xxxx"}))
    s.observe(result("neg", Outcome.SUCCESS, "no_token"))
    s.observe(result("neg", Outcome.AUTH_NOT_ENFORCED, "wrong_issuer"))
    s.observe(result("golden", Outcome.SUCCESS))
    got = {(lb["probe"], lb["variant"]): v for lb, v in samples(s.render(), "probe_success")}
    assert got == {("neg", "no_token"): 1.0, ("neg", "wrong_issuer"): 0.0, ("golden", ""): 1.0}
    outcome = [lb for lb, v in samples(s.render(), "synthmon_probe_outcome") if v == 1.0]
    assert {"probe": "neg", "variant": "wrong_issuer", "outcome": "auth_not_enforced"}.items() \
        <= next(lb for lb in outcome if lb["variant"] == "wrong_issuer").items()


def test_event_histogram_is_bounded_by_the_configured_types() -> None:
    s = Surfacer()
    config = load_text(CONFIG, env={"X": "xxxx-xxxx"})
    s.configure(config)
    s.observe(result("golden", Outcome.SUCCESS, events=(
        EventTiming("events", "agent_started", 0.2),
        EventTiming("events", "agent_completed", 3.0))))
    s.observe(result("golden", Outcome.MESSAGE_TIMEOUT, events=(
        EventTiming("events", "agent_started", 0.3),)))
    counts = {lb["event"]: v for lb, v in
              samples(s.render(), "synthmon_probe_event_seconds_count")}
    assert counts == {"agent_started": 2.0, "agent_completed": 1.0}
    buckets = {lb["le"]: v for lb, v in
               samples(s.render(), "synthmon_probe_event_seconds_bucket")
               if lb["event"] == "agent_completed"}
    assert buckets["2.5"] == 0.0 and buckets["5.0"] == 1.0
    # A reload that drops a type drops its series.
    s.configure(load_text(CONFIG.replace("agent_started, agent_completed", "agent_started"),
                          env={"X": "xxxx-xxxx"}))
    events = {lb["event"] for lb, _ in samples(s.render(), "synthmon_probe_event_seconds_count")}
    assert events == {"agent_started"}
