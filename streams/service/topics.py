"""Create the service's topics up front, with the partition counts the design
relies on (the events topic and the state table's changelog must match)."""

from __future__ import annotations

import contextlib

from streams.settings import Settings

AUDIT_RETENTION_MS = 400 * 86_400_000


def changelog_topic(settings: Settings) -> str:
    return f"{settings.app_id}-account-state-changelog"


def cluster_changelog_topic(settings: Settings) -> str:
    return f"{settings.app_id}-cluster-state-changelog"


def liveness_topic(settings: Settings) -> str:
    """Heartbeats of the app's workers (streams.service.liveness)."""
    return f"{settings.app_id}-liveness"


def campaign_changelog_topic(settings: Settings) -> str:
    return f"{settings.app_id}-campaign-state-changelog"


def campaigns_on(settings: Settings) -> bool:
    """The campaign stage runs on top of the cluster stage only."""
    return settings.clusters_enabled and settings.campaigns_enabled


def ensure_topics(settings: Settings, timeout_s: float = 15.0) -> None:
    """Create missing topics; existing ones are left as they are."""
    from kafka import KafkaAdminClient  # type: ignore[import-untyped]
    from kafka.admin import NewTopic  # type: ignore[import-untyped]
    from kafka.errors import TopicAlreadyExistsError  # type: ignore[import-untyped]

    admin = KafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        request_timeout_ms=int(timeout_s * 1000),
        **kafka_python_security(settings),
    )
    try:
        existing = set(admin.list_topics())
        # high-volume topics the worker reads once; compacted state topics and
        # the alerts keep the broker's defaults
        common: dict[str, str] = {}
        if settings.topic_segment_s > 0:
            common["segment.ms"] = str(int(settings.topic_segment_s * 1000))
        bulk = dict(common)
        if settings.topic_retention_s > 0:
            bulk["retention.ms"] = str(int(settings.topic_retention_s * 1000))
        compact = {**common, "cleanup.policy": "compact"}
        # dead letters may hold prompts (dlq_payload=original): they expire
        dead = dict(common)
        if settings.dlq_retention_s > 0:
            dead["retention.ms"] = str(int(settings.dlq_retention_s * 1000))
        wanted = [
            (settings.events_topic, settings.partitions, bulk),
            (settings.alerts_topic, settings.partitions, common),
            (settings.dlq_topic, settings.partitions, dead),
            (changelog_topic(settings), settings.partitions, compact),
        ]
        if settings.liveness_timeout_s > 0:
            # a few hundred bytes per worker: compacted, and its segments close
            # every minute so that compaction (and the embedded broker) can drop
            # old heartbeats whatever the other topics' settings
            wanted.append((liveness_topic(settings), 1,
                           {"cleanup.policy": "compact", "segment.ms": "60000"}))
        # the audit trail is kept (never compacted; 400 days rather than the
        # broker's default week: decisions are reviewed long after); the
        # watchlist is a table
        audit = {**common, "retention.ms": str(AUDIT_RETENTION_MS)}
        wanted += [
            (settings.actions_topic, settings.partitions, audit),
            (settings.watchlist_topic, 1, compact),
        ]
        if settings.clusters_enabled:
            wanted += [
                (settings.summaries_topic, settings.partitions, bulk),
                (cluster_changelog_topic(settings), settings.partitions, compact),
            ]
        if campaigns_on(settings):
            # one partition: one stage sees every alert (streams.service.campaigns)
            wanted += [
                (settings.campaign_topic, 1, common),
                (campaign_changelog_topic(settings), 1, compact),
            ]
        new = [
            NewTopic(name, partitions, settings.replication_factor, topic_configs=configs)
            for name, partitions, configs in wanted
            if name not in existing
        ]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(new, timeout_ms=int(timeout_s * 1000))
    finally:
        admin.close()


def delete_topics(bootstrap: str, names: list[str], timeout_s: float = 30.0) -> None:
    """Delete topics (tests and benchmarks on the embedded broker, whose
    persistence cost grows with everything it holds: README, broker matrix)."""
    from kafka import KafkaAdminClient

    if not names:
        return
    admin = KafkaAdminClient(bootstrap_servers=bootstrap,
                             request_timeout_ms=int(timeout_s * 1000))
    try:
        admin.delete_topics(names, timeout_ms=int(timeout_s * 1000))
    finally:
        admin.close()


def kafka_python_security(settings: Settings) -> dict[str, object]:
    """kafka-python keyword arguments for the configured SASL/TLS settings."""
    out: dict[str, object] = {"security_protocol": settings.security_protocol}
    if settings.security_protocol.startswith("SASL"):
        out.update(
            sasl_mechanism=settings.sasl_mechanism,
            sasl_plain_username=settings.sasl_username,
            sasl_plain_password=settings.sasl_password.get_secret_value(),
        )
    if settings.security_protocol.endswith("SSL"):
        if settings.ssl_cafile:
            out["ssl_cafile"] = settings.ssl_cafile
        if settings.ssl_certfile:
            out["ssl_certfile"] = settings.ssl_certfile
        if settings.ssl_keyfile:
            out["ssl_keyfile"] = settings.ssl_keyfile
    return out
