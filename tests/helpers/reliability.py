"""Helpers shared by the reliability tests (issue 8): the worker's /health
counters, consumer-group lag, resident memory, replay as the crash-free
reference."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson


def health(port: int, timeout: float = 2.0) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=timeout) as resp:
        return json.loads(resp.read())


def try_health(port: int) -> dict[str, Any] | None:
    try:
        return health(port, timeout=1.0)
    except Exception:  # not up yet, or busy: the caller polls
        return None


def wait_until(check: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy; return it (or the last value)."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    return value


def group_offsets(bootstrap: str, group: str, topic: str) -> tuple[int, int]:
    """(sum of committed offsets of ``group`` on ``topic``, sum of end offsets)."""
    from kafka import KafkaConsumer, TopicPartition

    # a consumer with the group's id that never subscribes: it reads the
    # group's committed offsets without joining (or disturbing) the group
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                             enable_auto_commit=False, request_timeout_ms=5000)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        ends = consumer.end_offsets(tps)
        done = sum(consumer.committed(tp) or 0 for tp in tps)
        return done, sum(ends.values())
    finally:
        consumer.close(autocommit=False)


def lag(bootstrap: str, group: str, topic: str) -> int:
    done, end = group_offsets(bootstrap, group, topic)
    return end - done


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def write_jsonl(path: Path, objs: Iterable[Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in objs))
    return path


def replay_alerts(log: Path, out: Path, partitions: int) -> list[dict[str, Any]]:
    """The crash-free reference: replay of the same input, same partition count."""
    from streams.cli import main

    assert main(["replay", str(log), "--alerts-out", str(out), "--partitions",
                 str(partitions),
                 "--no-progress"]) == 0
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def publish(bootstrap_url: str, topic: str, log: Path) -> None:
    from streams.cli import main

    assert main(["publish", str(log), "--broker", bootstrap_url, "--topic", topic,
                 "--max", "--no-progress"]) == 0


def wait_log_n(worker: Any, event: str, n: int, timeout: float) -> dict[str, Any]:
    """The ``n``-th (1-based) ``event`` record in the worker's log (which a
    restart appends to)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in worker.log_records() if r.get("event") == event]
        if len(found) >= n:
            return found[n - 1]
        assert worker.proc is None or worker.proc.poll() is None, worker.log_tail()
        time.sleep(0.2)
    raise AssertionError(f"no {event!r} #{n} within {timeout}s:\n{worker.log_tail()}")
