"""Detector configuration: one flat, validated dataclass, loaded from nested TOML.

``detectors/default_config.toml`` documents every key; the stream service and
replay both load it (``tomllib``) and call :meth:`DetectorConfig.from_mapping`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from detectors.errors import InvalidConfig

# TOML section -> keys (each key is a DetectorConfig field of the same name).
SECTIONS: dict[str, tuple[str, ...]] = {
    "windows": ("short_half_life_s", "long_half_life_s", "min_rate_window_s"),
    "topics": ("max_tracked_topics", "max_text_topics", "max_vocabulary"),
    "text": (
        "scan_chars", "template_ring", "template_agree", "template_shared_min",
        "template_varied_max", "min_prompts",
    ),
    "population": (
        "population_half_life_s",
        "population_sample_interval_s",
        "population_clean_score_max",
        "population_max_topics",
        "population_min_mass",
        "prior_weight",
        "prior_rate_median_per_min",
        "prior_rate_p99_per_min",
        "prior_token_rate_median_per_min",
        "prior_token_rate_p99_per_min",
        "prior_template_median",
        "prior_template_p99",
        "prior_elicitation_median",
        "prior_elicitation_p99",
        "population_tail_quantile",
        "common_fp_share",
        "common_fp_min_carriers",
    ),
    "drift": (
        "ph_min_instances",
        "ph_delta",
        "ph_entropy_threshold",
        "ph_volume_threshold",
        "ph_alpha",
        "drift_hold_s",
        "drift_confirm_log2",
        "established_events",
        "established_age_s",
        "season_min_age_s",
        "season_shrink",
    ),
    "evidence": (
        "template_lo",
        "template_lo_max",
        "template_hi",
        "elicitation_lo",
        "elicitation_lo_max",
        "elicitation_hi",
        "narrow_lo",
        "narrow_hi",
        "min_topic_events",
        "sweep_lo",
        "sweep_hi",
        "min_sweep_events",
        "volume_pct_lo",
        "volume_pct_hi",
        "burst_log2_lo",
        "burst_log2_hi",
        "seen_burst_end",
        "seen_burst_margin",
        "seen_burst_half_life_s",
        "regular_cv_hi",
        "regular_cv_lo",
        "min_timing_events",
        "flat_lo",
        "flat_hi",
        "flat_min_age_s",
        "novelty_lo",
        "novelty_hi",
        "pivot_gap_max_s",
        "pivot_history_s",
        "pivot_min_events",
        "pivot_shift_lo",
        "pivot_shift_hi",
        "pivot_growth_lo",
        "pivot_growth_hi",
        "sweep_excess_lo",
        "sweep_excess_hi",
        "ratio_log2_lo",
        "ratio_log2_hi",
        "saturation_lo",
        "saturation_hi",
        "thinking_lo",
        "thinking_hi",
        "flagship_lo",
        "flagship_hi",
        "fresh_age_s",
        "fresh_unknown_s",
        "stable_discount",
        "grading_ratio_log2",
        "reasoning_ratio_log2",
        "fresh_gap_events",
        "stable_min_events",
        "harvest_min_events",
        "fresh_pct_lo",
        "stable_share",
    ),
    "score": (
        "w_template",
        "w_elicitation",
        "w_sweep",
        "w_timing",
        "w_volume",
        "w_narrow",
        "w_drift",
        "w_harvest",
        "w_fresh",
        "w_pivot",
        "elicitation_alone",
        "template_alone",
        "pair_alone",
        "generic_floor",
        "specific_full",
        "fire_threshold",
        "hot_threshold",
        "severity_warning",
        "severity_error",
        "severity_critical",
    ),
    "lifecycle": ("quiet_period_s", "idle_ttl_s"),
    "models": ("flagship_models",),
}

_INT_FIELDS = frozenset(
    {
        "max_tracked_topics",
        "max_text_topics",
        "max_vocabulary",
        "scan_chars",
        "template_ring",
        "template_agree",
        "template_shared_min",
        "template_varied_max",
        "population_max_topics",
        "common_fp_min_carriers",
        "ph_min_instances",
        "established_events",
    }
)
_UNIT_FIELDS = frozenset(
    {
        "population_clean_score_max",
        "prior_template_median",
        "prior_template_p99",
        "prior_elicitation_median",
        "prior_elicitation_p99",
        "population_tail_quantile",
        "common_fp_share",
        "ph_alpha",
        "template_lo",
        "template_lo_max",
        "template_hi",
        "elicitation_lo",
        "elicitation_lo_max",
        "elicitation_hi",
        "narrow_lo",
        "narrow_hi",
        "pivot_shift_lo",
        "pivot_shift_hi",
        "sweep_lo",
        "sweep_hi",
        "volume_pct_lo",
        "volume_pct_hi",
        "flat_lo",
        "flat_hi",
        "generic_floor",
        "elicitation_alone",
        "template_alone",
        "pair_alone",
        "saturation_lo",
        "saturation_hi",
        "thinking_lo",
        "thinking_hi",
        "flagship_lo",
        "flagship_hi",
        "fresh_pct_lo",
        "stable_discount",
        "stable_share",
        "seen_burst_end",
        "fire_threshold",
        "hot_threshold",
        "severity_warning",
        "severity_error",
        "severity_critical",
    }
)
_NONNEG_FIELDS = frozenset(
    {
        "w_template",
        "w_elicitation",
        "w_sweep",
        "w_timing",
        "w_volume",
        "w_narrow",
        "w_drift",
        "w_harvest",
        "w_fresh",
        "w_pivot",
        "prior_weight",
        "population_min_mass",
        "min_prompts",
        "min_topic_events",
        "min_sweep_events",
        "min_timing_events",
        "ph_delta",
        "flat_min_age_s",
        "established_age_s",
        "season_min_age_s",
        "regular_cv_lo",
        "fresh_gap_events",
        "stable_min_events",
        "harvest_min_events",
        "seen_burst_margin",
    }
)
# lower < upper pairs of ramps
_ORDERED = (
    ("grading_ratio_log2", "reasoning_ratio_log2"),
    ("fresh_pct_lo", "volume_pct_lo"),
    ("template_lo", "template_hi"),
    ("template_lo_max", "template_hi"),
    ("template_lo", "template_lo_max"),
    ("elicitation_lo", "elicitation_hi"),
    ("elicitation_lo_max", "elicitation_hi"),
    ("elicitation_lo", "elicitation_lo_max"),
    ("narrow_lo", "narrow_hi"),
    ("sweep_lo", "sweep_hi"),
    ("volume_pct_lo", "volume_pct_hi"),
    ("burst_log2_lo", "burst_log2_hi"),
    ("regular_cv_lo", "regular_cv_hi"),
    ("flat_lo", "flat_hi"),
    ("novelty_lo", "novelty_hi"),
    ("pivot_shift_lo", "pivot_shift_hi"),
    ("pivot_growth_lo", "pivot_growth_hi"),
    ("sweep_excess_lo", "sweep_excess_hi"),
    ("ratio_log2_lo", "ratio_log2_hi"),
    ("saturation_lo", "saturation_hi"),
    ("thinking_lo", "thinking_hi"),
    ("flagship_lo", "flagship_hi"),
    ("hot_threshold", "fire_threshold"),
    ("severity_warning", "severity_error"),
    ("severity_error", "severity_critical"),
    ("short_half_life_s", "long_half_life_s"),
    ("prior_rate_median_per_min", "prior_rate_p99_per_min"),
    ("prior_token_rate_median_per_min", "prior_token_rate_p99_per_min"),
    ("prior_template_median", "prior_template_p99"),
    ("prior_elicitation_median", "prior_elicitation_p99"),
)


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """All detector parameters. See ``default_config.toml`` for what each one means.

    >>> DetectorConfig().fire_threshold
    0.8
    >>> DetectorConfig(fire_threshold=1.5)
    Traceback (most recent call last):
    ...
    detectors.errors.InvalidConfig: fire_threshold must be in [0, 1], got 1.5
    """

    # [windows]
    short_half_life_s: float = 900.0
    long_half_life_s: float = 86_400.0
    min_rate_window_s: float = 60.0
    # [topics]
    max_tracked_topics: int = 16
    max_text_topics: int = 64
    max_vocabulary: int = 50_000
    # [text]
    scan_chars: int = 2048
    template_ring: int = 8
    template_agree: int = 6
    template_shared_min: int = 12
    template_varied_max: int = 24
    min_prompts: float = 4.0
    # [population]
    population_half_life_s: float = 21_600.0
    population_sample_interval_s: float = 300.0
    population_clean_score_max: float = 0.5
    population_max_topics: int = 4096
    population_min_mass: float = 200.0
    prior_weight: float = 50.0
    prior_rate_median_per_min: float = 0.1
    prior_rate_p99_per_min: float = 20.0
    prior_token_rate_median_per_min: float = 100.0
    prior_token_rate_p99_per_min: float = 40_000.0
    prior_template_median: float = 0.02
    prior_template_p99: float = 0.25
    prior_elicitation_median: float = 0.05
    prior_elicitation_p99: float = 0.3
    population_tail_quantile: float = 0.995
    common_fp_share: float = 0.15
    common_fp_min_carriers: int = 8
    # [drift]
    ph_min_instances: int = 30
    ph_delta: float = 0.005
    ph_entropy_threshold: float = 4.0
    ph_volume_threshold: float = 40.0
    ph_alpha: float = 0.9999
    drift_hold_s: float = 1800.0
    drift_confirm_log2: float = 1.0
    established_events: int = 50
    established_age_s: float = 21_600.0
    season_min_age_s: float = 86_400.0
    season_shrink: float = 1.0
    # [evidence]
    template_lo: float = 0.3
    template_lo_max: float = 0.55
    template_hi: float = 0.7
    elicitation_lo: float = 0.3
    elicitation_lo_max: float = 0.5
    elicitation_hi: float = 0.7
    narrow_lo: float = 0.6
    narrow_hi: float = 0.9
    min_topic_events: float = 4.0
    sweep_lo: float = 0.9
    sweep_hi: float = 0.97
    min_sweep_events: float = 16.0
    volume_pct_lo: float = 0.99
    volume_pct_hi: float = 0.999
    burst_log2_lo: float = 2.0
    burst_log2_hi: float = 4.0
    seen_burst_end: float = 0.25
    seen_burst_margin: float = 2.0
    seen_burst_half_life_s: float = 604_800.0
    regular_cv_hi: float = 0.6
    regular_cv_lo: float = 0.25
    min_timing_events: float = 12.0
    flat_lo: float = 0.92
    flat_hi: float = 0.98
    flat_min_age_s: float = 72_000.0
    novelty_lo: float = 1.0
    novelty_hi: float = 3.0
    pivot_gap_max_s: float = 1800.0
    pivot_history_s: float = 21_600.0
    pivot_min_events: float = 12.0
    pivot_shift_lo: float = 0.15
    pivot_shift_hi: float = 0.45
    pivot_growth_lo: float = 1.5
    pivot_growth_hi: float = 3.0
    sweep_excess_lo: float = 0.3
    sweep_excess_hi: float = 1.0
    ratio_log2_lo: float = 2.0
    ratio_log2_hi: float = 3.5
    saturation_lo: float = 0.3
    saturation_hi: float = 0.7
    thinking_lo: float = 0.5
    thinking_hi: float = 0.95
    flagship_lo: float = 0.9
    flagship_hi: float = 0.99
    fresh_age_s: float = 7200.0
    fresh_unknown_s: float = 3600.0
    stable_discount: float = 0.7
    grading_ratio_log2: float = 0.0
    reasoning_ratio_log2: float = 2.0
    fresh_gap_events: float = 5.0
    stable_min_events: float = 4.0
    harvest_min_events: float = 10.0
    fresh_pct_lo: float = 0.9
    stable_share: float = 0.8
    # [score]
    w_template: float = 1.5
    w_elicitation: float = 1.0
    w_sweep: float = 1.0
    w_timing: float = 0.6
    w_volume: float = 1.0
    w_narrow: float = 0.8
    w_drift: float = 0.8
    w_harvest: float = 1.5
    w_fresh: float = 1.0
    w_pivot: float = 1.0
    template_alone: float = 0.3
    elicitation_alone: float = 0.5
    pair_alone: float = 0.3
    generic_floor: float = 0.35
    specific_full: float = 1.0
    fire_threshold: float = 0.8
    hot_threshold: float = 0.6
    severity_warning: float = 0.8
    severity_error: float = 0.9
    severity_critical: float = 0.97
    # [lifecycle]
    quiet_period_s: float = 900.0
    idle_ttl_s: float = 86_400.0
    # [models]
    flagship_models: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            name = f.name
            value = getattr(self, name)
            if name == "flagship_models":
                if not isinstance(value, tuple) or not all(
                    isinstance(v, str) and v for v in value
                ):
                    raise InvalidConfig(
                        f"flagship_models must be a list of non-empty strings, got {value!r}"
                    )
                continue
            if name in _INT_FIELDS:
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise InvalidConfig(f"{name} must be an integer >= 1, got {value!r}")
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidConfig(f"{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise InvalidConfig(f"{name} must be finite, got {value!r}")
            if name in _UNIT_FIELDS:
                if not 0.0 <= value <= 1.0:
                    raise InvalidConfig(f"{name} must be in [0, 1], got {value!r}")
            elif name in _NONNEG_FIELDS:
                if value < 0:
                    raise InvalidConfig(f"{name} must be >= 0, got {value!r}")
            elif name not in ("burst_log2_lo", "burst_log2_hi", "novelty_lo", "novelty_hi",
                              "grading_ratio_log2", "reasoning_ratio_log2",
                              "ratio_log2_lo", "ratio_log2_hi"):
                if not value > 0:
                    raise InvalidConfig(f"{name} must be > 0, got {value!r}")
        if self.max_tracked_topics < 2 or self.max_tracked_topics > 64:
            raise InvalidConfig(
                f"max_tracked_topics must be in 2..64, got {self.max_tracked_topics!r}"
            )
        if self.common_fp_min_carriers < 2:
            raise InvalidConfig(
                f"common_fp_min_carriers must be >= 2, got {self.common_fp_min_carriers!r}"
            )
        if self.template_agree > 16:
            raise InvalidConfig(f"template_agree must be in 1..16, got {self.template_agree!r}")
        if self.template_ring > 64:
            raise InvalidConfig(f"template_ring must be in 1..64, got {self.template_ring!r}")
        for lo, hi in _ORDERED:
            if not getattr(self, lo) < getattr(self, hi):
                raise InvalidConfig(
                    f"{lo} ({getattr(self, lo)!r}) must be < {hi} ({getattr(self, hi)!r})"
                )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> DetectorConfig:
        """Build from the nested TOML structure (``[section]`` tables of keys).

        Unknown sections or keys are rejected, naming the allowed ones; missing
        keys keep their defaults.

        >>> DetectorConfig.from_mapping({"lifecycle": {"quiet_period_s": 60}}).quiet_period_s
        60
        >>> DetectorConfig.from_mapping({"lifecycle": {"quiet": 60}})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        detectors.errors.InvalidConfig: unknown key 'lifecycle.quiet'; allowed: ...
        """
        if not isinstance(data, Mapping):
            raise InvalidConfig(f"config must be a table, got {type(data).__name__}")
        kwargs: dict[str, Any] = {}
        for section, table in data.items():
            keys = SECTIONS.get(section)
            if keys is None:
                raise InvalidConfig(
                    f"unknown section [{section}]; allowed: {', '.join(SECTIONS)}"
                )
            if not isinstance(table, Mapping):
                raise InvalidConfig(f"[{section}] must be a table, got {type(table).__name__}")
            for key, value in table.items():
                if key not in keys:
                    raise InvalidConfig(
                        f"unknown key '{section}.{key}'; allowed: {', '.join(keys)}"
                    )
                if key == "flagship_models" and isinstance(value, list):
                    value = tuple(value)
                kwargs[key] = value
        return cls(**kwargs)

    def to_mapping(self) -> dict[str, dict[str, Any]]:
        """The nested structure :meth:`from_mapping` accepts (round-trips)."""
        out = {s: {k: getattr(self, k) for k in keys} for s, keys in SECTIONS.items()}
        out["models"]["flagship_models"] = list(self.flagship_models)
        return out


def _check_sections() -> None:
    names = {f.name for f in dataclasses.fields(DetectorConfig)}
    listed = [k for keys in SECTIONS.values() for k in keys]
    assert sorted(listed) == sorted(names), set(listed) ^ names


_check_sections()
