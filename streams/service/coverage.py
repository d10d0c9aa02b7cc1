"""How much of the traffic carries content: the share of events with ``prompt``
and with ``topic``, and partitions that have gone an hour of event time
without either.

Without prompt text and topic only the volume, timing and linkage evidence is
left, and most families cannot reach the firing threshold (issue 18). The
service must say so rather than stay silent: the shares are on ``/health`` and
``/metrics``, replay prints them, and a partition blind for ``blind_after_s``
of event time yields one ``content_missing`` notice per episode (the worker
logs it as a warning). Pure bookkeeping: no clock, no logging here.

>>> cov = ContentCoverage(blind_after_s=3600.0)
>>> cov.observe(0, 1000.0, prompt=True, topic=False)
>>> [cov.observe(0, 1000.0 + 600 * i, prompt=False, topic=False) for i in range(1, 8)][-2:]
[None, None]
>>> [n["partition"] for n in cov.take_notices()]
[0]
>>> cov.report()["prompt_share"], cov.report()["partitions_without_content"]
(0.125, 1)
"""

from __future__ import annotations

from typing import Any


class _Partition:
    __slots__ = ("blind_since", "blind_events", "warned")

    def __init__(self) -> None:
        self.blind_since = -1.0  # event time of the first content-less event; -1: not blind
        self.blind_events = 0
        self.warned = False


class ContentCoverage:
    """Counts of events with prompt/topic and blind-partition episodes."""

    __slots__ = ("blind_after_s", "events", "with_prompt", "with_topic", "_parts", "_notices")

    def __init__(self, blind_after_s: float = 3600.0) -> None:
        if not blind_after_s > 0:
            raise ValueError(f"blind_after_s must be > 0, got {blind_after_s!r}")
        self.blind_after_s = blind_after_s
        self.events = 0
        self.with_prompt = 0
        self.with_topic = 0
        self._parts: dict[int, _Partition] = {}
        self._notices: list[dict[str, Any]] = []

    def observe(self, partition: int, ts: float, *, prompt: bool, topic: bool) -> None:
        """Count one event (event time ``ts``) of ``partition``."""
        self.events += 1
        self.with_prompt += prompt
        self.with_topic += topic
        part = self._parts.get(partition)
        if part is None:
            part = self._parts[partition] = _Partition()
        if prompt or topic:
            part.blind_since = -1.0
            part.blind_events = 0
            part.warned = False  # the episode is over: the next one warns again
            return
        if part.blind_since < 0.0:
            part.blind_since = ts
        part.blind_events += 1
        if not part.warned and ts - part.blind_since >= self.blind_after_s:
            part.warned = True
            self._notices.append({"partition": partition, "since_ts": part.blind_since,
                                  "events": part.blind_events})

    @property
    def has_notices(self) -> bool:
        """True when :meth:`take_notices` has something (checked per message)."""
        return bool(self._notices)

    def take_notices(self) -> list[dict[str, Any]]:
        """Blind episodes that began since the last call (one per episode)."""
        out, self._notices = self._notices, []
        return out

    def forget(self, partition: int) -> None:
        """A partition this worker no longer owns."""
        self._parts.pop(partition, None)

    def report(self) -> dict[str, Any]:
        n = self.events
        return {
            "events": n,
            "prompt_share": round(self.with_prompt / n, 4) if n else None,
            "topic_share": round(self.with_topic / n, 4) if n else None,
            "partitions_without_content": sum(1 for p in self._parts.values() if p.warned),
        }
