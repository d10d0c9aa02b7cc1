"""Who paged, and why: one line per flagged account and stage (``evaluate --list-flagged``).

A tuning aid. Aggregate FP rates say *how many* benign accounts paged; tuning
needs *which*, at which stage (``account``, ``cluster`` or ``campaign``), on
what evidence and when. Use it on tuning seeds only: listing the accounts
flagged on held-out seeds and tuning against them would make those seeds
in-sample, so :func:`check_seeds` refuses seeds in :data:`HELD_OUT`.

Stages, by the alert's ``detector``: ``account``; ``cluster`` and
``cluster_member``; ``campaign``, ``campaign_member`` and ``account_member``
(an account paged because it shares a key with a paged one).

>>> from detectors.alerts import Alert
>>> a = Alert("account", "firing", "warning", 0.85, 1000.0 + 1800, 1000.0 + 1800, "",
...           details={"reasons": ["template"], "evidence": {"template": 0.9, "sweep": 0.0},
...                    "events": 12, "age_s": 3600.0}, account_id="b1")
>>> rows = flagged_accounts([a], {"b1": "tutor", "x": "extractor"}, select="benign", t0=1000.0)
>>> [(r["account_id"], r["kind"], r["first_s"], sorted(r["stages"])) for r in rows]
[('b1', 'tutor', 1800.0, ['account'])]
>>> print(format_flagged(rows, seed=3))
seed 3  tutor  b1  first 30.0m
    account  30.0m  score 0.85  reasons template  evidence template=0.9  | events 12, age_s 1.0h
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from simulator.attacks import FAMILIES

#: the seeds reported as held-out (docs/evaluation.md): never list them
HELD_OUT: Final = range(10, 15)

STAGE_OF: Final = {
    "account": "account",
    "cluster": "cluster",
    "cluster_member": "cluster",
    "campaign": "campaign",
    "campaign_member": "campaign",
    "account_member": "campaign",
}
STAGES: Final = ("account", "cluster", "campaign")

# the account alert's features worth reading next to its evidence (no prompt text)
_ACCOUNT_CONTEXT: Final = (
    "events", "age_s", "rate_per_min", "rate_population_percentile", "token_rate_per_min",
    "output_input_ratio", "top_share_short", "novelty", "template_repetition",
    "template_repetition_baseline", "elicitation_share", "elicitation_share_baseline",
)
_CLUSTER_CONTEXT: Final = (
    "key_kind", "core_members", "declared_org_share", "size_factor", "median_member_score",
    "start_spread_s",
)
_CAMPAIGN_CONTEXT: Final = ("members", "firing_keys", "linkage_keys")


def check_seeds(seeds: Iterable[int], allow_held_out: bool = False) -> None:
    """Refuse to list flagged accounts of held-out seeds.

    >>> check_seeds([0, 1, 5])
    >>> check_seeds([2, 11])
    Traceback (most recent call last):
    ...
    ValueError: --list-flagged on held-out seeds 11: tune on seeds outside 10-14
    """
    bad = [s for s in seeds if s in HELD_OUT]
    if bad and not allow_held_out:
        raise ValueError(
            f"--list-flagged on held-out seeds {','.join(map(str, bad))}: "
            f"tune on seeds outside {HELD_OUT.start}-{HELD_OUT.stop - 1}"
        )


def selects(select: str, kind: str) -> bool:
    """``benign`` (every kind that is not an attack family), ``all``, or a
    comma list of kinds and families.

    >>> selects("benign", "edtech_tutor"), selects("benign", "extractor")
    (True, False)
    >>> selects("all", "extractor"), selects("narrow_app,batch", "batch")
    (True, True)
    """
    if select == "all":
        return True
    if select == "benign":
        return kind not in FAMILIES
    return kind in {s.strip() for s in select.split(",")}


def _subjects(alert: Any) -> list[str]:
    if alert.account_id is not None:
        return [alert.account_id]
    return list(alert.accounts)


def _numbers(d: Mapping[str, Any]) -> dict[str, float]:
    return {k: v for k, v in d.items() if isinstance(v, (int, float)) and v}


def _stage_row(alert: Any, t0: float, clusters: Mapping[str, Any]) -> dict[str, Any]:
    d = alert.details
    src = d
    row: dict[str, Any] = {
        "at_s": round(alert.ts - t0, 1),
        "detector": alert.detector,
        "score": round(float(alert.score), 3),
    }
    if alert.detector == "cluster_member":
        # the member alert names its cluster; the cluster alert carries the evidence
        key = str(d.get("cluster_key", ""))
        row["cluster_key"] = key
        src = clusters.get(key, {}).get("details", d) if key in clusters else d
    elif "cluster_key" in d:
        row["cluster_key"] = str(d["cluster_key"])
    if alert.detector in ("account_member", "campaign_member"):
        row["via"] = d.get("via")
    row["reasons"] = list(src.get("reasons") or [])
    evidence = src.get("evidence") or {}
    if alert.detector == "campaign":
        # per firing cluster key: {score, reasons, core_members, ...}
        keyed = {k: v for k, v in evidence.items() if isinstance(v, Mapping)}
        row["reasons"] = sorted({r for v in keyed.values() for r in v.get("reasons") or []})
        row["evidence"] = {k: v.get("score") for k, v in keyed.items() if v.get("score")}
    else:
        row["evidence"] = _numbers(evidence)
    keys = (_ACCOUNT_CONTEXT if alert.detector == "account" else
            _CAMPAIGN_CONTEXT if STAGE_OF[alert.detector] == "campaign" else _CLUSTER_CONTEXT)
    row["context"] = {k: src[k] for k in keys if k in src}
    return row


def flagged_accounts(
    alerts: Iterable[Any],
    account_kinds: Mapping[str, str],
    select: str = "benign",
    t0: float = 0.0,
    first_seen: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """Every selected account with a firing alert: its kind, first alert
    (seconds after ``t0``) and per stage the first alert's time, score,
    reasons, evidence terms and context. Sorted by kind, then first alert."""
    firing = sorted((a for a in alerts if a.status == "firing"), key=lambda a: a.ts)
    clusters: dict[str, Any] = {}
    for a in firing:
        if a.detector == "cluster":
            clusters.setdefault(str(a.details.get("cluster_key", "")), {"details": a.details})
    rows: dict[str, dict[str, Any]] = {}
    for a in firing:
        stage = STAGE_OF.get(a.detector)
        if stage is None:
            continue
        for acct in _subjects(a):
            kind = account_kinds.get(acct, "?")
            if not selects(select, kind):
                continue
            row = rows.setdefault(acct, {
                "account_id": acct, "kind": kind, "first_s": round(a.ts - t0, 1), "stages": {},
            })
            if first_seen is not None and acct in first_seen:
                row["first_seen_s"] = round(first_seen[acct] - t0, 1)
            if stage not in row["stages"]:
                row["stages"][stage] = _stage_row(a, t0, clusters)
    return sorted(rows.values(), key=lambda r: (r["kind"], r["first_s"], r["account_id"]))


def _dur(s: float) -> str:
    if abs(s) < 3600:
        return f"{s / 60:.1f}m"
    return f"{s / 3600:.1f}h"


def _value(k: str, v: Any) -> str:
    if isinstance(v, float) and (k.endswith("_s") or k == "start_spread_s"):
        return _dur(v)
    return str(v)


def format_flagged(rows: Iterable[Mapping[str, Any]], seed: int | None = None) -> str:
    """Text lines: one header per account, one indented line per stage."""
    lines = []
    for r in rows:
        head = f"seed {seed}  " if seed is not None else ""
        seen = f"  first seen {_dur(r['first_seen_s'])}" if "first_seen_s" in r else ""
        lines.append(f"{head}{r['kind']}  {r['account_id']}  first {_dur(r['first_s'])}{seen}")
        for stage in STAGES:
            s = r["stages"].get(stage)
            if s is None:
                continue
            parts = [f"    {stage:<8} {_dur(s['at_s'])}", f"score {s['score']}"]
            if s["detector"] not in ("account", "cluster", "campaign"):
                parts.append(f"via {s['detector']}")
            if s.get("cluster_key"):
                parts.append(f"key {s['cluster_key']}")
            if s.get("via"):
                parts.append(f"shares {s['via']}")
            parts.append(f"reasons {','.join(s['reasons']) or '-'}")
            if s["evidence"]:
                parts.append("evidence " + " ".join(f"{k}={v}" for k, v in s["evidence"].items()))
            line = "  ".join(parts)
            if s["context"]:
                line += "  | " + ", ".join(f"{k} {_value(k, v)}" for k, v in s["context"].items())
            lines.append(line)
    return "\n".join(lines)


__all__ = ["HELD_OUT", "STAGES", "check_seeds", "flagged_accounts", "format_flagged", "selects"]
