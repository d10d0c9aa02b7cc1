"""Response actions: the policy (pure), the contract (JSON Schema), the
ledger, the reference consumer, and the live path on the embedded broker.

Here the parts on real servers or subprocesses; the pure ones: tests/unit/test_actions.py."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import jsonschema
import orjson

from detectors.response import (
    DECIDED,
)
from streams.cli import main
from streams.response.enforce import demo, gateway_from
from streams.settings import Settings
from tests.helpers.attack import extractor_events
from tests.helpers.broker import consume_until

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schemas" / "action.schema.json").read_text())


def validate(records):
    for r in records:
        jsonschema.validate(r, SCHEMA)


def test_live_harvester_proposed_approved_by_cli_and_throttled(broker, worker_factory,
                                                               capsys):
    token = "actions-token-" + "ab" * 10
    worker = worker_factory(DISTILLWATCH_WEB_TOKEN=token).start()
    worker.wait_log("partitions_assigned", timeout=45)
    from tests.helpers.broker import produce
    produce(broker, worker.events_topic, extractor_events("harvester-act"))
    records = consume_until(broker, worker.actions_topic,
                            lambda rs: len({r["data"]["action"] for r in rs}) >= 2, 30)
    validate(records)
    throttle = next(r for r in records if r["data"]["action"] == "throttle")
    degrade = next(r for r in records if r["data"]["action"] == "degrade_reasoning")
    assert throttle["subject"] == "account:harvester-act"
    env = {"DISTILLWATCH_BROKER": broker.url, "DISTILLWATCH_ACTIONS_TOPIC": worker.actions_topic}
    import os
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        assert main(["actions", "list"]) == 0
        assert throttle["data"]["action_id"] in capsys.readouterr().out
        assert main(["actions", "approve", throttle["data"]["action_id"], "--by", "ana",
                     "--reason", "templated CoT harvesting"]) == 0
        assert main(["actions", "approve", throttle["data"]["action_id"], "--by", "bo",
                     "--reason", "again"]) == 2  # the first decision stands
        # the web view: POST with the token rejects the other one
        port = int(worker.env["DISTILLWATCH_WEB_PORT"])
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/actions/{degrade['data']['action_id']}/reject",
            method="POST", data=json.dumps({"reason": "false positive?", "by": "cy"}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=20) as resp:
            assert resp.status == 200
            assert json.loads(resp.read())["data"]["decided_by"]["principal"] == "web:cy"
        settings = Settings.load(env={**env})
        from streams.response.actions import load_ledger
        ledger = load_ledger(settings)
        assert ledger.status(throttle["data"]["action_id"]) == "approved"
        assert ledger.status(degrade["data"]["action_id"]) == "rejected"
        decided = [r for r in consume_until(broker, worker.actions_topic, lambda rs: False, 2)
                   if r["type"] == DECIDED]
        validate(decided)
        assert {r["data"]["decided_by"]["principal"] for r in decided} == {"ana", "web:cy"}
        gw = gateway_from(ledger, time.time())
        counts = demo(gw, time.time(), 20)
        assert counts == {"harvester-act": {"allow": 3, "429": 17}}
        assert main(["enforce", "--demo"]) == 0
        assert "harvester-act: 20 requests in 1 s -> 17 429, 3 allow" in capsys.readouterr().out
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert orjson.dumps(records).find(b"articulate") < 0  # no prompt text
