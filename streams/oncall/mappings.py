"""Map alert records onto what on-call tools accept (pure functions).

Field conventions: PagerDuty Events API v2, Prometheus Alertmanager API v2,
and a plain JSON webhook (the alert record itself). See the README's
"On call" section for example payloads.
"""

from __future__ import annotations

from typing import Any

import orjson

PD_SEVERITIES = ("critical", "error", "warning", "info")


def _details(record: dict[str, Any]) -> dict[str, Any]:
    # keep values JSON-simple so string-map tools accept them
    out: dict[str, Any] = {}
    for key, value in record.get("details", {}).items():
        out[key] = value if isinstance(value, (str, int, float, bool)) or value is None \
            else orjson.dumps(value).decode()
    return out


def subject(record: dict[str, Any]) -> str:
    details = record.get("details") or {}
    if record.get("detector") == "campaign" and details.get("campaign_id"):
        return str(details["campaign_id"])
    return str(record.get("account_id") or record.get("dedup_key", "unknown"))


def adopted_incident(record: dict[str, Any]) -> dict[str, Any] | None:
    """The account incident a campaign record continues (``details.adopted``:
    the campaign adopted the open page of an account it names, and goes out
    under that page's ``dedup_key``), or None.

    >>> adopted_incident({"dedup_key": "account:a", "details": {"adopted": {
    ...     "dedup_key": "account:a", "detector": "account", "subject": "a",
    ...     "severity": "error"}}})["subject"]
    'a'
    """
    details = record.get("details") or {}
    adopted = details.get("adopted")
    if isinstance(adopted, dict) and adopted.get("dedup_key") == record.get("dedup_key"):
        return adopted
    return None


def is_member_record(record: dict[str, Any]) -> bool:
    """Member records (``campaign_member``, ``cluster_member``) are the
    machine-readable membership of an incident, firing-only: ``forward``
    skips them for PagerDuty and Alertmanager unless told otherwise."""
    return str(record.get("detector", "")).endswith("_member")


def pagerduty_event(record: dict[str, Any], routing_key: str,
                    link: str | None = None) -> dict[str, Any]:
    """A PagerDuty Events API v2 event: trigger on firing, resolve on resolved.

    >>> ev = pagerduty_event({"alert_id": "a1", "dedup_key": "account:x", "status": "firing",
    ...     "detector": "account", "severity": "error", "score": 0.9,
    ...     "ts": "2026-02-23T10:00:00.000Z",
    ...     "summary": "x: distillation", "details": {}, "account_id": "x"}, "R" * 32)
    >>> ev["event_action"], ev["dedup_key"], ev["payload"]["severity"], ev["payload"]["source"]
    ('trigger', 'account:x', 'error', 'x')

    A campaign's updates re-send its ``dedup_key``: PagerDuty updates the one
    incident (``revision`` and the current member count in the details).
    """
    action = "trigger" if record["status"] == "firing" else "resolve"
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": record["dedup_key"][:255],
    }
    if action == "trigger":
        severity = record.get("severity", "warning")
        event["payload"] = {
            "summary": record.get("summary", "")[:1024],
            "source": subject(record),
            "severity": severity if severity in PD_SEVERITIES else "warning",
            "timestamp": record.get("ts"),
            "component": "distillwatch",
            "group": record.get("detector", ""),
            "class": "pipeline" if record.get("detector") == "pipeline" else "distillation",
            "custom_details": {
                "alert_id": record.get("alert_id"),
                "score": record.get("score"),
                "episode_start": record.get("episode_start"),
                "account_count": record.get("account_count"),
                "accounts": record.get("accounts"),
                "revision": record.get("revision", 0),
                **_details(record),
            },
        }
        if link:
            event["links"] = [{"href": link, "text": "distillwatch account view"}]
    return event


def alertmanager_alert(record: dict[str, Any], generator_url: str = "") -> dict[str, Any]:
    """One element of Alertmanager's ``POST /api/v2/alerts`` array.

    A resolved alert carries ``endsAt`` (its event time), which resolves it.

    >>> a = alertmanager_alert({"alert_id": "a1", "dedup_key": "account:x", "status": "resolved",
    ...     "detector": "account", "severity": "info", "score": 0.1,
    ...     "ts": "2026-02-23T11:00:00.000Z",
    ...     "episode_start": "2026-02-23T10:00:00.000Z", "summary": "x", "details": {},
    ...     "account_id": "x"})
    >>> a["labels"]["alertname"], a["startsAt"], a["endsAt"]
    ('DistillationSuspected', '2026-02-23T10:00:00.000Z', '2026-02-23T11:00:00.000Z')

    Labels identify an alert in Alertmanager, so they stay the same for every
    record of one campaign episode (firing, updates, resolved: the resolved
    record carries the episode's severity in ``details.firing_severity``);
    an account alert that names a campaign gets a ``campaign`` label to group by.
    A campaign that adopted an account's page carries that page's labels
    (``details.adopted``), so Alertmanager updates the page's alert instead of
    adding a second one; the campaign id is in the annotations.

    >>> page = alertmanager_alert({"dedup_key": "account:a", "status": "firing",
    ...     "detector": "account", "severity": "error", "details": {}, "account_id": "a"})
    >>> camp = alertmanager_alert({"dedup_key": "account:a", "status": "firing",
    ...     "detector": "campaign", "severity": "critical", "revision": 1,
    ...     "details": {"campaign_id": "c-1", "adopted": {"dedup_key": "account:a",
    ...     "detector": "account", "subject": "a", "severity": "error"}}})
    >>> camp["labels"] == page["labels"], camp["annotations"]["campaign"]
    (True, 'c-1')
    """
    labels = {
        # a pipeline alert (streams.service.dlq_alarm) is about the service, not an account
        "alertname": "DistillwatchPipeline" if record.get("detector") == "pipeline"
        else "DistillationSuspected",
        "detector": str(record.get("detector", "")),
        "dedup_key": str(record["dedup_key"]),
        "subject": subject(record),
        "service": "distillwatch",
    }
    details = record.get("details") or {}
    if record.get("status") == "firing":
        labels["severity"] = str(record.get("severity", "warning"))
    elif details.get("firing_severity"):
        labels["severity"] = str(details["firing_severity"])
    adopted = adopted_incident(record)
    if adopted is not None:  # the labels of the page it continues
        labels.update(detector=str(adopted.get("detector", "account")),
                      subject=str(adopted.get("subject", "")),
                      severity=str(adopted.get("severity", "warning")))
    elif details.get("campaign_id"):
        labels["campaign"] = str(details["campaign_id"])
    annotations = {
        "summary": record.get("summary", ""),
        "score": str(record.get("score", "")),
        "alert_id": str(record.get("alert_id", "")),
        "details": orjson.dumps(record.get("details", {})).decode(),
    }
    if record.get("account_count"):
        annotations["account_count"] = str(record["account_count"])
    if record.get("revision"):
        annotations["revision"] = str(record["revision"])
    if details.get("campaign_id"):
        annotations["campaign"] = str(details["campaign_id"])
    alert: dict[str, Any] = {
        "labels": labels,
        "annotations": annotations,
        "startsAt": record.get("episode_start") or record.get("ts"),
    }
    if generator_url:
        alert["generatorURL"] = generator_url
    if record.get("status") == "resolved":
        alert["endsAt"] = record.get("ts")
    return alert
