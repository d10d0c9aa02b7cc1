"""The embedded Kafka-compatible broker: the one module that knows which it is.

The default is ``noida-db`` (chosen by the compatibility matrix, issue 10):
it speaks Kafka to kafka-python, aiokafka (including idempotent producers),
librdkafka clients (kcat, confluent-kafka) and Faust, and keeps its data in a
data directory across restarts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from streams.errors import BrokerUnavailable

KINDS = ("noida",)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _noida_binary() -> str:
    found = shutil.which("noida-db", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    if not found:
        raise BrokerUnavailable("noida-db is not installed: run `make test` or `pip install noida-db`")
    return found


class EmbeddedBroker:
    """Start, probe and stop one embedded broker process on loopback.

    Parameters
    ----------
    kind
        Which broker implementation; one of ``KINDS``.
    port
        TCP port; a free one is chosen when ``None``.
    data_dir
        Where the broker keeps its data; a temporary directory (removed on
        :meth:`stop`) when ``None``.
    """

    def __init__(
        self,
        kind: str = "noida",
        port: int | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        self.host = host
        self.port = port or free_port(host)
        self._owns_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="dw-broker-"))
        self.log_path = Path(log_path) if log_path else self.data_dir.parent / f"{self.data_dir.name}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    def command(self) -> list[str]:
        return [
            _noida_binary(), "start", "--only", "kafka",
            "--host", self.host, "--kafka-port", str(self.port),
            "--data-dir", str(self.data_dir),
        ]

    def start(self, timeout: float = 30.0) -> EmbeddedBroker:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            self.command(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal is ours to forward, not the broker's
        )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        last_error = "not started"
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise BrokerUnavailable(
                    f"embedded broker exited with {self._proc.returncode}; see {self.log_path}"
                )
            try:
                if self._metadata_ok():
                    return
            except Exception as exc:  # probing: any failure means not ready yet
                last_error = str(exc)
            time.sleep(0.1)
        self.stop()
        raise BrokerUnavailable(f"embedded broker not ready after {timeout:.0f}s: {last_error}")

    def _metadata_ok(self) -> bool:
        with socket.create_connection((self.host, self.port), timeout=1.0):
            pass
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000)
        try:
            admin.list_topics()
        finally:
            admin.close()
        return True

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """Hard-kill the broker (tests of outages)."""
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(5)

    def stop(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
