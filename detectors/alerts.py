"""The alert record and its deterministic identity.

An alert's identity depends only on event-time facts (detector, subject,
episode start, status), never on wall clock or processing order, so that a
re-processed event after a crash yields the same ``alert_id`` and consumers can
drop the duplicate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from detectors.schema import format_ts

SEVERITIES: Final = ("info", "warning", "error", "critical")
STATUSES: Final = ("firing", "resolved")
MAX_SUMMARY: Final = 120
MAX_ACCOUNTS_LISTED: Final = 50


def dedup_key(detector: str, subject: str) -> str:
    """``<detector>:<subject>``, the key on-call tools group an incident by.

    >>> dedup_key("account", "acct-1")
    'account:acct-1'
    """
    return f"{detector}:{subject}"


def make_alert_id(dedup: str, episode_start: float, status: str, revision: int = 0) -> str:
    """A stable id for one status change of one episode.

    ``episode_start`` is the event time the episode began, in epoch seconds;
    it is rounded to milliseconds so that float noise cannot change the id.
    ``revision`` > 0 numbers the updates of a firing episode (campaign
    alerts), each with its own id; revision 0 keeps the original id.

    >>> a = make_alert_id("account:a", 1771840800.0, "firing")
    >>> a == make_alert_id("account:a", 1771840800.0001, "firing"), len(a)
    (True, 32)
    >>> a == make_alert_id("account:a", 1771840800.0, "resolved")
    False
    >>> a == make_alert_id("account:a", 1771840800.0, "firing", 1)
    False
    """
    material = f"{dedup}|{int(round(episode_start * 1000))}|{status}".encode()
    if revision:
        material += f"|r{revision}".encode()
    return hashlib.blake2b(material, digest_size=16).hexdigest()


def severity_for(score: float, thresholds: Mapping[str, float]) -> str:
    """Map a score in [0, 1] to a severity, given the lower bound of each level.

    >>> severity_for(0.97, {"warning": 0.7, "error": 0.85, "critical": 0.95})
    'critical'
    >>> severity_for(0.5, {"warning": 0.7, "error": 0.85, "critical": 0.95})
    'info'
    """
    level = "info"
    for name in SEVERITIES[1:]:
        bound = thresholds.get(name)
        if bound is not None and score >= bound:
            level = name
    return level


@dataclass(frozen=True, slots=True)
class Alert:
    """One status change of one alert episode.

    ``ts`` is the event time of the event that tripped (or resolved) it.
    ``emitted_at`` is not part of the alert: the stream layer stamps it at send
    time, so the detection output stays deterministic byte for byte.
    """

    detector: str
    status: str
    severity: str
    score: float
    ts: float
    episode_start: float
    summary: str
    details: Mapping[str, Any] = field(default_factory=dict)
    account_id: str | None = None
    accounts: tuple[str, ...] = ()
    account_count: int = 0
    #: updates of one firing episode (campaign alerts): 1, 2, ...; 0 otherwise
    revision: int = 0

    @property
    def subject(self) -> str:
        if self.account_id is not None:
            return self.account_id
        if "campaign_id" in self.details and self.detector == "campaign":
            return str(self.details["campaign_id"])
        return str(self.details.get("cluster_key", "cluster"))

    @property
    def dedup_key(self) -> str:
        # a record that continues another incident (a campaign that adopted
        # the open page of an account it names: detectors/campaign.py) goes
        # out under that incident's key, so PagerDuty and Alertmanager keep one
        adopted = self.details.get("adopted")
        if isinstance(adopted, Mapping):
            key = adopted.get("dedup_key")
            if isinstance(key, str) and key:
                return key
        return dedup_key(self.detector, self.subject)

    @property
    def alert_id(self) -> str:
        return make_alert_id(self.dedup_key, self.episode_start, self.status, self.revision)

    def to_record(self, emitted_at: float | None = None) -> dict[str, Any]:
        """The JSON-ready alert record (the contract on ``distillwatch-alerts``)."""
        record: dict[str, Any] = {
            "alert_id": self.alert_id,
            "dedup_key": self.dedup_key,
            "status": self.status,
            "detector": self.detector,
            "severity": self.severity,
            "score": round(float(self.score), 4),
            "ts": format_ts(self.ts),
            "episode_start": format_ts(self.episode_start),
            "summary": self.summary[:MAX_SUMMARY],
            "details": dict(self.details),
        }
        if self.account_id is not None:
            record["account_id"] = self.account_id
        else:
            record["accounts"] = list(self.accounts[:MAX_ACCOUNTS_LISTED])
            record["account_count"] = self.account_count or len(self.accounts)
        if self.revision:
            record["revision"] = self.revision
        if emitted_at is not None:
            record["emitted_at"] = format_ts(emitted_at)
        return record
