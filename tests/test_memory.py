"""What keeps the daemon's memory small (issue #5: < 150 MB at 10,000 probes)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

LAZY = ("jwt", "cryptography")


def test_the_daemon_imports_jwt_and_cryptography_only_for_a_config_that_needs_them() -> None:
    script = f"""
import sys
from monitor.config import load_text
from monitor.daemon import _preload
import monitor.cli, monitor.server
lazy = {LAZY!r}
assert not [m for m in sys.modules if m.split(".")[0] in lazy], "imported at start"
_preload(load_text("probes:\\n  - {{name: a, http: {{url: 'http://127.0.0.1:1/'}}}}\\n",
                   env={{}}))
assert not [m for m in sys.modules if m.split(".")[0] in lazy], "imported for plain http"
_preload(load_text("probes:\\n  - {{name: a, http: {{url: 'https://127.0.0.1:1/'}}}}\\n",
                   env={{}}))
assert "cryptography.x509" in sys.modules and "jwt" not in sys.modules
_preload(load_text("auth: {{t: {{type: jwt, secret_env: X}}}}\\n"
                   "probes:\\n  - {{name: a, http: {{url: 'http://127.0.0.1:1/', auth: t}}}}\\n",
                   env={{}}))
assert "jwt" in sys.modules
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
