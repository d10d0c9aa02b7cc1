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
