"""What :func:`streams.service.app.build_service` returns: the Faust app and
the service's parts, for the worker, the web views and tests."""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import faust
from faust.types import AgentT, TableT

from streams.service.campaigns import CampaignProcessor
from streams.service.checkpoint import Checkpointer
from streams.service.clusters import ClusterProcessor
from streams.service.dlq_alarm import DeadLetterAlarm
from streams.service.metrics import Metrics
from streams.service.outputs import Outputs
from streams.service.processor import StreamProcessor
from streams.service.summary_batch import SummaryBatcher
from streams.settings import Settings

#: a table of this service: raw bytes both ways (no pickle, no JSON re-encoding)
Table = TableT[bytes, bytes]


@dataclass
class Service:
    settings: Settings
    app: faust.App
    processor: StreamProcessor
    #: the ``detect`` agent (streams.service.agents.account)
    agent: AgentT[Any]
    #: one checkpoint: write the changed state, then commit (the timer's body)
    checkpoint: Callable[[], Awaitable[None]]
    table: Table
    #: the one set of counters (``/health``, ``/metrics``)
    metrics: Metrics
    recent_alerts: deque[dict[str, Any]]
    outputs: Outputs
    #: the cluster stage (None when ``clusters_enabled`` is off)
    clusters: ClusterProcessor | None = None
    cluster_table: Table | None = None
    #: summaries waiting to be sent to the summaries topic (None without clusters)
    summary_batcher: SummaryBatcher | None = None
    checkpointer: Checkpointer | None = None
    #: the dead-letter alarm (None when ``dlq_alarm_share`` is 0)
    dlq_alarm: DeadLetterAlarm | None = None
    #: the campaign stage (None unless both clusters and campaigns are on)
    campaigns: CampaignProcessor | None = None
    campaign_table: Table | None = None
