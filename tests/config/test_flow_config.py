"""A ``flow:`` probe in probes.yaml (issue 23): its steps are the other kinds, found in the
registry; ``check`` validates references, names and keys with ``file:line``; a flow cannot
run variants and says why; its cleanup time counts against the interval."""

from __future__ import annotations

import textwrap

import pytest

from monitor.config import ConfigError, FlowSpec, load_text
from monitor.config.schema import KIND_MODELS
from monitor.config.schema.flow import ALWAYS_TIMEOUT, VARIANTS_REFUSED

HEAD = """\
defaults: {interval: 60s, timeout: 10s, retries: 0}
auth:
  staging_jwt: {type: jwt, secret_env: JWT_SECRET_STAGING, claims: {sub: u}}
  other: {type: jwt, secret_env: JWT_SECRET_STAGING, claims: {sub: v}}
probes:
  - name: e2e
"""
GOOD = HEAD + """\
    flow:
      - name: login
        http: {url: "http://h/auth/login", method: POST, json_body: {email: e, password: p}}
        extract: {token: {json: access_token}}
      - name: thread
        http:
          url: http://h/api/threads
          method: POST
          headers: {Authorization: "Bearer ${steps.login.token}"}
          expect: {status: [201]}
        extract: {thread_id: {json: id}, location: {header: Location}}
      - name: chat
        timeout: 30s
        websocket:
          url: ws://h/api/v1/websocket
          auth: staging_jwt
          steps:
            - send: {json: {thread_id: "${steps.thread.thread_id}"}}
            - name: events
              expect_events: {types: [agent_started, agent_completed]}
      - name: refused
        expect_rejected: true
        refused_with: [1008]
        websocket: {url: ws://h/api/v1/websocket, auth: staging_jwt}
      - name: cleanup
        always: true
        http: {url: "http://h/api/threads/${steps.thread.thread_id}", method: DELETE}
"""
ENV = {"JWT_SECRET_STAGING": "x" * 32}


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_text(text, "probes.yaml", env=ENV)
    return info.value.problems


def test_a_flow_loads_its_steps_of_the_other_kinds() -> None:
    (probe,) = load_text(GOOD, env=ENV).probes
    spec = probe.spec.flow
    assert isinstance(spec, FlowSpec) and probe.type == "flow"
    assert [s.kind for s in spec.steps] == ["http", "http", "websocket", "websocket", "http"]
    assert [s.name for s in spec.steps] == ["login", "thread", "chat", "refused", "cleanup"]
    assert probe.spec.url == "http://h/auth/login"  # the target: the first step's
    assert probe.auth_name == "staging_jwt"  # the one provider its steps name
    assert spec.steps[2].own_timeout == 30 and spec.steps[4].own_timeout == ALWAYS_TIMEOUT
    # The cleanup's own time after the timeout: part of every bound a run is checked by.
    assert probe.timing.overrun == ALWAYS_TIMEOUT
    assert probe.timing.run_bound == 10 + ALWAYS_TIMEOUT
    assert spec.event_keys() == {("chat/events", "agent_started"),
                                 ("chat/events", "agent_completed")}


def test_the_step_kinds_are_the_registered_kinds_that_can_be_steps() -> None:
    """Through the registry: a kind registered later (sse) is a step kind without a line
    here; a flow is not a step of a flow."""
    assert set(FlowSpec.STEP_KINDS) == {k for k, m in KIND_MODELS.items() if m.IN_FLOW}
    assert "flow" in KIND_MODELS and "flow" not in FlowSpec.STEP_KINDS
    assert {"http", "websocket"} <= set(FlowSpec.STEP_KINDS)


def _flow(steps: str) -> str:
    return HEAD + "    flow:\n" + textwrap.indent(textwrap.dedent(steps), "      ")


@pytest.mark.parametrize(("steps", "expected"), [
    ("""\
     - name: a
       http: {url: "http://h/${steps.b.token}"}
     - name: b
       http: {url: http://h/}
       extract: {token: {json: t}}
     """, ["probes.yaml:9: probes[0].flow[0].http.url: ${steps.b.token} is used before step "
           "'b' (flow[1]) runs: a value can be used only by the steps after the one that "
           "extracts it"]),
    ("""\
     - name: login
       http: {url: http://h/}
       extract: {token: {json: t}}
     - name: b
       http: {url: "http://h/", headers: {A: "${steps.logn.token}", B: "${steps.login.tokn}"}}
     """, ["probes.yaml:12: probes[0].flow[1].http.headers.A: ${steps.logn.token} names no "
           "step 'logn'; did you mean 'login'?",
           "probes.yaml:12: probes[0].flow[1].http.headers.B: ${steps.login.tokn}: step "
           "'login' extracts no 'tokn'; did you mean 'token'?"]),
    ("""\
     - name: a
       http: {url: http://h/}
     - name: a
       http: {url: http://h/}
     """, ["probes.yaml:10: probes[0].flow[1].name: step name 'a' is used twice (first by "
           "flow[0])"]),
    ("""\
     - name: a
       http:
         url: http://h/
         expect: {body_regex: "${steps.a.v}"}
       extract: {v: {json: v}}
     """, ["probes.yaml:11: probes[0].flow[0].http.expect.body_regex: ${steps.STEP.NAME} is "
           "filled in only in http.url, http.headers, http.json_body, http.body, "
           "http.expect.json; here it would be sent as written"]),
    ("""\
     - name: a
       websocket:
         url: ws://h/
         auth: staging_jwt
         expect_rejected: true
         variants: [no_token]
     """, [f"probes.yaml:13: probes[0].flow[0].websocket.variants: {VARIANTS_REFUSED}",
           "probes.yaml:12: probes[0].flow[0].websocket.expect_rejected: expect_rejected is "
           "a negative probe's key: in a flow, write expect_rejected (and refused_with) "
           "beside the step's kind, not in it"]),
    ("""\
     - name: a
       http: {url: http://h/, auth: staging_jwt}
     - name: b
       http: {url: http://h/, auth: other}
     """, ["probes.yaml:11: probes[0].flow[1].http.auth: the steps of a flow use one auth "
           "provider, and flow[0] uses another: carry other credentials with extract and "
           "${steps.STEP.NAME} in headers"]),
])
def test_check_names_every_problem_of_a_flow_at_its_line(steps: str,
                                                         expected: list[str]) -> None:
    assert sorted(problems(_flow(steps))) == sorted(expected)


@pytest.mark.parametrize(("steps", "fragment"), [
    ("- name: a\n  http: {url: http://h/}\n  websocket: {url: ws://h/}\n",
     "probes[0].flow[0]: each step needs exactly one of http, websocket"),
    ("- name: a\n", "probes[0].flow[0]: each step needs exactly one of http, websocket"),
    ("- name: a.b\n  http: {url: http://h/}\n", "probes[0].flow[0].name: must be"),
    ("- name: a\n  http: {url: http://h/}\n  extract: {v: {regex: 'no group'}}\n",
     "probes[0].flow[0].extract.v.regex: must have exactly one group"),
    ("- name: a\n  http: {url: http://h/}\n  extract: {a.b: {json: x}}\n",
     "probes[0].flow[0].extract: 'a.b': a value's name must be"),
    ("- name: a\n  http: {url: http://h/}\n  refused_with: [42]\n",
     "probes[0].flow[0].refused_with: 42 is neither an HTTP status"),
    ("- name: a\n  http: {url: http://h/}\n  flow: []\n",
     "probes[0].flow[0].flow: unknown key"),
])
def test_a_step_that_cannot_work_is_refused(steps: str, fragment: str) -> None:
    found = problems(_flow(steps))
    assert any(fragment in p for p in found), found
    assert len(found) == 1, found  # said once, where it is


def test_variants_beside_a_flow_are_refused_saying_why() -> None:
    found = problems(HEAD + "    variants: [no_token]\n    flow:\n"
                            "      - {name: a, http: {url: 'http://h/'}}\n")
    assert found == [f"probes.yaml:7: probes[0].variants: unknown key: {VARIANTS_REFUSED}"]


def test_a_flow_is_a_list_and_has_steps() -> None:
    found = problems(HEAD + "    flow: {steps: []}\n")
    assert found == ["probes.yaml:7: probes[0].flow: must be a list of steps (- name: ..., "
                     "http: ...)"]
    assert problems(HEAD + "    flow: []\n") == [
        "probes.yaml:7: probes[0].flow: must list 1 to 20 steps"]


def test_references_are_checked_in_a_file_that_has_other_errors_too() -> None:
    """Every problem in one run: a step whose schema fails does not hide the references of
    the others."""
    found = problems(_flow("""\
        - name: a
          http: {url: nope}
        - name: b
          http: {url: "http://h/${steps.zz.v}"}
        """))
    assert found == ["probes.yaml:9: probes[0].flow[0].http.url: must be an http:// or "
                     "https:// URL; got 'nope'",
                     "probes.yaml:11: probes[0].flow[1].http.url: ${steps.zz.v} names no step "
                     "'zz' (steps: a, b)"]


def test_the_cleanup_time_counts_against_the_interval() -> None:
    found = problems(GOOD.replace("interval: 60s, timeout: 10s",
                                  "interval: 14s, timeout: 10s"))
    assert found == ["probes.yaml:6: probes[0].interval: timeout (10s) and the always steps' "
                     "5s after it must be shorter than the interval (14s)"]
    found = problems(GOOD.replace("retries: 0", "retries: 3"))
    assert len(found) == 1 and "probes[0].retries: a run with its retries may take 75s " \
        "(timeout 15s, the always steps' 5s included x 4 attempts" in found[0], found
