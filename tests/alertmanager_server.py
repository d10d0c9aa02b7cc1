"""A real Prometheus Alertmanager on a free loopback port, for tests.

The Debian package ``prometheus-alertmanager`` (``.ci/run`` installs it when it
is missing). Use the ``alertmanager`` fixture (``tests/conftest.py`` makes it
available to every test) or :class:`AlertmanagerServer` directly (e.g. with a
``web_config`` for basic auth). Clustering is off, state lives in a
temporary directory, and every wait has a bound.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BINARIES = ("prometheus-alertmanager", "alertmanager")
CONFIG = """\
route:
  receiver: "null"
  group_wait: 1h
receivers:
  - name: "null"
"""


def alertmanager_binary() -> str | None:
    for name in BINARIES:
        found = shutil.which(name)
        if found:
            return found
    return None


class AlertmanagerServer:
    """Start, query and stop one Alertmanager process."""

    def __init__(self, workdir: str | os.PathLike[str] | None = None,
                 web_config: str | None = None) -> None:
        from streams.broker.embedded import free_port

        binary = alertmanager_binary()
        if binary is None:
            raise RuntimeError("Alertmanager is not installed: apt-get install "
                               "prometheus-alertmanager (.ci/run does it)")
        self.binary = binary
        self._owns_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="dw-alertmanager-"))
        self.port = free_port()
        self.web_config = web_config
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> AlertmanagerServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "alertmanager.yml"
        config.write_text(CONFIG)
        args = [self.binary, f"--config.file={config}",
                f"--storage.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=", "--log.level=warn"]
        if self.web_config:
            web = self.workdir / "web.yml"
            web.write_text(self.web_config)
            args.append(f"--web.config.file={web}")
        self.log_path = self.workdir / "alertmanager.log"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"alertmanager exited with {self.proc.returncode}: "
                                   f"{self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/-/ready", timeout=1):
                    return self
            except urllib.error.HTTPError as exc:
                if exc.code == 401:  # basic auth configured: it answers, so it is up
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"alertmanager not ready after {timeout:.0f}s")

    def alerts(self, auth: str | None = None) -> list[dict[str, Any]]:
        """Every alert it holds (active, silenced, inhibited, unprocessed)."""
        request = urllib.request.Request(f"{self.base_url}/api/v2/alerts")
        if auth:
            request.add_header("Authorization", auth)
        with urllib.request.urlopen(request, timeout=5) as resp:
            return list(json.loads(resp.read()))

    def received(self) -> dict[str, float]:
        """``alertmanager_alerts_received_total`` by status, from its /metrics:
        what it accepted, resolved alerts included."""
        with urllib.request.urlopen(f"{self.base_url}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("alertmanager_alerts_received_total{"):
                labels, value = line.rsplit(" ", 1)
                status = labels.split('status="', 1)[1].split('"', 1)[0]
                out[status] = out.get(status, 0.0) + float(value)
        return out

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if self._owns_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> AlertmanagerServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[AlertmanagerServer]:
    """A fresh Alertmanager for one test; skipped only when it cannot be installed."""
    if alertmanager_binary() is None:
        pytest.skip("prometheus-alertmanager is not installed (.ci/run installs it as root; "
                    "apt-get install prometheus-alertmanager)")
    server = AlertmanagerServer(tmp_path / "alertmanager").start()
    try:
        yield server
    finally:
        server.stop()
