"""One partition's detection loop, shared by the Faust agent and replay.

The runner keeps hot account state in memory, asks ``loader`` for accounts it
has not seen (the agent passes a lookup in its changelog-backed table; replay
passes nothing), and runs idle sweeps at deterministic event-time points, so
that for the same ordered input the agent and replay emit the same alerts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from detectors.alerts import Alert
from detectors.schema import Event

Loader = Callable[[str], Any]


class PartitionRunner:
    """Runs a detector over one partition's events in offset order.

    >>> from detectors.engine import Detector
    >>> runner = PartitionRunner(Detector())
    >>> from detectors.schema import Event
    >>> tpl = "Score the candidate answer against the rubric, step by step, then explain. Task: "
    >>> events = [Event(1e9 + i * 5, "x", topic="math/algebra", prompt=f"{tpl}{i} apples")
    ...           for i in range(40)]
    >>> alerts = [a for e in events for a in runner.process(e)]
    >>> alerts += [a for a in runner.process(Event(1e9 + 3600, "y", topic="coding/go"))]
    >>> [(a.status, a.account_id) for a in alerts]
    [('firing', 'x'), ('resolved', 'x')]
    """

    def __init__(
        self,
        detector: Any,
        loader: Loader | None = None,
        sweep_interval_s: float = 60.0,
        summarizer: Any = None,
    ) -> None:
        if sweep_interval_s <= 0:
            raise ValueError(f"sweep_interval_s must be > 0, got {sweep_interval_s!r}")
        self.detector = detector
        self.loader = loader
        self.sweep_interval_s = sweep_interval_s
        # Optional stage-1 hook of coordinated detection: an object with
        # ``maybe_emit(detector, prev_last_ts, state, event)`` (see
        # detectors.cluster.SummaryEmitter); what it returns is queued in
        # ``summaries`` for the caller to drain with ``take_summaries``.
        self.summarizer = summarizer
        self.summaries: list[Any] = []
        self.states: dict[str, Any] = {}
        self.dirty: set[str] = set()
        self.removed: set[str] = set()
        self.watermark = 0.0
        self._next_sweep = 0.0
        # Sub-linear sweeps: detectors that expose ``next_due(state)`` get their
        # accounts filed in buckets of ``sweep_interval_s`` by the earliest
        # watermark at which ``expire`` can change them; a sweep visits only
        # the due buckets (in sorted account order, as the full scan would).
        # A due time that moved later is noticed when its bucket comes up.
        self._next_due = getattr(detector, "next_due", None)
        self._due: dict[str, int] = {}
        self._buckets: dict[int, set[str]] = {}

    def process(self, event: Event) -> list[Alert]:
        state = self.states.get(event.account_id)
        if state is None and self.loader is not None:
            state = self.loader(event.account_id)
        summarizer = self.summarizer
        prev_last = state.last_ts if summarizer is not None and state is not None else None
        state, found = self.detector.process(state, event)
        if summarizer is not None:
            summary = summarizer.maybe_emit(self.detector, prev_last, state, event)
            if summary is not None:
                self.summaries.append(summary)
        alerts: list[Alert] = found
        account_id = event.account_id
        self.states[account_id] = state
        self.dirty.add(account_id)
        self.removed.discard(account_id)
        if self._next_due is not None:
            self._schedule(account_id, state)
        if event.ts > self.watermark:
            self.watermark = event.ts
            if self.watermark >= self._next_sweep:
                if self._next_sweep:
                    alerts = alerts + self.sweep()
                step = self.sweep_interval_s
                self._next_sweep = (self.watermark // step + 1) * step
        return alerts

    def _schedule(self, account_id: str, state: Any) -> None:
        bucket = int(self._next_due(state) // self.sweep_interval_s)  # type: ignore[misc]
        current = self._due.get(account_id)
        if current is not None and current <= bucket:
            return
        if current is not None:
            members = self._buckets.get(current)
            if members is not None:
                members.discard(account_id)
        self._due[account_id] = bucket
        self._buckets.setdefault(bucket, set()).add(account_id)

    def _due_accounts(self) -> list[str]:
        limit = int(self.watermark // self.sweep_interval_s)
        due: set[str] = set()
        for bucket in [b for b in self._buckets if b <= limit]:
            for account_id in self._buckets.pop(bucket):
                if self._due.get(account_id) == bucket:
                    del self._due[account_id]
                    due.add(account_id)
        return sorted([a for a in due if a in self.states])

    def sweep(self) -> list[Alert]:
        """Resolve quiet episodes and expire idle accounts at the watermark."""
        alerts: list[Alert] = []
        if self._next_due is None:
            accounts = sorted(self.states)
        else:
            accounts = self._due_accounts()
        for account_id in accounts:
            state, out = self.detector.expire(self.states[account_id], self.watermark)
            alerts.extend(out)
            if state is None:
                del self.states[account_id]
                self.dirty.discard(account_id)
                self.removed.add(account_id)
                continue
            if out:
                self.states[account_id] = state
                self.dirty.add(account_id)
            if self._next_due is not None:
                self._schedule(account_id, state)
        return alerts

    def take_summaries(self) -> list[Any]:
        """Account summaries queued since the last call (empty without a summarizer)."""
        out = self.summaries
        if out:
            self.summaries = []
        return out

    def take_dirty(self) -> tuple[list[tuple[str, Any]], list[str]]:
        """Accounts changed since the last call (to checkpoint), and those expired."""
        changed = [(a, self.states[a]) for a in self.dirty if a in self.states]
        removed = list(self.removed)
        self.dirty.clear()
        self.removed.clear()
        return changed, removed

    def evict(self, account_ids: Iterable[str]) -> None:
        for account_id in account_ids:
            self.states.pop(account_id, None)
            self.dirty.discard(account_id)
            bucket = self._due.pop(account_id, None)
            if bucket is not None:
                self._buckets.get(bucket, set()).discard(account_id)
