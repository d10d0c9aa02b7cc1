"""Build the detector factory from settings: the one place the service and
replay turn the TOML config into detector parameters."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from detectors.engine import AccountState, Detector, DetectorConfig
from detectors.errors import InvalidConfig
from detectors.response import InvalidPolicy, ResponsePolicy
from detectors.watchlist import Watchlist
from streams.errors import ConfigError

__all__ = ["AccountState", "detector_factory", "detector_config"]


#: sections of the detector TOML that configure the stream service around the
#: detectors (response actions, indicator sharing), not DetectorConfig
SERVICE_SECTIONS = ("actions", "sharing")


def detector_config(mapping: Mapping[str, Any] | None) -> DetectorConfig:
    if mapping:
        mapping = {k: v for k, v in mapping.items() if k not in SERVICE_SECTIONS}
    try:
        from_mapping = getattr(DetectorConfig, "from_mapping", None)
        if mapping and from_mapping is not None:
            return from_mapping(mapping)  # type: ignore[no-any-return]
        if mapping:
            return DetectorConfig(**mapping)
        return from_mapping({}) if from_mapping is not None else DetectorConfig()
    except (InvalidConfig, TypeError) as exc:
        raise ConfigError(f"detector config: {exc}") from None


def response_policy(mapping: Mapping[str, Any] | None) -> ResponsePolicy:
    """The ``[actions]`` policy of the detector TOML (built-in rules if absent)."""
    try:
        return ResponsePolicy.from_mapping((mapping or {}).get("actions"))
    except (InvalidPolicy, TypeError) as exc:
        raise ConfigError(f"detector config: {exc}") from None


def detector_factory(mapping: Mapping[str, Any] | None,
                     watchlist: Watchlist | None = None) -> Callable[[], Detector]:
    """Detectors for the config; with ``watchlist``, every one consults it
    (one object shared by all partitions: a refresh reaches them all)."""
    config = detector_config(mapping)  # validate once, up front

    def make() -> Detector:
        detector = Detector(config)
        if watchlist is not None:
            detector.watchlist = watchlist
        return detector

    return make
