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
    >>> alerts = [a for i in range(400) for a in runner.process(Event(1e9 + i / 10, "x"))]
    >>> [a.status for a in alerts]
    ['firing']
    """

    def __init__(
        self,
        detector: Any,
        loader: Loader | None = None,
        sweep_interval_s: float = 60.0,
    ) -> None:
        if sweep_interval_s <= 0:
            raise ValueError(f"sweep_interval_s must be > 0, got {sweep_interval_s!r}")
        self.detector = detector
        self.loader = loader
        self.sweep_interval_s = sweep_interval_s
        self.states: dict[str, Any] = {}
        self.dirty: set[str] = set()
        self.removed: set[str] = set()
        self.watermark = 0.0
        self._next_sweep = 0.0

    def process(self, event: Event) -> list[Alert]:
        state = self.states.get(event.account_id)
        if state is None and self.loader is not None:
            state = self.loader(event.account_id)
        state, alerts = self.detector.process(state, event)
        self.states[event.account_id] = state
        self.dirty.add(event.account_id)
        self.removed.discard(event.account_id)
        if event.ts > self.watermark:
            self.watermark = event.ts
            if self.watermark >= self._next_sweep:
                if self._next_sweep:
                    alerts = alerts + self.sweep()
                step = self.sweep_interval_s
                self._next_sweep = (self.watermark // step + 1) * step
        return alerts

    def sweep(self) -> list[Alert]:
        """Resolve quiet episodes and expire idle accounts at the watermark."""
        alerts: list[Alert] = []
        for account_id in sorted(self.states):
            state, out = self.detector.expire(self.states[account_id], self.watermark)
            alerts.extend(out)
            if state is None:
                del self.states[account_id]
                self.dirty.discard(account_id)
                self.removed.add(account_id)
            elif out:
                self.states[account_id] = state
                self.dirty.add(account_id)
        return alerts

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
