"""`distillwatch run` (what `make run` starts): alerts appear within 2 minutes
and Ctrl-C stops everything cleanly within 10 s."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.integration


def test_run_shows_alerts_and_stops_on_ctrl_c():
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "run"], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    lines: list[str] = []
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 120
    alert_line = re.compile(r"FIRING\s+\w+\s+\S+:harvest-\d+\s+score=")
    # issue 22: the demo harvester's proposed response action, with how to approve it
    action_line = re.compile(r"-> proposed action throttle \S+ on account:harvest-\d+")

    def seen() -> bool:
        return (any(alert_line.search(x) for x in lines)
                and any(action_line.search(x) for x in lines))

    buf = b""
    try:
        while time.monotonic() < deadline and not seen():
            if proc.poll() is not None:
                break
            for _ in sel.select(timeout=1):
                chunk = os.read(proc.stdout.fileno(), 65536)
                buf += chunk
                *done, buf = buf.split(b"\n")
                lines += [d.decode(errors="replace") for d in done]
        assert seen(), "\n".join(lines)
        # Ctrl-C in a terminal signals the whole foreground process group
        started = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        rest, _ = proc.communicate(timeout=15)
        took = time.monotonic() - started
        lines += rest.decode(errors="replace").splitlines()
        assert took < 10.0, f"took {took:.1f}s"
        assert proc.returncode == 0, "\n".join(lines)
        assert any(line.startswith("sent ") for line in lines), "\n".join(lines)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # nothing left behind: no broker or worker from this run is still alive
    leftovers = subprocess.run(["pgrep", "-f", "distillwatch-run-"], capture_output=True,
                               text=True).stdout.split()
    assert not leftovers, leftovers
