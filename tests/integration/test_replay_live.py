"""Replay: ordering across files, gzip, bad lines, lateness, the CLI, and the
proof that the live service and replay emit the same alert ids.

Here the parts on real servers or subprocesses; the pure ones: tests/unit/test_replay.py."""

from __future__ import annotations

import gzip
import json
import time
import urllib.request
from pathlib import Path

import orjson

from streams.cli import main
from tests.helpers.attack import benign_events, extractor_events
from tests.helpers.broker import consume_until


def _write(path: Path, objs, gz: bool = False, extra: list[bytes] = ()) -> Path:
    lines = [orjson.dumps(o) for o in objs] + list(extra)
    data = b"\n".join(lines) + b"\n"
    if gz:
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)
    return path


def _health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
        return json.loads(resp.read())


def test_live_service_and_replay_emit_the_same_alert_ids(broker, worker_factory, tmp_path):
    now = time.time() - 4 * 3600
    objs = [orjson.loads(v) for _, v in benign_events(accounts=60, per_account=20, start=now)]
    for name, offset in (("harvest-a", 600), ("harvest-b", 5400), ("harvest-c", 9000)):
        objs += [orjson.loads(v) for _, v in extractor_events(name, n=700, start=now + offset)]
    objs.sort(key=lambda o: o["ts"])
    log = _write(tmp_path / "incident.jsonl", objs)

    worker = worker_factory().start()
    worker.wait_log("partitions_assigned", timeout=45)
    rc = main(["publish", str(log), "--broker", broker.url, "--topic", worker.events_topic,
               "--max", "--no-progress"])
    assert rc == 0
    port = int(worker.env["DISTILLWATCH_WEB_PORT"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _health(port)["events"] < len(objs):
        time.sleep(0.5)
    assert _health(port)["events"] == len(objs)

    alerts_out = tmp_path / "replayed.jsonl"
    assert main(["replay", str(log), "--alerts-out", str(alerts_out), "--partitions", "4",
                 "--no-progress"]) == 0
    replayed = [json.loads(line) for line in alerts_out.read_text().splitlines()]
    want = {a["alert_id"] for a in replayed}
    # alerts take one more hop (the campaign agent) after the events are read
    live = consume_until(broker, worker.alerts_topic,
                         lambda rs: {a["alert_id"] for a in rs} >= want, timeout=20)
    live = consume_until(broker, worker.alerts_topic, lambda rs: False, timeout=2)
    assert {a["alert_id"] for a in live} == want
    assert {a["account_id"] for a in live if a["status"] == "firing"} >= {
        "harvest-a", "harvest-b", "harvest-c"}
