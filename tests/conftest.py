"""Fixtures only (their machinery lives in ``tests/helpers/``), and the tiers:
a test under ``tests/integration/`` is marked ``integration``, one under
``tests/reliability/`` both ``integration`` and ``reliability``, by path, so
the marker cannot be forgotten. ``make check`` runs the rest (the unit tier)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.alertmanager_server import AlertmanagerServer, alertmanager_binary
from tests.helpers.broker import WorkerProcess

TESTS = Path(__file__).resolve().parent
_TIERS = {
    TESTS / "integration": ("integration",),
    TESTS / "reliability": ("integration", "reliability"),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.path))
        for folder, markers in _TIERS.items():
            if folder in path.parents:
                for marker in markers:
                    item.add_marker(marker)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One embedded broker for the whole session; tests keep apart by topic names."""
    from streams.broker.embedded import EmbeddedBroker

    b = EmbeddedBroker(data_dir=tmp_path_factory.mktemp("broker"))
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def worker_factory(broker: Any, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Make ``distillwatch worker`` subprocesses with their own topics; stopped after the test."""
    workers: list[WorkerProcess] = []

    def make(name: str | None = None, **env: str) -> WorkerProcess:
        w = WorkerProcess(broker, tmp_path, name or f"dw-{uuid.uuid4().hex[:8]}", env)
        workers.append(w)
        return w

    yield make
    for w in workers:
        w.stop()


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
