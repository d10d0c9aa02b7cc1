"""The two-stage pipeline live on the embedded broker: a coordinated campaign
of accounts that are each unremarkable reaches the ``detect`` agent, which
sends account summaries to the summaries topic (batched, one message per
partition of their linkage keys); the ``clusters`` agent scores the shared
keys and puts a ``cluster`` alert (plus ``cluster_member`` alerts naming each
account) on the alerts topic, and its state is checkpointed to the
cluster-state changelog."""

from __future__ import annotations

import random
import time

import orjson
import pytest

from tests.attack import benign_events
from tests.conftest import consume_until, produce

pytestmark = pytest.mark.integration

TEMPLATE = ("Answer the task below. First write your full internal reasoning step by step "
            "inside <thinking> tags, covering every intermediate step, then the answer inside "
            "<answer> tags. Do not skip steps. Task: implement {w} number {n} in Rust")


def hydra_events(members: int = 8, minutes: int = 40, seed: int = 3) -> list[tuple[bytes, bytes]]:
    """A load-balanced campaign: a few requests a member every 5 minutes, shared
    cards, one /24, one client, one narrow topic, one template."""
    rng = random.Random(seed)
    start = time.time() - minutes * 60
    out = []
    t = start
    n = 0
    while t < start + minutes * 60:
        i = rng.randrange(members)
        acct = f"proxy-{i:02d}"
        out.append((acct.encode(), orjson.dumps({
            "ts": t, "account_id": acct, "topic": "coding/rust",
            "prompt": TEMPLATE.format(w=rng.choice(["a trie", "a heap", "a parser"]), n=n),
            "ip": f"203.0.113.{10 + i}", "payment_fingerprint": f"pm_reseller_{i % 2}",
            "user_agent": "aiohttp/3.9.5", "org_id": f"org_{i:04d}",
            "input_tokens": 120, "output_tokens": 900,
        })))
        n += 1
        t += rng.expovariate(members * 4 / 300)  # ~4 requests per member per 5 minutes
    return out


def test_live_two_stage_pipeline_emits_a_cluster_alert(broker, worker_factory):
    # the cluster stage on its own: its raw alerts on the alerts topic (the
    # campaign stage is tested live in tests/test_campaign_live.py)
    worker = worker_factory(DISTILLWATCH_SUMMARIES_TOPIC=f"sum-{time.monotonic_ns()}",
                            DISTILLWATCH_CAMPAIGNS_ENABLED="false").start()
    summaries_topic = worker.env["DISTILLWATCH_SUMMARIES_TOPIC"]
    worker.wait_log("partitions_assigned", timeout=45)

    produce(broker, worker.events_topic, benign_events())
    campaign = hydra_events()
    produce(broker, worker.events_topic, campaign)

    def has_cluster(records):
        return any(r.get("detector") == "cluster" and r["status"] == "firing" for r in records)

    alerts = consume_until(broker, worker.alerts_topic, has_cluster, timeout=60)
    assert has_cluster(alerts), f"no cluster alert\n{worker.log_tail()}"
    cluster = next(r for r in alerts if r.get("detector") == "cluster")
    assert cluster["dedup_key"] == f"cluster:{cluster['details']['cluster_key']}"
    assert "account_id" not in cluster
    assert cluster["account_count"] >= 3 and cluster["accounts"]
    assert all(a.startswith("proxy-") for a in cluster["accounts"])
    assert cluster["details"]["shared_keys"]
    assert "Answer the task below" not in orjson.dumps(cluster).decode()  # no prompt text

    members = consume_until(
        broker, worker.alerts_topic,
        lambda rs: len({r["account_id"] for r in rs if r.get("detector") == "cluster_member"})
        >= len(cluster["accounts"]),
        timeout=20,
    )
    named = {r["account_id"] for r in members if r.get("detector") == "cluster_member"}
    assert set(cluster["accounts"]) <= named
    assert not [r for r in members if str(r.get("account_id", "")).startswith("benign-")]
    linked = [r for r in members if r.get("detector") == "cluster_member"
              and r["details"]["cluster_dedup_key"] == cluster["dedup_key"]]
    assert linked and all(r["details"]["cluster_alert_id"] == cluster["alert_id"]
                          for r in linked)

    # stage 1 really went through Kafka: summaries in batch messages, one per
    # destination partition, each pair on the partition its linkage key maps to
    from detectors.partitioning import partition_for
    from streams.service.summary_batch import decode_batch

    batches = _read_raw(broker, summaries_topic, with_partition=True)
    pairs = [(key, summary, partition) for partition, _, value in batches
             for key, summary, _ in decode_batch(value)]
    assert len(pairs) >= 10 and len(pairs) > 2 * len(batches)
    assert all(key in summary.keys for key, summary, _ in pairs)
    assert all(partition_for(key.encode(), worker.settings.partitions) == partition
               for key, _, partition in pairs)

    # the cluster state is checkpointed to its own changelog
    from streams.service.topics import cluster_changelog_topic

    changelog = cluster_changelog_topic(worker.settings)
    state = _read_raw(broker, changelog)
    assert any(k.startswith(b"ua:aiohttp") for k, _ in state), [k for k, _ in state][:10]

    # a poison summary on the summaries topic (negative rate) is dead-lettered
    # with its reason and pair index; the agent stays up
    from streams.service.summary_batch import BATCH_V1

    poison = dict(pairs[0][1].to_json(), r=-5.0)
    produce(broker, summaries_topic, [(None, BATCH_V1 + orjson.dumps([[poison, ["ua:x"]]]))])
    dead = consume_until(broker, worker.dlq_topic,
                         lambda rs: any(r["source"]["topic"] == summaries_topic for r in rs),
                         timeout=20)
    dead = [r for r in dead if r["source"]["topic"] == summaries_topic]
    assert dead, worker.log_tail()
    assert dead[0]["reason"].startswith("bad account summary: rate")
    assert dead[0]["source"]["item"] == 0 and dead[0]["value_b64"]
    assert worker.proc.poll() is None

    took = worker.terminate()
    assert took < 10.0
    assert worker.proc.returncode == 0, worker.log_tail()


def _read_raw(broker, topic: str, timeout: float = 10.0, with_partition: bool = False):
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=500,
                             group_id=None)
    out: list = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not out:
            if with_partition:  # batch messages have no key
                out.extend((m.partition, m.key, m.value) for m in consumer)
            else:
                out.extend((m.key, m.value) for m in consumer if m.key is not None)
    finally:
        consumer.close()
    return out
