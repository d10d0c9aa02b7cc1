"""Topic creation (streams.service.topics) against the embedded broker: partition
counts, compaction of the state changelogs, and the optional retention of the
high-volume topics that ``distillwatch run`` relies on to bound the embedded
broker's persistence cost."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from streams.errors import ConfigError
from streams.service.topics import changelog_topic, cluster_changelog_topic, ensure_topics
from streams.settings import Settings

pytestmark = pytest.mark.integration


def _configs(bootstrap: str, topics: list[str]) -> dict[str, dict[str, str]]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in topics])
        # kafka-python 3: {"topic": {name: {config: {"value": ...}}}}
        return {topic: {k: v["value"] for k, v in described["topic"][topic].items()}
                for topic in topics}
    finally:
        admin.close()


def _settings(broker, **overrides) -> Settings:  # type: ignore[no-untyped-def]
    app = f"topics-{uuid.uuid4().hex[:8]}"
    return Settings.load(env={}, overrides={
        "broker": broker.url, "app_id": app, "events_topic": f"{app}-events",
        "alerts_topic": f"{app}-alerts", "dlq_topic": f"{app}-dlq", "partitions": 3,
        **overrides})


def test_retention_applies_to_events_and_summaries_only(broker):
    settings = _settings(broker, topic_retention_s=900, topic_segment_s=60)
    ensure_topics(settings)
    bulk = [settings.events_topic, settings.summaries_topic]
    kept = [settings.alerts_topic, settings.dlq_topic, changelog_topic(settings),
            cluster_changelog_topic(settings)]
    configs = _configs(broker.bootstrap, bulk + kept)
    for topic in bulk:
        assert configs[topic].get("retention.ms") == "900000", (topic, configs[topic])
    for topic in kept:
        assert configs[topic].get("retention.ms") != "900000", (topic, configs[topic])
    for topic in (changelog_topic(settings), cluster_changelog_topic(settings)):
        assert configs[topic].get("cleanup.policy") == "compact"
    # every topic closes segments, or neither retention nor compaction drops anything
    for topic in bulk + kept:
        assert configs[topic].get("segment.ms") == "60000", (topic, configs[topic])


def test_no_retention_by_default(broker):
    settings = _settings(broker)
    assert settings.topic_retention_s == 0 and settings.topic_segment_s == 0
    ensure_topics(settings)
    configs = _configs(broker.bootstrap, [settings.events_topic])
    assert configs[settings.events_topic].get("retention.ms") in (None, "604800000", "-1")
    assert configs[settings.events_topic].get("segment.ms") in (None, "604800000")


def test_retention_setting_bounds():
    with pytest.raises(ConfigError, match="topic_retention_s must be >= 0"):
        Settings(topic_retention_s=-1)
    with pytest.raises(ConfigError, match="topic_segment_s must be >= 0"):
        Settings(topic_segment_s=-1)
