"""The detection core: per-account features, River-style models, one score, alerts.

The interface the stream service and replay call:

- ``Detector.process(state, event) -> (state, alerts)``: pure per account,
  given the detector's population context (one detector per Kafka partition);
- ``Detector.expire(state, watermark) -> (state | None, alerts)``: resolves
  quiet episodes and drops idle accounts;
- ``Detector.next_due(state)``: the earliest watermark at which ``expire``
  can change anything (lets the runner visit only accounts that are due);
- ``Detector.describe(state)``: JSON-simple features and scores;
- ``Detector.snapshot() / restore()``: the population models, as JSON bytes;
- ``AccountState.encode() / AccountState.decode()``: compact, no pickle.

How an account is scored
------------------------
Every event updates, in O(1) amortised and event time:

* a space-saving sketch of at most ``max_tracked_topics`` topics with weights
  decayed at two half-lives (short ~15 min, long ~24 h): normalised Shannon
  entropy (entropy / log K, in [0, 1]), top-topic share, effective number of
  topics (exp of the entropy), cross-entropy against the population's topic mix
  (divergence = cross-entropy - entropy), and the mean surprise of recent
  topics under the account's own long-term mix (novelty);
* decayed request and token rates, bias-corrected for the account's age, so a
  new account's rate is right from its first minutes; own baseline = the long
  window's rate;
* prompt-text features (:mod:`detectors.text`): template repetition (share of
  recent prompts whose head or tail fingerprint repeats one of the last
  ``template_ring`` prompts) and reasoning-elicitation share;
* inter-arrival coefficient of variation and hour-of-day flatness;
* two Page-Hinkley detectors (:class:`detectors.models.PageHinkley`, both
  directions) on the short entropy and the log request rate.

Population models (per partition, learned only from accounts that are not
alerting and whose score is below ``population_clean_score_max``, one sample
per account per ``population_sample_interval_s`` so that heavy accounts do not
dominate): decayed streaming quantiles of request rate, token rate, template
share and elicitation share, and the decayed topic mix. Priors from the config
make a fresh partition work before it has learned.

Evidence terms, each in [0, 1] (linear ramps between configured bounds): the
*specific* signals of distillation -- template repetition, reasoning
elicitation, a uniform topic sweep, machine timing (regular or round-the-clock)
-- and the *generic* ones -- volume (population percentile or burst against the
own baseline), narrowness, drift from the own past (novelty or Page-Hinkley).
Bounds of the template and elicitation ramps are raised to the benign
population's ``population_tail_quantile`` (capped), so a deployment where
benign accounts template heavily adapts. Generic evidence counts only at
``generic_floor`` of its weight unless specific evidence is present, which is
what keeps narrow heavy single-use-case apps, batch bursts and product changes
from firing. ``z = specific + generic * gate``; ``score = 1 - exp(-z)``: each
unit of evidence removes a constant fraction of the remaining doubt.
"""

from __future__ import annotations

import math
from typing import Any, Final

import orjson
from mypy_extensions import mypyc_attr

from detectors.alerts import SEVERITIES, Alert, severity_for
from detectors.cluster.keys import identity_keys
from detectors.commonness import CommonFingerprints
from detectors.config import DetectorConfig
from detectors.errors import CorruptState, InvalidConfig
from detectors.models import DecayedQuantiles, PageHinkley, TopicMix
from detectors.schema import Event
from detectors.scoring import ramp as _ramp
from detectors.state import META_SHORT, AccountState, argmin, best_agreement, find, maximum
from detectors.text import SKETCH_BINS, TextTopics, fingerprint_topic, prompt_features
from detectors.watchlist import Watchlist, mark_alert

__all__ = ["AccountState", "Detector", "DetectorConfig", "CorruptState", "InvalidConfig"]

_LN2: Final = math.log(2.0)
_LOG24: Final = math.log(24.0)
_REBASE: Final = 40.0  # rebase scaled weights beyond 2**40
_EXACT_EVERY: Final = 256  # recompute incremental entropies exactly this often
_IA_ALPHA: Final = 0.1
_IA_KEEP: Final = 1.0 - _IA_ALPHA
_SNAPSHOT_VERSION: Final = 1
_MAX_TOPIC_NAMES: Final = 4096

REASONS = (
    "template",
    "elicitation",
    "sweep",
    "timing",
    "volume",
    "narrow",
    "drift",
    "harvest",
    "fresh",
    "pivot",
)
#: stop reasons that mean the output hit the request's limit
_LIMIT_STOPS: Final = frozenset({"max_tokens", "length", "max_output_tokens", "token_limit"})


def _discount_kept(
    state: AccountState, s_tmpl: float, s_elic: float, share: float, keep: float
) -> tuple[float, float]:
    """Template and elicitation evidence scaled by ``keep`` where the account's
    long-term share of it is at least ``share`` of its current share: language
    it has used all along, not language it just took up. ``state.txt_long``
    must be positive."""
    txt, txt_l = state.txt_short, state.txt_long
    if state.tmpl_long / txt_l >= share * state.tmpl_short / txt:
        s_tmpl *= keep
    if state.elic_long / txt_l >= share * state.elic_short / txt:
        s_elic *= keep
    return s_tmpl, s_elic


# (compiled by tools.native: tests and tools may still subclass it)
@mypyc_attr(allow_interpreted_subclasses=True)
class Detector:
    """Per-partition detector: owns config and population context.

    >>> det = Detector()
    >>> state, alerts = det.process(None, Event(1e9, "acct-1", topic="coding/python"))
    >>> alerts, det.describe(state)["events"]
    ([], 1)
    """

    name = "account"

    def __init__(self, config: DetectorConfig | None = None) -> None:
        cfg = self.config = config or DetectorConfig()
        self._inv_hs = 1.0 / cfg.short_half_life_s
        self._inv_hl = 1.0 / cfg.long_half_life_s
        self._win_s = cfg.short_half_life_s / _LN2
        self._win_l = cfg.long_half_life_s / _LN2
        self._log_k = math.log(cfg.max_tracked_topics)
        # constants of the hot path (the config is frozen)
        self._pair_floor = cfg.pair_alone
        self._hs = cfg.short_half_life_s
        self._hl = cfg.long_half_life_s
        self._min_win = cfg.min_rate_window_s
        self._quiet = cfg.quiet_period_s
        self._scan = cfg.scan_chars
        self._agree = cfg.template_agree
        self._varied = float(cfg.template_varied_max)
        self._shared_min = float(cfg.template_shared_min)
        self._flagship = tuple(cfg.flagship_models)
        self._solo = cfg.elicitation_alone
        self._not_solo = 1.0 - cfg.elicitation_alone
        self._gap_max = cfg.pivot_gap_max_s
        self._floor = cfg.generic_floor
        self._not_floor = 1.0 - cfg.generic_floor
        self._severity = {
            "warning": cfg.severity_warning,
            "error": cfg.severity_error,
            "critical": cfg.severity_critical,
        }
        self._topic_ids: dict[str, int] = {}
        self._topic_names: dict[int, str] = {}
        #: indicators shared by other providers (detectors/watchlist.py); set
        #: by the service or replay, shared by the partitions' detectors
        self.watchlist: Watchlist | None = None
        self._reset_population(0.0)

    # ------------------------------------------------------------ population
    def _reset_population(self, t: float) -> None:
        cfg = self.config
        h = cfg.population_half_life_s
        self.pop_rate = DecayedQuantiles(1e-3, 1e5, bins=192, log=True, half_life_s=h)
        self.pop_tokens = DecayedQuantiles(1e-1, 1e8, bins=192, log=True, half_life_s=h)
        self.pop_template = DecayedQuantiles(0.0, 1.0, bins=100, half_life_s=h)
        self.pop_elicitation = DecayedQuantiles(0.0, 1.0, bins=100, half_life_s=h)
        self.pop_mix = TopicMix(half_life_s=h, max_topics=cfg.population_max_topics)
        self.text_topics = TextTopics(cfg.max_text_topics, cfg.max_vocabulary)
        #: how many of the partition's accounts carry each prompt fingerprint
        #: (the summary emitter reads and feeds it: common text links nobody)
        self.common_fps = CommonFingerprints(
            cfg.common_fp_share, cfg.common_fp_min_carriers, h
        )
        self._anchor = 0  # the last prompt's fingerprint
        self._seeded = False
        self._start = 0.0  # event time of the partition's first event
        self._pop_h = 0.0  # entropy (nats) of the population topic mix
        self._pop_h_ts = -math.inf
        # the UTC day of the last event (derived, not in the snapshot): its
        # start (a multiple of 86,400 s) and first hour. Inside it, ``t -
        # self._day0`` is exactly ``t % 86_400.0``, which (as ``t // 3600.0``)
        # is an fmod of a large float, hundreds of instructions, per event
        self._day0 = math.inf
        self._day_h0 = 0
        self._tmpl_lo = cfg.template_lo
        self._elic_lo = cfg.elicitation_lo
        self._vol_floor = 0.0
        self._tok_floor = 0.0
        self._bound_tables: tuple[list[float], ...] | None = None

    def _seed(self, t: float) -> None:
        cfg = self.config
        w = cfg.prior_weight
        self.pop_rate.seed(cfg.prior_rate_median_per_min, cfg.prior_rate_p99_per_min, w, t)
        self.pop_tokens.seed(
            cfg.prior_token_rate_median_per_min, cfg.prior_token_rate_p99_per_min, w, t
        )
        self.pop_template.seed(cfg.prior_template_median, cfg.prior_template_p99, w, t)
        self.pop_elicitation.seed(cfg.prior_elicitation_median, cfg.prior_elicitation_p99, w, t)
        self._seeded = True
        self._start = t
        self._refresh_bounds()

    def _refresh_bounds(self) -> None:
        # The bounds are quantiles, which read only the models' cumulative
        # tables; those are replaced (never mutated) when a model refreshes.
        tables = (
            self.pop_rate._cum,
            self.pop_tokens._cum,
            self.pop_template._cum,
            self.pop_elicitation._cum,
        )
        last = self._bound_tables
        if (
            last is not None
            and tables[0] is last[0]
            and tables[1] is last[1]
            and tables[2] is last[2]
            and tables[3] is last[3]
        ):
            return
        self._bound_tables = tables
        cfg = self.config
        # rates below these cannot reach volume_pct_lo: skip their percentile lookups
        self._vol_floor = self.pop_rate.quantile(cfg.volume_pct_lo * 0.98)
        self._tok_floor = self.pop_tokens.quantile(cfg.volume_pct_lo * 0.98)
        q = cfg.population_tail_quantile
        self._tmpl_lo = min(
            max(cfg.template_lo, self.pop_template.quantile(q)), cfg.template_lo_max
        )
        self._elic_lo = min(
            max(cfg.elicitation_lo, self.pop_elicitation.quantile(q)), cfg.elicitation_lo_max
        )

    def _topic_id(self, topic: str) -> int:
        tid = self._topic_ids.get(topic)
        if tid is None:
            tid = fingerprint_topic(topic)
            if len(self._topic_ids) >= 65_536:
                self._topic_ids.clear()
            self._topic_ids[topic] = tid
            if len(self._topic_names) < _MAX_TOPIC_NAMES:
                self._topic_names.setdefault(tid, topic[:80])
        return tid

    def topic_name(self, tid: int) -> str:
        name = self._topic_names.get(tid)
        if name is not None:
            return name
        if tid & TextTopics.FLAG:
            return self.text_topics.name(tid)
        return f"topic#{tid:08x}"

    def new_state(self, account_id: str, ts: float) -> AccountState:
        cfg = self.config
        return AccountState(
            account_id,
            ts,
            cfg.max_tracked_topics,
            cfg.template_ring,
            self._ph(cfg.ph_entropy_threshold),
            self._ph(cfg.ph_volume_threshold),
        )

    def _ph(self, threshold: float) -> PageHinkley:
        cfg = self.config
        return PageHinkley(cfg.ph_min_instances, cfg.ph_delta, threshold, cfg.ph_alpha, "both")

    # --------------------------------------------------------------- process
    def process(
        self, state: AccountState | None, event: Event
    ) -> tuple[AccountState, list[Alert]]:
        # One flat function: the per-event hot path (issue 3: >= 50k events/s).
        # Helpers are inlined and constants precomputed; every floating-point
        # expression is evaluated in the same order as the straightforward
        # reference (tests/oracles/plain_detector.py), so results are bit-identical.
        cfg = self.config
        t = event.ts
        if not self._seeded:
            self._seed(t)
        if state is None:
            state = self.new_state(event.account_id, t)
        elif t < state.last_ts:
            # An account's clock never runs backwards: a late event counts at
            # the account's latest time. Without this, an event days older than
            # the decay reference gets weight 2**-big == 0.0 (division by zero
            # below) and an episode could resolve before it started.
            t = state.last_ts
        alerts: list[Alert] = []
        if state.episode_start and t - state.last_hot >= self._quiet:
            alerts.append(self._resolve(state, state.last_hot + self._quiet))

        # ---- scaled weights
        # math.pow(2.0, x), not 2.0 ** x: typeshed types float ** float as Any,
        # and compiled, every sum an Any touches is a boxed PyNumber call (the
        # same C pow either way, so the same bits); likewise math.log is
        # called directly, never through a local
        ref = state.ref
        e_s = (t - ref) * self._inv_hs
        if e_s > _REBASE:
            self._rebase(state, t)
            ref = t
            e_s = 0.0
        ws = math.pow(2.0, e_s)
        wl = math.pow(2.0, (t - ref) * self._inv_hl)

        # ---- timing
        last_ts = state.last_ts
        dt = t - last_ts
        if dt < 0.0:
            dt = 0.0
        n = state.n
        if n:
            if n == 1:
                state.ia_mean = dt
            else:
                ia_mean = state.ia_mean
                d = dt - ia_mean
                state.ia_mean = ia_mean + _IA_ALPHA * d
                state.ia_var = _IA_KEEP * (state.ia_var + _IA_ALPHA * d * d)
        if t > last_ts:
            state.last_ts = t
        n += 1
        state.n = n
        hours = state.hours
        d = t - self._day0
        if 0.0 <= d < 86_400.0:
            h = int(d) // 3600
            hb = self._day_h0 + h
        else:
            h, hb = self._new_day(t)
        old = hours[h]
        new = old + wl
        hours[h] = new
        state.t_hours += new * math.log(new) - (old * math.log(old) if old > 0.0 else 0.0)
        # this hour's own weight, kept apart so that the hour-of-day profile
        # read below is the account's past, not the burst being measured
        if hb != state.hour_idx:
            state.hour_idx = hb
            state.hour_w = wl
        else:
            state.hour_w += wl
        r_short = state.r_short + ws
        state.r_short = r_short
        state.r_long += wl
        tokens = (event.input_tokens or 0) + (event.output_tokens or 0)
        if tokens:
            state.tok_short += ws * tokens
            state.tok_long += wl * tokens

        # ---- prompt text
        topic = event.topic
        prompt = event.prompt
        tid = 0
        if prompt is not None:
            tid = self._prompt_update(state, prompt, topic is None, ws, wl)
            # which text the population shares (common text links nobody)
            self.common_fps.observe(self._anchor, event.account_id, t)
        self._meta_update(state, event, ws)
        if topic is not None:
            tid = self._topic_ids.get(topic) or self._topic_id(topic)

        # ---- topic sketch (space-saving, short and long weights)
        if tid:
            ids = state.ids
            w_s = state.w_short
            w_l = state.w_long
            # own-history surprise (before counting this event) and population cross-entropy
            j = find(ids, tid)
            own = w_l[j] if j >= 0 else 0.0
            s_long = state.s_long
            x = -math.log((own + 0.5 * wl) / (s_long + 0.5 * wl * len(ids)))
            state.sur_short += ws * x
            state.sur_long += wl * x
            mix = self.pop_mix  # TopicMix.log_prob, inlined
            a = mix.smoothing * mix._w
            state.ce_short += ws * -math.log(
                (mix._c.get(tid, 0.0) + a) / (mix._total + a * (len(mix._c) + 1))
            )
            known = j >= 0
            if j < 0:
                j = find(ids, 0)
                if j < 0:  # space-saving: the lightest slot takes the new topic, keeping its weight
                    j = argmin(w_l)
                ids[j] = tid
            old = w_s[j]
            new = old + ws
            w_s[j] = new
            state.t_short += new * math.log(new) - (old * math.log(old) if old > 0.0 else 0.0)
            state.s_short += ws
            old = w_l[j]
            new = old + wl
            w_l[j] = new
            state.t_long += new * math.log(new) - (old * math.log(old) if old > 0.0 else 0.0)
            state.s_long = s_long + wl
            self._time_mix(state, j, known, dt, wl)
            if n % _EXACT_EVERY == 0:
                _exact_sums(state)

        # ---- drift detectors
        s_short = state.s_short
        cnt_s = s_short / ws  # decayed topic events (short)
        hn_s = 0.0
        if s_short > 0.0:
            hn_s = (math.log(s_short) - state.t_short / s_short) / self._log_k
            hn_s = 0.0 if hn_s < 0.0 else (1.0 if hn_s > 1.0 else hn_s)
        age = t - state.first_ts
        # decayed count per minute over the window, bias-corrected for young accounts
        win = self._win_s * (1.0 - math.pow(2.0, -age * self._inv_hs)) if age > 0.0 else 0.0
        if win < self._min_win:
            win = self._min_win
        rate = 60.0 * r_short / ws / win
        if tid and cnt_s >= 2.0:
            ph = state.ph_entropy
            ph.update(hn_s)
            if ph._drift:
                state.drift_ts = t
                state.drift_dir = ph._drift
        ph = state.ph_volume
        ph.update(math.log2(rate + 1e-3))
        if ph._drift > 0:
            state.drift_ts = t
            state.drift_dir = 2

        # ---- score: evidence terms, each ``_ramp(x, lo, hi)`` written out
        # specific evidence
        txt = state.txt_short
        s_tmpl = s_elic = 0.0
        if txt / ws >= cfg.min_prompts:
            x = state.tmpl_short / txt
            lo = self._tmpl_lo
            hi = cfg.template_hi
            if x <= lo:
                pass
            elif x >= hi:
                s_tmpl = 1.0
            else:
                s_tmpl = (x - lo) / (hi - lo)
            x = state.elic_short / txt
            lo = self._elic_lo
            hi = cfg.elicitation_hi
            if x <= lo:
                pass
            elif x >= hi:
                s_elic = 1.0
            else:
                s_elic = (x - lo) / (hi - lo)
        s_sweep = 0.0
        s_narrow = 0.0
        if cnt_s >= cfg.min_topic_events:
            x = maximum(state.w_short) / s_short
            lo = cfg.narrow_lo
            hi = cfg.narrow_hi
            if x <= lo:
                pass
            elif x >= hi:
                s_narrow = 1.0
            else:
                s_narrow = (x - lo) / (hi - lo)
            if cnt_s >= cfg.min_sweep_events:
                lo = cfg.sweep_lo
                hi = cfg.sweep_hi
                if hn_s <= lo:
                    pass
                elif hn_s >= hi:
                    s_sweep = 1.0
                else:
                    s_sweep = (hn_s - lo) / (hi - lo)
        s_timing = 0.0
        if n >= cfg.min_timing_events and state.ia_mean > 0.0:
            x = math.sqrt(state.ia_var) / state.ia_mean
            lo = cfg.regular_cv_lo
            hi = cfg.regular_cv_hi
            if x <= lo:
                s_timing = 1.0 - 0.0
            elif x >= hi:
                s_timing = 1.0 - 1.0
            else:
                s_timing = 1.0 - (x - lo) / (hi - lo)
        r_long = state.r_long
        if age >= cfg.flat_min_age_s and r_long > 0.0:
            x = (math.log(r_long) - state.t_hours / r_long) / _LOG24  # hour-of-day flatness
            x = x if x < 1.0 else 1.0
            x = x if x > 0.0 else 0.0
            lo = cfg.flat_lo
            hi = cfg.flat_hi
            if x <= lo:
                x = 0.0
            elif x >= hi:
                x = 1.0
            else:
                x = (x - lo) / (hi - lo)
            if x > s_timing:
                s_timing = x
        # generic evidence
        vol_lo = cfg.volume_pct_lo
        vol_hi = cfg.volume_pct_hi
        s_vol = 0.0
        if rate > self._vol_floor:
            x = self.pop_rate.percentile(rate)
            if x <= vol_lo:
                pass
            elif x >= vol_hi:
                s_vol = 1.0
            else:
                s_vol = (x - vol_lo) / (vol_hi - vol_lo)
        tok_short = state.tok_short
        if tok_short > 0.0 and s_vol < 1.0:
            w = self._win_s * (1.0 - math.pow(2.0, -age / self._hs)) if age > 0.0 else 0.0
            if w < self._min_win:
                w = self._min_win
            tok_rate = 60.0 * (tok_short / ws) / w
            if tok_rate > self._tok_floor:
                x = self.pop_tokens.percentile(tok_rate)
                if x <= vol_lo:
                    x = 0.0
                elif x >= vol_hi:
                    x = 1.0
                else:
                    x = (x - vol_lo) / (vol_hi - vol_lo)
                if x > s_vol:
                    s_vol = x
        s_drift = 0.0
        if n >= cfg.established_events and age >= cfg.established_age_s:
            # how much of a daily cycle the account's profile has seen: before
            # a whole day, a rate unlike its mean so far may be its day (a
            # tutor's school morning, a reseller's evening), so evidence read
            # against its own rate counts at this fraction of its weight
            cover = age / cfg.season_min_age_s
            if cover > 1.0:
                cover = 1.0
            w = self._win_l * (1.0 - math.pow(2.0, -age / self._hl)) if age > 0.0 else 0.0
            if w < self._min_win:
                w = self._min_win
            base = 60.0 * (r_long / wl) / w
            # ---- seasonality: how busy this time of day usually is for the
            # account (24 x its share of the account's past traffic, without
            # the current hour, interpolated between the hours' centres, shrunk
            # towards 1), once the profile has seen a whole day. A busy hour
            # raises the expected rate; a quiet one never lowers it (a young
            # profile's empty hour is no evidence): :meth:`_season`
            base *= self._season(state, t)
            burst = math.log2((rate + 1e-9) / (base + 1e-9))
            lo = cfg.burst_log2_lo
            hi = cfg.burst_log2_hi
            if burst <= lo:
                x = 0.0
            elif burst >= hi:
                x = 1.0
            else:
                x = (burst - lo) / (hi - lo)
            x *= cover
            if x > s_vol:
                s_vol = x
            novelty = 0.0
            if cnt_s >= cfg.min_topic_events:
                # recent topics' surprise under the own long mix, against the
                # surprise the account's topics usually have (at least the long
                # mix's entropy): a broad account whose mix outgrows the sketch
                # always draws "unseen" topics, which is its normal, not novelty
                s_l = state.s_long
                x = math.log(s_l) - state.t_long / s_l if s_l > 0.0 else 0.0
                y = state.sur_long / s_l if s_l > 0.0 else 0.0
                novelty = state.sur_short / s_short - (x if x > y else y)
                x = novelty
                lo = cfg.novelty_lo
                hi = cfg.novelty_hi
                if x <= lo:
                    pass
                elif x >= hi:
                    s_drift = 1.0
                else:
                    s_drift = (x - lo) / (hi - lo)
            # a change point (Page-Hinkley) holds drift at 0.5 while what it saw
            # is still there against the own baseline: a rate change while the
            # rate is at least drift_confirm_log2 above the account's expected
            # rate for this hour, a topic-entropy change while its recent topics
            # are novel (at least novelty_lo nats more surprising than its usual
            # ones: an entropy shift over the same topics is the same mix sampled
            # at another rate); and as far as the profile has seen a daily cycle
            if (
                state.drift_ts
                and t - state.drift_ts <= cfg.drift_hold_s
                and (burst >= cfg.drift_confirm_log2 if state.drift_dir == 2
                     else novelty >= cfg.novelty_lo)
                and 0.5 * cover > s_drift
            ):
                s_drift = 0.5 * cover
        # a rate the account reached in a busy period it already had
        seen = 1.0
        if cfg.seen_burst_margin > 0.0 and n >= cfg.established_events:
            seen = self._seen_burst(state, t, rate)
            s_vol *= seen
        # indicators shared by other providers (dw/response's hook): the
        # account's template fingerprints are its anchors (those the cluster
        # stage links accounts by)
        watch = self.watchlist
        s_shared = watch.evidence(event, state.anchors) if watch is not None and watch.size else 0.0
        score, terms = self._combine(
            state, t, ws, wl, age, cnt_s, s_tmpl, s_elic, s_sweep, s_timing, s_vol, s_narrow,
            s_drift, s_shared, seen,
        )

        # ---- lifecycle
        state.score = score
        if state.episode_start:
            if score >= cfg.hot_threshold:
                state.last_hot = t
            if score > state.peak_score:
                state.peak_score = score
        elif score >= cfg.fire_threshold:
            state.episode_start = t
            state.last_hot = t
            state.peak_score = score
            fired = self._fire(state, t, score, terms, event)
            if s_shared > 0.0 and watch is not None:
                fired = mark_alert(fired, watch.matched, s_shared)
            alerts.append(fired)

        # ---- population learning (clean accounts only)
        if not state.episode_start and score < cfg.population_clean_score_max:
            if tid:
                self.pop_mix.update(tid, t)
            if t - state.last_pop >= cfg.population_sample_interval_s and n >= 3:
                state.last_pop = t
                self._learn(state, t, ws, rate)
        return state, alerts

    # ----------------------------------------------------- new evidence terms
    def _time_mix(
        self, state: AccountState, j: int, known: bool, gap: float, wl: float
    ) -> None:
        """Count the gap before this request (capped at ``pivot_gap_max_s``)
        as time the account spent on the topic in slot ``j``; a slot that just
        took a new topic starts without time (space-saving lets it keep the
        request weight of the topic it replaced, not that topic's time)."""
        w = state.w_time
        if not known:
            w[j] = 0.0
        w[j] += wl * (gap if gap < self._gap_max else self._gap_max)

    def _new_day(self, t: float) -> tuple[int, int]:
        """``(int(t % 86_400.0) // 3600, int(t // 3600.0))`` for an event
        outside the cached day, which becomes ``t``'s day when that is exact:
        for ``0 <= t < 2**52`` the day's start ``t - t % 86_400.0`` is an
        integer, and for a later ``t`` of that day ``t - day0`` is exactly the
        remainder (no wider than ``t``); so are the hour numbers."""
        r = t % 86_400.0
        if 0.0 <= t < 4_503_599_627_370_496.0:  # 2**52
            self._day0 = t - r
            self._day_h0 = int(self._day0) // 3600
        return int(r) // 3600, int(t // 3600.0)

    def _season(self, state: AccountState, t: float) -> float:
        """How busy this time of day usually is for the account, as the
        seasonal burst baseline of :meth:`process` computes it (>= 1; 1 before
        the profile has seen ``season_min_age_s``)."""
        cfg = self.config
        past = state.r_long - state.hour_w
        if t - state.first_ts < cfg.season_min_age_s or past <= 0.0:
            return 1.0
        hours = state.hours
        d = t - self._day0  # t % 86_400.0 (exactly) inside the cached day
        if not 0.0 <= d < 86_400.0:
            d = t % 86_400.0
        h = int(d) // 3600
        x = d / 3600.0 - 0.5
        if x < 0.0:
            x += 24.0
        i = int(x)
        x -= i
        j = i + 1 if i < 23 else 0
        a = hours[i] - (state.hour_w if i == h else 0.0)
        b = hours[j] - (state.hour_w if j == h else 0.0)
        x = 24.0 * ((1.0 - x) * (a if a > 0.0 else 0.0) + x * (b if b > 0.0 else 0.0)) / past
        x = (x + cfg.season_shrink) / (1.0 + cfg.season_shrink)
        return x if x > 1.0 else 1.0

    def _shift(self, state: AccountState, ws: float, wl: float) -> float:
        """How far the account's top topic of the short window is above that
        topic's share of the account's *time* (:meth:`_time_mix`), as a ramp
        from ``pivot_shift_lo`` to ``pivot_shift_hi``: 0 without
        ``pivot_history_s`` of observed time or ``pivot_min_events`` recent
        topic events. The topic half of :meth:`_pivot`."""
        cfg = self.config
        s_s = state.s_short
        if s_s < cfg.pivot_min_events * ws:
            return 0.0
        w_t = state.w_time
        total = math.fsum(w_t)
        if total < cfg.pivot_history_s * wl:
            return 0.0
        w_s = state.w_short
        top = maximum(w_s)
        i = 0
        while w_s[i] != top:
            i += 1
        return _ramp(top / s_s - w_t[i] / total, cfg.pivot_shift_lo, cfg.pivot_shift_hi)

    def _pivot(self, state: AccountState, t: float, ws: float, wl: float, age: float) -> float:
        """Pivot evidence in [0, 1]: the account's top topic of the short
        window takes a share of its recent requests well above that topic's
        share of the account's *time* (:meth:`_time_mix`, long decay), while its
        rate grows against its own long-term rate. Needs ``pivot_history_s`` of
        observed time (weeks, for an always-on detector; nothing in an account's
        first hours) and ``pivot_min_events`` recent topic events.

        Time, not requests, is the baseline's unit: an account whose rate grows
        twentyfold on one topic has, after an hour, a request mix dominated by
        that topic (so novelty against the request-weighted mix fades within
        the hour) but a time mix that moved by one hour's worth."""
        # growth against the own rate, as far as the profile has seen a day
        # (as the burst evidence of :meth:`process`)
        cover = age / self.config.season_min_age_s
        return self._pivot_undamped(state, t, ws, wl, age) * (cover if cover < 1.0 else 1.0)

    def _pivot_undamped(
        self, state: AccountState, t: float, ws: float, wl: float, age: float
    ) -> float:
        """:meth:`_pivot` before it is weighed by how much of a day the
        account's profile has seen."""
        cfg = self.config
        shift = self._shift(state, ws, wl)
        if shift <= 0.0:
            return 0.0
        short = self._rate(state.r_short / ws, age, self._win_s, cfg.short_half_life_s)
        long = self._rate(state.r_long / wl, age, self._win_l, cfg.long_half_life_s)
        if long <= 0.0:
            return 0.0
        long *= self._season(state, t)  # a busy hour of its day is no growth
        growth = math.log2((short + 1e-9) / long)
        return shift * _ramp(growth, cfg.pivot_growth_lo, cfg.pivot_growth_hi)

    def _prompt_update(
        self, state: AccountState, prompt: str, infer_topic: bool, ws: float, wl: float
    ) -> int:
        """Template and elicitation counts of one prompt; its inferred topic (or 0).

        A prompt *repeats a template* when its sketch agrees with one of the
        account's last ``template_ring`` prompts in at least ``template_agree``
        of 16 bins, the part they share is at least ``template_shared_min``
        shingles (a fixed instruction, not two short prompts that both say
        "how do i") and the part that differs is small: at most
        ``template_varied_max`` shingles, i.e. a short slot in a fixed template.
        A fixed wrapper around long, varied content (RAG, app instructions)
        agrees in many bins too, but differs in more shingles than that: it is
        the app's wrapper, not a harvest template.
        """
        sk, size, elicit, terms, anchor = prompt_features(prompt, self._scan)
        self._anchor = anchor
        ring = state.ring
        best = best_agreement(ring, sk)
        state.txt_short += ws
        state.txt_long += wl
        repeat = False
        if best >= self._agree:
            # shingles shared with the closest recent prompt and its own others,
            # from the Jaccard estimate (taking the two prompts' sizes as equal)
            j = best / SKETCH_BINS
            shared = 2.0 * j * size / (1.0 + j)
            if shared >= self._shared_min and size - shared <= self._varied:
                repeat = True
                state.tmpl_short += ws
                state.tmpl_long += wl
        if elicit:
            state.elic_short += ws
            state.elic_long += wl
        s0, s1, s2, s3 = sk
        pos = state.ring_pos
        ring[pos] = s0
        ring[pos + 1] = s1
        ring[pos + 2] = s2
        ring[pos + 3] = s3
        # the anchor of a template repeat only: an account's recurring anchors are
        # its template fingerprints for the cluster stage (0: not a repeat)
        state.anchors[pos >> 2] = anchor if repeat else 0
        pos += 4
        state.ring_pos = 0 if pos >= len(ring) else pos
        if infer_topic:
            return self.text_topics.assign(terms)
        return 0

    def _meta_update(self, state: AccountState, event: Event, ws: float) -> None:
        """Content-free counts: output/input tokens, output at the request's
        limit, thinking enabled, requests to a flagship model."""
        out = event.output_tokens
        inp = event.input_tokens
        if out is not None and inp is not None:
            state.out_short += ws * out
            state.inp_short += ws * inp
        limit = event.max_tokens
        stop = event.stop_reason
        if limit or stop is not None:
            state.lim_short += ws
            if (stop is not None and stop.lower() in _LIMIT_STOPS) or (
                limit and out is not None and out >= 0.95 * limit
            ):
                state.sat_short += ws
        thinking = event.thinking
        if thinking is not None:
            state.thn_short += ws
            if thinking:
                state.think_short += ws
        model = event.model
        if model is not None and self._flagship:
            state.mdl_short += ws
            if model.startswith(self._flagship):
                state.flag_short += ws

    def _population_entropy(self, t: float) -> float:
        """Entropy (nats) of the population topic mix, recomputed at most once a
        minute of event time (it moves on the population's half-life)."""
        if t - self._pop_h_ts >= 60.0:
            self._pop_h_ts = t
            mix = self.pop_mix
            total = mix._total
            h = 0.0
            if total > 0.0:
                for c in mix._c.values():
                    if c > 0.0:
                        p = c / total
                        h -= p * math.log(p)
            self._pop_h = h
        return self._pop_h

    def _harvest(self, state: AccountState, ws: float) -> float:
        """Content-free evidence of answer harvesting, in [0, 1], over at least
        ``harvest_min_events`` recent requests. With token counts, the ratio of
        output to input tokens leads (what the account takes home), and the
        other indicators the events carry (outputs at the request's limit,
        thinking enabled, only the flagship model) raise it from 0.7 to 1 of
        the ratio's ramp: none of them alone is a harvest (benign apps hit
        their limits and turn on thinking too). Without token counts, the
        mean of the others (at least two)."""
        cfg = self.config
        need = cfg.harvest_min_events * ws
        if state.r_short < need:
            return 0.0
        total = 0.0
        have = 0
        if state.lim_short >= need:
            total += _ramp(state.sat_short / state.lim_short, cfg.saturation_lo,
                           cfg.saturation_hi)
            have += 1
        if state.thn_short >= need:
            total += _ramp(state.think_short / state.thn_short, cfg.thinking_lo,
                           cfg.thinking_hi)
            have += 1
        if state.mdl_short >= need:
            total += _ramp(state.flag_short / state.mdl_short, cfg.flagship_lo,
                           cfg.flagship_hi)
            have += 1
        if state.inp_short > 0.0:
            x = math.log2((state.out_short + 1.0) / (state.inp_short + 1.0))
            x = _ramp(x, cfg.ratio_log2_lo, cfg.ratio_log2_hi)
            return x * (0.7 + 0.3 * (total / have if have else 0.0))
        if have < 2:
            return 0.0
        return total / have

    def _take(self, state: AccountState, ws: float) -> float:
        """What the account takes home, in [0, 1]: a ramp on log2(output /
        input tokens) from ``grading_ratio_log2`` to ``reasoning_ratio_log2``;
        1 when the events carry no token counts. Reasoning harvests and plain
        harvests collect answers longer than their questions; graders (LLM as
        a judge) and batch jobs (classification, extraction, summaries) return
        outputs no longer than their inputs."""
        cfg = self.config
        if state.inp_short > 0.0 and state.r_short >= cfg.min_prompts * ws:
            x = math.log2((state.out_short + 1.0) / (state.inp_short + 1.0))
            return _ramp(x, cfg.grading_ratio_log2, cfg.reasoning_ratio_log2)
        return 1.0

    def _seen_burst(self, state: AccountState, t: float, rate: float) -> float:
        """The weight of rate evidence (volume, and the rate growth of a
        pivot) given the busy periods the account has already had: ``1 -
        stable_discount`` at a rate up to ``seen_burst_margin`` x the peak of
        one that ended with no page open during it, else 1. A busy period runs
        until the short rate falls below ``seen_burst_end`` of its peak; that
        peak is kept decayed with ``seen_burst_half_life_s``. A batch job's
        third run of the day at its first run's rate is its business. A rate
        beyond what it did before, a first burst, a ramp that never ends, and a
        busy period during which a page was open (not taken as the account's
        normal) keep their weight; content evidence is not touched.

        Updates ``cur_peak`` (the running period's peak, negative once a page
        was open during it), ``bst_peak`` and ``bst_ts``."""
        cfg = self.config
        # the kept peak, decayed to now (one pow per event, only once one is kept)
        seen = state.bst_peak
        if seen > 0.0:
            seen *= math.pow(2.0, (state.bst_ts - t) / cfg.seen_burst_half_life_s)
        cur = state.cur_peak
        if state.episode_start and cur > 0.0:
            cur = -cur
        top = cur if cur >= 0.0 else -cur
        if rate > top:
            cur = rate if cur >= 0.0 else -rate
        elif rate < cfg.seen_burst_end * top:
            if cur > 0.0 and top > seen:
                state.bst_peak = seen = top
                state.bst_ts = t
            cur = rate
        state.cur_peak = cur
        if seen > 0.0 and rate <= cfg.seen_burst_margin * seen:
            return 1.0 - cfg.stable_discount
        return 1.0

    def _steady(self, state: AccountState, ws: float, wl: float, age: float) -> bool:
        """Whether the account's short-term rate is below the start of the burst
        ramp (``burst_log2_lo``: 4x) against its own mean rate since first seen.
        (The middle of the ramp, as an established account's ``volume < 0.5``,
        would say nothing here: the mean since first seen includes the short
        window, and for an account seen for 2 h the ratio cannot reach 8x.)"""
        cfg = self.config
        short = self._rate(state.r_short / ws, age, self._win_s, cfg.short_half_life_s)
        long = self._rate(state.r_long / wl, age, self._win_l, cfg.long_half_life_s)
        return long > 0.0 and math.log2((short + 1e-9) / long) < cfg.burst_log2_lo

    def predates(self, state: AccountState, age: float) -> bool:
        """Whether the account was plausibly active before the partition's
        first event: at its own mean rate since it was first seen, it would
        have sent fewer than ``fresh_gap_events`` requests between the
        partition's first event and its own first one (a Poisson gap with
        probability >= exp(-fresh_gap_events)). A heavy account first seen
        well after the stream began is new; a light one may just have been
        quiet."""
        cfg = self.config
        span = age if age > cfg.min_rate_window_s else cfg.min_rate_window_s
        return (state.first_ts - self._start) * state.n / span < cfg.fresh_gap_events

    def _combine(
        self,
        state: AccountState,
        t: float,
        ws: float,
        wl: float,
        age: float,
        cnt_s: float,
        s_tmpl: float,
        s_elic: float,
        s_sweep: float,
        s_timing: float,
        s_vol: float,
        s_narrow: float,
        s_drift: float,
        s_shared: float = 0.0,
        seen: float = 1.0,
    ) -> tuple[float, tuple[float, ...]]:
        """The score from the evidence terms, weighed with the account's context.

        * A sweep counts only as far as the account's topics are *unlike the
          population's natural mix*: its mean surprise under the population
          mix exceeds the population's own entropy (a general-purpose account
          draws topics the way the population does; a systematic sweep covers
          rare topics as often as common ones).
        * Fresh: an account younger than ``fresh_age_s`` that does not
          predate the stream (:meth:`predates`); for it, volume evidence starts
          at the population's ``fresh_pct_lo`` percentile.
        * Established: ``stable_min_events`` events and ``established_age_s``
          old, or predating the stream. Without a burst or drift, its harvest
          evidence, and its template and elicitation evidence where the
          long-term shares are at least half the current ones, count at
          ``1 - stable_discount``: a stable history is its business.
        * What the account takes home (:meth:`_take`) weighs elicitation and
          fresh-and-heavy evidence: judges and batch jobs return short outputs.
        * Not established but observed for ``fresh_age_s`` (or predating the
          stream), steady, broad, without drift or harvest: template and
          elicitation shares it has kept (``stable_share``) count at
          ``1 - stable_discount``.
        * Template and elicitation (and a new account's elicitation) lend each
          other context at ``pair_alone``, up to 1 with the account's rate,
          narrowness or harvest evidence.
        """
        cfg = self.config
        if s_sweep > 0.0:
            excess = state.ce_short / state.s_short - self._population_entropy(t)
            s_sweep *= _ramp(excess, cfg.sweep_excess_lo, cfg.sweep_excess_hi)
        s_harvest = self._harvest(state, ws)
        # (its rate growth weighed like volume, ``seen``: a burst it had before)
        # (the same product, in the same order, as ``_pivot(...) * seen``)
        raw = self._pivot_undamped(state, t, ws, wl, age)
        cover = age / cfg.season_min_age_s
        s_pivot = raw * (cover if cover < 1.0 else 1.0) * seen
        moved = raw * seen
        keep = 1.0 - cfg.stable_discount
        old = self.predates(state, age)
        s_fresh = 0.0
        if not old and age < cfg.fresh_age_s:
            s_fresh = 1.0
        # how heavy the account is for one that is new, or whose history we
        # have not yet seen: from the population's fresh_pct_lo percentile
        rel = s_vol
        if rel < 1.0 and (s_fresh > 0.0 or (old and age < cfg.established_age_s)):
            w = self._win_s * (1.0 - math.pow(2.0, -age * self._inv_hs)) if age > 0.0 else 0.0
            rate = 60.0 * state.r_short / ws / (w if w > self._min_win else self._min_win)
            x = _ramp(self.pop_rate.percentile(rate), cfg.fresh_pct_lo, cfg.volume_pct_lo)
            if x > rel:
                rel = x
        # established: long enough history; or active since before the
        # partition began (its history predates what we saw) and not heavy:
        # a heavy account's history is not taken on trust before we saw it
        established = state.n >= cfg.stable_min_events and (
            age >= cfg.established_age_s or (old and rel < 0.5)
        )
        if established and s_sweep > 0.0 and s_drift < 0.5 and s_pivot < 0.5:
            # a topic mix that has been this broad all along (its long-term mix
            # as even as a sweep's: a reseller, a general-purpose assistant) is
            # its business, not coverage it just took up; at any volume (such
            # accounts are heavy), not when its topics drift
            s_l = state.s_long
            if (math.log(s_l) - state.t_long / s_l) / self._log_k >= cfg.sweep_lo:
                s_sweep *= keep
        if (
            established and s_vol < 0.5 and s_drift < 0.5 and s_pivot < 0.5
            and (moved < 0.5 or s_narrow < 0.5)
        ):
            # a stable history without a burst or drift: its templates,
            # reasoning requests and long answers are its normal business.
            # Not while its hour is mostly one topic that had a small share of
            # its time and its rate has grown against its own (the pivot's two
            # halves, before the first-day weight): a busy hour of its day
            # does not move its mix to one topic, so that weight, which keeps
            # a young profile's day from reading as growth, is not needed to
            # see that what it does now is not the history the discount
            # trusts. (Stop 32: slow pivots of the tuning days were paged
            # only as campaign members; at the account stage their long
            # answers stayed discounted as their business while the damped
            # pivot evidence peaked at 0.1-0.48.)
            if state.txt_long > 0.0:
                s_tmpl, s_elic = _discount_kept(state, s_tmpl, s_elic, 0.5, keep)
            s_harvest *= keep
        elif (
            s_drift < 0.5
            and s_narrow < 0.5
            and s_harvest < 0.5
            and state.n >= cfg.stable_min_events
            and (old or age >= cfg.fresh_age_s)
            and state.txt_long > 0.0
            and (s_vol < 0.5 or self._steady(state, ws, wl, age))
        ):
            # not established (a heavy account predating the stream, or one
            # seen for hours but not yet established_age_s old), but observed
            # long enough, at its own steady rate, over a broad topic mix and
            # without harvest-shaped answers: language it has used all along
            # (a tutor's step-by-step framing, an app's template) is its
            # business. Its harvest and volume evidence are not discounted, and
            # narrow, templated reasoning requests (a low-and-slow harvest) keep
            # their weight
            s_tmpl, s_elic = _discount_kept(state, s_tmpl, s_elic, cfg.stable_share, keep)
        # reasoning requests and new heavy traffic weigh with what the account
        # takes home: grading that returns short verdicts (an LLM-as-judge
        # pipeline) and batch jobs whose outputs are no longer than their
        # inputs do not harvest written-out answers
        take = keep + (1.0 - keep) * self._take(state, ws)
        s_elic *= take
        # a pivot harvests as far as its answers are taken home (a batch job's
        # burst on its own top topic returns short outputs)
        s_pivot *= take
        # elicitation alone (a human who likes "step by step") is weaker than
        # elicitation in templated, heavy or new traffic
        # ... and templates and reasoning requests (or a new account's
        # reasoning requests) reinforce each other as far as the account takes
        # something: rate, a narrow focus, harvest-shaped answers
        m = rel
        if s_narrow > m:
            m = s_narrow
        if s_harvest > m:
            m = s_harvest
        pair = self._pair_floor + (1.0 - self._pair_floor) * (m if m < 1.0 else 1.0)
        ctx = s_vol
        if pair * s_tmpl > ctx:
            ctx = pair * s_tmpl
        if pair * s_fresh > ctx:
            ctx = pair * s_fresh
        s_elic_eff = s_elic * (self._solo + self._not_solo * ctx)
        # a new account harvesting: heavy traffic (for a new account "heavy"
        # starts lower, at the population's fresh_pct_lo) or harvest-shaped
        # answers from an account first seen minutes ago is specific, not
        # generic, evidence
        s_new_heavy = 0.0
        if s_fresh > 0.0:
            x = rel
            # heavy counts as far as the answers it takes home are harvest-shaped
            # (a new batch job's outputs are not much longer than its inputs)
            if state.inp_short > 0.0 and state.r_short >= cfg.min_prompts * ws:
                y = math.log2((state.out_short + 1.0) / (state.inp_short + 1.0))
                x *= _ramp(y, cfg.ratio_log2_lo, cfg.ratio_log2_hi)
            # ... or taking home harvest-shaped answers from its first requests
            if s_harvest > x:
                x = s_harvest
            s_new_heavy = s_fresh * x * take
        # a template alone is an app's (one product, one prompt skeleton); it is
        # a harvest's when it carries reasoning requests, harvest-shaped
        # outputs, a sweep, or comes from a new account at volume
        ctx = pair * s_elic
        if s_harvest > ctx:
            ctx = s_harvest
        if s_new_heavy > ctx:
            ctx = s_new_heavy
        if s_sweep > ctx:
            ctx = s_sweep
        s_tmpl_eff = s_tmpl * (cfg.template_alone + (1.0 - cfg.template_alone) * ctx)
        z_content = (
            cfg.w_template * s_tmpl_eff
            + cfg.w_elicitation * s_elic_eff
            + cfg.w_sweep * s_sweep
            + cfg.w_harvest * s_harvest
            + cfg.w_fresh * s_new_heavy
            + cfg.w_pivot * s_pivot
        )
        z_spec = z_content + cfg.w_timing * s_timing
        z_gen = cfg.w_volume * s_vol + cfg.w_narrow * s_narrow + cfg.w_drift * s_drift
        # only content evidence opens the gate: round-the-clock apps are machine-timed too
        x = z_content / cfg.specific_full
        gate = self._floor + self._not_floor * (x if x < 1.0 else 1.0)
        z = z_spec + z_gen * gate + s_shared
        score = 1.0 - math.exp(-z)
        return score, (s_tmpl, s_elic, s_sweep, s_timing, s_vol, s_narrow, s_drift,
                       s_harvest, s_new_heavy, s_pivot)

    def _rate(self, count: float, age: float, win: float, half_life: float) -> float:
        """Decayed count per minute, corrected for an account younger than the window."""
        w = win * (1.0 - math.pow(2.0, -age / half_life)) if age > 0.0 else 0.0
        if w < self.config.min_rate_window_s:
            w = self.config.min_rate_window_s
        return 60.0 * count / w

    def _entropy(self, s: float, t: float) -> float:
        if s <= 0.0:
            return 0.0
        h = (math.log(s) - t / s) / self._log_k
        return 0.0 if h < 0.0 else (1.0 if h > 1.0 else h)

    def _rebase(self, state: AccountState, t: float) -> None:
        fs = math.pow(2.0, -(t - state.ref) * self._inv_hs)
        fl = math.pow(2.0, -(t - state.ref) * self._inv_hl)
        state.ref = t
        for name in ("r_short", "tok_short", "txt_short", "tmpl_short", "elic_short",
                     "ce_short", "sur_short", *META_SHORT):
            setattr(state, name, getattr(state, name) * fs)
        for name in ("r_long", "tok_long", "txt_long", "tmpl_long", "elic_long", "sur_long"):
            setattr(state, name, getattr(state, name) * fl)
        w = state.w_short
        for i in range(len(w)):
            w[i] *= fs
        w = state.w_long
        for i in range(len(w)):
            w[i] *= fl
        w = state.w_time
        for i in range(len(w)):
            w[i] *= fl
        w = state.hours
        for i in range(len(w)):
            w[i] *= fl
        state.hour_w *= fl
        _exact_sums(state)

    def _entropy_nats(self, s: float, t: float) -> float:
        return math.log(s) - t / s if s > 0.0 else 0.0

    def _flatness(self, state: AccountState) -> float:
        r = state.r_long
        if r <= 0.0:
            return 0.0
        return max(0.0, min(1.0, (math.log(r) - state.t_hours / r) / _LOG24))

    def _learn(self, state: AccountState, t: float, ws: float, rate: float) -> None:
        cfg = self.config
        self.pop_rate.update(rate, t)
        if state.tok_short > 0.0:
            tok = self._rate(
                state.tok_short / ws, t - state.first_ts, self._win_s, cfg.short_half_life_s
            )
            self.pop_tokens.update(tok, t)
        txt = state.txt_short
        if txt / ws >= cfg.min_prompts:
            self.pop_template.update(state.tmpl_short / txt, t)
            self.pop_elicitation.update(state.elic_short / txt, t)
        self._refresh_bounds()

    # ------------------------------------------------------------- lifecycle
    def next_due(self, state: AccountState) -> float:
        """Earliest watermark at which :meth:`expire` can change this state."""
        cfg = self.config
        if state.episode_start:
            return state.last_hot + cfg.quiet_period_s
        return state.last_ts + cfg.idle_ttl_s

    def expire(
        self, state: AccountState, watermark: float
    ) -> tuple[AccountState | None, list[Alert]]:
        cfg = self.config
        alerts: list[Alert] = []
        if state.episode_start and watermark - state.last_hot >= cfg.quiet_period_s:
            alerts.append(self._resolve(state, watermark))
        if not state.episode_start and watermark - state.last_ts >= cfg.idle_ttl_s:
            return None, alerts
        return state, alerts

    # ------------------------------------------------------------- evidence
    def features(self, state: AccountState, t: float | None = None) -> dict[str, Any]:
        """Current features of an account (as of its last event, or ``t``)."""
        cfg = self.config
        t = state.last_ts if t is None else max(t, state.last_ts)
        ws = math.pow(2.0, (t - state.ref) * self._inv_hs)
        wl = math.pow(2.0, (t - state.ref) * self._inv_hl)
        age = t - state.first_ts
        rate = self._rate(state.r_short / ws, age, self._win_s, cfg.short_half_life_s)
        base = self._rate(state.r_long / wl, age, self._win_l, cfg.long_half_life_s)
        tok = self._rate(state.tok_short / ws, age, self._win_s, cfg.short_half_life_s)
        out: dict[str, Any] = {
            "events": state.n,
            "age_s": round(age, 1),
            "rate_per_min": round(rate, 3),
            "rate_baseline_per_min": round(base, 3),
            "rate_population_percentile": round(self.pop_rate.percentile(rate), 4),
            "token_rate_per_min": round(tok, 1),
        }
        if state.s_short > 0.0:
            s_s, s_l = state.s_short, state.s_long
            w_short = state.w_short
            log_k = self._log_k
            # the entropies in nats, each computed once (as _entropy_nats)
            h_s = math.log(s_s) - state.t_short / s_s
            h_l = math.log(s_l) - state.t_long / s_l if s_l > 0.0 else 0.0
            e = h_s / log_k  # as _entropy
            out["entropy_short"] = round(0.0 if e < 0.0 else (1.0 if e > 1.0 else e), 4)
            e = h_l / log_k if s_l > 0.0 else 0.0
            out["entropy_long"] = round(0.0 if e < 0.0 else (1.0 if e > 1.0 else e), 4)
            out["effective_topics_short"] = round(math.exp(h_s), 2)
            out["top_share_short"] = round(max(w_short) / s_s, 4)
            div = state.ce_short / s_s - h_s
            out["population_divergence"] = round(max(0.0, div), 4)
            y = state.sur_long / s_l if s_l > 0.0 else 0.0
            out["novelty"] = round(state.sur_short / s_s - (h_l if h_l > y else y), 4)
            # heaviest first, ties to the lower id
            top = sorted([(-w, tid) for w, tid in zip(w_short, state.ids, strict=True) if tid])[:5]
            out["top_topics"] = [[self.topic_name(tid), round(-nw / s_s, 4)] for nw, tid in top]
        if state.txt_short > 0.0:
            out["template_repetition"] = round(state.tmpl_short / state.txt_short, 4)
            out["elicitation_share"] = round(state.elic_short / state.txt_short, 4)
            out["template_repetition_baseline"] = round(state.tmpl_long / state.txt_long, 4)
            out["elicitation_share_baseline"] = round(state.elic_long / state.txt_long, 4)
            out["prompt_fingerprints"] = sorted({f"{fp:08x}" for fp in state.anchors if fp})[:8]
        if state.inp_short > 0.0:
            out["output_input_ratio"] = round(state.out_short / state.inp_short, 3)
        if state.lim_short > 0.0:
            out["limit_hit_share"] = round(state.sat_short / state.lim_short, 4)
        if state.thn_short > 0.0:
            out["thinking_share"] = round(state.think_short / state.thn_short, 4)
        if state.mdl_short > 0.0:
            out["flagship_share"] = round(state.flag_short / state.mdl_short, 4)
        if state.n >= 3 and state.ia_mean > 0.0:
            out["interarrival_cv"] = round(math.sqrt(state.ia_var) / state.ia_mean, 4)
        if state.r_long > 0.0:
            out["hour_flatness"] = round(self._flatness(state), 4)
        return out

    def summary_features(
        self, state: AccountState, t: float | None = None
    ) -> tuple[int, float, list[tuple[str, float]], float, float, float]:
        """The features an account summary carries
        (:class:`detectors.cluster.SummaryEmitter`), computed exactly as
        :meth:`features` computes them, without the rest of that dict:
        ``(events, rate_per_min, top 3 topics with shares,
        template_repetition, elicitation_share, hour_flatness)``; missing
        values are 0.0 as ``features().get(name, 0.0)`` gives them.

        >>> from detectors.schema import Event
        >>> det = Detector()
        >>> state, _ = det.process(None, Event(ts=1e9, account_id="a", topic="math"))
        >>> lean, full = det.summary_features(state), det.features(state)
        >>> lean[0] == full["events"] and lean[1] == full["rate_per_min"]
        True
        >>> lean[2] == [tuple(x) for x in full["top_topics"][:3]]
        True
        """
        cfg = self.config
        t = state.last_ts if t is None else max(t, state.last_ts)
        ws = math.pow(2.0, (t - state.ref) * self._inv_hs)
        rate = self._rate(state.r_short / ws, t - state.first_ts, self._win_s,
                          cfg.short_half_life_s)
        top: list[tuple[str, float]] = []
        s_s = state.s_short
        if s_s > 0.0:
            ranked = sorted([(-w, tid) for w, tid in zip(state.w_short, state.ids, strict=True)
                             if tid])[:3]
            top = [(self.topic_name(tid), round(-nw / s_s, 4)) for nw, tid in ranked]
        txt = state.txt_short
        tmpl = round(state.tmpl_short / txt, 4) if txt > 0.0 else 0.0
        elic = round(state.elic_short / txt, 4) if txt > 0.0 else 0.0
        flat = round(self._flatness(state), 4) if state.r_long > 0.0 else 0.0
        return state.n, round(rate, 3), top, tmpl, elic, flat

    def describe(self, state: AccountState) -> dict[str, Any]:
        """Features and scores for the web view (no prompt text, fingerprints only)."""
        out = self.features(state)
        out["score"] = round(state.score, 4)
        out["episode_open"] = bool(state.episode_start)
        if state.episode_start:
            out["episode_start"] = state.episode_start
            out["peak_score"] = round(state.peak_score, 4)
        if state.drift_ts:
            out["last_drift_ts"] = state.drift_ts
            out["last_drift"] = {1: "entropy_up", -1: "entropy_down", 2: "volume_up"}.get(
                state.drift_dir, "none"
            )
        return out

    def _fire(
        self, state: AccountState, t: float, score: float, terms: tuple[float, ...],
        event: Event | None = None,
    ) -> Alert:
        details = self.features(state, t)
        if event is not None:
            # who pays, from where, for which org: the campaign stage folds an
            # account into the campaign whose clusters fired on these keys
            # before any cluster names the account
            ids = identity_keys(event)
            if ids:
                details["linkage_keys"] = ids
        evidence = {name: round(v, 3) for name, v in zip(REASONS, terms, strict=True)}
        reasons = [name for name, v in zip(REASONS, terms, strict=True) if v >= 0.5]
        details["evidence"] = evidence
        details["reasons"] = reasons
        details["thresholds"] = {
            "fire": self.config.fire_threshold,
            "template_lo": round(self._tmpl_lo, 4),
            "elicitation_lo": round(self._elic_lo, 4),
        }
        summary = (
            f"{state.account_id[:40]}: distillation score {score:.2f} "
            f"({', '.join(reasons) or 'combined'})"
        )
        severity = severity_for(score, self._severity)
        # the resolved record repeats it (Alertmanager identifies an alert by its labels)
        state.fire_sev = SEVERITIES.index(severity)
        return Alert(
            detector=self.name,
            status="firing",
            severity=severity,
            score=score,
            ts=t,
            episode_start=state.episode_start,
            summary=summary,
            details=details,
            account_id=state.account_id,
        )

    def _resolve(self, state: AccountState, t: float) -> Alert:
        details: dict[str, Any] = {
            "peak_score": round(state.peak_score, 4),
            "last_hot_ts": state.last_hot,
            "episode_duration_s": round(state.last_hot - state.episode_start, 1),
        }
        if 0 < state.fire_sev < len(SEVERITIES):
            # the firing record's severity: the forwarders label the resolve with it
            details["firing_severity"] = SEVERITIES[state.fire_sev]
        alert = Alert(
            detector=self.name,
            status="resolved",
            severity="info",
            score=state.score,
            ts=t,
            episode_start=state.episode_start,
            summary=f"{state.account_id[:40]}: quiet since the last suspicious request",
            details=details,
            account_id=state.account_id,
        )
        state.episode_start = 0.0
        state.peak_score = 0.0
        state.fire_sev = 0
        return alert

    # ------------------------------------------------------------- snapshot
    def snapshot(self) -> bytes:
        """Population models as JSON bytes (no pickle)."""
        return orjson.dumps(
            {
                "version": _SNAPSHOT_VERSION,
                "seeded": self._seeded,
                "rate": self.pop_rate.to_json(),
                "tokens": self.pop_tokens.to_json(),
                "template": self.pop_template.to_json(),
                "elicitation": self.pop_elicitation.to_json(),
                "mix": self.pop_mix.to_json(),
                "text_topics": self.text_topics.to_json(),
                "topic_names": sorted(self._topic_names.items()),
                "start": self._start,
                "pop_entropy": [self._pop_h, self._pop_h_ts],
                "common_fps": self.common_fps.to_json(),
            }
        )

    def restore(self, data: bytes) -> None:
        """Load a :meth:`snapshot`; raises :class:`CorruptState` if it does not fit."""
        try:
            obj = orjson.loads(data)
            if obj.get("version") != _SNAPSHOT_VERSION:
                raise CorruptState(f"unknown snapshot version {obj.get('version')!r}")
            self._reset_population(0.0)
            self.pop_rate.load_json(obj["rate"])
            self.pop_tokens.load_json(obj["tokens"])
            self.pop_template.load_json(obj["template"])
            self.pop_elicitation.load_json(obj["elicitation"])
            self.pop_mix.load_json(obj["mix"])
            self.text_topics.load_json(obj["text_topics"])
            self._topic_names = {int(k): str(v) for k, v in obj["topic_names"]}
            self._seeded = bool(obj["seeded"])
            self._start = float(obj.get("start", 0.0))
            pop_h = obj.get("pop_entropy")
            if pop_h is not None:
                self._pop_h = float(pop_h[0])
                self._pop_h_ts = float(pop_h[1]) if pop_h[1] is not None else -math.inf
            common = obj.get("common_fps")
            if common is not None:  # absent from older snapshots: starts empty
                self.common_fps.load_json(common)
            if self._seeded:
                self._refresh_bounds()
        except CorruptState:
            raise
        except (orjson.JSONDecodeError, KeyError, ValueError, TypeError, AttributeError,
                AssertionError) as exc:
            self._reset_population(0.0)
            raise CorruptState(f"cannot restore detector snapshot: {exc}") from None


def _exact_sums(state: AccountState) -> None:
    """Recompute the incrementally maintained sums exactly (bounds float drift)."""
    t = 0.0
    for v in state.w_short:
        if v > 0.0:
            t += v * math.log(v)
    state.s_short = math.fsum(state.w_short)
    state.t_short = t
    t = 0.0
    for v in state.w_long:
        if v > 0.0:
            t += v * math.log(v)
    state.s_long = math.fsum(state.w_long)
    state.t_long = t
    t = 0.0
    for v in state.hours:
        if v > 0.0:
            t += v * math.log(v)
    state.t_hours = t
