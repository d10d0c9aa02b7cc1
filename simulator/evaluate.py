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
import sys
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
) -> dict[str, Any]:
    """Recall / delay per attack family and hydra campaign, FP per benign kind.

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
    return {
        "attacks": families,
        "campaigns": campaigns,
        "benign": {
            "overall": {
                "accounts": total,
                "flagged": len(flagged_ids),
                "fp_rate": round(len(flagged_ids) / total, 5) if total else 0.0,
            },
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
      (default 600 in 10 min, i.e. a sustained 1 request/s — far above a
      normal account, and above all but the heaviest single-use-case apps);
    - concentration: at least ``share_min_requests`` requests in the last
      ``share_window_s`` with at least ``max_top_share`` of them on one topic
      (default 300 requests/h, 90% one topic: "a heavy account hammering one
      capability");
    - an alert episode ends after ``quiet_s`` without the rule being true.
    """

    rate_window_s: float = 600.0
    max_requests: int = 600
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
        if len(q) > cfg.max_requests:
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
            vol = max(self.buckets[acct].values()) > cfg.max_requests
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


SYSTEMS = ("distillwatch", "static", "hourly")
SYSTEM_TITLES = {
    "distillwatch": "distillwatch",
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
    # the service's own tables ([actions], [sharing]: streams/detection.py)
    data = {k: v for k, v in data.items() if k not in ("actions", "sharing")}
    if hasattr(config_cls, "from_mapping"):
        return config_cls.from_mapping(data)
    return config_cls(**data)


def run_systems(
    events: Iterable[Mapping[str, Any]],
    detector_factory: Callable[[], Any] | None = None,
    partitions: int = 8,
    rule: RuleConfig | None = None,
    every_alert: list[Any] | None = None,
) -> tuple[dict[str, list[Any]], dict[str, float]]:
    """One pass over ``events`` (event dicts): replay through the detectors and
    both baselines. Returns firing alerts per system and timings; every
    distillwatch alert (any status) is also appended to ``every_alert``."""
    from detectors.replay import Replayer
    from detectors.schema import parse_event

    if detector_factory is None:
        from detectors.engine import Detector

        detector_factory = Detector
    replayer = Replayer(detector_factory, partitions=partitions)
    static, hourly = StaticRule(rule), HourlyBatch(rule)
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
        static.process(ev.account_id, ev.ts, ev.topic)
        hourly.process(ev.account_id, ev.ts, ev.topic)
        t_base += pc() - t2
    hourly.finish()
    timings = {
        "events": n,
        "simulate_s": round(t_sim, 2),
        "detectors_s": round(t_det, 2),
        "baselines_s": round(t_base, 2),
        "detector_events_per_s": round(n / t_det) if t_det else None,
    }
    return {"distillwatch": ours, "static": static.alerts, "hourly": hourly.alerts}, timings


def evaluate(
    hours: float = 24.0,
    seed: int = 0,
    accounts: int = 1000,
    attacks: Any = None,
    config_path: str | None = None,
    config: Any = None,
    json_path: str | None = None,
    partitions: int = 8,
    rule: RuleConfig | None = None,
    detector_factory: Callable[[], Any] | None = None,
    out: IO[str] | None = None,
    grace_s: float = DEFAULT_GRACE_S,
    drop_topic: float = 0.0,
) -> dict[str, Any]:
    """Simulate, replay through distillwatch and both baselines, print one table.

    Returns (and writes to ``json_path``) ``{"run": ..., "results": {system:
    metrics}, "better_than": {...}, "table": str}``.
    """
    from simulator.simulate import simulate

    if detector_factory is None:
        from detectors.engine import Detector

        cfg = config if config is not None else load_detector_config(config_path)

        def detector_factory() -> Any:
            return Detector(cfg)

    sim = simulate(
        seed=seed, hours=hours, accounts=accounts, attacks=attacks, drop_topic=drop_topic
    )
    every: list[Any] = []
    alerts, timings = run_systems(sim.events, detector_factory, partitions, rule, every)
    results = {
        s: score_alerts(a, sim.labels, sim.account_kinds, grace_s) for s, a in alerts.items()
    }
    verdicts = {}
    for base in ("static", "hourly"):
        ok, why = better_than(results["distillwatch"], results[base])
        verdicts[base] = {"better": ok, "why_not": why}
    attacking = sum(1 for r in sim.truth if not r["benign"])
    run = {
        "drop_topic": drop_topic,
        "seed": seed,
        "hours": hours,
        "benign_accounts": accounts,
        "attacking_accounts": attacking,
        "attacks": sorted({lab["attack"] for lab in sim.labels}),
        "rule": asdict(rule or RuleConfig()),
        **timings,
    }
    table = format_table(results)
    from simulator.noise import format_noise, noise_metrics

    noise = noise_metrics(every, sim.labels, sim.account_kinds, hours)
    del every
    table += "\n" + format_noise(noise)
    report = {"run": run, "results": results, "better_than": verdicts, "table": table,
              "noise": noise}
    if out is not None:
        print(
            f"distillwatch evaluate: seed {seed}, {hours:g} h, {accounts} benign + {attacking} "
            f"attacking "
            f"accounts, {timings['events']:,} events (simulate {timings['simulate_s']}s, detectors "
            f"{timings['detectors_s']}s = {timings['detector_events_per_s']} ev/s, baselines "
            f"{timings['baselines_s']}s)",
            file=out,
        )
        print(table, file=out)
        for base, v in verdicts.items():
            print(
                f"better than {SYSTEM_TITLES[base]}: "
                f"{'yes' if v['better'] else 'NO — ' + v['why_not']}",
                file=out,
            )
    if json_path:
        with open(json_path, "wb") as f:
            f.write(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    return report


__all__ = [
    "score_alerts",
    "quantile",
    "RuleConfig",
    "StaticRule",
    "HourlyBatch",
    "format_table",
    "better_than",
    "run_systems",
    "evaluate",
    "load_detector_config",
    "CAMPAIGN_FAMILIES",
]


def _main() -> None:  # pragma: no cover - convenience
    evaluate(hours=float(sys.argv[1]) if len(sys.argv) > 1 else 6, accounts=200, out=sys.stdout)
