"""Readable one-line rendering of alert records for terminals."""

from __future__ import annotations

from typing import Any

_COLOURS = {"critical": "\x1b[1;31m", "error": "\x1b[31m", "warning": "\x1b[33m",
            "info": "\x1b[36m"}
_RESET = "\x1b[0m"


MEMBER_DETECTORS = ("campaign_member", "cluster_member")


def campaign_of(record: dict[str, Any]) -> str | None:
    """The campaign an alert record belongs to: the campaign itself, its
    member records, and account alerts that name it.

    >>> campaign_of({"detector": "account", "details": {"campaign_id": "c-1"}})
    'c-1'
    >>> campaign_of({"detector": "account", "details": {}}) is None
    True
    """
    details = record.get("details")
    if isinstance(details, dict):
        cid = details.get("campaign_id")
        if isinstance(cid, str) and cid:
            return cid
    return None


def group_by_campaign(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records grouped for display, most recent group first: one group per
    campaign (its latest campaign record, its member and account records)
    and one group per other record.

    >>> g = group_by_campaign([
    ...     {"detector": "campaign", "ts": "1", "details": {"campaign_id": "c-1"}},
    ...     {"detector": "campaign_member", "ts": "2", "account_id": "a",
    ...      "details": {"campaign_id": "c-1"}},
    ...     {"detector": "account", "ts": "3", "account_id": "b", "details": {}}])
    >>> [(x["campaign_id"], x["record"]["detector"], len(x["members"])) for x in g]
    [(None, 'account', 0), ('c-1', 'campaign', 1)]
    """
    groups: dict[str, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for record in records:
        cid = campaign_of(record)
        if cid is None:
            out.append({"campaign_id": None, "record": record, "members": [], "accounts": [],
                        "last_ts": str(record.get("ts", ""))})
            continue
        g = groups.get(cid)
        if g is None:
            g = groups[cid] = {"campaign_id": cid, "record": None, "members": [],
                               "accounts": [], "last_ts": ""}
            out.append(g)
        if record.get("detector") == "campaign":
            g["record"] = record
        elif record.get("detector") in MEMBER_DETECTORS:
            g["members"].append(record)
        else:
            g["accounts"].append(record)
        g["last_ts"] = max(g["last_ts"], str(record.get("ts", "")))
    for g in out:
        if g["record"] is None:  # the campaign record itself is older than what we hold
            g["record"] = (g["accounts"] or g["members"])[-1]
    out.sort(key=lambda g: g["last_ts"], reverse=True)
    return out


def alert_line(record: dict[str, Any], colour: bool = False) -> str:
    """One line per alert: time, status, severity, subject, score, summary;
    records of a campaign other than the campaign's own end with its id.

    >>> alert_line({"ts": "2026-02-23T10:00:00.000Z", "status": "firing", "severity": "critical",
    ...             "dedup_key": "account:a", "score": 0.97, "summary": "a: request rate 900/min"})
    '2026-02-23 10:00:00  FIRING    critical  account:a  score=0.97  a: request rate 900/min'
    """
    ts = str(record.get("ts", ""))[:19].replace("T", " ")
    status = str(record.get("status", "?")).upper()
    severity = str(record.get("severity", "?"))
    sev = f"{severity:<8}"
    if colour:
        sev = f"{_COLOURS.get(severity, '')}{sev}{_RESET}"
    score = record.get("score")
    score_text = f"score={score:.2f}" if isinstance(score, (int, float)) else "score=?"
    line = (f"{ts}  {status:<8}  {sev}  {record.get('dedup_key', '?')}  {score_text}  "
            f"{record.get('summary', '')}")
    cid = campaign_of(record)
    if record.get("detector") == "campaign":
        rev = record.get("revision")
        details = record.get("details") or {}
        keys = details.get("linkage_keys") or details.get("cluster_keys") or []
        line += f"  [{record.get('account_count', '?')} accounts, {len(keys)} keys"
        line += f", update {rev}]" if rev else "]"
    elif cid is not None:
        line += f"  [campaign {cid}]"
    return line
