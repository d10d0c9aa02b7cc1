"""What on-call receives per attack: incidents and records, beside recall.

Recall and delay say whether an attack is caught; these say at what cost in
pages. Definitions (``noise_metrics``):

* an **incident** is one episode of one ``dedup_key`` (distinct
  ``(dedup_key, episode_start)`` of firing records), what PagerDuty opens and
  Alertmanager keeps as one alert; updates of it (same key and episode) are
  not new incidents. Member records (``*_member``, severity ``warning``, the
  machine-readable membership) are records, not incidents;
* an **attacking entity** is an attacking account, or a whole campaign for
  the campaign families (a campaign counts as one);
* an incident **touches** an entity when its subject (``account_id``, or the
  listed ``accounts``) is one of the entity's accounts, or a member record
  of one of them names it; it is **owned** by the entity whose accounts it
  names most (``owned_incidents_per_entity``);
* **records per attacking account per day**: every record (any status,
  member records included) whose ``account_id`` is that account, divided by
  the simulated days (a run shorter than a day: per run);
* per benign kind, **incidents per flagged account**;
* **mixed incidents**: incidents naming at least 3 accounts of each of two or
  more labelled campaigns (one incident for several actors). Incidents per
  campaign rewards merging; this says what the merging cost.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from simulator.attacks import CAMPAIGN_FAMILIES, FAMILIES


def _get(alert: Any, name: str, default: Any = None) -> Any:
    if isinstance(alert, Mapping):
        return alert.get(name, default)
    return getattr(alert, name, default)


def _view(alert: Any) -> tuple[str, str, str, str, list[str], str | None]:
    """``(detector, status, dedup_key, episode key, subject accounts, account_id)``."""
    acct = _get(alert, "account_id")
    accounts = [acct] if acct else list(_get(alert, "accounts") or ())
    start = _get(alert, "episode_start")
    return (
        str(_get(alert, "detector", "")),
        str(_get(alert, "status", "firing")),
        str(_get(alert, "dedup_key", "")),
        str(start if isinstance(start, str) else round(float(start or 0.0), 3)),
        accounts,
        acct,
    )


def _family_rows(
    entities: Mapping[str, set[tuple[str, str]]],
    incidents: Mapping[tuple[str, str], set[tuple[str, str]]],
    by_detector: Mapping[tuple[str, str], Counter[str]],
    owned: Counter[tuple[str, str]],
    attacking: Mapping[str, list[str]],
    records: Counter[str],
    member_records: Counter[str],
    day: float,
) -> dict[str, Any]:
    """Per attack family: incidents per entity, records per account per day."""
    families: dict[str, Any] = {}
    order = [f for f in FAMILIES if f in entities] + sorted(set(entities) - set(FAMILIES))
    for fam in order:
        ents = sorted(entities[fam])
        per = [len(incidents.get(e, ())) for e in ents]
        accts = attacking[fam]
        rec = [records.get(a, 0) * day for a in accts]
        mem = [member_records.get(a, 0) * day for a in accts]
        dets: Counter[str] = Counter()
        for e in ents:
            dets.update(by_detector.get(e, Counter()))
        families[fam] = {
            "entities": len(ents),
            "campaign_family": fam in CAMPAIGN_FAMILIES,
            "incidents": sum(per),
            "incidents_per_entity": round(sum(per) / len(ents), 3) if ents else None,
            "incidents_per_entity_max": max(per) if per else None,
            "incidents_by_detector": dict(sorted(dets.items())),
            # incidents naming this entity's accounts more than any other's
            "owned_incidents_per_entity": (
                round(sum(owned.get(e, 0) for e in ents) / len(ents), 3) if ents else None),
            "records_per_account_day": round(statistics.mean(rec), 3) if rec else None,
            "records_per_account_day_max": round(max(rec), 3) if rec else None,
            "member_records_per_account_day": round(statistics.mean(mem), 3) if mem else None,
            "member_records_per_account_day_max": round(max(mem), 3) if mem else None,
        }
    return families


def _benign_rows(
    account_kinds: Mapping[str, str],
    entity_of: Mapping[str, tuple[str, str]],
    benign_incidents: Mapping[str, set[tuple[str, str]]],
) -> dict[str, Any]:
    """Per benign kind: flagged accounts and incidents per flagged account."""
    benign: dict[str, Any] = {}
    labelled = set(entity_of)
    for kind in sorted({k for a, k in account_kinds.items() if a not in labelled}):
        flagged = [a for a, k in account_kinds.items()
                   if k == kind and a not in labelled and a in benign_incidents]
        n = sum(len(benign_incidents[a]) for a in flagged)
        benign[kind] = {
            "flagged": len(flagged),
            "incidents": n,
            "incidents_per_flagged": round(n / len(flagged), 3) if flagged else None,
        }
    return benign


def noise_metrics(
    alerts: Iterable[Any],
    labels: Iterable[Mapping[str, Any]],
    account_kinds: Mapping[str, str],
    hours: float,
) -> dict[str, Any]:
    """Incidents and records per attacking entity and per flagged benign account.

    >>> labels = [{"account_id": "h1", "attack": "hydra", "campaign": "c1"},
    ...           {"account_id": "h2", "attack": "hydra", "campaign": "c1"}]
    >>> kinds = {"h1": "hydra", "h2": "hydra", "b": "regular"}
    >>> alerts = [
    ...   {"detector": "campaign", "status": "firing", "dedup_key": "campaign:x",
    ...    "episode_start": 1.0, "accounts": ["h1", "h2"]},
    ...   {"detector": "campaign", "status": "firing", "dedup_key": "campaign:x",
    ...    "episode_start": 1.0, "accounts": ["h1", "h2"], "revision": 1},
    ...   {"detector": "campaign_member", "status": "firing", "dedup_key": "campaign_member:h1",
    ...    "episode_start": 1.0, "account_id": "h1"},
    ...   {"detector": "account", "status": "firing", "dedup_key": "account:b",
    ...    "episode_start": 5.0, "account_id": "b"}]
    >>> m = noise_metrics(alerts, labels, kinds, hours=48)
    >>> hydra = m["families"]["hydra"]
    >>> hydra["incidents_per_entity"], hydra["records_per_account_day_max"]
    (1.0, 0.5)
    >>> m["benign"]["regular"]["incidents_per_flagged"]
    1.0
    """
    labels = list(labels)
    # per day of simulated time; a run shorter than a day counts per run (an
    # attack episode happens once, extrapolating it to 24 h would multiply it)
    day = 24.0 / max(hours, 24.0)
    entity_of: dict[str, tuple[str, str]] = {}
    entities: dict[str, set[tuple[str, str]]] = defaultdict(set)
    attacking: dict[str, list[str]] = defaultdict(list)
    for lab in labels:
        fam = str(lab["attack"])
        ent = (fam, str(lab["campaign"])) if lab.get("campaign") else (fam, str(lab["account_id"]))
        entity_of[str(lab["account_id"])] = ent
        entities[fam].add(ent)
        attacking[fam].append(str(lab["account_id"]))
    incidents: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    # per incident, how many accounts of each entity it names (listed or via
    # member records): an incident is "owned" by the entity it names most
    named: dict[tuple[str, str], Counter[tuple[str, str]]] = defaultdict(Counter)
    named_seen: set[tuple[tuple[str, str], str]] = set()
    by_detector: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    records: Counter[str] = Counter()
    member_records: Counter[str] = Counter()
    benign_incidents: dict[str, set[tuple[str, str]]] = defaultdict(set)
    firing_records: Counter[str] = Counter()
    for a in alerts:
        det, status, dedup, episode, subjects, acct = _view(a)
        member = det.endswith("_member")
        if acct is not None:
            records[acct] += 1
            if member:
                member_records[acct] += 1
        if status == "firing":
            firing_records[det] += 1
        if status != "firing":
            continue
        if member:
            # a member record ties its account to the incident it belongs to
            # (the campaign's or cluster's), also beyond the capped list
            details = _get(a, "details") or {}
            parent = (details.get("campaign_dedup_key") or details.get("cluster_dedup_key")
                      or details.get("account_dedup_key"))
            if parent and acct in entity_of:
                ent = entity_of[acct]
                pinc = (str(parent), episode)
                if (pinc, acct) not in named_seen:
                    named_seen.add((pinc, acct))
                    named[pinc][ent] += 1
                if pinc not in incidents[ent]:
                    incidents[ent].add(pinc)
                    by_detector[ent][str(parent).split(":", 1)[0]] += 1
            continue
        inc = (dedup, episode)
        for s in subjects:
            if s in entity_of and (inc, s) not in named_seen:
                named_seen.add((inc, s))
                named[inc][entity_of[s]] += 1
        touched = {entity_of[s] for s in subjects if s in entity_of}
        for ent in touched:
            if inc not in incidents[ent]:
                incidents[ent].add(inc)
                by_detector[ent][det] += 1
        for s in subjects:
            if s not in entity_of:
                benign_incidents[s].add(inc)
    mixed = 0
    for counts in named.values():
        if sum(1 for (fam, _), n in counts.items() if fam in CAMPAIGN_FAMILIES and n >= 3) >= 2:
            mixed += 1
    owned: Counter[tuple[str, str]] = Counter()
    for counts in named.values():
        owned[max(counts.items(), key=lambda kv: (kv[1], kv[0]))[0]] += 1
    families = _family_rows(entities, incidents, by_detector, owned, attacking, records,
                            member_records, day)
    benign = _benign_rows(account_kinds, entity_of, benign_incidents)
    return {
        "hours": hours,
        "families": families,
        "benign": benign,
        "firing_records_by_detector": dict(sorted(firing_records.items())),
        "mixed_incidents": mixed,
    }


def format_noise(noise: Mapping[str, Any]) -> str:
    """The noise table printed by ``distillwatch evaluate``."""
    lines = [
        f"{'on-call noise':<24}{'entities':>9}{'incidents':>10}{'per entity':>11}"
        f"{'max':>5}{'owned':>7}{'records/acct/day':>18}{'max':>6}{'member/acct/day':>17}"
        f"{'max':>6}"
    ]

    def f(x: Any) -> str:
        return "-" if x is None else f"{x:g}"

    for fam, m in noise["families"].items():
        name = fam + (" campaigns" if m["campaign_family"] else "")
        lines.append(
            f"{name:<24}{m['entities']:>9}{m['incidents']:>10}{f(m['incidents_per_entity']):>11}"
            f"{f(m['incidents_per_entity_max']):>5}{f(m['owned_incidents_per_entity']):>7}"
            f"{f(m['records_per_account_day']):>18}"
            f"{f(m['records_per_account_day_max']):>6}"
            f"{f(m['member_records_per_account_day']):>17}"
            f"{f(m['member_records_per_account_day_max']):>6}"
        )
    if "mixed_incidents" in noise:
        lines.append(f"{'incidents naming >= 2 campaigns (>= 3 accounts each)':<54}"
                     f"{noise['mixed_incidents']:>4}")
    lines.append(f"{'benign kind':<24}{'flagged':>9}{'incidents':>10}{'per flagged':>12}")
    for kind, m in noise["benign"].items():
        lines.append(f"{kind:<24}{m['flagged']:>9}{m['incidents']:>10}"
                     f"{f(m['incidents_per_flagged']):>12}")
    return "\n".join(lines)


__all__ = ["noise_metrics", "format_noise"]
