"""The worker's Prometheus gauges: read at scrape time from the objects that
hold the numbers (:meth:`Metrics.gauge`)."""

from __future__ import annotations

import faust

from detectors.watchlist import Watchlist
from streams.kafka.consumer import read_offset
from streams.kafka.offsets import CommitWatch
from streams.service.campaigns import CampaignProcessor
from streams.service.clusters import ClusterProcessor
from streams.service.dlq_alarm import DeadLetterAlarm
from streams.service.metrics import Metrics
from streams.service.processor import StreamProcessor
from streams.settings import Settings

Samples = list[tuple[dict[str, str], float]]


def consumer_lag(app: faust.App, events_topic: str) -> Samples:
    """Messages not yet read, per events partition this worker owns."""
    consumer = app.consumer if app.producer is not None else None
    if consumer is None:
        return []
    out = []
    for tp in sorted(consumer.assignment()):
        if tp.topic != events_topic:
            continue
        high = consumer.highwater(tp)
        read = read_offset(consumer, tp)  # last offset handed to the agent
        if high is not None:
            done = (read + 1) if read is not None else 0
            out.append(({"partition": str(tp.partition)}, float(max(0, high - done))))
    return out


def register(metrics: Metrics, *, app: faust.App, settings: Settings,
             processor: StreamProcessor, commit_watch: CommitWatch, watchlist: Watchlist,
             dlq_alarm: DeadLetterAlarm | None, clusters: ClusterProcessor | None,
             campaigns: CampaignProcessor | None) -> None:
    """Register every gauge of the worker (those of the stages it runs)."""

    def lag() -> Samples:
        return consumer_lag(app, settings.events_topic)

    def stalled() -> Samples:
        return [({}, float(len(commit_watch.stalled())))]

    def content_share() -> Samples:
        coverage = processor.coverage
        return [({"field": "prompt"}, coverage.with_prompt / max(1, coverage.events)),
                ({"field": "topic"}, coverage.with_topic / max(1, coverage.events))]

    def blind_partitions() -> Samples:
        return [({}, float(processor.coverage.report()["partitions_without_content"]))]

    def accounts() -> Samples:
        return [({}, float(processor.tracked_accounts()))]

    def watchlist_entries() -> Samples:
        return [({}, float(watchlist.size))]

    metrics.gauge("distillwatch_consumer_lag", "Messages not yet read on the events topic.", lag)
    metrics.gauge(
        "distillwatch_commit_stalled_partitions",
        "Events partitions whose committed offset has not moved for commit_stall_s "
        "although the worker read past it.",
        stalled,
    )
    if dlq_alarm is not None:
        register_alarm(metrics, dlq_alarm)
    metrics.gauge(
        "distillwatch_content_share",
        "Share of processed events that carry the field (prompt, topic) since start.",
        content_share,
    )
    metrics.gauge(
        "distillwatch_partitions_without_content",
        "Partitions that have gone an hour of event time without prompt or topic.",
        blind_partitions,
    )
    metrics.gauge("distillwatch_accounts_tracked", "Accounts held in memory by this worker.",
                  accounts)
    metrics.gauge("distillwatch_watchlist_entries",
                  "Shared indicators the detectors can match (watchlist topic, usable here).",
                  watchlist_entries)
    if clusters is not None:
        register_clusters(metrics, clusters)
    if campaigns is not None:
        register_campaigns(metrics, campaigns)


def register_alarm(metrics: Metrics, alarm: DeadLetterAlarm) -> None:
    def share() -> Samples:
        return [({}, alarm.current_share)]

    def firing() -> Samples:
        return [({}, 1.0 if alarm.firing else 0.0)]

    metrics.gauge("distillwatch_dead_letter_share",
                  "Share of the last dlq_alarm_window events that were dead-lettered.", share)
    metrics.gauge("distillwatch_dead_letter_alarm",
                  "1 while the dead-letter share is past dlq_alarm_share (a pipeline "
                  "alert is firing and /ready says not ready).", firing)


def register_clusters(metrics: Metrics, clusters: ClusterProcessor) -> None:
    def tracked() -> Samples:
        clustered, single = clusters.tracked()
        return [({"entry": "cluster"}, float(clustered)), ({"entry": "single"}, float(single))]

    metrics.gauge("distillwatch_cluster_keys_tracked",
                  "Linkage keys held in memory by this worker, by kind of entry.", tracked)


def register_campaigns(metrics: Metrics, campaigns: CampaignProcessor) -> None:
    def tracked() -> Samples:
        return [({}, float(campaigns.tracked()))]

    metrics.gauge("distillwatch_campaigns_tracked",
                  "Campaigns held in memory by this worker (firing, quiet or remembered).",
                  tracked)

    def held() -> Samples:
        stage = campaigns.stage
        return [({}, float(stage.holding if stage is not None else 0))]

    metrics.gauge("distillwatch_campaign_alerts_held",
                  "Account alerts (and clusters on probation) the campaign stage holds "
                  "until event time moves on or its input goes quiet.", held)
