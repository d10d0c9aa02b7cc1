"""Evaluation: score alerts against labels; naive baselines; the side-by-side run.

Pure functions (no I/O) except :func:`evaluate`, which prints the table and
optionally writes JSON. The replay CLI can reuse :func:`score_alerts`,
:class:`StaticRule`, :class:`HourlyBatch` and :func:`format_table`.

Scoring rules
-------------
- An attacking account (one label) is *detected* if it has a ``firing`` alert
  with ``ts`` in ``[start, end + grace_s]``; its *delay* is the first such
  ``ts`` minus ``start``. Recall and median / p90 delay are per family.
- A hydra *campaign* is detected if at least one member is; its delay is the
  first member detection minus the campaign start (earliest member start);
  account recall within campaigns is reported too.
- A benign account (kind not an attack family) is a false positive if it has
  any ``firing`` alert at all. FP rate is overall and per benign kind.
- Cluster alerts (``account_id`` None, ``accounts`` listed) count for every
  listed account.

p90 uses linear interpolation between order statistics (numpy's default):

>>> quantile([10.0, 20.0, 30.0, 40.0], 0.9)
37.0
>>> quantile([5.0], 0.5)
5.0
"""

from __future__ import annotations

import math
import statistics
import time
import tomllib
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import IO, Any

import orjson

from simulator.attacks import CAMPAIGN_FAMILIES, FAMILIES, SINGLE_ACCOUNT_FAMILIES

DEFAULT_GRACE_S = 900.0
HOUR = 3600.0


def _ts(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    from detectors.schema import parse_ts

    return parse_ts(value)


def quantile(values: list[float], q: float) -> float:
    """Linear-interpolated quantile of a non-empty list."""
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def alert_subjects(alert: Any) -> tuple[str, list[str], float]:
    """``(status, account ids, ts)`` of an :class:`~detectors.alerts.Alert`, an
    alert record dict, or any object with ``status``/``account_id``/``ts``."""
    if isinstance(alert, Mapping):
        status = alert.get("status", "firing")
        acct = alert.get("account_id")
        accounts = [acct] if acct else list(alert.get("accounts") or [])
        return status, accounts, _ts(alert["ts"])
    acct = getattr(alert, "account_id", None)
    accounts = [acct] if acct else list(getattr(alert, "accounts", ()) or ())
    return getattr(alert, "status", "firing"), accounts, _ts(alert.ts)


def firing_times(alerts: Iterable[Any]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = defaultdict(list)
    for a in alerts:
        status, accounts, ts = alert_subjects(a)
        if status != "firing":
            continue
        for acct in accounts:
            out[acct].append(ts)
    for v in out.values():
        v.sort()
    return dict(out)


def _delays_summary(delays: list[float]) -> dict[str, float | None]:
    if not delays:
        return {"delay_median_s": None, "delay_p90_s": None}
    return {
        "delay_median_s": round(statistics.median(delays), 3),
        "delay_p90_s": round(quantile(delays, 0.9), 3),
    }


def score_alerts(
    alerts: Iterable[Any],
    labels: Iterable[Mapping[str, Any]],
    account_kinds: Mapping[str, str],
    grace_s: float = DEFAULT_GRACE_S,
    drop_topic: float = 0.0,
    run_start: float | None = None,
) -> dict[str, Any]:
    """Recall / delay per attack family and hydra campaign, FP per benign kind.

    With ``run_start`` (a run after a warm-up), ``benign.overall.warmup_flagged``
    counts the benign accounts paged before it (they count as paged) and
    ``warmup_attack_accounts`` the attacking accounts paged before it (never a
    detection: their attack starts in the run).

    >>> labels = [{"account_id": "x", "attack": "extractor", "start": 100.0, "end": 200.0}]
    >>> kinds = {"x": "extractor", "b1": "regular", "b2": "regular"}
    >>> alerts = [{"status": "firing", "account_id": "x", "ts": 160.0},
    ...           {"status": "firing", "account_id": "b2", "ts": 50.0}]
    >>> m = score_alerts(alerts, labels, kinds)
    >>> m["attacks"]["extractor"]["recall"], m["attacks"]["extractor"]["delay_median_s"]
    (1.0, 60.0)
    >>> m["benign"]["overall"]["fp_rate"], m["benign"]["by_kind"]["regular"]["flagged"]
    (0.5, 1)
    """
    fired = firing_times(alerts)
    labels = list(labels)
    labelled = {lab["account_id"] for lab in labels}
    families: dict[str, dict[str, Any]] = {}
    by_family: dict[str, list[tuple[str, float | None]]] = defaultdict(list)
    camp: dict[tuple[str, str], list[tuple[float, float | None]]] = defaultdict(list)
    detected_accounts: list[str] = []
    for lab in labels:
        start, end = _ts(lab["start"]), _ts(lab["end"])
        hit = None
        for t in fired.get(lab["account_id"], ()):
            if start <= t <= end + grace_s:
                hit = t
                break
        by_family[lab["attack"]].append((lab["account_id"], None if hit is None else hit - start))
        if hit is not None:
            detected_accounts.append(lab["account_id"])
        if lab.get("campaign"):
            camp[(lab["attack"], lab["campaign"])].append((start, hit))
    for fam in sorted(by_family, key=lambda f: (FAMILIES.index(f) if f in FAMILIES else 99, f)):
        rows = by_family[fam]
        delays = [d for _, d in rows if d is not None]
        families[fam] = {
            "accounts": len(rows),
            "detected": len(delays),
            "recall": round(len(delays) / len(rows), 4),
            **_delays_summary(delays),
        }
    campaigns: dict[str, dict[str, Any]] = {}
    per_family_camps: dict[str, list[tuple[str, list[tuple[float, float | None]]]]] = defaultdict(
        list
    )
    for (fam, cid), members in sorted(camp.items()):
        per_family_camps[fam].append((cid, members))
    for fam, camps in per_family_camps.items():
        delays, n_det, members_total, members_det = [], 0, 0, 0
        detail = {}
        for cid, members in camps:
            start = min(s for s, _ in members)
            hits = [h for _, h in members if h is not None]
            members_total += len(members)
            members_det += len(hits)
            if hits:
                n_det += 1
                delays.append(min(hits) - start)
            detail[cid] = {
                "accounts": len(members),
                "detected_accounts": len(hits),
                "detected": bool(hits),
                "delay_s": round(min(hits) - start, 3) if hits else None,
            }
        campaigns[fam] = {
            "campaigns": len(camps),
            "detected": n_det,
            "recall": round(n_det / len(camps), 4),
            "account_recall": round(members_det / members_total, 4) if members_total else None,
            **_delays_summary(delays),
            "by_campaign": detail,
        }
    benign_by_kind: dict[str, dict[str, Any]] = {}
    flagged_ids: list[str] = []
    counts: Counter[str] = Counter()
    flagged: Counter[str] = Counter()
    for acct, kind in account_kinds.items():
        if kind in FAMILIES or acct in labelled:
            continue
        counts[kind] += 1
        if acct in fired:
            flagged[kind] += 1
            flagged_ids.append(acct)
    for kind in sorted(counts):
        benign_by_kind[kind] = {
            "accounts": counts[kind],
            "flagged": flagged[kind],
            "fp_rate": round(flagged[kind] / counts[kind], 5),
        }
    total = sum(counts.values())
    overall: dict[str, Any] = {
        "accounts": total,
        "flagged": len(flagged_ids),
        "fp_rate": round(len(flagged_ids) / total, 5) if total else 0.0,
    }
    if run_start is not None:
        early = {a for a, ts in fired.items() if ts[0] < run_start}
        overall["warmup_flagged"] = len(early & set(flagged_ids))
        overall["warmup_attack_accounts"] = len(early & labelled)
    return {
        "attacks": families,
        "campaigns": campaigns,
        "benign": {
            "overall": overall,
            "by_kind": benign_by_kind,
            "flagged_accounts": sorted(flagged_ids)[:200],
        },
        "grace_s": grace_s,
    }


# ---------------------------------------------------------------- baselines ---


@dataclass(frozen=True)
class RuleConfig:
    """The naive rule a team would write first, with thresholds picked the way
    a team would pick them: round numbers above what their busiest legitimate
    customers do, stated as documented (not tuned against the attacks).

    - volume: more than ``max_requests`` requests in ``rate_window_s``
      (default ``None``: no volume branch. The old default, 600 in 10 minutes,
      sat above every simulated attack's rate and could only produce false
      positives; the reachable volume baseline is
      :class:`simulator.baselines.VolumeRule`, the population's p99);
    - concentration: at least ``share_min_requests`` requests in the last
      ``share_window_s`` with at least ``max_top_share`` of them on one topic
      (default 300 requests/h, 90% one topic: "a heavy account hammering one
      capability");
    - an alert episode ends after ``quiet_s`` without the rule being true.
    """

    rate_window_s: float = 600.0
    max_requests: int | None = None
    share_window_s: float = 3600.0
    share_min_requests: int = 300
    max_top_share: float = 0.9
    quiet_s: float = 600.0


@dataclass
class SimpleAlert:
    account_id: str
    ts: float
    status: str = "firing"
    detector: str = "baseline"
    reason: str = ""


class StaticRule:
    """The rule evaluated on every event (streaming, no learning)."""

    name = "static"

    def __init__(self, config: RuleConfig | None = None) -> None:
        self.cfg = config or RuleConfig()
        self.recent: dict[str, deque[float]] = {}
        self.hour: dict[str, deque[tuple[float, str]]] = {}
        self.topic_counts: dict[str, Counter[str]] = {}
        self.last_true: dict[str, float] = {}
        self.alerts: list[SimpleAlert] = []

    def process(self, account_id: str, ts: float, topic: str | None) -> SimpleAlert | None:
        cfg = self.cfg
        q = self.recent.get(account_id)
        if q is None:
            q = self.recent[account_id] = deque()
            self.hour[account_id] = deque()
            self.topic_counts[account_id] = Counter()
        q.append(ts)
        while q and q[0] <= ts - cfg.rate_window_s:
            q.popleft()
        h, c = self.hour[account_id], self.topic_counts[account_id]
        topic = topic or "unknown"
        h.append((ts, topic))
        c[topic] += 1
        while h and h[0][0] <= ts - cfg.share_window_s:
            c[h.popleft()[1]] -= 1
        reason = ""
        if cfg.max_requests is not None and len(q) > cfg.max_requests:
            reason = "volume"
        elif len(h) >= cfg.share_min_requests and c[topic] / len(h) >= cfg.max_top_share:
            reason = "concentration"
        if not reason:
            return None
        last = self.last_true.get(account_id)
        self.last_true[account_id] = ts
        if last is not None and ts - last <= cfg.quiet_s:
            return None
        alert = SimpleAlert(account_id, ts, detector="static", reason=reason)
        self.alerts.append(alert)
        return alert


class HourlyBatch:
    """The same rule as an hourly batch job over the last hour's logs: volume
    per 10-minute bucket, concentration over the hour; alerts are stamped at
    the hour boundary when the job runs (event time)."""

    name = "hourly"

    def __init__(self, config: RuleConfig | None = None) -> None:
        self.cfg = config or RuleConfig()
        self.hour_idx: int | None = None
        self.buckets: dict[str, Counter[int]] = defaultdict(Counter)
        self.topics: dict[str, Counter[str]] = defaultdict(Counter)
        self.prev_true: set[str] = set()
        self.alerts: list[SimpleAlert] = []

    def process(self, account_id: str, ts: float, topic: str | None) -> None:
        idx = int(ts // HOUR)
        if self.hour_idx is None:
            self.hour_idx = idx
        while idx > self.hour_idx:
            self._run_job()
            self.hour_idx += 1
        self.buckets[account_id][int(ts // self.cfg.rate_window_s)] += 1
        self.topics[account_id][topic or "unknown"] += 1

    def _run_job(self) -> None:
        cfg = self.cfg
        assert self.hour_idx is not None
        at = (self.hour_idx + 1) * HOUR
        now_true: set[str] = set()
        for acct in sorted(self.topics):
            tc = self.topics[acct]
            n = sum(tc.values())
            vol = (
                cfg.max_requests is not None
                and max(self.buckets[acct].values()) > cfg.max_requests
            )
            conc = n >= cfg.share_min_requests and max(tc.values()) / n >= cfg.max_top_share
            if vol or conc:
                now_true.add(acct)
                if acct not in self.prev_true:
                    self.alerts.append(
                        SimpleAlert(
                            acct, at, detector="hourly", reason="volume" if vol else "concentration"
                        )
                    )
        self.prev_true = now_true
        self.buckets.clear()
        self.topics.clear()

    def finish(self) -> None:
        """Run the job for the last (partial) hour at its boundary."""
        if self.hour_idx is not None and self.topics:
            self._run_job()


# ---------------------------------------------------------------- the table ---


def _fmt_delay(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 60:
        return f"{s:.0f}s"
    if s < 3600:
        return f"{s / 60:.1f}m"
    return f"{s / 3600:.1f}h"


SYSTEMS = ("distillwatch", "volume", "keyword", "shared_card")
BASELINES = ("volume", "keyword", "shared_card")
SYSTEM_TITLES = {
    "distillwatch": "distillwatch",
    "volume": "volume p99 (+conc.)",
    "keyword": "keyword rule",
    "shared_card": "shared card",
    "static": "static per-event",
    "hourly": "hourly batch",
}


def format_table(results: Mapping[str, Mapping[str, Any]], systems: Iterable[str] = SYSTEMS) -> str:
    """One side-by-side table: attack rows show ``recall med/p90 delay``,
    campaign rows campaign recall (account recall), benign rows FP rate."""
    systems = [s for s in systems if s in results]
    first = results[systems[0]]
    w0, wn, wc = 24, 6, 24
    head = f"{'row':<{w0}}{'n':>{wn}}  " + "".join(
        f"| {SYSTEM_TITLES.get(s, s):<{wc}}" for s in systems
    )
    sub = f"{'':<{w0}}{'':>{wn}}  " + "".join(f"| {'recall  median / p90':<{wc}}" for _ in systems)
    lines = [head, sub, "-" * len(head)]
    for fam, row in first["attacks"].items():
        cells = []
        for s in systems:
            r = results[s]["attacks"].get(fam)
            if r is None:
                cells.append("-")
                continue
            cells.append(
                f"{r['recall']:.2f}    {_fmt_delay(r['delay_median_s'])} / "
                f"{_fmt_delay(r['delay_p90_s'])}"
            )
        label = fam if fam in SINGLE_ACCOUNT_FAMILIES else f"{fam} (accounts)"
        lines.append(
            f"{label:<{w0}}{row['accounts']:>{wn}}  " + "".join(f"| {c:<{wc}}" for c in cells)
        )
    for fam, row in first["campaigns"].items():
        cells = []
        for s in systems:
            r = results[s]["campaigns"].get(fam)
            cells.append(
                "-"
                if r is None
                else f"{r['recall']:.2f} ({r['account_recall']:.2f}) "
                f"{_fmt_delay(r['delay_median_s'])}"
            )
        lines.append(
            f"{fam + ' campaigns':<{w0}}{row['campaigns']:>{wn}}  "
            + "".join(f"| {c:<{wc}}" for c in cells)
        )
    lines.append(
        f"{'benign kind':<{w0}}{'':>{wn}}  "
        + "".join(f"| {'FP rate (accounts)':<{wc}}" for _ in systems)
    )
    kinds = list(first["benign"]["by_kind"].items()) + [("all benign", first["benign"]["overall"])]
    for kind, row in kinds:
        cells = []
        for s in systems:
            b = results[s]["benign"]
            r = b["overall"] if kind == "all benign" else b["by_kind"].get(kind)
            cells.append(f"{100 * r['fp_rate']:.2f}% ({r['flagged']})")
        lines.append(
            f"{kind:<{w0}}{row['accounts']:>{wn}}  " + "".join(f"| {c:<{wc}}" for c in cells)
        )
    return "\n".join(lines)


def better_than(
    ours: Mapping[str, Any], theirs: Mapping[str, Any], fp_budget: float = 0.005
) -> tuple[bool, str]:
    """Whether ``ours`` strictly beats ``theirs``: recall at least as high on every
    attack family and campaign family, benign FP within ``fp_budget`` and not
    above theirs unless theirs is within budget too, and strictly better on
    at least one of: total recall, FP rate, summed median delay."""
    why = []
    rec_o = rec_t = 0.0
    delay_o = delay_t = 0.0
    for fam, r in ours["attacks"].items():
        t = theirs["attacks"].get(fam, {"recall": 0.0, "delay_median_s": None})
        rec_o += r["recall"]
        rec_t += t["recall"]
        if r["recall"] < t["recall"]:
            why.append(f"{fam}: recall {r['recall']} < {t['recall']}")
        if r["delay_median_s"] is not None and t["delay_median_s"] is not None:
            delay_o += r["delay_median_s"]
            delay_t += t["delay_median_s"]
    for fam, r in ours["campaigns"].items():
        t = theirs["campaigns"].get(fam, {"recall": 0.0})
        rec_o += r["recall"]
        rec_t += t["recall"]
        if r["recall"] < t["recall"]:
            why.append(f"{fam} campaigns: recall {r['recall']} < {t['recall']}")
    fp_o, fp_t = ours["benign"]["overall"]["fp_rate"], theirs["benign"]["overall"]["fp_rate"]
    if fp_o > fp_budget and fp_o > fp_t:
        why.append(f"benign FP {fp_o} above budget {fp_budget} and above {fp_t}")
    strictly = rec_o > rec_t or fp_o < fp_t or delay_o < delay_t
    if not strictly:
        why.append("not strictly better on recall, FP or delay")
    return (not why), "; ".join(why)


# --------------------------------------------------------------- the runner ---


def load_detector_config(path: str | None) -> Any:
    """The detectors' config from a TOML file (``None``: defaults)."""
    import detectors.engine as engine

    config_cls = engine.DetectorConfig
    if path is None:
        return config_cls()
    with open(path, "rb") as f:
        data = tomllib.load(f)
    if "detector" in data and isinstance(data["detector"], dict):
        data = data["detector"]
    # the service's own tables ([actions], [sharing]: streams/service/detection.py)
    data = {k: v for k, v in data.items() if k not in ("actions", "sharing")}
    if hasattr(config_cls, "from_mapping"):
        return config_cls.from_mapping(data)
    return config_cls(**data)


@dataclass(frozen=True)
class BaselineConfig:
    """The baselines' settings (see :mod:`simulator.baselines`).

    ``volume_threshold`` ``None``: learned as the population's
    ``volume_quantile`` of hourly request counts over the first
    ``learn_fraction`` of the run (at most ``learn_max_s``).
    """

    volume_threshold: float | None = None
    volume_quantile: float = 0.99
    learn_fraction: float = 0.1
    learn_max_s: float = 2 * HOUR
    keyword_min_hits: int = 20
    card_min_accounts: int = 5


def make_baselines(cfg: BaselineConfig, hours: float) -> dict[str, Any]:
    from simulator.baselines import KeywordRule, SharedCardRule, VolumeRule

    learn_s = min(cfg.learn_max_s, max(600.0, cfg.learn_fraction * hours * HOUR))
    return {
        "volume": VolumeRule(cfg.volume_threshold, quantile=cfg.volume_quantile, learn_s=learn_s),
        "keyword": KeywordRule(min_hits=cfg.keyword_min_hits),
        "shared_card": SharedCardRule(cfg.card_min_accounts),
    }


def run_systems(
    events: Iterable[Mapping[str, Any]],
    detector_factory: Callable[[], Any] | None = None,
    partitions: int = 8,
    baselines: Mapping[str, Any] | None = None,
    every_alert: list[Any] | None = None,
) -> tuple[dict[str, list[Any]], dict[str, float]]:
    """One pass over ``events`` (event dicts): replay through the detectors and
    the baselines (``name -> rule`` with ``process(event)`` and ``alerts``).
    Returns firing alerts per system and timings; every distillwatch alert
    (any status) is also appended to ``every_alert`` (the noise metrics)."""
    from detectors.replay import Replayer
    from detectors.schema import parse_event

    if detector_factory is None:
        from detectors.engine import Detector

        detector_factory = Detector
    replayer = Replayer(detector_factory, partitions=partitions)
    rules = dict(baselines) if baselines is not None else make_baselines(BaselineConfig(), 24.0)
    procs = [r.process for r in rules.values()]
    ours: list[Any] = []
    t_sim = t_det = t_base = 0.0
    n = 0
    pc = time.perf_counter
    it = iter(events)
    while True:
        t0 = pc()
        obj = next(it, None)
        t1 = pc()
        t_sim += t1 - t0
        if obj is None:
            break
        n += 1
        ev = parse_event(obj)
        for a in replayer.process(ev):
            if a.status == "firing":
                ours.append(a)
            if every_alert is not None:
                every_alert.append(a)
        t2 = pc()
        t_det += t2 - t1
        for proc in procs:
            proc(obj)
        t_base += pc() - t2
    for a in replayer.finish():
        if a.status == "firing":
            ours.append(a)
        if every_alert is not None:
            every_alert.append(a)
    for r in rules.values():
        if hasattr(r, "finish"):
            r.finish()
    timings = {
        "events": n,
        "simulate_s": round(t_sim, 2),
        "detectors_s": round(t_det, 2),
        "baselines_s": round(t_base, 2),
        "detector_events_per_s": round(n / t_det) if t_det else None,
    }
    alerts: dict[str, list[Any]] = {"distillwatch": ours}
    for name, r in rules.items():
        alerts[name] = list(r.alerts)
    return alerts, timings


def _detector_factory(config_path: str | None, config: Any) -> Callable[[], Any]:
    from detectors.engine import Detector

    cfg = config if config is not None else load_detector_config(config_path)

    def factory() -> Any:
        return Detector(cfg)

    return factory


def evaluate(
    hours: float = 24.0,
    seed: int = 0,
    accounts: int = 1000,
    attacks: Any = None,
    config_path: str | None = None,
    config: Any = None,
    json_path: str | None = None,
    partitions: int = 8,
    baselines: BaselineConfig | None = None,
    detector_factory: Callable[[], Any] | None = None,
    out: IO[str] | None = None,
    grace_s: float = DEFAULT_GRACE_S,
    drop_topic: float = 0.0,
    *,
    mix: str = "classic",
    text: str = "synthetic",
    drop_fields: Any = (),
    metric_hooks: Mapping[str, Callable[[list[Any], Any], Any]] | None = None,
    list_flagged: str | None = None,
    warmup_hours: float = 0.0,
) -> dict[str, Any]:
    """One seed: simulate, replay through distillwatch and the baselines, print one table.

    ``warmup_hours``: replay that much history of the accounts active before
    the run first (:mod:`simulator.warmup`); pages in it count (benign pages
    on benign accounts; ``warmup_flagged`` says how many).

    Returns (and writes to ``json_path``) ``{"run": ..., "results": {system:
    metrics}, "better_than": {baseline: ...}, "table": str}``. ``metric_hooks``
    (``name -> f(firing alerts, simulation)``) add ``results[system]["extra"][name]``.
    ``list_flagged`` (``"benign"``, ``"all"`` or kinds, :mod:`simulator.flagged`;
    refused on held-out seeds) adds ``"flagged"``: distillwatch's flagged
    accounts of those kinds with stage, evidence and first alert time.
    """
    from simulator.flagged import check_seeds, flagged_accounts, format_flagged
    from simulator.simulate import parse_drop_fields, simulate

    if list_flagged:
        check_seeds([seed])

    if detector_factory is None:
        detector_factory = _detector_factory(config_path, config)
    bcfg = baselines or BaselineConfig()
    drops = parse_drop_fields(drop_fields)
    t0 = time.perf_counter()
    sim = simulate(
        seed=seed, hours=hours, accounts=accounts, attacks=attacks, drop_topic=drop_topic,
        mix=mix, text=text, drop_fields=drops, warmup_hours=warmup_hours,
    )
    setup_s = time.perf_counter() - t0
    rules = make_baselines(bcfg, hours + warmup_hours)
    run_start = sim.timeline.t0 if warmup_hours > 0 else None
    every: list[Any] = []
    alerts, timings = run_systems(sim.events, detector_factory, partitions, rules, every)
    timings["simulate_s"] = round(timings["simulate_s"] + setup_s, 2)
    results = {
        s: score_alerts(a, sim.labels, sim.account_kinds, grace_s, run_start=run_start)
        for s, a in alerts.items()
    }
    if metric_hooks:
        for s, a in alerts.items():
            results[s]["extra"] = {name: f(a, sim) for name, f in metric_hooks.items()}
    verdicts = {}
    for base in BASELINES:
        ok, why = better_than(results["distillwatch"], results[base])
        verdicts[base] = {"better": ok, "why_not": why}
    attacking = sum(1 for r in sim.truth if not r["benign"])
    run = {
        "mix": mix,
        "text": text,
        "drop_fields": list(drops),
        "drop_topic": drop_topic,
        "seed": seed,
        "hours": hours,
        "warmup_hours": warmup_hours,
        "benign_accounts": accounts,
        "attacking_accounts": attacking,
        "attacks": sorted({lab["attack"] for lab in sim.labels}),
        "baselines": asdict(bcfg),
        "volume_threshold": rules["volume"].threshold,
        **timings,
    }
    table = format_table(results)
    from simulator.noise import format_noise, noise_metrics

    noise = noise_metrics(every, sim.labels, sim.account_kinds, hours + warmup_hours)
    del every
    table += "\n" + format_noise(noise)
    report = {
        "run": run,
        "results": results,
        "better_than": verdicts,
        "table": table,
        "delays": {s: _delays_of(a, sim.labels, grace_s) for s, a in alerts.items()},
        "noise": noise,
    }
    if list_flagged:
        first_seen = {a.account_id: a.times[0][0] for a in sim.accounts if a.times}
        report["flagged"] = flagged_accounts(
            alerts["distillwatch"], sim.account_kinds, list_flagged, sim.timeline.t0, first_seen
        )
    if out is not None:
        print(
            f"distillwatch evaluate: seed {seed}, {hours:g} h"
            f"{f' after a {warmup_hours:g} h warm-up' if warmup_hours else ''}"
            f", {mix} mix, {text} text"
            f"{', without ' + ','.join(drops) if drops else ''}, {accounts} benign + "
            f"{attacking} attacking accounts, {timings['events']:,} events (simulate "
            f"{timings['simulate_s']}s, detectors {timings['detectors_s']}s = "
            f"{timings['detector_events_per_s']} ev/s, baselines {timings['baselines_s']}s)",
            file=out,
        )
        print(table, file=out)
        for base, v in verdicts.items():
            print(
                f"better than {SYSTEM_TITLES[base]}: "
                f"{'yes' if v['better'] else 'NO — ' + v['why_not']}",
                file=out,
            )
        if list_flagged:
            print(format_flagged(report["flagged"], seed), file=out)
    if json_path:
        with open(json_path, "wb") as f:
            f.write(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    return report


# ------------------------------------------------------------- many seeds ---


def parse_seeds(spec: str | int | Iterable[int]) -> list[int]:
    """``"0-4"``, ``"10-14"``, ``"0,2,5-6"`` or an int / iterable of ints.

    >>> parse_seeds("0-2,10")
    [0, 1, 2, 10]
    """
    if isinstance(spec, int):
        return [spec]
    if not isinstance(spec, str):
        return [int(x) for x in spec]
    out: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        if sep:
            a, b = int(lo), int(hi)
            if b < a:
                raise ValueError(f"bad seed range {part!r}")
            out.extend(range(a, b + 1))
        else:
            out.append(int(part))
    if not out:
        raise ValueError("no seeds given")
    return out


def summarize_seeds(per_seed: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """Across seeds, per system: per family mean and worst recall, median delay
    (over every detected account of every seed), per campaign family the same
    over campaigns; per benign kind the pooled FP rate (paged accounts / accounts)
    and the worst seed's; overall benign FP likewise."""
    systems: list[str] = []
    for rep in per_seed.values():
        for s in rep["results"]:
            if s not in systems:
                systems.append(s)
    out: dict[str, Any] = {}
    for s in systems:
        fams: dict[str, dict[str, Any]] = {}
        camps: dict[str, dict[str, Any]] = {}
        kinds: dict[str, dict[str, Any]] = {}
        overall = {"accounts": 0, "flagged": 0, "worst_fp_rate": 0.0}
        recalls: dict[str, list[float]] = defaultdict(list)
        delays: dict[str, list[float]] = defaultdict(list)
        n_acc: Counter[str] = Counter()
        n_det: Counter[str] = Counter()
        c_recalls: dict[str, list[float]] = defaultdict(list)
        c_delays: dict[str, list[float]] = defaultdict(list)
        c_n: Counter[str] = Counter()
        c_det: Counter[str] = Counter()
        for rep in per_seed.values():
            res = rep["results"][s]
            for fam, r in res["attacks"].items():
                recalls[fam].append(r["recall"])
                n_acc[fam] += r["accounts"]
                n_det[fam] += r["detected"]
            for fam, c in res["campaigns"].items():
                c_recalls[fam].append(c["recall"])
                c_n[fam] += c["campaigns"]
                c_det[fam] += c["detected"]
                for d in c["by_campaign"].values():
                    if d["delay_s"] is not None:
                        c_delays[fam].append(d["delay_s"])
            for kind, b in res["benign"]["by_kind"].items():
                k = kinds.setdefault(kind, {"accounts": 0, "flagged": 0, "worst_fp_rate": 0.0})
                k["accounts"] += b["accounts"]
                k["flagged"] += b["flagged"]
                k["worst_fp_rate"] = max(k["worst_fp_rate"], b["fp_rate"])
            o = res["benign"]["overall"]
            overall["accounts"] += o["accounts"]
            overall["flagged"] += o["flagged"]
            overall["worst_fp_rate"] = max(overall["worst_fp_rate"], o["fp_rate"])
            for key in ("warmup_flagged", "warmup_attack_accounts"):
                if key in o:
                    overall[key] = overall.get(key, 0) + o[key]
            delays_by = rep.get("delays", {}).get(s, {})
            for fam, ds in delays_by.items():
                delays[fam].extend(ds)
        for fam in recalls:
            ds = delays.get(fam, [])
            fams[fam] = {
                "accounts": n_acc[fam],
                "detected": n_det[fam],
                "mean_recall": round(statistics.fmean(recalls[fam]), 4),
                "worst_recall": min(recalls[fam]),
                "pooled_recall": round(n_det[fam] / n_acc[fam], 4) if n_acc[fam] else None,
                "delay_median_s": round(statistics.median(ds), 3) if ds else None,
                "seeds": len(recalls[fam]),
            }
        for fam in c_recalls:
            ds = c_delays.get(fam, [])
            camps[fam] = {
                "campaigns": c_n[fam],
                "detected": c_det[fam],
                "mean_recall": round(statistics.fmean(c_recalls[fam]), 4),
                "worst_recall": min(c_recalls[fam]),
                "delay_median_s": round(statistics.median(ds), 3) if ds else None,
            }
        for k in kinds.values():
            k["fp_rate"] = round(k["flagged"] / k["accounts"], 5) if k["accounts"] else 0.0
        overall["fp_rate"] = (
            round(overall["flagged"] / overall["accounts"], 5) if overall["accounts"] else 0.0
        )
        out[s] = {
            "attacks": fams,
            "campaigns": camps,
            "benign": {"by_kind": dict(sorted(kinds.items())), "overall": overall},
        }
    return out


def _delays_of(alerts: list[Any], labels: list[Mapping[str, Any]], grace_s: float
               ) -> dict[str, list[float]]:
    fired = firing_times(alerts)
    out: dict[str, list[float]] = defaultdict(list)
    for lab in labels:
        start, end = _ts(lab["start"]), _ts(lab["end"])
        for t in fired.get(lab["account_id"], ()):
            if start <= t <= end + grace_s:
                out[lab["attack"]].append(round(t - start, 3))
                break
    return dict(out)


def format_summary(summary: Mapping[str, Any], systems: Iterable[str] = SYSTEMS) -> str:
    """Rows: single-account families (``mean / worst recall, median delay``),
    campaign families (campaign recall), benign kinds (pooled FP %, worst
    seed's FP % in parentheses), all benign."""
    systems = [s for s in systems if s in summary]
    first = summary[systems[0]]
    w0, wn, wc = 22, 6, 24
    head = f"{'row':<{w0}}{'n':>{wn}}  " + "".join(
        f"| {SYSTEM_TITLES.get(s, s):<{wc}}" for s in systems
    )
    lines = [head, "-" * len(head)]
    lines.append(f"{'family':<{w0}}{'':>{wn}}  " + "".join(
        f"| {'recall mean/worst  delay':<{wc}}" for _ in systems))
    for fam, row in first["attacks"].items():
        if fam in CAMPAIGN_FAMILIES:
            continue
        cells = []
        for s in systems:
            r = summary[s]["attacks"].get(fam)
            cells.append("-" if r is None else
                         f"{r['mean_recall']:.2f}/{r['worst_recall']:.2f}  "
                         f"{_fmt_delay(r['delay_median_s'])}")
        lines.append(
            f"{fam:<{w0}}{row['accounts']:>{wn}}  " + "".join(f"| {c:<{wc}}" for c in cells)
        )
    for fam, row in first["campaigns"].items():
        cells = []
        for s in systems:
            r = summary[s]["campaigns"].get(fam)
            cells.append("-" if r is None else
                         f"{r['mean_recall']:.2f}/{r['worst_recall']:.2f}  "
                         f"{_fmt_delay(r['delay_median_s'])}")
        lines.append(f"{fam + ' campaigns':<{w0}}{row['campaigns']:>{wn}}  "
                     + "".join(f"| {c:<{wc}}" for c in cells))
    lines.append(f"{'benign kind':<{w0}}{'':>{wn}}  " + "".join(
        f"| {'FP % (worst seed)':<{wc}}" for _ in systems))
    kinds = list(first["benign"]["by_kind"].items()) + [("all benign", first["benign"]["overall"])]
    for kind, row in kinds:
        cells = []
        for s in systems:
            b = summary[s]["benign"]
            r = b["overall"] if kind == "all benign" else b["by_kind"].get(kind)
            cells.append("-" if r is None else
                         f"{100 * r['fp_rate']:.2f}% ({100 * r['worst_fp_rate']:.1f}%) "
                         f"{r['flagged']}")
        lines.append(
            f"{kind:<{w0}}{row['accounts']:>{wn}}  " + "".join(f"| {c:<{wc}}" for c in cells)
        )
    if "warmup_flagged" in first["benign"]["overall"]:
        cells = [f"{summary[s]['benign']['overall'].get('warmup_flagged', 0)} benign, "
                 f"{summary[s]['benign']['overall'].get('warmup_attack_accounts', 0)} attacking"
                 for s in systems]
        lines.append(f"{'paged in the warm-up':<{w0}}{'':>{wn}}  "
                     + "".join(f"| {c:<{wc}}" for c in cells))
    return "\n".join(lines)


def evaluate_seeds(
    seeds: str | Iterable[int] = "0-4",
    hours: float = 24.0,
    accounts: int = 1200,
    attacks: Any = None,
    *,
    mix: str = "production",
    text: str = "real",
    drop_fields: Any = (),
    config_path: str | None = None,
    config: Any = None,
    detector_factory: Callable[[], Any] | None = None,
    partitions: int = 8,
    baselines: BaselineConfig | None = None,
    grace_s: float = DEFAULT_GRACE_S,
    json_path: str | None = None,
    out: IO[str] | None = None,
    metric_hooks: Mapping[str, Callable[[list[Any], Any], Any]] | None = None,
    list_flagged: str | None = None,
    warmup_hours: float = 0.0,
) -> dict[str, Any]:
    """Several seeds of :func:`evaluate`, summarised (:func:`summarize_seeds`).

    Returns ``{"run": ..., "seeds": {seed: {"run", "results", "better_than"}},
    "summary": {system: ...}, "table": str}``. ``list_flagged``: as
    :func:`evaluate`, printed after each seed's line.
    """
    from simulator.flagged import check_seeds, format_flagged

    seed_list = parse_seeds(seeds)
    if list_flagged:
        check_seeds(seed_list)
    if detector_factory is None:
        detector_factory = _detector_factory(config_path, config)
    per_seed: dict[int, dict[str, Any]] = {}
    for seed in seed_list:
        rep = evaluate(
            hours=hours, seed=seed, accounts=accounts, attacks=attacks,
            detector_factory=detector_factory, partitions=partitions, baselines=baselines,
            grace_s=grace_s, mix=mix, text=text, drop_fields=drop_fields,
            metric_hooks=metric_hooks, list_flagged=list_flagged,
            warmup_hours=warmup_hours,
        )
        per_seed[seed] = rep
        if out is not None:
            r = rep["run"]
            print(
                f"seed {seed}: {r['events']:,} events, simulate {r['simulate_s']}s, "
                f"detectors {r['detectors_s']}s ({r['detector_events_per_s']} ev/s), "
                f"baselines {r['baselines_s']}s; distillwatch FP "
                f"{100 * rep['results']['distillwatch']['benign']['overall']['fp_rate']:.2f}%",
                file=out, flush=True,
            )
            if list_flagged and rep["flagged"]:
                print(format_flagged(rep["flagged"], seed), file=out, flush=True)
    summary = summarize_seeds(per_seed)
    table = format_summary(summary)
    first = per_seed[seed_list[0]]["run"]
    run = {
        "seeds": seed_list,
        "hours": hours,
        "warmup_hours": warmup_hours,
        "benign_accounts": accounts,
        "mix": mix,
        "text": text,
        "drop_fields": first["drop_fields"],
        "baselines": first["baselines"],
        "simulate_s": round(sum(p["run"]["simulate_s"] for p in per_seed.values()), 2),
        "detectors_s": round(sum(p["run"]["detectors_s"] for p in per_seed.values()), 2),
        "baselines_s": round(sum(p["run"]["baselines_s"] for p in per_seed.values()), 2),
        "events": sum(p["run"]["events"] for p in per_seed.values()),
    }
    for p in per_seed.values():
        p.pop("table", None)
    report = {"run": run, "seeds": per_seed, "summary": summary, "table": table}
    if out is not None:
        print(
            f"distillwatch evaluate: seeds {','.join(map(str, seed_list))}, {hours:g} h"
            f"{f' after a {warmup_hours:g} h warm-up' if warmup_hours else ''}, "
            f"{accounts} benign accounts, {mix} mix, {text} text"
            f"{', without ' + ','.join(run['drop_fields']) if run['drop_fields'] else ''}",
            file=out,
        )
        print(table, file=out)
    if json_path:
        with open(json_path, "wb") as f:
            f.write(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    return report


def summarize_files(paths: Iterable[str]) -> tuple[dict[str, Any], str]:
    """Merge the per-seed results of several ``evaluate --seeds ... --json``
    files (e.g. one seed per run, run apart) into one summary and table."""
    per_seed: dict[int, Any] = {}
    for path in paths:
        with open(path, "rb") as f:
            rep = orjson.loads(f.read())
        for seed, one in rep["seeds"].items():
            if int(seed) in per_seed:
                raise ValueError(f"seed {seed} appears twice ({path})")
            per_seed[int(seed)] = one
    summary = summarize_seeds(dict(sorted(per_seed.items())))
    return summary, format_summary(summary)


__all__ = [
    "summarize_files",
    "score_alerts",
    "quantile",
    "RuleConfig",
    "StaticRule",
    "HourlyBatch",
    "BaselineConfig",
    "make_baselines",
    "format_table",
    "format_summary",
    "better_than",
    "run_systems",
    "evaluate",
    "evaluate_seeds",
    "parse_seeds",
    "summarize_seeds",
    "load_detector_config",
    "CAMPAIGN_FAMILIES",
]
