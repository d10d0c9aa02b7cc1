"""Compatibility matrix of the embedded broker (issue 10), run in ``make test``.

The checks live in :mod:`tools.broker_matrix` so that
``python -m tools.broker_matrix --kind K`` produces the same results for the
README table. Here they run against the embedded default (or the kind named by
``DISTILLWATCH_EMBEDDED_BROKER``) on a broker this module starts and always
stops.

The parts on real servers or subprocesses: tests/integration/test_broker_matrix_live.py."""

from __future__ import annotations

import os
import sys
import time

import pytest

from streams.broker.embedded import (
    DEFAULT_KIND,
    ENV_KIND,
    ENV_TANSU_BIN,
    EmbeddedBroker,
    embedded_broker_from_env,
    kind_from_env,
)
from streams.errors import BrokerUnavailable, ConfigError


@pytest.fixture(scope="module")
def broker():
    b = embedded_broker_from_env()
    try:
        b.start()
        yield b
    finally:
        b.stop()
    assert not b.alive()


# --------------------------------------------------------------------------- selection, stop


def test_kind_from_env_defaults_to_noida():
    assert DEFAULT_KIND == "noida"
    assert kind_from_env({}) == "noida"
    assert kind_from_env({ENV_KIND: "Tansu "}) == "tansu"
    with pytest.raises(ConfigError, match=ENV_KIND):
        kind_from_env({ENV_KIND: "redpanda"})


def test_embedded_broker_from_env_builds_the_selected_kind(tmp_path):
    b = embedded_broker_from_env(port=12345, data_dir=tmp_path, environ={ENV_KIND: "tansu"})
    assert (b.kind, b.port, b.bootstrap, b.url) == (
        "tansu",
        12345,
        "127.0.0.1:12345",
        "kafka://127.0.0.1:12345",
    )
    assert not b.persistent
    default = embedded_broker_from_env(environ={})
    try:
        assert default.kind == "noida" and default.persistent
    finally:
        default.stop()  # never started, but it made a temporary data dir
    with pytest.raises(ValueError):
        EmbeddedBroker(kind="kafka")


def test_missing_tansu_binary_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_TANSU_BIN, str(tmp_path / "no-such-tansu"))
    b = EmbeddedBroker(kind="tansu", data_dir=tmp_path / "d")
    with pytest.raises(BrokerUnavailable, match=ENV_TANSU_BIN):
        b.start()
    assert not b.alive()


class _StubbornBroker(EmbeddedBroker):
    """A 'broker' that ignores SIGTERM, to prove stop() is bounded."""

    def command(self):
        return [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('up', flush=True); time.sleep(120)",
        ]

    def _metadata_ok(self):
        return True


def test_stop_escalates_to_sigkill_within_the_timeout(tmp_path):
    b = _StubbornBroker(data_dir=tmp_path / "d")
    b.start()
    pid = b.pid
    time.sleep(0.3)  # let it install its SIGTERM handler
    t0 = time.monotonic()
    b.stop(timeout=1.0)
    assert time.monotonic() - t0 < 4.0
    assert not b.alive()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_the_command_table_adds_the_broker_subcommand():
    from streams.broker import cli as broker_cli
    from streams.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["broker", "--port", "0", "--data-dir", "/tmp/x", "--kind", "noida"])
    assert (args.func, args.port, args.data_dir, args.kind) == (
        broker_cli.run,
        0,
        "/tmp/x",
        "noida",
    )
