"""Run the Faust worker with a bounded shutdown.

A Faust worker whose broker has died can hang in shutdown forever (we saw it
ignore SIGTERM). After the first SIGINT/SIGTERM a watchdog gives the graceful
path ``shutdown_timeout_s`` and then ends the process.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import faust
import structlog

import detectors
from streams.errors import BrokerUnavailable
from streams.logs import configure_logging
from streams.service.app import build_service
from streams.service.liveness import LivenessThread, incarnation_id
from streams.service.topics import ensure_topics
from streams.settings import Settings

log = structlog.get_logger("distillwatch.worker")


class BoundedWorker(faust.Worker):
    """A Faust worker whose shutdown cannot take longer than a deadline."""

    def __init__(self, *args: Any, shutdown_timeout_s: float = 8.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not getattr(self.stdout, "isatty", lambda: False)():
            # Faust's startup spinner writes terminal escapes into log files
            self.spinner = None
        self.shutdown_timeout_s = shutdown_timeout_s
        self._watchdog: threading.Thread | None = None

    def _schedule_shutdown(self, signal: Any) -> None:
        if self._watchdog is None:
            log.info("shutdown_requested", signal=getattr(signal, "name", str(signal)))
            self._watchdog = threading.Thread(
                target=self._force_exit, name="shutdown-watchdog", daemon=True
            )
            self._watchdog.start()
        super()._schedule_shutdown(signal)

    def _force_exit(self) -> None:
        time.sleep(self.shutdown_timeout_s)
        log.error("shutdown_forced", after_s=self.shutdown_timeout_s)
        os._exit(1)


def evict_stale_members(settings: Settings) -> list[str]:
    """Remove this worker's own dead predecessor from its consumer group.

    The embedded broker (noida-db 0.2.x) never expires a member whose process
    died (``kill -9``): the group stays ``Stable`` with the dead member, and a
    restarted worker's join waits for it forever (issue 8,
    ``tests/reliability/test_reliability_crash.py``). Before joining, a starting worker
    removes members that advertise *its own* web URL from *its own* host,
    i.e. earlier incarnations of itself; on a real cluster the session
    timeout would have removed them anyway. Best effort: failures are logged.
    """
    from kafka import KafkaAdminClient
    from kafka.admin import MemberToRemove

    from streams.service.topics import kafka_python_security

    url = f"http://{settings.web_host}:{settings.web_port}".encode()
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers,
                             request_timeout_ms=5000, **kafka_python_security(settings))
    try:
        group = admin.describe_groups([settings.app_id]).get(settings.app_id) or {}
        stale = [
            m["member_id"] for m in group.get("members", [])
            if url in str(m.get("member_metadata", "")).encode("latin-1", "replace")
            and str(m.get("client_host", "")).lstrip("/") in ("127.0.0.1", "::1", "localhost",
                                                              settings.web_host)
        ]
        if stale:
            admin.remove_group_members(settings.app_id,
                                       [MemberToRemove(member_id=m) for m in stale])
            log.warning("stale_members_evicted", members=stale)
        return stale
    except Exception as exc:  # noqa: BLE001 - best effort, never blocks the start
        log.warning("stale_member_check_failed", error=f"{type(exc).__name__}: {exc}")
        return []
    finally:
        admin.close()


def wait_for_broker(settings: Settings, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            ensure_topics(settings)
            if settings.web_enabled:
                evict_stale_members(settings)
            return
        except Exception as exc:  # kafka-python raises a zoo of errors while unreachable
            last = exc
            time.sleep(0.5)
    raise BrokerUnavailable(f"cannot reach {settings.broker} after {timeout_s:.0f}s: {last}")


def run_worker(settings: Settings) -> int:
    """Run the service until SIGINT/SIGTERM. Returns the process exit code."""
    configure_logging(settings.log_format, settings.log_level)
    if not settings.broker:
        raise BrokerUnavailable(
            "worker needs --broker kafka://HOST:PORT (or use `distillwatch run`)"
        )
    log.info("worker_starting", settings=settings.redacted(),
             detectors_native=detectors.NATIVE)
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    wait_for_broker(settings)
    liveness: LivenessThread | None = None
    client_id = ""
    if settings.liveness_timeout_s > 0:
        client_id = incarnation_id()
        # heartbeats start before the join: a join that waits for a dead member
        # is exactly what the thread resolves
        liveness = LivenessThread(settings, client_id).start()
        log.info("liveness_started", incarnation=client_id,
                 timeout_s=settings.liveness_timeout_s, interval_s=settings.liveness_interval_s)
    service = build_service(settings, client_id=client_id)
    worker = BoundedWorker(
        service.app,
        loglevel=settings.log_level,
        quiet=True,
        redirect_stdouts=False,
        override_logging=False,
        shutdown_timeout_s=settings.shutdown_timeout_s,
    )
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        if liveness is not None:
            liveness.stop()
    return 0
