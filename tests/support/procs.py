"""Ending the child processes the tests start: politely first, then for sure."""

from __future__ import annotations

import signal
import subprocess


def stop_process(proc: subprocess.Popen[str] | subprocess.Popen[bytes],
                 sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
    """Send ``sig`` if the process still runs, wait ``timeout``, then kill it.

    Returns the exit code. A test that cares how the process ended (SIGTERM within 5 s,
    exit 0) asserts on that code; cleanup paths just call this."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout=5)
