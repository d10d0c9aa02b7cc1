"""Prometheus metrics, exposed in the text exposition format on ``/metrics``.

Written by hand (a few counters, gauges and one histogram) rather than pulling
in a client library; the format is the stable Prometheus text format 0.0.4.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from streams.service.stages import StageTimes

#: a gauge's samples: (labels, value) pairs, read at scrape time
GaugeFn = Callable[[], Iterable[tuple[dict[str, str], float]]]

# Processing latency of one message (decode + detect + sends), seconds.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                   0.25, 0.5, 1.0)


# How long a checkpoint held the agents (write state, await acks, commit), seconds.
CHECKPOINT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


@dataclass
class Histogram:
    buckets: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.n += 1


class Metrics:
    """The service's one set of counters: rendered for Prometheus by
    :meth:`render` (``/metrics``) and as the ``/health`` body by :meth:`health`.
    Gauges are callables read at scrape time."""

    def __init__(self) -> None:
        self.events_processed = 0
        #: event messages or batch items dead-lettered by the account agent
        #: (``/health`` ``rejected``); every dead letter, summaries and campaign
        #: input included, is in :attr:`events_rejected` by reason
        self.events_dead = 0
        self.events_rejected: dict[str, int] = {}
        self.assignments = 0
        self.alerts: dict[tuple[str, str, str], int] = {}
        #: changelog records written by checkpoints, and the commits they ended in
        self.checkpoints = 0
        self.commits = 0
        self.commits_skipped = 0
        #: account summaries produced, the summaries-topic messages carrying
        #: them, and summary batch items the cluster agent dead-lettered
        self.summaries = 0
        self.summary_messages = 0
        self.summaries_rejected = 0
        #: response actions sent; account and cluster alerts sent to the campaign stage
        self.actions = 0
        self.stage_alerts = 0
        #: usable shared indicators after the latest watchlist read
        self.watchlist_entries = 0
        #: wall clock (unix s): this worker began its first message, and
        #: finished its latest one (a stale last_message_at on a worker with
        #: lag is a stuck worker; the benchmark times workers by them)
        self.first_message_at = 0.0
        self.last_message_at = 0.0
        self.latency = Histogram()
        self.checkpoint_pause = Histogram(CHECKPOINT_BUCKETS)
        self.gauges: dict[str, tuple[str, GaugeFn]] = {}
        #: sampled per-stage timings (streams.service.stages), rendered when set
        self.stages: StageTimes | None = None

    def rejected(self, reason: str) -> None:
        # the reason's first word ("ts:", "not JSON", ...) keeps label cardinality bounded
        kind = reason.split(":", 1)[0].strip()[:40] or "other"
        self.events_rejected[kind] = self.events_rejected.get(kind, 0) + 1

    def alert(self, detector: str, severity: str, status: str) -> None:
        key = (detector, severity, status)
        self.alerts[key] = self.alerts.get(key, 0) + 1

    def checkpoint_done(self, paused_s: float, records: int) -> None:
        """:class:`~streams.service.checkpoint.Checkpointer`'s ``observe``."""
        self.checkpoint_pause.observe(paused_s)

    def health(self) -> dict[str, int | float]:
        """The counters as ``/health`` shows them (keys and order are a contract:
        probes, the benchmark and the reliability tests read them)."""
        return {
            "events": self.events_processed, "rejected": self.events_dead,
            "alerts": sum(self.alerts.values()), "checkpoints": self.checkpoints,
            "commits": self.commits, "summaries": self.summaries,
            "summary_messages": self.summary_messages,
            "summaries_rejected": self.summaries_rejected,
            "commits_skipped": self.commits_skipped, "assignments": self.assignments,
            "actions": self.actions, "watchlist_entries": self.watchlist_entries,
            "stage_alerts": self.stage_alerts,
            "first_message_at": self.first_message_at, "last_message_at": self.last_message_at,
        }

    def gauge(self, name: str, help_text: str,
              read: Callable[[], Iterable[tuple[dict[str, str], float]]]) -> None:
        self.gauges[name] = (help_text, read)

    def render(self) -> str:
        out: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")

        def sample(name: str, labels: dict[str, str], value: float) -> None:
            if labels:
                text = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
                out.append(f"{name}{{{text}}} {value}")
            else:
                out.append(f"{name} {value}")

        family("distillwatch_events_processed_total", "counter",
               "Events processed by the detectors.")
        sample("distillwatch_events_processed_total", {}, self.events_processed)
        family("distillwatch_events_rejected_total", "counter",
               "Messages or batch items sent to the dead-letter topic, by reason.")
        for reason, n in sorted(self.events_rejected.items()):
            sample("distillwatch_events_rejected_total", {"reason": reason}, n)
        family("distillwatch_partition_assignments_total", "counter",
               "Partition assignments received: 1 after start-up, each more a rebalance.")
        sample("distillwatch_partition_assignments_total", {}, self.assignments)
        family("distillwatch_alerts_total", "counter", "Alerts emitted.")
        for (det, sev, status), n in sorted(self.alerts.items()):
            sample("distillwatch_alerts_total",
                   {"detector": det, "severity": sev, "status": status}, n)
        def histogram(name: str, help_text: str, h: Histogram) -> None:
            family(name, "histogram", help_text)
            cumulative = 0
            for bound, count in zip(h.buckets, h.counts, strict=False):
                cumulative += count
                sample(f"{name}_bucket", {"le": repr(bound)}, cumulative)
            sample(f"{name}_bucket", {"le": "+Inf"}, h.n)
            sample(f"{name}_sum", {}, round(h.total, 6))
            sample(f"{name}_count", {}, h.n)

        histogram("distillwatch_processing_seconds",
                  "Time to process one Kafka message (decode, detect, send).", self.latency)
        histogram("distillwatch_checkpoint_pause_seconds",
                  "Time a checkpoint held processing: write changed state, await its "
                  "acknowledgements, commit offsets.", self.checkpoint_pause)
        if self.stages is not None:
            family("distillwatch_stage_seconds_total", "counter",
                   "Time spent per processing stage (decode, validate, account, summaries, "
                   f"cluster), estimated from one unit in {self.stages.every} timed.")
            for stage, secs in self.stages.seconds().items():
                sample("distillwatch_stage_seconds_total", {"stage": stage}, round(secs, 6))
            family("distillwatch_stage_samples_total", "counter",
                   "Timed units per stage (messages for decode, events or summaries for "
                   "the others).")
            for stage, n in self.stages.samples.items():
                sample("distillwatch_stage_samples_total", {"stage": stage}, n)
        for name, (help_text, read) in sorted(self.gauges.items()):
            family(name, "gauge", help_text)
            for labels, value in read():
                sample(name, labels, value)
        return "\n".join(out) + "\n"
