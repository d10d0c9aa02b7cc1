"""The straightforward detector the optimised hot path must match bit for bit.

:class:`ReferenceDetector` is :class:`detectors.engine.Detector` with the
per-event code as it was written before the performance work: ``process``,
the topic sketch update, the evidence score, the seasonal profile and the
population bounds, a helper per concern and a ramp per evidence term, where
the engine inlines them by hand (issue 3). What the engine writes
straightforwardly itself (the prompt-text and content-free updates, the final
weighing of the evidence: ``Detector._prompt_update``, ``_meta_update``,
``_combine``; population learning ``_learn``; alert building) both detectors
share, so it is not repeated here. The few helpers it needs (the ramp, the
exact recomputation of the incremental sums, the constants) are written here
again rather than imported from the module under check.
``tests/oracles/test_detector_oracle.py`` replays seeded streams through both
and requires identical alerts, account states and population snapshots. A
deliberate change of the scoring *algorithm* must be made here too.
"""

from __future__ import annotations

import math

from detectors.alerts import Alert
from detectors.engine import Detector
from detectors.schema import Event
from detectors.state import AccountState

_REBASE = 40.0  # the scaled weights are rebased beyond 2**40
_EXACT_EVERY = 256  # the incremental entropy sums are recomputed exactly this often
_IA_ALPHA = 0.1  # smoothing of the inter-arrival mean and variance


def _ramp(x: float, lo: float, hi: float) -> float:
    """0 up to ``lo``, 1 from ``hi``, linear between."""
    if x <= lo:
        return 0.0
    if x >= hi:
        return 1.0
    return (x - lo) / (hi - lo)


def _plogp(ws: list[float]) -> float:
    """``sum(w log w)`` over the positive weights, added in order (not sum(),
    which compensates on Python >= 3.12)."""
    total = 0.0
    for v in ws:
        if v > 0.0:
            total += v * math.log(v)
    return total


def _exact_sums(state: AccountState) -> None:
    """The incrementally kept sums and ``sum(w log w)``, recomputed."""
    state.s_short = math.fsum(state.w_short)
    state.t_short = _plogp(list(state.w_short))
    state.s_long = math.fsum(state.w_long)
    state.t_long = _plogp(list(state.w_long))
    state.t_hours = _plogp(list(state.hours))


class ReferenceDetector(Detector):
    """The detector with its original, unoptimised per-event code."""

    def _refresh_bounds(self) -> None:
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

    def process(
        self, state: AccountState | None, event: Event
    ) -> tuple[AccountState, list[Alert]]:
        cfg = self.config
        t = event.ts
        if not self._seeded:
            self._seed(t)
        if state is None:
            state = self.new_state(event.account_id, t)
        elif t < state.last_ts:
            t = state.last_ts  # an account's clock never runs backwards
        alerts: list[Alert] = []
        if state.episode_start and t - state.last_hot >= cfg.quiet_period_s:
            alerts.append(self._resolve(state, state.last_hot + cfg.quiet_period_s))

        # ---- scaled weights
        e_s = (t - state.ref) * self._inv_hs
        if e_s > _REBASE:
            self._rebase(state, t)
            e_s = 0.0
        ws = 2.0**e_s
        wl = 2.0 ** ((t - state.ref) * self._inv_hl)

        # ---- timing
        dt = t - state.last_ts
        if dt < 0.0:
            dt = 0.0
        if state.n:
            if state.n == 1:
                state.ia_mean = dt
            else:
                d = dt - state.ia_mean
                state.ia_mean += _IA_ALPHA * d
                state.ia_var = (1.0 - _IA_ALPHA) * (state.ia_var + _IA_ALPHA * d * d)
        if t > state.last_ts:
            state.last_ts = t
        n = state.n = state.n + 1
        hours = state.hours
        h = int(t % 86_400.0) // 3600
        old = hours[h]
        new = old + wl
        hours[h] = new
        state.t_hours += new * math.log(new) - (old * math.log(old) if old > 0.0 else 0.0)
        hb = int(t // 3600.0)
        if hb != state.hour_idx:
            state.hour_idx = hb
            state.hour_w = wl
        else:
            state.hour_w += wl
        state.r_short += ws
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
            self.common_fps.observe(self._anchor, event.account_id, t)
        self._meta_update(state, event, ws)
        if topic is not None:
            tid = self._topic_ids.get(topic) or self._topic_id(topic)

        # ---- topic sketch
        if tid:
            self._update_topics(state, tid, ws, wl, n, dt)

        # ---- drift detectors
        s_short = state.s_short
        cnt_s = s_short / ws  # decayed topic events (short)
        hn_s = 0.0
        if s_short > 0.0:
            hn_s = (math.log(s_short) - state.t_short / s_short) / self._log_k
            hn_s = 0.0 if hn_s < 0.0 else (1.0 if hn_s > 1.0 else hn_s)
        age = t - state.first_ts
        # decayed count per minute over the window, bias-corrected for young accounts
        win = self._win_s * (1.0 - 2.0 ** (-age * self._inv_hs)) if age > 0.0 else 0.0
        if win < cfg.min_rate_window_s:
            win = cfg.min_rate_window_s
        rate = 60.0 * state.r_short / ws / win
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

        # ---- score and lifecycle
        score, terms = self._score(state, t, ws, wl, rate, hn_s, cnt_s)
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
            alerts.append(self._fire(state, t, score, terms, event))

        # ---- population learning (clean accounts only)
        if not state.episode_start and score < cfg.population_clean_score_max:
            if tid:
                self.pop_mix.update(tid, t)
            if t - state.last_pop >= cfg.population_sample_interval_s and n >= 3:
                state.last_pop = t
                self._learn(state, t, ws, rate)
        return state, alerts

    def _season(self, state: AccountState, t: float, h: int) -> float:
        """The hour's seasonal multiplier from the account's past profile."""
        cfg = self.config
        if t - state.first_ts < cfg.season_min_age_s:
            return 1.0
        past = state.r_long - state.hour_w
        if past <= 0.0:
            return 1.0
        pos = (t % 86_400.0) / 3600.0 - 0.5
        if pos < 0.0:
            pos += 24.0
        i = int(pos)
        frac = pos - i
        j = (i + 1) % 24
        a = max(0.0, state.hours[i] - (state.hour_w if i == h else 0.0))
        b = max(0.0, state.hours[j] - (state.hour_w if j == h else 0.0))
        share = 24.0 * ((1.0 - frac) * a + frac * b) / past
        return (share + cfg.season_shrink) / (1.0 + cfg.season_shrink)

    def _update_topics(
        self, state: AccountState, tid: int, ws: float, wl: float, n: int, gap: float
    ) -> None:
        ids = state.ids
        w_s = state.w_short
        w_l = state.w_long
        # own-history surprise (before counting this event) and population cross-entropy
        try:
            j = ids.index(tid)
            own = w_l[j]
        except ValueError:
            j = -1
            own = 0.0
        known = j >= 0
        k = len(ids)
        s_long = state.s_long
        surprise = -math.log((own + 0.5 * wl) / (s_long + 0.5 * wl * k))
        state.sur_short += ws * surprise
        state.sur_long += wl * surprise
        state.ce_short += ws * -self.pop_mix.log_prob(tid)
        if j < 0:
            if 0 in ids:
                j = ids.index(0)
            else:  # space-saving: the lightest slot takes the new topic, keeping its weight
                j = w_l.index(min(w_l))
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
        self._time_mix(state, j, known, gap, wl)
        if n % _EXACT_EVERY == 0:
            _exact_sums(state)

    def _score(
        self,
        state: AccountState,
        t: float,
        ws: float,
        wl: float,
        rate: float,
        hn_s: float,
        cnt_s: float,
    ) -> tuple[float, tuple[float, ...]]:
        cfg = self.config
        # specific evidence
        txt = state.txt_short
        s_tmpl = s_elic = 0.0
        if txt / ws >= cfg.min_prompts:
            s_tmpl = _ramp(state.tmpl_short / txt, self._tmpl_lo, cfg.template_hi)
            s_elic = _ramp(state.elic_short / txt, self._elic_lo, cfg.elicitation_hi)
        s_sweep = 0.0
        s_narrow = 0.0
        if cnt_s >= cfg.min_topic_events:
            s_narrow = _ramp(max(state.w_short) / state.s_short, cfg.narrow_lo, cfg.narrow_hi)
            if cnt_s >= cfg.min_sweep_events:
                s_sweep = _ramp(hn_s, cfg.sweep_lo, cfg.sweep_hi)
        s_timing = 0.0
        n = state.n
        age = t - state.first_ts
        if n >= cfg.min_timing_events and state.ia_mean > 0.0:
            cv = math.sqrt(state.ia_var) / state.ia_mean
            s_timing = 1.0 - _ramp(cv, cfg.regular_cv_lo, cfg.regular_cv_hi)
        if age >= cfg.flat_min_age_s and state.r_long > 0.0:
            s_timing = max(s_timing, _ramp(self._flatness(state), cfg.flat_lo, cfg.flat_hi))
        # generic evidence
        s_vol = 0.0
        if rate > self._vol_floor:
            s_vol = _ramp(self.pop_rate.percentile(rate), cfg.volume_pct_lo, cfg.volume_pct_hi)
        if state.tok_short > 0.0 and s_vol < 1.0:
            tok_rate = self._rate(state.tok_short / ws, age, self._win_s, cfg.short_half_life_s)
            if tok_rate > self._tok_floor:
                s_tok = self.pop_tokens.percentile(tok_rate)
                s_vol = max(s_vol, _ramp(s_tok, cfg.volume_pct_lo, cfg.volume_pct_hi))
        s_drift = 0.0
        if n >= cfg.established_events and age >= cfg.established_age_s:
            base = self._rate(state.r_long / wl, age, self._win_l, cfg.long_half_life_s)
            season = self._season(state, t, int(t % 86_400.0) // 3600)
            if season > 1.0:
                base *= season
            cover = min(1.0, age / cfg.season_min_age_s)
            burst = math.log2((rate + 1e-9) / (base + 1e-9))
            s_vol = max(s_vol, _ramp(burst, cfg.burst_log2_lo, cfg.burst_log2_hi) * cover)
            novelty = 0.0
            if cnt_s >= cfg.min_topic_events:
                typical = state.sur_long / state.s_long if state.s_long > 0.0 else 0.0
                novelty = state.sur_short / state.s_short - max(
                    self._entropy_nats(state.s_long, state.t_long), typical
                )
                s_drift = _ramp(novelty, cfg.novelty_lo, cfg.novelty_hi)
            confirmed = (burst >= cfg.drift_confirm_log2 if state.drift_dir == 2
                         else novelty >= cfg.novelty_lo)
            if state.drift_ts and t - state.drift_ts <= cfg.drift_hold_s and confirmed:
                s_drift = max(s_drift, 0.5 * cover)
        seen = 1.0
        if cfg.seen_burst_margin > 0.0 and n >= cfg.established_events:
            seen = self._seen_burst(state, t, rate)
        return self._combine(
            state, t, ws, wl, age, cnt_s, s_tmpl, s_elic, s_sweep, s_timing, s_vol * seen,
            s_narrow, s_drift, seen=seen,
        )
