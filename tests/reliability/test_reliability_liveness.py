"""Group liveness on the embedded broker (issue 21): noida-db never expires a
member whose process died, so the workers remove dead members themselves
(streams.service.liveness). Two workers, ``kill -9`` of one that is not restarted: the
survivor gets all partitions within 30 s and alerts on an attacker whose
partition the dead one held."""

from __future__ import annotations

import signal
import time

import orjson
import pytest

from detectors.partitioning import partition_for
from tests.helpers.attack import extractor_events
from tests.helpers.broker import consume_until, produce
from tests.helpers.reliability import wait_log_n, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.serial]
PARTITIONS = 4


def _assignments(worker) -> list[list[int]]:
    return [r["partitions"] for r in worker.log_records()
            if r.get("event") == "partitions_assigned"]


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
    split_count = len(_assignments(first)) + len(_assignments(second))
    victim_partitions = split[0]

    # both alive for longer than the liveness timeout: nobody is evicted and
    # the assignment stays as it is
    def evictions(worker) -> list[dict]:
        return [r for r in worker.log_records() if r.get("event") == "dead_member_evicted"]

    calm = wait_until(lambda: evictions(first) or evictions(second)
                      or len(_assignments(first)) + len(_assignments(second)) != split_count,
                      timeout=float(first.settings.liveness_timeout_s) + 3, interval=0.5)
    assert not calm, (evictions(first), evictions(second), _assignments(first),
                      _assignments(second))
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
    victim = first.wait_log("liveness_started")["incarnation"]
    assert [r["incarnation"] for r in evictions(second)] == [victim], second.log_tail()
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


def test_restart_under_another_web_port_resumes_with_every_alert(worker_factory, broker,
                                                                   tmp_path):
    """``kill -9`` mid-stream, restart under another web port (another host,
    container or slot: not the identity ``evict_stale_members`` recognises).
    The dead incarnation is removed by the liveness check, and the restarted
    worker's alerts carry every alert id of the crash-free reference."""
    from detectors.schema import parse_ts
    from tests.helpers.attack import benign_events
    from tests.helpers.reliability import (
        group_offsets,
        publish,
        replay_alerts,
        try_health,
        write_jsonl,
    )

    start = time.time() - 6 * 3600
    objs = [orjson.loads(v) for _, v in benign_events(accounts=40, per_account=30, start=start)]
    objs += [orjson.loads(v) for _, v in benign_events(accounts=20, per_account=30, seed=7,
                                                        start=start + 3 * 3600)]
    for name, offset in (("port-a", 600), ("port-b", 5400)):
        objs += [orjson.loads(v) for _, v in extractor_events(name, n=700, start=start + offset)]
    objs.sort(key=lambda o: o["ts"])
    log = write_jsonl(tmp_path / "incident.jsonl", objs)
    reference = replay_alerts(log, tmp_path / "reference.jsonl", PARTITIONS)
    assert {"port-a", "port-b"} <= {a["account_id"] for a in reference
                                    if a["status"] == "firing"}
    fired = sorted(parse_ts(a["ts"]) for a in reference if a["status"] == "firing")
    split = next(i for i, o in enumerate(objs) if o["ts"] > fired[0])

    worker = worker_factory(DISTILLWATCH_PARTITIONS=str(PARTITIONS),
                            DISTILLWATCH_CHECKPOINT_INTERVAL_S="0.2").start()
    worker.wait_log("partitions_assigned", timeout=45)
    port = int(worker.env["DISTILLWATCH_WEB_PORT"])
    publish(broker.url, worker.events_topic, log)
    seen = wait_until(lambda: (h := try_health(port)) and h["events"] >= split
                      and h["commits"] >= 1 and h, timeout=60, interval=0.01)
    assert seen, worker.log_tail()
    worker.terminate(signal.SIGKILL)
    committed, end = group_offsets(broker.bootstrap, worker.name, worker.events_topic)
    assert 0 < committed < end == len(objs), (committed, end)

    from streams.broker.embedded import free_port

    new_port = free_port()
    worker.env["DISTILLWATCH_WEB_PORT"] = str(new_port)
    restarted = time.monotonic()
    worker.start()
    wait_log_n(worker, "partitions_assigned", 2, timeout=60)
    assigned_s = time.monotonic() - restarted
    caught_up = wait_until(
        lambda: group_offsets(broker.bootstrap, worker.name, worker.events_topic)[0] >= end,
        timeout=60, interval=0.5)
    resumed_s = time.monotonic() - restarted
    assert caught_up, worker.log_tail()
    assert [r for r in worker.log_records() if r.get("event") == "dead_member_evicted"]
    assert assigned_s < 30, assigned_s
    wanted = {a["alert_id"] for a in reference}
    got = consume_until(broker, worker.alerts_topic,
                        lambda rs: wanted <= {a["alert_id"] for a in rs}, timeout=20)
    missing = wanted - {a["alert_id"] for a in got}
    assert not missing, f"alerts lost: {missing}"
    # the same ids as the reference, no other (repeats of an id are duplicates)
    assert {a["alert_id"] for a in got} == wanted
    print(f"\nrestart under another web port ({port} -> {new_port}) after kill -9 at "
          f"{committed}/{end} committed: assigned {assigned_s:.1f}s, caught up "
          f"{resumed_s:.1f}s after the restart; {len(wanted)} reference alert ids all present")
