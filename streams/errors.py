"""Errors of the stream service. Each docstring tells the operator what to do."""

from __future__ import annotations


class DistillwatchError(Exception):
    """Root of every error raised by distillwatch's service layer."""


class ConfigError(DistillwatchError):
    """A setting is invalid. The message names the setting and the allowed values;
    fix the environment variable (``DISTILLWATCH_*``) or the TOML file."""


class BrokerUnavailable(DistillwatchError):
    """The broker cannot be reached or the embedded broker failed to start.
    Check ``--broker`` / ``DISTILLWATCH_BROKER``; for the embedded broker read the
    log file named in the message."""


class ProducerStalled(DistillwatchError):
    """Messages the worker wrote before a commit (state checkpoints, alerts,
    summaries) were still unsent when the commit was due, so the commit was
    skipped: committing would have covered events whose state could be lost
    in a crash. Nothing is lost; the next checkpoint retries. If it repeats,
    the broker is slow or unreachable: check its health and the worker's
    connection to it (``distillwatch_consumer_lag`` keeps growing meanwhile)."""


class WebTokenMissing(ConfigError):
    """The web views would listen beyond loopback without authentication.
    Anyone who can reach the port could read accounts and alerts and decide
    response actions. Set ``DISTILLWATCH_WEB_TOKEN`` to a long random secret
    (``openssl rand -hex 32``; in docker/compose.yaml it comes from the env
    file ``docker/distillwatch.env``) and send it as ``Authorization: Bearer
    <token>``; or bind ``DISTILLWATCH_WEB_HOST=127.0.0.1``; or set
    ``DISTILLWATCH_WEB_ENABLED=false``."""
