"""No page of another site changes the daemon's state, and no page reaches it by a name it
does not answer to (DNS rebinding); curl, Prometheus and scripts are not affected
(issue 20, group 4). The decision table without sockets, then a real daemon over loopback;
tests/web/test_cross_site_browser.py makes a real browser try."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from monitor.web.origin import AllowedHosts, Facts, Refusal, judge, split_host
from monitor.web.server import build_app
from tests.support.servers import DaemonProc, start_daemon

ALLOWED = AllowedHosts(["synthmon.example"])
D = "127.0.0.1:9115"  # the daemon as a browser names it
CROSS, HOST = Refusal.CROSS_SITE, Refusal.HOST


@pytest.mark.parametrize(("method", "host", "origin", "site", "expected"), [
    # not a browser: no Origin, no Sec-Fetch-Site
    ("POST", D, None, None, None),
    ("POST", None, None, None, None),  # HTTP/1.0 without Host
    ("DELETE", "localhost:9115", None, None, None),
    ("POST", "synthmon.example:9115", None, None, None),  # a name given with --allowed-host
    # a page of the daemon's own origin
    ("POST", D, f"http://{D}", "same-origin", None),
    ("POST", D, f"http://{D}", None, None),
    ("POST", D, None, "same-origin", None),
    ("POST", "LOCALHOST:9115", "http://localhost:9115", "same-origin", None),
    ("POST", "127.0.0.1", "http://127.0.0.1", None, None),  # default port either way
    ("POST", "127.0.0.1:80", "http://127.0.0.1", None, None),
    ("POST", "[::1]:9115", "http://[::1]:9115", "same-origin", None),
    ("POST", D, f"http://{D}", "none", None),  # typed by the user
    # pages of other origins: another site, another port of the same host, sandboxed
    ("POST", D, "http://evil.example", "cross-site", CROSS),
    ("POST", D, "http://127.0.0.1:8000", "same-site", CROSS),
    ("POST", D, "http://127.0.0.1:8000", None, CROSS),  # an old browser: Origin only
    ("POST", D, None, "cross-site", CROSS),
    ("POST", D, None, "same-site", CROSS),
    ("POST", D, "null", "cross-site", CROSS),
    ("POST", D, "null", None, CROSS),
    ("POST", D, f"https://{D}", None, CROSS),  # another scheme is another origin
    ("POST", D, f"http://{D}/path", None, CROSS),  # not an origin
    ("POST", D, "garbage", None, CROSS),
    ("PUT", D, "http://evil.example", None, CROSS),
    ("PATCH", D, None, "cross-site", CROSS),
    ("DELETE", D, None, "same-site", CROSS),
    ("post", D, "http://evil.example", None, CROSS),
    ("POST", None, f"http://{D}", None, CROSS),  # nothing to match the Origin with
    ("POST", D, f"http://{D}", "cross-site", CROSS),  # both are checked
    # reading is allowed across origins (the browser keeps the answer from the page)
    ("GET", D, "http://evil.example", "cross-site", None),
    ("HEAD", D, None, "cross-site", None),
    ("OPTIONS", D, "http://evil.example", "cross-site", None),
    # a name the daemon does not answer to: refused on every method, browser or not
    ("GET", "rebind.example:9115", None, None, HOST),
    ("GET", "rebind.example:9115", None, "same-origin", HOST),
    ("POST", "rebind.example:9115", "http://rebind.example:9115", "same-origin", HOST),
    ("POST", "rebind.example:9115", None, None, HOST),
    ("GET", "localhost.evil.example", None, None, HOST),
    ("GET", "", None, None, HOST),
    ("GET", "a b", None, None, HOST),
    ("GET", "evil.example@127.0.0.1", None, None, HOST),
    ("GET", "127.0.0.1:notaport", None, None, HOST),
    # names it does answer to
    ("GET", "localhost", None, None, None),
    ("GET", "app.localhost:9115", None, None, None),
    ("GET", "synthmon.example.", None, None, None),
    ("GET", "SYNTHMON.EXAMPLE:9115", None, None, None),
    ("GET", "10.1.2.3:9115", None, None, None),
    ("GET", "[fe80::1]:9115", None, None, None),
])
def test_judge(method: str, host: str | None, origin: str | None, site: str | None,
               expected: Refusal | None) -> None:
    facts = Facts(method=method, scheme="http", host=host, origin=origin, fetch_site=site)
    assert judge(facts, ALLOWED) is expected


def test_judge_https_and_the_wildcard() -> None:
    https = Facts("POST", "https", "127.0.0.1:9115", "https://127.0.0.1:9115", "same-origin")
    assert judge(https, ALLOWED) is None
    assert judge(Facts("POST", "https", "127.0.0.1", "https://127.0.0.1:443", None),
                 ALLOWED) is None
    assert judge(Facts("POST", "https", "127.0.0.1:9115", "http://127.0.0.1:9115", None),
                 ALLOWED) is CROSS
    anything = AllowedHosts(["*"])
    assert judge(Facts("GET", "http", "rebind.example", None, None), anything) is None
    # the wildcard lifts the name check only
    assert judge(Facts("POST", "http", "a.example", "http://b.example", None), anything) is CROSS


def test_split_host() -> None:
    assert split_host("Example.COM.:81", "http") == ("example.com", 81)
    assert split_host("[::1]", "https") == ("::1", 443)
    assert split_host("host:99999", "http") is None
    assert split_host("host/path", "http") is None


def test_the_daemons_own_names_are_allowed() -> None:
    import socket

    allowed = AllowedHosts.for_listen("synthmon.internal", ["extra.example"])
    for name in ("localhost", socket.gethostname().lower(), "synthmon.internal",
                 "extra.example", "127.0.0.1", "::1"):
        assert allowed.allows(name), name
    assert not allowed.allows("rebind.example")
    assert not AllowedHosts.for_listen("0.0.0.0").allows("rebind.example")


# --------------------------------------------------------------------------- a daemon


def state_changing_routes() -> list[tuple[str, str]]:
    """Every endpoint of the daemon that changes state: all but GET/HEAD/OPTIONS routes,
    read from the application itself so that a new one is covered."""
    app = build_app(None)  # type: ignore[arg-type]  # the routes only; no request is made
    routes = {(r.method, r.resource.canonical) for r in app.router.routes()
              if r.resource is not None}
    return sorted((m, p) for m, p in routes if m not in ("GET", "HEAD", "OPTIONS"))


def request(url: str, method: str = "GET", headers: dict[str, str] | None = None
            ) -> tuple[int, str]:
    req = urllib.request.Request(url, method=method, data=b"" if method != "GET" else None,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def configured(d: DaemonProc) -> int:
    status, text = request(d.url + "/metrics")
    assert status == 200
    found = re.search(r"^synthmon_probes_configured\S* (\d+)", text, re.M)
    assert found, text[:500]
    return int(found.group(1))


def probes_file(path: Path, count: int) -> None:
    path.write_text("defaults: {interval: 30s, timeout: 1s, retries: 0}\nprobes:\n" + "".join(
        f"  - {{name: p{i}, http: {{url: 'http://127.0.0.1:9/'}}}}\n" for i in range(count)))


def test_the_daemon_refuses_other_origins_and_names(tmp_path: Path) -> None:
    config = tmp_path / "probes.yaml"
    probes_file(config, 1)
    d = start_daemon(config, {"PATH": "/usr/bin:/bin"}, tmp_path,
                     "--allowed-host", "synthmon.example")
    try:
        probes_file(config, 2)  # a reload that happens shows as a second probe
        refuses_and_serves(d, config)
    finally:
        d.stop()


def refuses_and_serves(d: DaemonProc, config: Path) -> None:
    own = d.url.removeprefix("http://")
    port = own.rsplit(":", 1)[1]
    routes = state_changing_routes()
    assert ("POST", "/-/reload") in routes
    attacks = [
        {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-site"},
        {"Origin": f"http://127.0.0.2:{port}"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Host": f"rebind.example:{port}", "Origin": f"http://rebind.example:{port}",
         "Sec-Fetch-Site": "same-origin"},
        {"Host": f"rebind.example:{port}"},
    ]
    for method, path in routes:
        for headers in attacks:
            status, body = request(d.url + path, method, headers)
            assert status == 403, (method, path, headers, status, body)
            assert "rebind.example" not in body and "evil" not in body  # nothing echoed
    assert configured(d) == 1, "a refused request reloaded the daemon"
    # Reading by a name it does not answer to is refused too, on every page.
    for path in ("/", "/metrics", "/api/v1/results", "/probe/p0", "/-/healthy"):
        status, body = request(d.url + path, headers={"Host": f"rebind.example:{port}"})
        assert status == 403 and "does not answer to that host name" in body, (path, status)
        assert request(d.url + path, headers={"Host": f"synthmon.example:{port}"})[0] == 200
        assert request(d.url + path, headers={"Host": f"localhost:{port}"})[0] == 200
    assert configured(d) == 1
    assert '"event": "request_refused"' in d.logs()
    assert "evil.example" not in d.logs() and "rebind.example" not in d.logs()
    # The daemon's own origin, and clients that are not browsers, still reload it.
    assert request(d.url + "/-/reload", "POST", {"Origin": f"http://{own}",
                                                 "Sec-Fetch-Site": "same-origin"})[0] == 200
    assert configured(d) == 2
    probes_file(config, 3)
    assert request(d.url + "/-/reload", "POST")[0] == 200  # as curl -X POST does
    assert configured(d) == 3
