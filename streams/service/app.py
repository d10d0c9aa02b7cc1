"""The Faust application: topics, the account-state table, the detection agent,
the checkpoint timer and the web views.

Design (numbers in the README's performance section): hot per-account state
lives in the worker (:class:`~streams.service.processor.StreamProcessor`); a timer
writes every changed account to the changelog-backed table and only then
commits consumer offsets, so the stored state is never older than the
committed offset. After a crash the worker resumes from that offset with that
state; events after it are processed again and yield the same alert ids.
"""

from __future__ import annotations

import asyncio
import math
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faust
import orjson
import structlog

from detectors.alerts import Alert
from detectors.campaign import CampaignStage, encode_alert, tick_due
from detectors.cluster import ClusterDetector, SummaryEmitter
from detectors.partitioning import partition_for
from detectors.schema import format_ts
from streams.errors import ProducerStalled
from streams.kafka.fetch_pacing import install as pace_empty_fetches
from streams.kafka.flush import flush_completely
from streams.kafka.offsets import CommitWatch
from streams.kafka.offsets import install as install_offset_rule
from streams.response.indicators import read_watchlist, watchlist_for
from streams.service.campaigns import CampaignProcessor, encode_tick
from streams.service.checkpoint import Checkpointer, Record
from streams.service.clusters import ClusterProcessor
from streams.service.detection import AccountState, detector_factory, response_policy
from streams.service.dlq_alarm import DeadLetterAlarm
from streams.service.metrics import Metrics
from streams.service.processor import DeadLetter, StreamProcessor
from streams.service.stages import StageTimes
from streams.service.summary_batch import SummaryBatcher
from streams.service.topics import campaigns_on
from streams.service.web import register_views
from streams.service.web_auth import WebGuard
from streams.service.web_auth import middleware as web_auth_middleware
from streams.settings import Settings

log = structlog.get_logger("distillwatch.worker")


def faust_credentials(settings: Settings) -> Any:
    if settings.security_protocol == "PLAINTEXT":
        return None
    context = None
    if settings.security_protocol.endswith("SSL"):
        context = ssl.create_default_context(cafile=settings.ssl_cafile or None)
        if settings.ssl_certfile:
            context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile or None)
    if settings.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password.get_secret_value(),
            ssl_context=context,
            mechanism=settings.sasl_mechanism,
        )
    return faust.SSLCredentials(context)


def web_middleware(settings: Settings) -> Any:
    guard = WebGuard(settings.web_token.get_secret_value(), settings.allowed_hosts)
    return web_auth_middleware(
        guard, lambda **kw: log.warning("web_request_refused", **kw))


def faust_config(settings: Settings, client_id: str = "") -> dict[str, Any]:
    """Faust's settings. ``client_id`` names this process in the consumer group
    (streams.service.liveness: DescribeGroups shows it, heartbeats are keyed by it)."""
    extra = {"broker_client_id": client_id} if client_id else {}
    return {
        **extra,
        "broker": settings.broker,
        "broker_credentials": faust_credentials(settings),
        "store": "memory://",
        "topic_partitions": settings.partitions,
        "topic_replication_factor": settings.replication_factor,
        "broker_session_timeout": settings.session_timeout_s,
        "broker_heartbeat_interval": settings.heartbeat_interval_s,
        # Offsets are committed by the checkpoint timer, right after state is
        # written, never by Faust on its own schedule (see module docstring).
        "broker_commit_interval": 3600.0,
        "broker_commit_every": 1_000_000_000,
        "consumer_auto_offset_reset": "earliest",
        "processing_guarantee": "at_least_once",
        "producer_acks": -1,
        "table_standby_replicas": 0,
        "stream_wait_empty": False,
        "web_enabled": settings.web_enabled,
        "web_bind": settings.web_host,
        "web_host": settings.web_host,
        "web_port": settings.web_port,
        # Host allowlist, bearer token, POST-only changes (streams/service/web_auth.py)
        "web_application_options": {"middlewares": [web_middleware(settings)]},
        # table_route compares this with the owner's URL to decide "same node"
        "canonical_url": f"http://{settings.web_host}:{settings.web_port}",
        "datadir": f"{settings.data_dir}/faust",
        "autodiscover": False,
        "worker_redirect_stdouts": False,
    }


def table_partition(table: Any, partition: int, partitions: int) -> list[tuple[bytes, Any]]:
    """The (key, value) pairs of one partition of a memory-store table: keys
    recovered from the changelog know their partition; keys written by this
    process are placed as the events' producers place them (murmur2)."""
    known = getattr(table.data, "_key_partition", {})
    return [(k, v) for k, v in list(table.data.items())
            if isinstance(k, bytes) and known.get(k, partition_for(k, partitions)) == partition]


@dataclass
class Service:
    settings: Settings
    app: faust.App
    processor: StreamProcessor
    stats: dict[str, int]
    agent: Any
    checkpoint: Callable[[], Any]
    table: Any
    metrics: Metrics
    recent_alerts: deque[dict[str, Any]]
    #: the cluster stage (None when ``clusters_enabled`` is off)
    clusters: ClusterProcessor | None = None
    cluster_table: Any = None
    #: summaries waiting to be sent to the summaries topic (None without clusters)
    summary_batcher: SummaryBatcher | None = None
    checkpointer: Checkpointer | None = None
    #: the dead-letter alarm (None when ``dlq_alarm_share`` is 0)
    dlq_alarm: DeadLetterAlarm | None = None
    #: the campaign stage (None unless both clusters and campaigns are on)
    campaigns: CampaignProcessor | None = None
    campaign_table: Any = None


def build_service(settings: Settings, clock: Callable[[], float] = time.time,
                  client_id: str = "") -> Service:
    """Create the Faust app and everything attached to it."""
    app = faust.App(settings.app_id, **faust_config(settings, client_id))
    pace_empty_fetches(settings.empty_fetch_interval_s)
    events_topic = app.topic(
        settings.events_topic,
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
        partitions=settings.partitions,
    )
    alerts_topic = app.topic(
        settings.alerts_topic,
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
        partitions=settings.partitions,
    )
    dlq_topic = app.topic(
        settings.dlq_topic,
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
        partitions=settings.partitions,
    )
    actions_topic = app.topic(
        settings.actions_topic,
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
        partitions=settings.partitions,
    )
    # response actions proposed from alerts: the same pure mapping replay uses
    policy = response_policy(settings.detector_mapping()) if settings.actions_enabled else None
    # Keyed like the events topic, same partition count: an account's state
    # and its events live on the same partition number.
    table = app.Table(
        "account-state",
        default=None,
        # bytes → Faust's "raw" serializer both ways: no pickle, no JSON re-encoding
        key_type=bytes, value_type=bytes,
        extra_topic_configs={"cleanup.policy": "compact"},
        partitions=settings.partitions,
    )
    # Second stage: account summaries keyed by linkage key, and the cluster
    # state per key, co-partitioned the same way (same partition count).
    stage_times = (StageTimes(settings.stage_timing_every)
                   if settings.stage_timing_every else None)
    summaries_topic: Any = None
    cluster_table: Any = None
    clusters: ClusterProcessor | None = None
    batcher: SummaryBatcher | None = None
    if settings.clusters_enabled:
        summaries_topic = app.topic(
            settings.summaries_topic,
            key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
            partitions=settings.partitions,
        )
        cluster_table = app.Table(
            "cluster-state",
            default=None,
            key_type=bytes, value_type=bytes,
            extra_topic_configs={"cleanup.policy": "compact"},
            partitions=settings.partitions,
        )
        clusters = ClusterProcessor(
            ClusterDetector,
            lookup=lambda key: cluster_table.data.get(key),
            on_corrupt=lambda key, reason: log.warning(
                "cluster_state_corrupt", key=key, reason=reason
            ),
            times=stage_times,
        )
        batcher = SummaryBatcher(settings.partitions, settings.summary_batch_max_pairs)
    # Third stage: every account and cluster alert through one partition to
    # the campaign agent, its state in a one-partition table.
    campaign_topic: Any = None
    campaign_table: Any = None
    campaigns: CampaignProcessor | None = None
    if campaigns_on(settings):
        campaign_topic = app.topic(
            settings.campaign_topic,
            key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
            partitions=1,
        )
        campaign_table = app.Table(
            "campaign-state",
            default=None,
            key_type=bytes, value_type=bytes,
            extra_topic_configs={"cleanup.policy": "compact"},
            partitions=1,
        )

        def campaign_stage() -> CampaignStage:
            return CampaignStage(
                update_interval_s=settings.campaign_update_interval_s,
                holddown_s=settings.campaign_holddown_s,
            )

        campaigns = CampaignProcessor(
            campaign_stage,
            scan=lambda: [(k, v) for k, v in list(campaign_table.data.items())
                          if isinstance(k, bytes) and isinstance(v, bytes)],
            on_corrupt=lambda key, reason: log.warning(
                "campaign_state_corrupt", key=key, reason=reason
            ),
        )
    stats = {"events": 0, "rejected": 0, "alerts": 0, "checkpoints": 0, "commits": 0,
             "summaries": 0, "summary_messages": 0, "summaries_rejected": 0,
             "commits_skipped": 0, "assignments": 0, "actions": 0, "watchlist_entries": 0,
             "stage_alerts": 0,
             # wall clock (unix s): this worker began its first message, and
             # finished its latest one (a stale last_message_at on a worker
             # with lag is a stuck worker; the benchmark times workers by them)
             "first_message_at": 0.0, "last_message_at": 0.0}
    metrics = Metrics()
    recent_alerts: deque[dict[str, Any]] = deque(maxlen=200)
    # one window per worker slot: a producer that breaks every event breaks
    # them on every partition, and on-call wants one alert for it
    dlq_alarm = (DeadLetterAlarm(f"{settings.app_id}@{socket.gethostname()}:{settings.web_port}",
                                 settings.dlq_alarm_share, settings.dlq_alarm_window)
                 if settings.dlq_alarm_share > 0 else None)

    def on_corrupt(account_id: str, reason: str) -> None:
        log.warning("state_corrupt", account_id=account_id, reason=reason)

    # indicators shared by other providers: one object for every partition's
    # detector, refilled from the watchlist topic by watchlist_refresh below
    watchlist = watchlist_for(settings)
    processor = StreamProcessor(
        detector_factory(settings.detector_mapping(), watchlist),
        AccountState,
        lookup=lambda key: table.data.get(key),
        scan=lambda partition: table_partition(table, partition, settings.partitions),
        sweep_interval_s=settings.sweep_interval_s,
        max_message_bytes=settings.max_message_bytes,
        max_batch_events=settings.max_batch_events,
        max_prompt_chars=settings.max_prompt_chars,
        on_corrupt_state=on_corrupt,
        on_detector_error=lambda account_id, exc: log.error(
            "detector_failed", account_id=account_id, exc_info=exc
        ),
        summarizer=(
            SummaryEmitter(settings.summary_interval_s) if settings.clusters_enabled else None
        ),
        times=stage_times,
    )
    metrics.stages = stage_times

    ticked: dict[int, float] = {}

    async def to_stage(alert: Alert) -> None:
        # account and cluster alerts go to the campaign agent, which decides
        # what on-call receives (one partition: key irrelevant, kept readable)
        stats["stage_alerts"] += 1
        await campaign_topic.send(key=alert.dedup_key.encode(), value=encode_alert(alert),
                                  partition=0)

    async def send_alert(alert: Alert, partition: int, offset: int) -> None:
        stats["alerts"] += 1
        metrics.alert(alert.detector, alert.severity, alert.status)
        log.info(
            "alert_emitted", alert_id=alert.alert_id, dedup_key=alert.dedup_key,
            status=alert.status, severity=alert.severity, score=round(alert.score, 3),
            partition=partition, offset=offset,
        )
        record = alert.to_record(emitted_at=clock())
        recent_alerts.append(record)
        await alerts_topic.send(key=alert.dedup_key.encode(), value=orjson.dumps(record))
        await send_actions(record)

    async def send_dead_letter(dead: DeadLetter) -> None:
        """Every agent's dead letters go one way: under the configured payload
        policy (``dlq_payload``: original or redacted, docs/privacy.md)."""
        await dlq_topic.send(key=dead.key,
                             value=orjson.dumps(dead.to_record(clock(), settings.dlq_payload)))

    async def send_actions(record: dict[str, Any]) -> None:
        """Proposals (and automatic decisions) for one alert, after the alert:
        at-least-once like it, with deterministic ids."""
        if policy is None:
            return
        for action in policy.propose(record):
            stats["actions"] += 1
            data = action["data"]
            log.info("action_" + ("decided" if action["type"].endswith("decided")
                                   else "proposed"),
                     action_id=data["action_id"], action=data["action"],
                     subject=action["subject"], mode=data.get("mode"))
            await actions_topic.send(key=action["subject"].encode(), value=orjson.dumps(action))

    async def send_pipeline_alert(record: dict[str, Any]) -> None:
        assert dlq_alarm is not None
        record["emitted_at"] = format_ts(clock())
        stats["alerts"] += 1
        metrics.alert(record["detector"], record["severity"], record["status"])
        if record["status"] == "firing":
            log.error("dead_letter_alarm", alert_id=record["alert_id"],
                      dedup_key=record["dedup_key"], reason=dlq_alarm.reason())
        else:
            log.warning("dead_letter_alarm_resolved", alert_id=record["alert_id"],
                        dedup_key=record["dedup_key"], reason=dlq_alarm.reason())
        recent_alerts.append(record)
        await alerts_topic.send(key=record["dedup_key"].encode(), value=orjson.dumps(record))

    @app.agent(events_topic, name="detect")
    async def detect(stream: Any) -> None:
        perf = time.perf_counter
        # Iterate the stream itself and read ``current_event``: the same events,
        # acked the same way (after the body), without the extra async
        # generator that ``stream.events()`` wraps around this loop.
        async for _ in stream:
            # a checkpoint writing state holds every event until it has committed
            if checkpointer.paused:
                await checkpointer.wait()
            # an event applied but not yet acknowledged must not be checkpointed
            checkpointer.enter()
            try:
                if not stats["first_message_at"]:
                    stats["first_message_at"] = clock()
                message = stream.current_event.message
                started = perf()
                outcome = processor.handle(
                    message.value, message.key, message.topic, message.partition, message.offset
                )
                stats["events"] += outcome.events
                metrics.events_processed += outcome.events
                if processor.coverage._notices:
                    for notice in processor.coverage.take_notices():
                        # detection is blind here: say so, once per episode
                        log.warning("content_missing", **notice,
                                    hint="no prompt or topic for an hour of event time on "
                                         "this partition: most families cannot fire")
                for dead in outcome.dead:
                    stats["rejected"] += 1
                    metrics.rejected(dead.reason)
                    log.warning(
                        "event_rejected", reason=dead.reason, topic=dead.topic,
                        partition=dead.partition, offset=dead.offset, item=dead.item,
                    )
                    await send_dead_letter(dead)
                if dlq_alarm is not None:
                    changed = dlq_alarm.observe(
                        outcome.events, len(outcome.dead), message.timestamp,
                        [d.reason for d in outcome.dead] if outcome.dead else None)
                    if changed is not None:
                        await send_pipeline_alert(changed)
                for alert in outcome.alerts:
                    if campaigns is not None:
                        await to_stage(alert)
                        continue
                    stats["alerts"] += 1
                    metrics.alert(alert.detector, alert.severity, alert.status)
                    log.info(
                        "alert_emitted", alert_id=alert.alert_id, dedup_key=alert.dedup_key,
                        status=alert.status, severity=alert.severity, score=round(alert.score, 3),
                        partition=message.partition, offset=message.offset,
                    )
                    record = alert.to_record(emitted_at=clock())
                    recent_alerts.append(record)
                    await alerts_topic.send(key=alert.dedup_key.encode(),
                                            value=orjson.dumps(record))
                    await send_actions(record)
                if campaigns is not None:
                    runner = processor.runners.get(message.partition)
                    if runner is not None and tick_due(
                        ticked.get(message.partition, 0.0), runner.watermark
                    ):
                        # event time for the campaign stage, once a minute of it
                        ticked[message.partition] = runner.watermark
                        await campaign_topic.send(key=b"tick",
                                                  value=encode_tick(runner.watermark),
                                                  partition=0)
                if outcome.summaries and batcher is not None:
                    # each summary goes to the partition of every linkage key, so
                    # the cluster agent of that partition sees every account that
                    # shares the key; buffered, one message per partition
                    full = False
                    for summary in outcome.summaries:
                        full = batcher.add(summary) or full
                    stats["summaries"] += len(outcome.summaries)
                    if full:
                        flush_summaries()
                metrics.latency.observe(perf() - started)
                stats["last_message_at"] = clock()
            finally:
                checkpointer.leave()

    def flush_summaries() -> None:
        """Hand the buffered summaries to the producer: one message per
        summaries partition. ``send_soon`` is synchronous and FIFO (Faust's
        producer buffer, flushed by the producer before every commit), so
        collect_state() can call it, and the messages of one partition leave
        in the order the summaries were produced."""
        if batcher is None or not batcher.pairs:
            return
        for partition, value in batcher.drain():
            summaries_topic.send_soon(value=value, partition=partition)
            stats["summary_messages"] += 1

    if clusters is not None:

        @app.agent(summaries_topic, name="clusters")
        async def cluster_agent(stream: Any) -> None:
            async for _ in stream:
                if checkpointer.paused:
                    await checkpointer.wait()
                checkpointer.enter()
                try:
                    message = stream.current_event.message
                    for alert in clusters.handle(message.value, message.key, message.partition):
                        if campaigns is not None:
                            await to_stage(alert)
                        else:
                            await send_alert(alert, message.partition, message.offset)
                    for reason, item in clusters.take_rejects():
                        stats["summaries_rejected"] += 1
                        metrics.rejected(f"summary: {reason}")  # its own label: not an event
                        dead = DeadLetter(reason, message.value, message.key, message.topic,
                                          message.partition, message.offset, item)
                        await send_dead_letter(dead)
                finally:
                    checkpointer.leave()

    if campaigns is not None:

        @app.agent(campaign_topic, name="campaigns")
        async def campaign_agent(stream: Any) -> None:
            async for _ in stream:
                if checkpointer.paused:
                    await checkpointer.wait()
                checkpointer.enter()
                try:
                    message = stream.current_event.message
                    out = campaigns.handle(message.value)
                    if out is None:
                        reason = "campaign input: not a stage alert"
                        metrics.rejected(reason)
                        dead = DeadLetter(reason, message.value, message.key, message.topic,
                                          message.partition, message.offset, None)
                        await send_dead_letter(dead)
                        continue
                    for alert in out:
                        await send_alert(alert, message.partition, message.offset)
                finally:
                    checkpointer.leave()

    account_changelog = table.changelog_topic.get_topic_name()
    cluster_changelog = (cluster_table.changelog_topic.get_topic_name()
                         if cluster_table is not None else "")
    campaign_changelog = (campaign_table.changelog_topic.get_topic_name()
                          if campaign_table is not None else "")

    def collect_state() -> list[Record]:
        """The hot state changed since the last checkpoint, as changelog
        records, applied to the local table copies as well.

        Buffered summaries are handed to the producer first: they derive from
        events the coming commit covers, and a crash after it must not lose
        them (the commit's flush sends them)."""
        flush_summaries()
        records: list[Record] = []
        for partition, key, value in processor.checkpoint():
            if value is None:
                table.data.pop(key, None)
            else:
                table.data[key] = value
            records.append((account_changelog, partition, key, value))
        if clusters is not None:
            # the cluster stage's state goes the same way, before the one commit
            for partition, key, value in clusters.checkpoint():
                if value is None:
                    cluster_table.data.pop(key, None)
                else:
                    cluster_table.data[key] = value
                records.append((cluster_changelog, partition, key, value))
        if campaigns is not None:
            for partition, key, value in campaigns.checkpoint():
                if value is None:
                    campaign_table.data.pop(key, None)
                else:
                    campaign_table.data[key] = value
                records.append((campaign_changelog, partition, key, value))
        stats["checkpoints"] += len(records)
        return records

    async def send_record(topic: str, partition: int, key: bytes,
                          value: bytes | None) -> Any:
        # straight to the Kafka client (Faust's transport producer), not
        # through table.send_changelog: see streams.service.checkpoint
        return await app.producer.send(topic, key, value, partition, None, None)

    checkpointer = Checkpointer(
        collect_state, send_record, settings.flush_timeout_s,
        observe=lambda paused_s, records: metrics.checkpoint_pause.observe(paused_s),
    )

    commit_watch = CommitWatch(
        after=max(1, math.ceil(settings.commit_stall_s / settings.checkpoint_interval_s)))

    async def checkpoint() -> None:
        # the commit wrapper (installed on assignment, and here for a commit
        # before any assignment) writes the state first
        checkpoint_before_every_commit(app.consumer)
        try:
            committed = await app.consumer.commit()
        except ProducerStalled as exc:
            stats["commits_skipped"] += 1
            log.warning("commit_skipped", reason=str(exc))
            return
        finally:
            watch_commits()
        if committed:
            stats["commits"] += 1

    def watch_commits() -> None:
        consumer = app.consumer
        for tp in consumer.assignment():
            if tp.topic != settings.events_topic:
                continue
            committed = consumer._committed_offset.get(tp)
            read = consumer._read_offset.get(tp)
            if commit_watch.observe(tp.partition, committed, read):
                acked = sorted(consumer._acked.get(tp) or [])
                log.warning(
                    "commit_stalled", partition=tp.partition, committed=committed, read=read,
                    stalled_s=settings.commit_stall_s, acked_head=acked[:5],
                    acked=len(acked),
                )

    def checkpoint_before_every_commit(consumer: Any) -> None:
        """Every commit, ours and the ones Faust makes by itself (when the
        consumer stops, after an agent error), writes the state it covers
        first, with the agents paused, or a SIGTERM + restart silently loses
        the events since the last checkpoint (issue 8, test_reliability_crash)."""
        if getattr(consumer, "_dw_state_first", False):
            return
        commit = consumer.commit

        async def commit_after_state(*args: Any, **kwargs: Any) -> bool:
            return await checkpointer.commit(lambda: commit(*args, **kwargs))

        consumer.commit = commit_after_state
        consumer._dw_state_first = True

    @app.timer(interval=settings.checkpoint_interval_s)
    async def checkpoint_timer() -> None:
        await checkpoint()

    @app.task
    async def watchlist_refresh() -> None:
        """Re-read the compacted watchlist topic now and every
        ``watchlist_refresh_s``; the swap happens between two events (the
        agents and this task share one event loop)."""
        loop = asyncio.get_running_loop()
        last = None
        while True:
            try:
                records = await loop.run_in_executor(None, read_watchlist, settings)
            except Exception as exc:  # noqa: BLE001 - keep the previous entries
                log.warning("watchlist_read_failed", error=f"{type(exc).__name__}: {exc}")
            else:
                usable = watchlist.load(records)  # no await inside: atomic for the agents
                stats["watchlist_entries"] = watchlist.size
                if (len(records), usable) != last:
                    log.info("watchlist_loaded", entries=len(records), usable=usable)
                    last = (len(records), usable)
            await asyncio.sleep(settings.watchlist_refresh_s)

    if batcher is not None:

        @app.timer(interval=settings.summary_flush_interval_s)
        async def summary_flush_timer() -> None:
            flush_summaries()

    def lag() -> list[tuple[dict[str, str], float]]:
        consumer = app.consumer if app.producer is not None else None
        if consumer is None:
            return []
        out = []
        for tp in sorted(consumer.assignment()):
            if tp.topic != settings.events_topic:
                continue
            high = consumer.highwater(tp)
            read = consumer._read_offset.get(tp)  # last offset handed to the agent
            if high is not None:
                done = (read + 1) if read is not None else 0
                out.append(({"partition": str(tp.partition)}, float(max(0, high - done))))
        return out

    metrics.gauge("distillwatch_consumer_lag", "Messages not yet read on the events topic.", lag)
    metrics.gauge(
        "distillwatch_commit_stalled_partitions",
        "Events partitions whose committed offset has not moved for commit_stall_s "
        "although the worker read past it.",
        lambda: [({}, float(len(commit_watch.stalled())))],
    )
    if dlq_alarm is not None:
        metrics.gauge("distillwatch_dead_letter_share",
                      "Share of the last dlq_alarm_window events that were dead-lettered.",
                      lambda: [({}, dlq_alarm.current_share)])
        metrics.gauge("distillwatch_dead_letter_alarm",
                      "1 while the dead-letter share is past dlq_alarm_share (a pipeline "
                      "alert is firing and /ready says not ready).",
                      lambda: [({}, 1.0 if dlq_alarm.firing else 0.0)])
    metrics.gauge(
        "distillwatch_content_share",
        "Share of processed events that carry the field (prompt, topic) since start.",
        lambda: [({"field": "prompt"}, processor.coverage.with_prompt
                  / max(1, processor.coverage.events)),
                 ({"field": "topic"}, processor.coverage.with_topic
                  / max(1, processor.coverage.events))],
    )
    metrics.gauge(
        "distillwatch_partitions_without_content",
        "Partitions that have gone an hour of event time without prompt or topic.",
        lambda: [({}, float(processor.coverage.report()["partitions_without_content"]))],
    )
    metrics.gauge("distillwatch_accounts_tracked", "Accounts held in memory by this worker.",
                  lambda: [({}, float(processor.tracked_accounts()))])
    metrics.gauge("distillwatch_watchlist_entries",
                  "Shared indicators the detectors can match (watchlist topic, usable here).",
                  lambda: [({}, float(watchlist.size))])

    @app.on_partitions_assigned.connect
    async def on_assigned(app: faust.App, assigned: Any, **kwargs: Any) -> None:
        checkpoint_before_every_commit(app.consumer)
        # Faust's commit-offset rule stalls on duplicate acks after a restart
        install_offset_rule(app.consumer)
        buffer = getattr(app.producer, "buffer", None)
        if buffer is not None:
            flush_completely(buffer, settings.flush_timeout_s)
        else:  # a Faust without the buffer this guards: commits flush as Faust does
            log.warning("producer_buffer_unknown", producer=type(app.producer).__name__)
        mine = sorted(tp.partition for tp in assigned if tp.topic == settings.events_topic)
        # one per group generation this worker joined: 1 after start-up, each
        # more is a rebalance (a member joined, left or was expelled)
        stats["assignments"] += 1
        metrics.assignments += 1
        log.info("partitions_assigned", partitions=mine)

    @app.on_partitions_revoked.connect
    async def on_revoked(app: faust.App, revoked: Any, **kwargs: Any) -> None:
        processor.revoke(tp.partition for tp in revoked if tp.topic == settings.events_topic)
        commit_watch.forget(tp.partition for tp in revoked if tp.topic == settings.events_topic)
        if clusters is not None:
            clusters.revoke(
                tp.partition for tp in revoked if tp.topic == settings.summaries_topic
            )
        if campaigns is not None and any(tp.topic == settings.campaign_topic for tp in revoked):
            campaigns.revoke()

    if clusters is not None:
        metrics.gauge(
            "distillwatch_cluster_keys_tracked",
            "Linkage keys held in memory by this worker, by kind of entry.",
            lambda: [({"entry": "cluster"}, float(clusters.tracked()[0])),
                     ({"entry": "single"}, float(clusters.tracked()[1]))],
        )

    if campaigns is not None:
        metrics.gauge("distillwatch_campaigns_tracked",
                      "Campaigns held in memory by this worker (firing, quiet or remembered).",
                      lambda: [({}, float(campaigns.tracked()))])

    service = Service(settings, app, processor, stats, detect, checkpoint, table, metrics,
                      recent_alerts, clusters, cluster_table, batcher, checkpointer,
                      dlq_alarm, campaigns, campaign_table)
    register_views(app, service)
    return service
