"""Child processes that cannot outlive their parent, and who holds a port.

``distillwatch run`` starts a broker and a worker. Killed hard (SIGKILL, the
OOM killer, a crashed terminal) it used to leave both running: the worker kept
port 6066 and the next ``make run`` failed (issue 21). On Linux the kernel can
signal a child when its parent dies (``prctl(PR_SET_PDEATHSIG)``); the flag
is set in the child between fork and exec, so it holds for any executable.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` for :class:`subprocess.Popen`: the child gets ``sig``
    when the process that started it dies, however it dies. ``None`` where the
    kernel has no such thing (not Linux).

    The kernel ties the signal to the *thread* that forked: call Popen from a
    thread that lives as long as the parent (the main thread).
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    parent = os.getpid()

    def arm() -> None:  # runs in the child, between fork and exec
        if libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
            os._exit(70)
        if os.getppid() != parent:  # the parent died before the flag was set
            os._exit(71)

    return arm


def port_owner(port: int) -> str | None:
    """Who listens on TCP ``port`` (IPv4 or IPv6), as ``pid N (command)``, or
    ``"another user's process"`` when its process is not visible; ``None`` when
    nobody listens. Linux ``/proc`` only; ``None`` elsewhere."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A":  # LISTEN
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in wanted:
                    cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                        "utf-8", "replace").strip()
                    return f"pid {proc.name} ({cmd[:120] or '?'})"
        except OSError:
            continue
    return "another user's process"
