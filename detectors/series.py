"""The volume model ``distillwatch score-series`` ran before issue 18, over a
plain time series (one value per time bucket). Superseded by
:class:`detectors.seasonal.SeasonalSeriesScorer`, which knows daily and weekly
cycles (this one fires on every morning ramp: NAB standard 0.0); kept as the
baseline tests/unit/test_seasonal.py shows failing.

It is the account volume model's logic on a bucketed series: values are
compared on a log scale (volume is multiplicative), against an exponentially
weighted baseline that spikes cannot drag along (updates are clipped), and a
Page-Hinkley test (:class:`detectors.models.PageHinkley`, the same detector the
accounts use on their log rate) flags level shifts in either direction.
"""

from __future__ import annotations

import math

from detectors.errors import InvalidConfig
from detectors.models import PageHinkley
from detectors.scoring import ramp as _ramp


class VolumeSeriesScorer:
    """Online anomaly score in [0, 1] for a volume series.

    Parameters
    ----------
    half_life
        Half-life of the baseline, in buckets.
    z_lo, z_hi
        Robust z-scores mapped to scores 0 and 1 (linear in between).
    clip_z
        Largest z-score an update may move the baseline by (spikes stay spikes).
    ph_threshold
        Page-Hinkley threshold on the log values (level shifts).
    shift_hold
        Buckets during which a detected level shift keeps the score up.
    warmup
        Buckets before any score is given (0 until then).

    Examples
    --------
    >>> import random
    >>> rng = random.Random(42)
    >>> scorer = VolumeSeriesScorer()
    >>> series = [100 + rng.gauss(0, 5) for _ in range(200)] + [900.0] + [100.0] * 20
    >>> scores = [scorer.learn_one(x) for x in series]
    >>> max(scores[50:200]) < 0.5, scores[200] > 0.9
    (True, True)
    """

    __slots__ = ("half_life", "z_lo", "z_hi", "clip_z", "ph_threshold", "shift_hold", "warmup",
                 "_n", "_mean", "_var", "_alpha", "_ph", "_since_shift")

    def __init__(self, half_life: float = 48.0, z_lo: float = 3.0, z_hi: float = 6.0,
                 clip_z: float = 3.0, ph_threshold: float = 2.0, shift_hold: int = 6,
                 warmup: int = 12) -> None:
        if half_life <= 0:
            raise InvalidConfig(f"half_life must be > 0 buckets, got {half_life!r}")
        if not 0 <= z_lo < z_hi:
            raise InvalidConfig(f"need 0 <= z_lo < z_hi, got z_lo={z_lo!r}, z_hi={z_hi!r}")
        if clip_z <= 0 or ph_threshold <= 0 or shift_hold < 0 or warmup < 1:
            raise InvalidConfig("clip_z and ph_threshold must be > 0, shift_hold >= 0, "
                                "warmup >= 1")
        self.half_life = half_life
        self.z_lo = z_lo
        self.z_hi = z_hi
        self.clip_z = clip_z
        self.ph_threshold = ph_threshold
        self.shift_hold = shift_hold
        self.warmup = warmup
        self._alpha = 1.0 - 0.5 ** (1.0 / half_life)
        self._n = 0
        self._mean = 0.0
        self._var = 0.0
        self._ph = PageHinkley(min_instances=warmup, delta=0.05, threshold=ph_threshold)
        self._since_shift = -1

    def score_one(self, x: float) -> float:
        """Score of ``x`` against what has been learned so far (no update)."""
        if self._n < self.warmup:
            return 0.0
        z = abs(self._z(math.log1p(max(0.0, x))))
        spike = _ramp(z, self.z_lo, self.z_hi)
        shift = 0.0
        if 0 <= self._since_shift < self.shift_hold:
            shift = 0.8 * (1.0 - self._since_shift / max(1, self.shift_hold))
        return max(spike, shift)

    def learn_one(self, x: float) -> float:
        """Learn ``x`` and return its score: the larger of its distance from the
        baseline before it, and the level-shift evidence once the drift test saw it."""
        if not math.isfinite(x):
            raise ValueError(f"value must be finite, got {x!r}")
        v = math.log1p(max(0.0, x))
        spike = self.score_one(x)  # against the baseline as it was before x
        # The drift test sees clipped values: one spike cannot pass for a level
        # shift, a sustained one crosses the threshold within a few buckets.
        if self._n >= 2:
            bound = self.clip_z * self._std()
            self._ph.update(min(self._mean + bound, max(self._mean - bound, v)))
        else:
            self._ph.update(v)
        if self._ph.drift_detected and self._n >= self.warmup:
            self._since_shift = 0
            # a level shift is the new normal: re-centre on it
            self._mean = v
        elif self._since_shift >= 0:
            self._since_shift += 1
        score = max(spike, self.score_one(x))
        self._n += 1
        if self._n == 1:
            self._mean = v
            return score
        z = self._z(v)
        clipped = self._mean + max(-self.clip_z, min(self.clip_z, z)) * self._std()
        a = self._alpha if self._n > self.warmup else 1.0 / self._n
        diff = clipped - self._mean
        self._mean += a * diff
        self._var = (1 - a) * (self._var + a * diff * diff)
        return score

    def _std(self) -> float:
        # floor: a perfectly flat series must not turn every wiggle into a spike
        return math.sqrt(self._var) + 0.05

    def _z(self, v: float) -> float:
        return (v - self._mean) / self._std()
