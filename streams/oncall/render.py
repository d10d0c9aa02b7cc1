"""Readable one-line rendering of alert records for terminals."""

from __future__ import annotations

from typing import Any

_COLOURS = {"critical": "\x1b[1;31m", "error": "\x1b[31m", "warning": "\x1b[33m",
            "info": "\x1b[36m"}
_RESET = "\x1b[0m"


#: member records: machine-readable membership of an incident, one per account
#: (tail hides them unless --members; the campaign line counts them)
MEMBER_DETECTORS = ("campaign_member", "cluster_member")
#: records that put an account into an incident besides its own
JOINED_DETECTORS = (*MEMBER_DETECTORS, "account_member")
#: detail fields that name the incident a record belongs to, by detector
_PARENT_FIELDS = ("campaign_dedup_key", "account_dedup_key", "cluster_dedup_key")


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


def incident_of(record: dict[str, Any]) -> str:
    """The incident (``dedup_key``) a record belongs to: its own, or for a
    member record, an account alert naming a campaign, and an account that
    joined another account's page, the one it names. A campaign that adopted
    an account's page goes out under that page's key, so the page, the
    campaign and its members are one incident, as for PagerDuty.

    >>> incident_of({"detector": "account_member", "dedup_key": "account_member:b",
    ...              "details": {"account_dedup_key": "account:a"}})
    'account:a'
    >>> incident_of({"detector": "campaign_member", "dedup_key": "campaign_member:b",
    ...              "details": {"campaign_id": "c-1", "campaign_dedup_key": "campaign:c-1"}})
    'campaign:c-1'
    >>> incident_of({"detector": "account", "dedup_key": "account:a", "details": {}})
    'account:a'
    """
    details = record.get("details")
    if isinstance(details, dict) and record.get("detector") != "campaign":
        for name in _PARENT_FIELDS:
            parent = details.get(name)
            if isinstance(parent, str) and parent:
                return parent
    return str(record.get("dedup_key", ""))


def group_by_incident(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records grouped for display, most recent group first: one group per
    incident (``incident_of``): its head (the latest campaign record, else
    its latest own record), the other alerts in it (``accounts``: account
    alerts naming its campaign, the account page a campaign adopted) and its
    member records (``members``: campaign, cluster and account members).

    >>> g = group_by_incident([
    ...     {"detector": "campaign", "dedup_key": "campaign:c-1", "ts": "1",
    ...      "details": {"campaign_id": "c-1"}},
    ...     {"detector": "campaign_member", "ts": "2", "account_id": "a",
    ...      "details": {"campaign_id": "c-1", "campaign_dedup_key": "campaign:c-1"}},
    ...     {"detector": "account", "dedup_key": "account:b", "ts": "3", "account_id": "b",
    ...      "details": {}},
    ...     {"detector": "account_member", "dedup_key": "account_member:d", "ts": "4",
    ...      "account_id": "d", "details": {"account_dedup_key": "account:b"}}])
    >>> [(x["incident"], x["campaign_id"], x["record"]["detector"], len(x["members"]))
    ...  for x in g]
    [('account:b', None, 'account', 1), ('campaign:c-1', 'c-1', 'campaign', 1)]
    """
    groups: dict[str, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for record in records:
        key = incident_of(record)
        g = groups.get(key)
        if g is None:
            g = groups[key] = {"incident": key, "campaign_id": None, "record": None,
                               "members": [], "accounts": [], "own": [], "last_ts": ""}
            out.append(g)
        if record.get("detector") in JOINED_DETECTORS:
            g["members"].append(record)
        elif record.get("dedup_key") == key:
            g["own"].append(record)
        else:
            g["accounts"].append(record)
        g["campaign_id"] = g["campaign_id"] or campaign_of(record)
        g["last_ts"] = max(g["last_ts"], str(record.get("ts", "")))
    for g in out:
        own = g.pop("own")
        camp = [r for r in own if r.get("detector") == "campaign"]
        head = (camp or own or g["accounts"] or g["members"])[-1]
        g["record"] = head
        # the account page a campaign adopted (the incident's first record)
        # shows under it; older records of the head's own kind do not
        g["accounts"] = [r for r in own if r.get("detector") != head.get("detector")] \
            + g["accounts"]
        if head in g["accounts"]:
            g["accounts"].remove(head)
        if head in g["members"] and not (camp or own):
            g["members"].remove(head)
    out.sort(key=lambda g: g["last_ts"], reverse=True)
    return out


#: (the name the live page used before incidents were grouped)
group_by_campaign = group_by_incident


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
    incident = incident_of(record)
    if record.get("detector") == "campaign":
        rev = record.get("revision")
        details = record.get("details") or {}
        keys = details.get("linkage_keys") or details.get("cluster_keys") or []
        adopted = f"campaign {cid}, " if cid and incident != f"campaign:{cid}" else ""
        line += f"  [{adopted}{record.get('account_count', '?')} accounts, {len(keys)} keys"
        line += f", update {rev}]" if rev else "]"
    elif cid is not None:
        line += f"  [campaign {cid}" + (
            f", incident {incident}]" if incident != f"campaign:{cid}" else "]")
    elif incident != record.get("dedup_key"):
        line += f"  [in {incident}]"
    return line
