"""Configure structlog once: JSON off a terminal, console on one; stdlib logs
(Faust, aiokafka, mode) go through the same renderer."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_configured = False

# Keys that must never reach a log line, whatever a caller binds.
_FORBIDDEN_KEYS = frozenset({"prompt", "sasl_password", "password", "secret", "token",
                            "web_token", "authorization", "sharing_key"})


def _drop_forbidden(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key in _FORBIDDEN_KEYS.intersection(event_dict):
        event_dict[key] = "[redacted]"
    return event_dict


def configure_logging(fmt: str = "auto", level: str = "INFO", stream: Any = None) -> None:
    """Set up structlog and the stdlib root logger. Idempotent."""
    global _configured
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if getattr(stream, "isatty", lambda: False)() else "json"
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_forbidden,
    ]
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=True)
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if fmt == "json" else (lambda _, __, e: e),
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_distillwatch", False):
            root.removeHandler(old)
    handler._distillwatch = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Faust/aiokafka are chatty at INFO about every rebalance step.
    for noisy in ("aiokafka", "kafka", "faust", "mode"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    _configured = True


def get_logger(name: str = "distillwatch") -> Any:
    return structlog.get_logger(name)
