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

ROOT = Path(__file__).resolve().parents[2]
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
    children: set[int] = set()
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
        children = _descendants(proc.pid)  # the broker and the worker
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
    # nothing left behind: no broker or worker of this run is still alive (its own
    # processes: `pgrep -f distillwatch-run-` also saw other users' runs)
    leftovers = [pid for pid in children if _alive(pid)]
    assert not leftovers, leftovers


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children in other sessions included)."""
    parents: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if stat[0] != "Z":
                parents[int(proc.name)] = int(stat[1])
    out: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - out
        out |= frontier
    return out


def _alive(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except OSError:
        return False


def test_kill_9_of_run_leaves_no_process_and_a_taken_port_is_named():
    """`kill -9` of `distillwatch run` (also the OOM killer, a crashed
    terminal): its broker and worker die within 5 s (issue 21: both used to
    keep running, the worker holding port 6066). A web port already taken is
    named with its owner, and the worker uses a free one."""
    import socket
    import urllib.request

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    taken = holder.getsockname()[1]
    env = {**os.environ, "DISTILLWATCH_WEB_PORT": str(taken)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "run"], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env,
    )
    lines: list[str] = []
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = b""
    children: set[int] = set()
    try:
        deadline = time.monotonic() + 90
        port = None
        while time.monotonic() < deadline and port is None:
            assert proc.poll() is None, "\n".join(lines)
            for _ in sel.select(timeout=1):
                buf += os.read(proc.stdout.fileno(), 65536)
                *done, buf = buf.split(b"\n")
                lines += [d.decode(errors="replace") for d in done]
            found = [re.search(r"alerts page\s+http://127\.0\.0\.1:(\d+)/", x) for x in lines]
            port = next((int(m.group(1)) for m in found if m), None)
        assert port and port != taken, "\n".join(lines)
        assert any(f"port {taken} is taken by pid {os.getpid()}" in x for x in lines), lines

        def up() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                    return True
            except OSError:
                return False

        while time.monotonic() < deadline and not up():
            assert proc.poll() is None, "\n".join(lines)
            time.sleep(0.3)
        assert up(), "\n".join(lines)
        children = _descendants(proc.pid)
        assert len(children) >= 2, children  # the broker and the worker
        killed = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        while time.monotonic() - killed < 10 and any(_alive(p) for p in children):
            time.sleep(0.05)
        took = time.monotonic() - killed
        left = [p for p in children if _alive(p)]
        assert not left, f"left behind after {took:.1f}s: {left}"
        assert took < 5.0, took
        print(f"\nkill -9 of distillwatch run: its {len(children)} processes gone "
              f"{took:.2f}s later; taken port {taken} named, worker on {port}")
    finally:
        holder.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in children:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
