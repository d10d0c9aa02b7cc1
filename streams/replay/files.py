"""The files a replay reads besides the logs, and the config it writes: attack
labels, a detector config, a config mapping as TOML. One module, so that the
replay command, its report and its sweep share them without importing each other."""

from __future__ import annotations

from typing import Any

import orjson

from detectors.errors import InvalidEvent
from detectors.schema import parse_ts
from streams.errors import ConfigError
from streams.settings import Settings


def load_config(path: str | None) -> dict[str, Any]:
    """The detector config mapping of a TOML file (``{}`` without one)."""
    return Settings.load({"detector_config": path}, env={}).detector_mapping() if path else {}


def load_labels(path: str) -> list[dict[str, Any]]:
    """Attack labels: JSONL ``{"account_id", "attack", "start", "end"}``."""
    labels = []
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
                label = dict(obj)
                label["start"] = parse_ts(obj["start"])
                label["end"] = parse_ts(obj["end"])
                if not isinstance(obj["account_id"], str) or not isinstance(obj["attack"], str):
                    raise KeyError("account_id/attack")
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, InvalidEvent) as exc:
                raise ConfigError(f"{path}:{lineno}: not a label line ({exc})") from None
            labels.append(label)
    return labels


def to_toml(mapping: dict[str, Any]) -> str:
    """Write a two-level config mapping as TOML (the detector config's shape)."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise ConfigError(f"cannot write {v!r} to TOML")

    lines: list[str] = []
    for key in sorted(k for k, v in mapping.items() if not isinstance(v, dict)):
        lines.append(f"{key} = {value(mapping[key])}")
    for section in sorted(k for k, v in mapping.items() if isinstance(v, dict)):
        lines.append(f"\n[{section}]")
        for key in sorted(mapping[section]):
            lines.append(f"{key} = {value(mapping[section][key])}")
    return "\n".join(lines).lstrip("\n") + "\n"
