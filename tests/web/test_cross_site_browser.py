"""A real browser attacks the daemon (issue 20, group 4): headless Chromium opens a page of
another loopback origin that POSTs to ``/-/reload`` every way a page can without the
daemon's consent (a form, fetch in no-cors and cors mode, sendBeacon), and opens the daemon
by a name that resolves to it (what DNS rebinding does). None of it may reload the daemon or
show it; the same page aimed at a server that accepts anything proves the browser sent the
requests; and a client that is not a browser still reloads it.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from aiohttp import web

from tests.support.browser import browse, chromium
from tests.support.hostile import ThreadedServers
from tests.support.servers import start_daemon
from tests.web.test_origin import configured, probes_file, request

WAYS = ("form", "nocors", "cors", "beacon")

ATTACK = """<!doctype html><html><body>
<script>
const targets = %s;
(async () => {
  const done = [];
  for (const [i, base] of targets.entries()) {
    // A form POST into a frame of its own, waited for (the frame's load event fires on
    // the page's side whatever the frame's origin).
    const frame = document.createElement("iframe");
    frame.name = "sink" + i;
    document.body.appendChild(frame);
    const form = document.createElement("form");
    form.method = "POST"; form.target = frame.name; form.action = base + "/-/reload?via=form";
    document.body.appendChild(form);
    await new Promise(r => { frame.onload = r; form.submit(); setTimeout(r, 5000); });
    done.push("form:submitted");
    for (const [via, mode] of [["nocors", "no-cors"], ["cors", "cors"]]) {
      try {
        await fetch(base + "/-/reload?via=" + via, {method: "POST", mode: mode, body: "x",
                                                     headers: {"Content-Type": "text/plain"}});
        done.push(via + ":answered");
      } catch (e) { done.push(via + ":error"); }
    }
    done.push("beacon:" + navigator.sendBeacon(base + "/-/reload?via=beacon", "x"));
  }
  await new Promise(r => setTimeout(r, 1500));  // the form's POST and the beacon
  document.body.setAttribute("data-done", done.join(" "));
})();
</script></body></html>"""


def test_pages_of_other_origins_cannot_reload_the_daemon(tmp_path: Path) -> None:
    chromium()
    config = tmp_path / "probes.yaml"
    probes_file(config, 1)
    daemon = start_daemon(config, {"PATH": "/usr/bin:/bin"}, tmp_path)
    servers = ThreadedServers()
    seen: Counter[str] = Counter()  # what reached the server that accepts anything

    async def accept_anything(request: web.Request) -> web.Response:
        seen[request.query.get("via", "?")] += 1
        return web.Response(text="reloaded\n")

    async def page(request: web.Request) -> web.Response:
        targets = request.query.getall("target")
        return web.Response(text=ATTACK % json.dumps(targets), content_type="text/html")

    try:
        probes_file(config, 2)  # a reload that happens shows as a second probe
        control = web.Application()
        control.router.add_post("/-/reload", accept_anything)
        control_url = f"http://127.0.0.1:{servers.app(control)}"
        attacker = web.Application()
        attacker.router.add_get("/", page)
        # Another port of the same host (same-site, another origin), and another site.
        pages = [f"http://127.0.0.1:{servers.app(attacker)}",
                 f"http://127.0.0.2:{servers.app(attacker, host='127.0.0.2')}"]
        for attack_page in pages:
            seen.clear()
            dom = browse(f"{attack_page}/?target={daemon.url}&target={control_url}",
                         "--dump-dom", "--virtual-time-budget=15000",
                         resolve="EXCLUDE 127.0.0.2")
            assert 'data-done="' in dom, dom[-2000:]
            deadline = time.monotonic() + 10
            while set(WAYS) - set(seen) and time.monotonic() < deadline:
                time.sleep(0.1)  # a beacon may land after the page is gone
            # The browser sent every kind of request: had the daemon accepted them as the
            # control server did, it would have reloaded.
            assert set(WAYS) <= set(seen), (attack_page, seen, dom[-1500:])
            assert configured(daemon) == 1, f"a page of {attack_page} reloaded the daemon"
        assert '"event": "request_refused"' in daemon.logs()

        # DNS rebinding: a name of the attacker's that resolves to the daemon. The browser
        # sends that name as Host; the daemon shows nothing.
        port = daemon.url.rsplit(":", 1)[1]
        dom = browse(f"http://rebind.test:{port}/", "--dump-dom",
                     resolve="MAP rebind.test 127.0.0.1")
        assert "does not answer to that host name" in dom, dom[-1500:]
        assert "probes" not in dom.lower().replace("does not answer", "")
        results = browse(f"http://rebind.test:{port}/api/v1/results", "--dump-dom",
                         resolve="MAP rebind.test 127.0.0.1")
        assert "does not answer to that host name" in results and "p0" not in results
        # The same page by the daemon's address is served (the refusal is the name's).
        assert "p0" in browse(f"{daemon.url}/", "--dump-dom")

        assert configured(daemon) == 1
        assert request(daemon.url + "/-/reload", "POST")[0] == 200  # curl -X POST
        assert configured(daemon) == 2
    finally:
        servers.close()
        daemon.stop()
