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
