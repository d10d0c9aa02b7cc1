"""Group liveness on the embedded broker (issue 21): noida-db never expires a
member whose process died, so the workers remove dead members themselves
(streams.liveness). Two workers, ``kill -9`` of one that is not restarted: the
survivor gets all partitions within 30 s and alerts on an attacker whose
partition the dead one held."""

from __future__ import annotations

import signal
import time

import pytest

from detectors.partitioning import partition_for
from tests.attack import extractor_events
from tests.conftest import consume_until, produce
from tests.reliability import wait_log_n, wait_until

pytestmark = pytest.mark.integration
PARTITIONS = 4


def _assignments(worker) -> list[list[int]]:
    return [r["partitions"] for r in worker.log_records() if r.get("event") == "partitions_assigned"]


def test_kill_9_of_one_of_two_workers_gives_its_partitions_to_the_survivor(
        worker_factory, broker, tmp_path):
    env = {"DISTILLWATCH_PARTITIONS": str(PARTITIONS)}
    first = worker_factory(**env).start()
    first.wait_log("partitions_assigned", timeout=45)
    second = worker_factory(first.name, DISTILLWATCH_DATA_DIR=str(tmp_path / "second"), **env)
    second.log_path = tmp_path / "second.log"
    second.start()
    # both in the group, the partitions split between them
    split = wait_until(
        lambda: (a := _assignments(first)) and (b := _assignments(second))
        and a[-1] and b[-1] and sorted(a[-1] + b[-1]) == list(range(PARTITIONS))
        and (a[-1], b[-1]), timeout=60, interval=0.3)
    assert split, f"no split {_assignments(first)} {_assignments(second)}\n{second.log_tail()}"
    victim_partitions = split[0]
    attacker = next(f"orphan-{i}" for i in range(1000)
                    if partition_for(f"orphan-{i}".encode(), PARTITIONS) in victim_partitions)

    before = len(_assignments(second))
    killed = time.monotonic()
    first.terminate(signal.SIGKILL)
    got_all = wait_until(
        lambda: len(a := _assignments(second)) > before and a[-1] == list(range(PARTITIONS)),
        timeout=45, interval=0.2)
    took = time.monotonic() - killed
    assert got_all, f"survivor never got every partition\n{second.log_tail()}"
    evicted = [r for r in second.log_records() if r.get("event") == "dead_member_evicted"]
    assert evicted and evicted[0]["incarnation"].startswith("dwlive-"), second.log_tail()
    assert took < 30, took

    produce(broker, first.events_topic, extractor_events(attacker, n=600))
    alerts = consume_until(broker, first.alerts_topic,
                           lambda rs: any(a.get("account_id") == attacker for a in rs), timeout=60)
    assert any(a.get("account_id") == attacker and a["status"] == "firing" for a in alerts), \
        second.log_tail()
    print(f"\nkill -9 of one of two workers: survivor owns all {PARTITIONS} partitions "
          f"{took:.1f}s later; attacker {attacker} on partition "
          f"{partition_for(attacker.encode(), PARTITIONS)} alerted")
    wait_log_n(second, "partitions_assigned", 1, timeout=1)
