"""After a crash, the restarted worker's commits keep advancing to the end of
every partition (issue 8): a worker that processes everything but leaves its
committed offsets behind would re-process an ever larger tail after the next
crash, and its consumer-lag alarm would never clear."""

from __future__ import annotations

import signal
import threading
import time
import urllib.request

import pytest

from tests.attack import benign_events, extractor_events
from tests.conftest import produce
from tests.reliability import try_health, wait_log_n, wait_until

pytestmark = pytest.mark.integration
PARTITIONS = 4


def _per_partition(bootstrap: str, group: str, topic: str) -> dict[int, tuple[int, int]]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                             enable_auto_commit=False, request_timeout_ms=5000)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        ends = consumer.end_offsets(tps)
        return {tp.partition: (consumer.committed(tp) or 0, ends[tp]) for tp in tps}
    finally:
        consumer.close(autocommit=False)


def test_commits_reach_the_end_of_every_partition_after_a_kill_9(broker, worker_factory):
    """Part 1 processed and committed; part 2 published in slices while the
    worker is killed 400 events into it and restarted. The restarted worker
    processes part of a partition before Faust's recovery seeks back, which
    left every offset it had processed acknowledged twice, and Faust's commit
    rule then advanced one offset per commit (2 of 3 runs failed before
    streams.kafka.offsets)."""
    start = time.time() - 6 * 3600
    part1 = benign_events(accounts=60, per_account=40, start=start)
    part2 = (benign_events(accounts=60, per_account=80, seed=5, start=start + 3600)
             + extractor_events("adv-a", n=900, start=start + 3600))
    # commit_stalled after 5 s (25 checkpoints) of commits standing still
    worker = worker_factory(DISTILLWATCH_PARTITIONS=str(PARTITIONS),
                            DISTILLWATCH_CHECKPOINT_INTERVAL_S="0.2",
                            DISTILLWATCH_COMMIT_STALL_S="5").start()
    worker.wait_log("partitions_assigned", timeout=45)
    port = int(worker.env["DISTILLWATCH_WEB_PORT"])

    def done() -> bool:
        offsets = _per_partition(broker.bootstrap, worker.name, worker.events_topic)
        return all(committed == end for committed, end in offsets.values())

    produce(broker, worker.events_topic, part1)
    assert wait_until(done, timeout=60, interval=0.5), worker.log_tail()
    time.sleep(1.0)  # idle checkpoints

    def publish_part2() -> None:
        for i in range(0, len(part2), 500):
            produce(broker, worker.events_topic, part2[i:i + 500])
            time.sleep(0.3)

    publisher = threading.Thread(target=publish_part2, daemon=True)
    publisher.start()
    assert wait_until(lambda: (h := try_health(port)) and h["events"] >= len(part1) + 400,
                      timeout=60, interval=0.005), worker.log_tail()
    worker.terminate(signal.SIGKILL)
    worker.start()
    publisher.join(60)
    wait_log_n(worker, "partitions_assigned", 2, timeout=60)
    reached = wait_until(done, timeout=40, interval=0.5)
    offsets = _per_partition(broker.bootstrap, worker.name, worker.events_topic)
    assert reached, (f"committed offsets left behind (partition: (committed, end)): {offsets}\n"
                     f"{try_health(port)}")
    # and no false alarm from the stall watch while it caught up
    assert not [r for r in worker.log_records() if r.get("event") == "commit_stalled"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        assert "distillwatch_commit_stalled_partitions 0.0" in resp.read().decode()
