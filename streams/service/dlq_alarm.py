"""The dead-letter alarm: dead-lettering past a bound is an incident, not a log line.

Bad input is dead-lettered and the stream goes on; that is right for a bad
message, and wrong when a producer ships a schema change that breaks every
event: detection stops with nothing for on-call to see (issue 21; getsentry's
arroyo bounds dead-lettering and fails loudly past the bound). So the worker
watches the share of the last ``window`` events it dead-lettered. Above
``share`` it emits a ``pipeline`` alert on the alerts topic (same schema and
path as every alert, so the forwarders page on-call), ``/ready`` answers 503
with the reason, and one ``dead_letter_alarm`` line is logged; when the share
has fallen to half the bound the alert resolves.

The alert's identity follows the alert schema's rule: ``dedup_key`` is
``pipeline:<app id>@<host>:<web port>`` (one per worker slot: every partition
this worker reads feeds its window), and ``alert_id`` hashes it with the
episode's start, which is the Kafka timestamp of the message that crossed the
bound (not the wall clock), so the same input read again yields the same id.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from detectors.alerts import dedup_key, make_alert_id
from detectors.schema import format_ts

DETECTOR = "pipeline"


@dataclass
class DeadLetterAlarm:
    """A sliding window over the last ``window`` events: how many were
    dead-lettered. Run-length encoded, so a batch message of 10,000 events
    costs one step, not 10,000.

    >>> alarm = DeadLetterAlarm("pipeline:dw@host:6066", share=0.05, window=100)
    >>> alarm.observe(good=95, bad=0, ts=1.0)
    >>> alarm.observe(good=0, bad=10, ts=2.0, reasons=["not JSON: x"] * 10)["status"]
    'firing'
    >>> alarm.firing, round(alarm.current_share, 2), alarm.reason()
    (True, 0.1, 'dead-lettered 10 of the last 100 events (10.0%; bound 5.0%): not JSON x10')
    >>> alarm.observe(good=95, bad=0, ts=3.0) is None   # 5 of the last 100: not yet
    True
    >>> alarm.observe(good=4, bad=0, ts=4.0)["status"]   # 1 of 100: half the bound or less
    'resolved'
    """

    subject: str
    share: float = 0.05
    window: int = 1000
    #: the share is judged only once the window holds this many events
    min_events: int = 0
    firing: bool = False
    episode_start: float = 0.0
    _segments: deque[list[Any]] = field(default_factory=deque)
    _total: int = 0
    _bad: int = 0
    _reasons: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        if not 0 < self.share < 1:
            raise ValueError(f"share must be in (0, 1), got {self.share!r}")
        if self.window < 10:
            raise ValueError(f"window must be >= 10, got {self.window!r}")
        if not self.min_events:
            self.min_events = max(10, self.window // 5)

    @property
    def dedup_key(self) -> str:
        return dedup_key(DETECTOR, self.subject)

    @property
    def current_share(self) -> float:
        return self._bad / self._total if self._total else 0.0

    def observe(self, good: int, bad: int, ts: float,
                reasons: list[str] | None = None) -> dict[str, Any] | None:
        """Count one message's outcome (``good`` events processed, ``bad``
        dead-lettered) at Kafka timestamp ``ts``. Returns the alert record
        when the alarm fires or resolves, else None."""
        if not bad and not self._bad:
            # the common case, once per message: a window of good events only
            # is one segment, and it cannot fire (nor be firing: at 0 it resolved)
            if good:
                total = min(self.window, self._total + good)
                if self._segments:
                    self._segments[0][1] = total
                else:
                    self._segments.append([False, total])
                self._total = total
            return None
        if good:
            self._push(False, good)
        if bad:
            self._push(True, bad)
        if reasons and (self.firing or self.current_share > self.share):
            self._reasons.update(r.split(":", 1)[0].strip()[:40] or "other" for r in reasons)
        if self._total < self.min_events:
            return None
        share = self.current_share
        if not self.firing and share > self.share:
            self.firing = True
            self.episode_start = ts
            return self.record("firing", ts)
        if self.firing and share <= self.share / 2:
            self.firing = False
            out = self.record("resolved", ts)
            self._reasons.clear()
            return out
        return None

    def _push(self, bad: bool, n: int) -> None:
        n = min(n, self.window)
        if self._segments and self._segments[-1][0] == bad:
            self._segments[-1][1] += n
        else:
            self._segments.append([bad, n])
        self._total += n
        self._bad += n if bad else 0
        excess = self._total - self.window
        while excess > 0:
            head = self._segments[0]
            take = min(head[1], excess)
            head[1] -= take
            excess -= take
            self._total -= take
            self._bad -= take if head[0] else 0
            if head[1] == 0:
                self._segments.popleft()

    def reason(self) -> str:
        top = ", ".join(f"{kind} x{n}" for kind, n in self._reasons.most_common(3))
        text = (f"dead-lettered {self._bad} of the last {self._total} events "
                f"({100 * self.current_share:.1f}%; bound {100 * self.share:.1f}%)")
        return f"{text}: {top}" if top else text

    def record(self, status: str, ts: float) -> dict[str, Any]:
        """The alert record (schemas/alert.schema.json) for ``status`` now."""
        share = self.current_share
        summary = (f"{self.subject}: {100 * share:.0f}% of the last {self._total} events "
                   f"dead-lettered" if status == "firing" else
                   f"{self.subject}: dead-lettering back to {100 * share:.1f}%")
        return {
            "alert_id": make_alert_id(self.dedup_key, self.episode_start, status),
            "dedup_key": self.dedup_key,
            "status": status,
            "detector": DETECTOR,
            "severity": "critical" if status == "firing" else "info",
            "score": round(min(1.0, share), 4),
            "ts": format_ts(ts),
            "episode_start": format_ts(self.episode_start),
            "summary": summary[:120],
            "details": {
                "share": round(share, 4),
                "bound": self.share,
                "window": self.window,
                "events": self._total,
                "dead_lettered": self._bad,
                "reasons": [[kind, n] for kind, n in self._reasons.most_common(5)],
                "note": "detection is starved: check the producers' event schema and the "
                        "dead-letter topic",
            },
            "accounts": [],
            "account_count": 0,
        }
