"""Expected level by time of week: a small, decayed seasonal profile.

Traffic has daily and weekly cycles: an API account (or a whole partition)
sends more at 14:00 on a Tuesday than at 03:00 on a Sunday. A volume model
that compares the current rate with a single baseline fires on every morning
ramp. :class:`SeasonalProfile` learns the expected value for each hour of the
day, separately for weekdays and weekends (48 slots in two ``array`` buffers,
~0.9 KB), with weights decayed in event time so that it follows a change of
habits within days. Values between slot centres are interpolated linearly, so
a ramp inside an hour is expected too.

:class:`SeasonalSeriesScorer` is the model ``distillwatch score-series`` runs:
the series is deseasonalised by such a profile and what remains is scored
against a short, clipped baseline with a Page-Hinkley test for level shifts
(the account volume model's logic); that raw surprise is calibrated against
the series' own history (an anomaly likelihood) and combined with the value's
tail probability under its long-run distribution (docs/nab.md).

Time is an input (``t``, epoch seconds, UTC): same values and times, same
scores.
"""

from __future__ import annotations

import math
from array import array
from typing import Any, Final

from detectors.errors import InvalidConfig
from detectors.models import PageHinkley

_DAY: Final = 86_400.0
_HOUR: Final = 3_600.0
# Rebase lazily scaled weights once they exceed 2**_REBASE_EXP.
_REBASE_EXP: Final = 40.0
_LN10: Final = math.log(10.0)
_LOG_SQRT_2PI: Final = 0.5 * math.log(2.0 * math.pi)


def tail_nines(z: float) -> float:
    """``-log10`` of the upper tail probability of a standard normal at ``z``
    (0.0 for ``z <= 0``): how many nines of "this is unusual". Exact up to
    ``z = 8``, the asymptotic expansion beyond (no underflow to 0).

    >>> round(tail_nines(0.0), 3), round(tail_nines(3.0), 2), round(tail_nines(40.0), 1)
    (0.0, 2.87, 349.4)
    """
    if not z > 0.0:  # also NaN
        return 0.0
    if z < 8.0:
        return -math.log10(0.5 * math.erfc(z / math.sqrt(2.0)))
    if z > 1e150:
        z = 1e150  # z * z stays finite
    return (0.5 * z * z + math.log(z) + _LOG_SQRT_2PI) / _LN10


def is_weekend(t: float) -> bool:
    """Saturday or Sunday (UTC) at epoch second ``t``.

    >>> is_weekend(0.0), is_weekend(2 * 86_400.0)   # 1970-01-01 was a Thursday
    (False, True)
    """
    return (int(t // _DAY) + 3) % 7 >= 5


class SeasonalProfile:
    """Decayed expected value by hour of day x (weekday, weekend).

    Parameters
    ----------
    half_life_s
        Event-time half-life of what a slot has learned.
    weekly
        Learn weekends apart from weekdays (48 slots); else one daily profile.
    min_weight
        Decayed weight a slot needs before it is trusted. An untrusted weekend
        slot falls back to the weekday slot of the same hour (and vice versa);
        :meth:`expected` returns ``None`` while neither is trusted.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(3)
    >>> prof = SeasonalProfile(half_life_s=7 * 86_400.0)
    >>> for i in range(14 * 24 * 12):                  # two weeks, every 5 minutes
    ...     t = i * 300.0
    ...     prof.update(t, 10 + 5 * math.sin(2 * math.pi * t / 86_400.0) + rng.gauss(0, 0.2))
    >>> round(prof.expected(15 * 86_400.0 + 6 * 3_600.0))    # 06:00: the daily peak
    15
    >>> round(prof.expected(15 * 86_400.0 + 18 * 3_600.0))   # 18:00: the trough
    5
    >>> SeasonalProfile().expected(0.0) is None
    True
    """

    __slots__ = ("half_life_s", "weekly", "min_weight", "slots", "_sum", "_w", "_ref")

    def __init__(self, half_life_s: float = 7 * _DAY, weekly: bool = True,
                 min_weight: float = 2.0, slots: int = 24) -> None:
        if not 1 <= slots <= 1440:
            raise InvalidConfig(f"slots must be in 1..1440 per day, got {slots!r}")
        if not half_life_s > 0:
            raise InvalidConfig(f"half_life_s must be > 0, got {half_life_s!r}")
        if not min_weight > 0:
            raise InvalidConfig(f"min_weight must be > 0, got {min_weight!r}")
        self.half_life_s = half_life_s
        self.weekly = weekly
        self.min_weight = min_weight
        self.slots = slots
        n = 2 * slots if weekly else slots
        self._sum = array("d", bytes(8 * n))
        self._w = array("d", bytes(8 * n))
        self._ref = 0.0

    def _slots(self, t: float) -> tuple[int, int, float, int]:
        """The two hour slots around ``t``, the weight of the second, the
        weekday/weekend offset."""
        k = self.slots
        pos = (t % _DAY) / _DAY * k - 0.5  # slot i is centred at (i + 0.5) / k of the day
        if pos < 0.0:
            pos += k
        i0 = int(pos)
        frac = pos - i0
        i0 %= k
        return i0, (i0 + 1) % k, frac, (k if self.weekly and is_weekend(t) else 0)

    def update(self, t: float, x: float) -> None:
        """Learn value ``x`` at event time ``t`` (shared by the two nearest slots)."""
        e = (t - self._ref) / self.half_life_s
        if e > _REBASE_EXP:
            self._rebase(t)
            e = 0.0
        elif e < -_REBASE_EXP:
            # far older than what was learned (out of order, a clock reset):
            # learned with the least weight instead of rebasing backwards,
            # which would scale every weight by up to 2**(huge) and overflow
            e = -_REBASE_EXP
        w = math.pow(2.0, e)
        i0, i1, frac, off = self._slots(t)
        w0 = w * (1.0 - frac)
        w1 = w * frac
        self._sum[off + i0] += w0 * x
        self._w[off + i0] += w0
        self._sum[off + i1] += w1 * x
        self._w[off + i1] += w1

    def _rebase(self, t: float) -> None:
        f = math.pow(2.0, -(t - self._ref) / self.half_life_s)
        for i in range(len(self._w)):
            self._sum[i] *= f
            self._w[i] *= f
        self._ref = t

    def _slot_mean(self, i: int, off: int, scale: float) -> float | None:
        need = self.min_weight * scale
        for j in ((off + i, i if off else self.slots + i) if self.weekly else (i,)):
            if self._w[j] >= need:
                return self._sum[j] / self._w[j]
        return None

    def expected(self, t: float) -> float | None:
        """The expected value at event time ``t``, or ``None`` until learned."""
        e = (t - self._ref) / self.half_life_s
        if e > 1000.0:  # nothing learned, or all of it decayed away
            return None
        scale = math.pow(2.0, e if e > -1000.0 else -1000.0)  # weights are scaled
        i0, i1, frac, off = self._slots(t)
        a = self._slot_mean(i0, off, scale)
        b = self._slot_mean(i1, off, scale)
        if a is None or b is None:
            return a if b is None else b
        return a + (b - a) * frac

    def mean(self) -> float:
        """The weighted mean over all slots (0.0 before anything is learned)."""
        w = 0.0
        acc = 0.0
        for i in range(len(self._w)):
            w += self._w[i]
            acc += self._sum[i]
        return acc / w if w > 0.0 else 0.0

    def offset(self, t: float) -> float:
        """How far the expected value at ``t`` lies above the profile's mean
        (0.0 until learned): the seasonal part of a value, to subtract."""
        e = self.expected(t)
        return 0.0 if e is None else e - self.mean()

    def weight(self, t: float) -> float:
        """Decayed weight learned in the slot nearest ``t`` (observations)."""
        i0, i1, frac, off = self._slots(t)
        i = i0 if frac < 0.5 else i1
        e = (t - self._ref) / self.half_life_s
        return self._w[off + i] / math.pow(2.0, max(e, -1000.0)) if e < 1000.0 else 0.0

    def to_json(self) -> list[Any]:
        return [self._ref, list(self._sum), list(self._w)]

    def load_json(self, data: list[Any]) -> None:
        ref, sums, ws = data
        if len(sums) != len(self._sum) or len(ws) != len(self._w):
            raise ValueError(f"expected {len(self._w)} slots, got {len(sums)}/{len(ws)}")
        self._ref = float(ref)
        self._sum = array("d", [float(v) for v in sums])
        self._w = array("d", [float(v) for v in ws])


class SeasonalSeriesScorer:
    """Online anomaly score in [0, 1] for a series with daily/weekly cycles.

    Three stages, each a small fixed-size state:

    1. **Residual surprise.** Each value (on a log scale when ``log``: volume
       is multiplicative) is deseasonalised: a :class:`SeasonalProfile` learns
       the value by time of week and its offset from the profile's mean is
       subtracted. What remains is compared with an exponentially weighted
       baseline that spikes cannot drag along (updates are clipped); a
       Page-Hinkley test re-centres the baseline after a level shift. The
       z-score is squashed to a raw surprise in [0, 1) (0 up to ``z_lo``, 0.5
       at ``z_hi``). A daily ramp is expected once the profile has seen it.
       The same residual is also compared with a slow baseline (half-life
       ``long_half_life`` values, clipped updates too, not re-centred on a
       level shift) and the larger z-score counts: after a level shift the
       short baseline re-centres at once, the slow one recovers over a few
       hundred values, so a shift stays in evidence (decaying) instead of
       for ``shift_hold`` values only; a slow drift the short baseline
       follows shows about twice its z-score against the slow one.
    2. **Calibration against the series' own history** (HTM's anomaly
       likelihood): the mean raw surprise of the last ``likelihood_window``
       values against a Gaussian of those means (half-life
       ``likelihood_half_life`` values, standard deviation at least
       ``likelihood_min_std``). A series whose raw surprise is always high
       (noisy, unpredictable) needs more to look unusual than a calm one. In
       parallel, the value itself against its long-run mean and deviation
       (half-life ``global_half_life`` values, the windowed-Gaussian idea):
       values outside everything seen so far. Both are upper-tail
       probabilities; their larger ``-log10`` ("nines"), divided by ``nines``,
       is the surprise, so one threshold means the same on every series.
    3. **Onset only.** The surprise is reported *beyond the recent ones*: a
       remembered surprise decays by ``suppress`` per value; a weaker
       surprise soon after a stronger one scores 0. A rise above it is
       measured from where it started, rescaled to what was left,
       ``(s - m) / (1 - m)`` with ``m`` the memory the rise began above (a
       surprise that builds over a few values is reported by its whole
       rise), and reported again during the same rise only once it has grown
       ``report_growth``-fold over the last report. An anomaly is reported
       near its start, not for every value while it lasts (``suppress=0``
       turns this off).

    No score is given for the first ``calibration`` values. A value or time
    that is not finite (NaN, inf: a missing bucket) scores 0.0 and is not
    learned.

    Parameters
    ----------
    half_life
        Half-life of the short baseline, in values.
    long_half_life
        Half-life of the slow baseline, in values (0: off).
    z_lo, z_hi
        z-scores mapped to raw surprises 0 and 0.5.
    clip_z
        Largest z-score an update may move the baseline by (spikes stay spikes).
    ph_threshold
        Page-Hinkley threshold on the clipped deseasonalised values (log
        units, or the values' own with ``log=False``; 0: off).
    shift_hold
        Values during which a detected level shift keeps the surprise up.
    warmup
        Values before the residual surprise is computed.
    log
        Deseasonalise ``log1p(max(0, x))`` instead of ``x``.
    season_half_life_s, weekly, season_min_weight, season_slots
        The :class:`SeasonalProfile`: event-time half-life, weekends apart,
        weight a slot needs, slots per day.
    suppress
        Per-value decay of the remembered surprise, in [0, 1).
    likelihood_window
        Raw surprises averaged before calibration (values, 1..1000).
    likelihood_half_life
        Half-life of the Gaussian the averages are calibrated against (values).
    likelihood_min_std
        Floor of that Gaussian's standard deviation (raw-surprise units).
    global_half_life
        Half-life of the long-run mean and deviation of the value (values).
    nines
        Tail ``-log10`` probability that maps to surprise 1.0.
    calibration
        Values before any score is given (0 until then).
    report_growth
        Growth of a rise over its last report before it is reported again
        (>= 1; 1: at every new high of the rise).

    Examples
    --------
    >>> import random
    >>> rng = random.Random(42)
    >>> scorer = SeasonalSeriesScorer()
    >>> day = [100 + 80 * math.sin(2 * math.pi * i / 288) for i in range(288)]  # 5-min buckets
    >>> series = [v + rng.gauss(0, 3) for v in day * 6]
    >>> series[5 * 288 + 100] *= 4                          # day 6: a jump off the curve
    >>> scores = [scorer.learn_one(x, 300.0 * i) for i, x in enumerate(series)]
    >>> ramps = max(scores[3 * 288:5 * 288])
    >>> ramps < 0.02, scores[5 * 288 + 100] > 10 * ramps
    (True, True)
    >>> scorer.learn_one(float("nan"), 300.0 * len(series))   # a missing bucket
    0.0
    """

    __slots__ = ("half_life", "z_lo", "z_hi", "clip_z", "ph_threshold", "shift_hold", "warmup",
                 "log", "season_half_life_s", "weekly", "season_min_weight",
                 "suppress", "season_slots", "likelihood_window", "likelihood_half_life",
                 "likelihood_min_std", "global_half_life", "nines", "calibration",
                 "report_growth", "long_half_life", "_recent", "_base", "_reported", "_n",
                 "_mean", "_var", "_alpha", "_ph",
                 "_since_shift", "_profile", "_scale", "_window", "_pos", "_lik_alpha",
                 "_lik_mean", "_lik_var", "_g_alpha", "_g_mean", "_g_var", "_slow_alpha",
                 "_slow_mean", "_slow_var")

    def __init__(self, half_life: float = 100.0, z_lo: float = 3.0, z_hi: float = 6.0,
                 clip_z: float = 2.0, ph_threshold: float = 20.0, shift_hold: int = 6,
                 warmup: int = 12, log: bool = True,
                 season_half_life_s: float = 7 * _DAY, weekly: bool = True,
                 season_min_weight: float = 2.0, suppress: float = 0.999,
                 season_slots: int = 48, likelihood_window: int = 10,
                 likelihood_half_life: float = 1000.0, likelihood_min_std: float = 0.03,
                 global_half_life: float = 5000.0, nines: float = 30.0,
                 calibration: int = 50, report_growth: float = 2.0,
                 long_half_life: float = 400.0) -> None:
        if not half_life > 0:
            raise InvalidConfig(f"half_life must be > 0 values, got {half_life!r}")
        if not 0 <= z_lo < z_hi:
            raise InvalidConfig(f"need 0 <= z_lo < z_hi, got z_lo={z_lo!r}, z_hi={z_hi!r}")
        if not (clip_z > 0 and ph_threshold >= 0 and shift_hold >= 0 and warmup >= 1):
            raise InvalidConfig("clip_z must be > 0, ph_threshold >= 0 (0: off), "
                                "shift_hold >= 0, warmup >= 1")
        if not 0 <= suppress < 1:
            raise InvalidConfig(f"suppress must be in [0, 1), got {suppress!r}")
        if not 1 <= likelihood_window <= 1000:
            raise InvalidConfig(f"likelihood_window must be in 1..1000 values, "
                                f"got {likelihood_window!r}")
        if not (likelihood_half_life > 0 and global_half_life > 0):
            raise InvalidConfig("likelihood_half_life and global_half_life must be > 0 values, "
                                f"got {likelihood_half_life!r}, {global_half_life!r}")
        if not likelihood_min_std > 0:
            raise InvalidConfig(f"likelihood_min_std must be > 0, got {likelihood_min_std!r}")
        if not (nines > 0 and math.isfinite(nines)):
            raise InvalidConfig(f"nines must be a finite number > 0, got {nines!r}")
        if not (report_growth >= 1 and math.isfinite(report_growth)):
            raise InvalidConfig(f"report_growth must be a finite number >= 1, "
                                f"got {report_growth!r}")
        if not (long_half_life >= 0 and math.isfinite(long_half_life)):
            raise InvalidConfig(f"long_half_life must be a finite number >= 0 values (0: off), "
                                f"got {long_half_life!r}")
        if not calibration >= 1:
            raise InvalidConfig(f"calibration must be >= 1 values, got {calibration!r}")
        self.half_life = half_life
        self.z_lo = z_lo
        self.z_hi = z_hi
        self.clip_z = clip_z
        self.ph_threshold = ph_threshold
        self.shift_hold = shift_hold
        self.warmup = warmup
        self.log = log
        self.season_half_life_s = season_half_life_s
        self.weekly = weekly
        self.season_min_weight = season_min_weight
        self.suppress = suppress
        self.likelihood_window = int(likelihood_window)
        self.likelihood_half_life = likelihood_half_life
        self.likelihood_min_std = likelihood_min_std
        self.global_half_life = global_half_life
        self.nines = nines
        self.calibration = int(calibration)
        self.report_growth = report_growth
        self.long_half_life = long_half_life
        self._recent = 0.0
        self._base = -1.0  # where the current rise started (-1: none)
        self._reported = 0.0  # the largest part of it reported so far
        self._profile = SeasonalProfile(season_half_life_s, weekly, season_min_weight,
                                        int(season_slots))
        self.season_slots = int(season_slots)
        self._alpha = 1.0 - 0.5 ** (1.0 / half_life)
        self._n = 0
        self._mean = 0.0
        self._var = 0.0
        self._scale = 0.0  # running mean |value|: the deviation floor on a linear scale
        self._ph = PageHinkley(min_instances=warmup, delta=0.05,
                               threshold=ph_threshold if ph_threshold > 0 else math.inf)
        self._since_shift = -1
        # stage 2: the last raw surprises (ring buffer), their calibration
        # Gaussian, and the long-run Gaussian of the value itself
        self._window = array("d", bytes(8 * self.likelihood_window))
        self._pos = 0
        self._lik_alpha = 1.0 - 0.5 ** (1.0 / likelihood_half_life)
        self._lik_mean = 0.0
        self._lik_var = 0.0
        self._g_alpha = 1.0 - 0.5 ** (1.0 / global_half_life)
        self._g_mean = 0.0
        self._g_var = 0.0
        # the slow baseline of the deseasonalised value (stage 1)
        self._slow_alpha = 1.0 - 0.5 ** (1.0 / long_half_life) if long_half_life > 0 else 0.0
        self._slow_mean = 0.0
        self._slow_var = 0.0

    def _value(self, x: float) -> float:
        return math.log1p(x if x > 0.0 else 0.0) if self.log else x

    def _season(self, t: float) -> float:
        return self._profile.offset(t)

    def _floor(self) -> float:
        # a perfectly flat series must not turn every wiggle into a spike
        return 0.05 if self.log else 0.01 * self._scale + 1e-9

    def _std(self) -> float:
        return math.sqrt(self._var) + self._floor()

    def _z(self, x: float, t: float) -> float:
        if self._n < self.warmup:
            return 0.0
        d = self._value(x) - self._season(t)
        z = abs(d - self._mean) / self._std()
        if self._slow_alpha > 0.0:
            slow = abs(d - self._slow_mean) / (math.sqrt(self._slow_var) + self._floor())
            z = slow if slow > z else z
        if 0 <= self._since_shift < self.shift_hold:  # a fresh level shift keeps z up
            z = max(z, self.z_hi * (1.0 - self._since_shift / max(1, self.shift_hold)))
        return z

    def _squash(self, z: float) -> float:
        # 0 up to z_lo, 0.5 at z_hi, towards 1 beyond: graded, never saturated
        e = z - self.z_lo
        return e / (e + self.z_hi - self.z_lo) if e > 0.0 else 0.0

    def _calibrated(self, raw: float, x: float, n: int) -> float:
        """Stage 2 for raw surprise ``raw`` of value ``x``, the ``n``-th value
        (0-based), against the state as it was before it."""
        k = self.likelihood_window
        filled = n if n < k else k
        # the window's mean with raw in place of the oldest entry
        acc = raw + sum(self._window) - (self._window[self._pos] if filled == k else 0.0)
        avg = acc / (filled + 1 if filled < k else k)
        lik_std = math.sqrt(self._lik_var)
        if lik_std < self.likelihood_min_std:
            lik_std = self.likelihood_min_std
        s = tail_nines((avg - self._lik_mean) / lik_std) if n > 0 else 0.0
        if n >= 2:
            g_std = math.sqrt(self._g_var)
            if not g_std > 1e-9 * (abs(self._g_mean) + 1.0):
                g_std = 1e-6  # a constant series: any change is news
            g = tail_nines(abs(x - self._g_mean) / g_std)
            s = g if g > s else s
        s /= self.nines
        return s if s < 1.0 else 1.0

    def score_one(self, x: float, t: float) -> float:
        """Calibrated surprise of ``x`` at ``t`` against what has been learned so
        far (no update, no suppression of repeats; 0.0 during calibration)."""
        if not (math.isfinite(x) and math.isfinite(t)) or self._n < self.calibration:
            return 0.0
        return self._calibrated(self._squash(self._z(x, t)), x, self._n)

    def learn_one(self, x: float, t: float) -> float:
        """Learn ``x`` at event time ``t`` (epoch seconds) and return its score."""
        if not (math.isfinite(x) and math.isfinite(t)):
            return 0.0  # a missing bucket: nothing to learn, nothing to report
        v = self._value(x)
        d = v - self._season(t)
        z = self._z(x, t)  # against the baseline as it was before x
        n = self._n
        std = self._std()
        if n >= 2:
            bound = self.clip_z * std
            clipped = min(self._mean + bound, max(self._mean - bound, d))
        else:
            clipped = d
        # Page-Hinkley on the clipped deseasonalised values: one spike cannot
        # pass for a level shift, a sustained one crosses the threshold
        self._ph.update(clipped)
        if self._ph.drift_detected and n >= self.warmup:
            self._since_shift = 0
            self._mean = d  # a level shift is the new normal: re-centre on it
            clipped = d
        elif self._since_shift >= 0:
            self._since_shift += 1
        z2 = self._z(x, t)
        raw = self._squash(z if z > z2 else z2)
        surprise = self._calibrated(raw, x, n)
        self._learn_calibration(raw, x, n)
        score = self._novel(surprise) if n >= self.calibration else 0.0
        # the profile learns the value itself; the short baseline of what is
        # left after the profile absorbs a change of level until the profile
        # has learned it
        exp = self._profile.expected(t)
        if exp is not None:
            lim = 4 * std  # one spike must not bend the daily curve
            v = exp + lim if v > exp + lim else (exp - lim if v < exp - lim else v)
        self._profile.update(t, v)
        self._scale += (abs(v) - self._scale) / (n + 1 if n < 100 else 100)
        self._n = n + 1
        self._learn_slow(d, n)
        if n == 0:
            self._mean = d
            return score
        a = self._alpha if self._n > self.warmup else 1.0 / self._n
        diff = clipped - self._mean
        self._mean += a * diff
        self._var = (1 - a) * (self._var + a * diff * diff)
        return score

    def _learn_slow(self, d: float, n: int) -> None:
        """The slow baseline learns the ``n``-th deseasonalised value ``d``,
        clipped like the short one so that a spike cannot drag it along."""
        if self._slow_alpha <= 0.0:
            return
        if n == 0:
            self._slow_mean = d
            return
        m = n + 1  # observations including this one
        a = self._slow_alpha if self._slow_alpha * m > 1.0 else 1.0 / m
        bound = self.clip_z * (math.sqrt(self._slow_var) + self._floor())
        diff = min(self._slow_mean + bound, max(self._slow_mean - bound, d)) - self._slow_mean
        self._slow_mean += a * diff
        self._slow_var = (1 - a) * (self._slow_var + a * diff * diff)

    def _learn_calibration(self, raw: float, x: float, n: int) -> None:
        k = self.likelihood_window
        self._window[self._pos] = raw
        self._pos = (self._pos + 1) % k
        filled = n + 1 if n + 1 < k else k
        avg = sum(self._window) / filled
        m = n + 1  # observations including this one
        a = self._lik_alpha if self._lik_alpha * m > 1.0 else 1.0 / m
        diff = avg - self._lik_mean
        self._lik_mean += a * diff
        self._lik_var = (1 - a) * (self._lik_var + a * diff * diff)
        a = self._g_alpha if self._g_alpha * m > 1.0 else 1.0 / m
        diff = x - self._g_mean
        self._g_mean += a * diff
        var = (1 - a) * (self._g_var + a * diff * diff)
        # values near the float limit: keep the deviation finite
        self._g_var = var if var < 1e300 else 1e300

    def _novel(self, s: float) -> float:
        """What ``s`` adds to the recent surprises: an anomaly is reported at its
        onset, not again for every value while it lasts."""
        m = self._recent
        self._recent = s if s > m * self.suppress else m * self.suppress
        if self.suppress <= 0.0:
            return s
        if not s > m:
            self._base = -1.0  # the rise, if any, is over
            return 0.0
        if self._base < 0.0:
            # a rise starts: measured from the memory it rose above, so that a
            # surprise that builds over several values (a likelihood window
            # filling up) is reported by its whole rise, not step by step
            self._base = m
            self._reported = 0.0
        rise = (s - self._base) / (1.0 - self._base)
        if rise > self.report_growth * self._reported:
            # reported again only once the rise has grown report_growth-fold:
            # at any threshold, a rise crosses it once or twice, not per value
            self._reported = rise
            return rise
        return 0.0
