"""Capture the campaign stage's exact input for one simulated day, and re-run
only :class:`detectors.campaign.CampaignStage` over it (seconds, not the
day's replay).

A day of ``distillwatch evaluate`` (24 h, 1,000 benign accounts, every
family) takes many minutes to simulate and replay; the campaign stage sees
only a few thousand alerts and ticks of it. ``capture`` replays the day once
(as ``evaluate`` does: :class:`detectors.replay.Replayer`, 8 partitions)
with a recorder in the stage's place and writes the calls (JSON) (``process``,
``advance``, ``release_held``) with the day's labels. ``run`` feeds them to a
fresh stage (any constructor parameters) and scores the output as
``evaluate`` does: recall and delay per family, and the noise metrics, and
the same delays by the time the records came out (paging latency: a record
held for a while carries its evidence's event time as ``ts``).

    python -m benchmarks.campaign_capture capture --seed 0 --out /tmp/cap0.json
    python -m benchmarks.campaign_capture run /tmp/cap0.json [--param probation_s=600]

Captures hold alerts (hashes and numbers; no prompt text) and are not committed.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from typing import Any

import orjson

from detectors.alerts import Alert
from detectors.campaign import CampaignStage, decode_alert, encode_alert


class _Recorder:
    """Stands in for the campaign stage: records the calls, passes nothing on."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def process(self, alert: Alert) -> list[Alert]:
        self.calls.append(("p", alert))
        return [alert] if alert.detector not in ("cluster", "cluster_member", "account") else []

    def advance(self, t: float) -> list[Alert]:
        self.calls.append(("a", t))
        return []

    def release_held(self, t: float = math.inf) -> list[Alert]:
        self.calls.append(("r", t))
        return []


def capture(seed: int, out: str, hours: float = 24.0, accounts: int = 1000,
            partitions: int = 8) -> None:
    import importlib.util
    from pathlib import Path

    import detectors
    from detectors.engine import Detector
    from detectors.schema import parse_event

    # the compiled Replayer (native build) insists on a real CampaignStage:
    # the recorder needs the source one (the engine stays compiled)
    spec = importlib.util.spec_from_file_location(
        "_capture_replay", Path(detectors.__file__).with_name("replay.py"))
    assert spec is not None and spec.loader is not None
    replay_src = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(replay_src)
    Replayer = replay_src.Replayer
    from simulator.simulate import simulate

    sim = simulate(seed=seed, hours=hours, accounts=accounts)
    rec = _Recorder()
    replayer = Replayer(Detector, partitions=partitions, campaign_factory=lambda: rec)  # type: ignore[arg-type,return-value]
    for obj in sim.events:
        replayer.process(parse_event(obj))
    replayer.finish()
    calls = [[op, orjson.loads(encode_alert(arg)) if op == "p" else
              (None if math.isinf(arg) else arg)] for op, arg in rec.calls]
    with open(out, "wb") as f:
        f.write(orjson.dumps({"seed": seed, "hours": hours, "calls": calls,
                              "labels": list(sim.labels), "kinds": dict(sim.account_kinds)}))


def load(path: str) -> dict[str, Any]:
    """A capture written by :func:`capture`, its calls decoded."""
    with open(path, "rb") as f:
        cap: dict[str, Any] = orjson.loads(f.read())
    cap["calls"] = [(op, decode_alert(orjson.dumps(arg)) if op == "p" else
                     (math.inf if arg is None else float(arg))) for op, arg in cap["calls"]]
    return cap


def replay_stage(calls: list[tuple[str, Any]], stage: CampaignStage,
                 emitted: list[float] | None = None) -> list[Alert]:
    """The stage's output over a capture; ``emitted`` (if given) gets, per
    record, the stage's event time when it came out (its paging time: a held
    record's ``ts`` is its evidence's event time, earlier)."""
    out: list[Alert] = []
    for op, arg in calls:
        if op == "p":
            got = stage.process(arg)
        elif op == "a":
            got = stage.advance(arg)
        else:
            got = stage.release_held(arg)
        out += got
        if emitted is not None:
            emitted += [max(stage.watermark, a.ts) for a in got]
    return out


def paging_delays(cap: dict[str, Any], alerts: list[Alert], emitted: list[float]
                  ) -> dict[str, Any]:
    """Per campaign family, the median delay from the campaign's (account's)
    start to the first record naming it by the time that record came out,
    and the longest paging latency of any firing record (out - ``ts``)."""
    from simulator.evaluate import _ts

    first: dict[str, float] = {}
    late = 0.0
    for a, e in zip(alerts, emitted, strict=True):
        if a.status != "firing":
            continue
        if not math.isinf(e):
            late = max(late, e - a.ts)
        for acct in ([a.account_id] if a.account_id else a.accounts):
            first.setdefault(acct, e)
    camps: dict[tuple[str, str], list[tuple[float, float | None]]] = {}
    accts: dict[str, list[float]] = {}
    for lab in cap["labels"]:
        if not lab.get("campaign"):
            continue
        start, hit = _ts(lab["start"]), first.get(lab["account_id"])
        camps.setdefault((lab["attack"], lab["campaign"]), []).append((start, hit))
        if hit is not None:
            accts.setdefault(lab["attack"], []).append(hit - start)
    per: dict[str, list[float]] = {}
    for (fam, _), rows in camps.items():
        hits = [h for _, h in rows if h is not None]
        if hits:
            per.setdefault(fam, []).append(min(hits) - min(s for s, _ in rows))
    return {
        "campaign_delay_min": {f: round(statistics.median(v) / 60, 2) for f, v in per.items()},
        "account_delay_s": {f: round(statistics.median(v)) for f, v in accts.items()},
        "max_latency_s": round(late),
    }


def score(cap: dict[str, Any], alerts: list[Alert]) -> dict[str, Any]:
    from simulator.evaluate import _delays_of, score_alerts
    from simulator.noise import noise_metrics

    firing = [a for a in alerts if a.status == "firing"]
    res = score_alerts(firing, cap["labels"], cap["kinds"])
    delays = _delays_of(firing, cap["labels"], 60.0 * 5)
    noise = noise_metrics(alerts, cap["labels"], cap["kinds"], cap["hours"])
    return {"results": res, "delays": delays, "noise": noise}


def summary(s: dict[str, Any]) -> dict[str, Any]:
    """The numbers issue 23 asks for, one row per day."""
    fams = s["noise"]["families"]
    camps = [f for f, m in fams.items() if m["campaign_family"]]
    ents = sum(fams[f]["entities"] for f in camps)
    incidents = sum(fams[f]["incidents"] for f in camps)
    res = s["results"]
    return {
        "inc_per_campaign": round(incidents / ents, 2) if ents else None,
        "mixed": s["noise"].get("mixed_incidents"),
        "max_rec_attacking": max(m["records_per_account_day_max"] or 0 for m in fams.values()),
        "max_member_rec": max(m["member_records_per_account_day_max"] or 0
                              for m in fams.values()),
        "recall": {f: res["campaigns"][f]["recall"] for f in camps if f in res["campaigns"]},
        "delay_min": {f: round((res["campaigns"][f]["delay_median_s"] or 0) / 60, 2)
                      for f in camps if f in res["campaigns"]},
        "account_delay_s": {f: round(res["attacks"][f]["delay_median_s"] or 0)
                            for f in camps if f in res["attacks"]},
        "family_recall_min": min(m["recall"] for m in res["attacks"].values()),
        "benign_flagged": sum(m["flagged"] for m in res["benign"]["by_kind"].values()),
    }


def incidents_of_campaigns(cap: dict[str, Any], alerts: list[Alert]) -> list[str]:
    """Debug: per labelled campaign, the incidents that touch it."""
    camp_of = {lab["account_id"]: f"{lab['attack']}/{lab['campaign']}"
               for lab in cap["labels"] if lab.get("campaign")}
    fam_of = {lab["account_id"]: lab["attack"] for lab in cap["labels"]}
    first: dict[tuple[str, float], Alert] = {}
    named: dict[tuple[str, float], set[str]] = {}
    for a in alerts:
        if a.status != "firing":
            continue
        if a.detector.endswith("_member"):
            inc = (str(a.details.get("campaign_dedup_key")), round(a.episode_start, 3))
            named.setdefault(inc, set()).add(a.account_id or "")
            continue
        inc = (a.dedup_key, round(a.episode_start, 3))
        first.setdefault(inc, a)
        named.setdefault(inc, set()).update([a.account_id] if a.account_id else a.accounts)
    lines = []
    for inc, a in sorted(first.items(), key=lambda kv: kv[1].ts):
        who = named.get(inc, set())
        cs: dict[str, int] = {}
        for acct in who:
            k = camp_of.get(acct) or fam_of.get(acct, "benign")
            cs[k] = cs.get(k, 0) + 1
        if any(acct in camp_of for acct in who):
            extra = ""
            if a.detector == "campaign":
                extra = " keys=" + ",".join(k.split(":")[0] + ":" + k.split(":", 1)[1][:6]
                                             for k in a.details.get("cluster_keys", [])[:6])
            lines.append(f"{a.ts:.0f} {a.detector:8} {inc[0][:30]:30} {dict(sorted(cs.items()))}"
                         f"{extra}")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="campaign_capture")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("capture")
    c.add_argument("--seed", type=int, required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--hours", type=float, default=24.0)
    r = sub.add_parser("run")
    r.add_argument("captures", nargs="+")
    r.add_argument("--param", action="append", default=[], help="name=value for CampaignStage")
    r.add_argument("--debug", action="store_true", help="list the incidents touching campaigns")
    a = p.parse_args(argv)
    if a.cmd == "capture":
        capture(a.seed, a.out, a.hours)
        return 0
    params = {k: (v == "True" if v in ("True", "False") else float(v))
              for k, v in (x.split("=", 1) for x in a.param)}
    for path in a.captures:
        cap = load(path)
        emitted: list[float] = []
        alerts = replay_stage(cap["calls"], CampaignStage(**params),  # type: ignore[arg-type]
                              emitted)
        print(f"seed {cap['seed']}:", summary(score(cap, alerts)), file=sys.stdout)
        print("  by paging time:", paging_delays(cap, alerts, emitted), file=sys.stdout)
        if a.debug:
            print("\n".join(incidents_of_campaigns(cap, alerts)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
