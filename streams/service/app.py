"""The Faust application: topics and tables (:func:`declare`), and
:func:`build_service`, which attaches the agents, timers, rebalance handlers
and web views to them.

Where things are: the agents in ``streams/service/agents/`` (``detect``:
account.py, ``clusters``: cluster.py, ``campaigns``: campaign.py); what they
send in outputs.py (one path for alert records); the checkpoint and other
periodic work in timers.py, what it writes in state.py; rebalance handlers in
rebalance.py; gauges in gauges.py; counters in metrics.py; the returned
:class:`Service` in service.py; every Faust or aiokafka private-API touch in
``streams/kafka/``.

Design (numbers in the README's performance section): hot per-account state
lives in the worker (:class:`~streams.service.processor.StreamProcessor`); a timer
writes every changed account to the changelog-backed table and only then
commits consumer offsets, so the stored state is never older than the
committed offset. After a crash the worker resumes from that offset with that
state; events after it are processed again and yield the same alert ids.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faust
import structlog
from faust.types import TopicT

from detectors.campaign import CampaignStage
from detectors.cluster import ClusterDetector, SummaryEmitter
from detectors.watchlist import Watchlist
from streams.kafka.consumer import table_partition
from streams.kafka.fetch_pacing import install as pace_empty_fetches
from streams.response.indicators import watchlist_for
from streams.service import gauges, timers
from streams.service.agents.account import AccountAgent
from streams.service.agents.campaign import CampaignAgent
from streams.service.agents.cluster import ClusterAgent
from streams.service.campaigns import CampaignProcessor
from streams.service.checkpoint import Checkpointer
from streams.service.clusters import ClusterProcessor
from streams.service.detection import AccountState, detector_factory, response_policy
from streams.service.dlq_alarm import DeadLetterAlarm
from streams.service.metrics import Metrics
from streams.service.outputs import Outputs, SummaryOutbox
from streams.service.processor import StreamProcessor
from streams.service.rebalance import Rebalance
from streams.service.service import Service, Table
from streams.service.stages import StageTimes
from streams.service.state import StateTables
from streams.service.summary_batch import SummaryBatcher
from streams.service.topics import campaigns_on
from streams.service.web import register_views
from streams.service.web_auth import WebGuard
from streams.service.web_auth import middleware as web_auth_middleware
from streams.settings import Settings

log = structlog.get_logger("distillwatch.worker")

__all__ = ["Service", "build_service", "declare", "faust_config", "faust_credentials"]


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


def log_refused_request(**fields: Any) -> None:
    log.warning("web_request_refused", **fields)


def web_middleware(settings: Settings) -> Any:
    guard = WebGuard(settings.web_token.get_secret_value(), settings.allowed_hosts)
    return web_auth_middleware(guard, log_refused_request)


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



def raw_topic(app: faust.App, name: str, partitions: int) -> TopicT:
    """A topic of raw bytes: orjson is applied by our code, no Faust codec runs."""
    return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw",
                     value_serializer="raw", partitions=partitions)


def state_table(app: faust.App, name: str, partitions: int) -> Table:
    """A changelog-backed (compacted) table of raw bytes, memory store."""
    table: Table = app.Table(name, default=None, key_type=bytes, value_type=bytes,
                             extra_topic_configs={"cleanup.policy": "compact"},
                             partitions=partitions)
    return table


@dataclass
class Channels:
    """Every topic and table of the service. The stages' (summaries, cluster
    state, campaign topic and state) are None when the stage is off."""

    events: TopicT
    alerts: TopicT
    dlq: TopicT
    actions: TopicT
    account_table: Table
    summaries: TopicT | None = None
    cluster_table: Table | None = None
    campaign: TopicT | None = None
    campaign_table: Table | None = None


def declare(app: faust.App, settings: Settings) -> Channels:
    """The topics and tables, in one place."""
    n = settings.partitions
    channels = Channels(
        events=raw_topic(app, settings.events_topic, n),
        alerts=raw_topic(app, settings.alerts_topic, n),
        dlq=raw_topic(app, settings.dlq_topic, n),
        actions=raw_topic(app, settings.actions_topic, n),
        # Keyed like the events topic, same partition count: an account's state
        # and its events live on the same partition number.
        account_table=state_table(app, "account-state", n),
    )
    if settings.clusters_enabled:
        # Second stage: account summaries keyed by linkage key, and the cluster
        # state per key, co-partitioned the same way (same partition count).
        channels.summaries = raw_topic(app, settings.summaries_topic, n)
        channels.cluster_table = state_table(app, "cluster-state", n)
    if campaigns_on(settings):
        # Third stage: every account and cluster alert through one partition to
        # the campaign agent, its state in a one-partition table.
        channels.campaign = raw_topic(app, settings.campaign_topic, 1)
        channels.campaign_table = state_table(app, "campaign-state", 1)
    return channels


class TableReads:
    """A stage's reads of its table's local copy, resolved at call time
    (Faust creates the store on first use)."""

    def __init__(self, table: Table, partitions: int) -> None:
        self.table = table
        self.partitions = partitions

    def get(self, key: bytes) -> Any:
        return self.table.data.get(key)

    def partition(self, partition: int) -> list[tuple[bytes, Any]]:
        return table_partition(self.table, partition, self.partitions)

    def items(self) -> list[tuple[bytes, bytes]]:
        return [(k, v) for k, v in list(self.table.data.items())
                if isinstance(k, bytes) and isinstance(v, bytes)]


def log_corrupt_account(account_id: str, reason: str) -> None:
    log.warning("state_corrupt", account_id=account_id, reason=reason)


def log_corrupt_cluster(key: str, reason: str) -> None:
    log.warning("cluster_state_corrupt", key=key, reason=reason)


def log_corrupt_campaign(key: str, reason: str) -> None:
    log.warning("campaign_state_corrupt", key=key, reason=reason)


def log_detector_error(account_id: str, exc: BaseException) -> None:
    log.error("detector_failed", account_id=account_id, exc_info=exc)


def account_processor(settings: Settings, table: Table, watchlist: Watchlist,
                      stage_times: StageTimes | None) -> StreamProcessor:
    reads = TableReads(table, settings.partitions)
    return StreamProcessor(
        detector_factory(settings.detector_mapping(), watchlist),
        AccountState,
        lookup=reads.get,
        scan=reads.partition,
        sweep_interval_s=settings.sweep_interval_s,
        max_message_bytes=settings.max_message_bytes,
        max_batch_events=settings.max_batch_events,
        max_prompt_chars=settings.max_prompt_chars,
        on_corrupt_state=log_corrupt_account,
        on_detector_error=log_detector_error,
        summarizer=(
            SummaryEmitter(settings.summary_interval_s) if settings.clusters_enabled else None
        ),
        times=stage_times,
    )


class CampaignStageFactory:
    """A fresh :class:`CampaignStage` with the configured timings."""

    def __init__(self, settings: Settings) -> None:
        self.update_interval_s = settings.campaign_update_interval_s
        self.holddown_s = settings.campaign_holddown_s

    def __call__(self) -> CampaignStage:
        return CampaignStage(update_interval_s=self.update_interval_s,
                             holddown_s=self.holddown_s)


def build_service(settings: Settings, clock: Callable[[], float] = time.time,
                  client_id: str = "") -> Service:
    """Create the Faust app and everything attached to it."""
    app = faust.App(settings.app_id, **faust_config(settings, client_id))
    pace_empty_fetches(settings.empty_fetch_interval_s)
    ch = declare(app, settings)
    stage_times = (StageTimes(settings.stage_timing_every)
                   if settings.stage_timing_every else None)
    # indicators shared by other providers: one object for every partition's
    # detector, refilled from the watchlist topic by timers.WatchlistRefresh
    watchlist = watchlist_for(settings)
    processor = account_processor(settings, ch.account_table, watchlist, stage_times)
    clusters: ClusterProcessor | None = None
    batcher: SummaryBatcher | None = None
    if ch.cluster_table is not None:
        clusters = ClusterProcessor(ClusterDetector,
                                    lookup=TableReads(ch.cluster_table, settings.partitions).get,
                                    on_corrupt=log_corrupt_cluster, times=stage_times)
        batcher = SummaryBatcher(settings.partitions, settings.summary_batch_max_pairs)
    campaigns: CampaignProcessor | None = None
    if ch.campaign_table is not None:
        campaigns = CampaignProcessor(CampaignStageFactory(settings),
                                      scan=TableReads(ch.campaign_table, 1).items,
                                      on_corrupt=log_corrupt_campaign,
                                      quiet_s=settings.campaign_release_quiet_s, clock=clock)
    metrics = Metrics()
    metrics.stages = stage_times
    recent_alerts: deque[dict[str, Any]] = deque(maxlen=200)
    # one window per worker slot: a producer that breaks every event breaks
    # them on every partition, and on-call wants one alert for it
    dlq_alarm = (DeadLetterAlarm(f"{settings.app_id}@{socket.gethostname()}:{settings.web_port}",
                                 settings.dlq_alarm_share, settings.dlq_alarm_window)
                 if settings.dlq_alarm_share > 0 else None)
    outputs = Outputs(
        metrics=metrics, clock=clock, dlq_payload=settings.dlq_payload,
        alerts_topic=ch.alerts, dlq_topic=ch.dlq, actions_topic=ch.actions,
        # with the campaign stage on, account and cluster alerts go through it
        campaign_topic=ch.campaign if campaigns is not None else None,
        # response actions proposed from alerts: the same pure mapping replay uses
        policy=(response_policy(settings.detector_mapping())
                if settings.actions_enabled else None),
        recent_alerts=recent_alerts, dlq_alarm=dlq_alarm,
    )
    summaries = (SummaryOutbox(batcher, ch.summaries, metrics)
                 if batcher is not None and ch.summaries is not None else None)
    state = StateTables(app, metrics, summaries)
    state.add(processor, ch.account_table)
    if clusters is not None and ch.cluster_table is not None:
        state.add(clusters, ch.cluster_table)
    if campaigns is not None and ch.campaign_table is not None:
        state.add(campaigns, ch.campaign_table)
    checkpointer = Checkpointer(state.collect, state.send, settings.flush_timeout_s,
                                observe=metrics.checkpoint_done)

    # the agents (streams/service/agents/)
    detect = app.agent(ch.events, name="detect")(AccountAgent(
        processor=processor, checkpointer=checkpointer, outputs=outputs, metrics=metrics,
        clock=clock, dlq_alarm=dlq_alarm, summaries=summaries,
        ticks=campaigns is not None).run)
    if clusters is not None and ch.summaries is not None:
        app.agent(ch.summaries, name="clusters")(ClusterAgent(
            clusters=clusters, checkpointer=checkpointer, outputs=outputs, metrics=metrics).run)
    if campaigns is not None and ch.campaign is not None:
        campaign_agent = CampaignAgent(campaigns=campaigns, checkpointer=checkpointer,
                                       outputs=outputs, metrics=metrics)
        app.agent(ch.campaign, name="campaigns")(campaign_agent.run)
        app.timer(interval=max(0.5, settings.campaign_release_quiet_s / 5),
                  name="campaign_release_timer")(campaign_agent.release_quiet)

    checkpoint = timers.Checkpoint(app, settings, checkpointer, metrics)
    timers.attach(app, settings, checkpoint, timers.WatchlistRefresh(settings, watchlist, metrics),
                  summaries)
    Rebalance(settings=settings, checkpointer=checkpointer, metrics=metrics,
              processor=processor, commit_watch=checkpoint.commit_watch, clusters=clusters,
              campaigns=campaigns).connect(app)
    gauges.register(metrics, app=app, settings=settings, processor=processor,
                    commit_watch=checkpoint.commit_watch, watchlist=watchlist,
                    dlq_alarm=dlq_alarm, clusters=clusters, campaigns=campaigns)

    service = Service(settings, app, processor, detect, checkpoint.run, ch.account_table,
                      metrics, recent_alerts, outputs, clusters, ch.cluster_table, batcher,
                      checkpointer, dlq_alarm, campaigns, ch.campaign_table)
    register_views(app, service)
    return service
