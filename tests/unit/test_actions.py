"""Response actions: the policy (pure), the contract (JSON Schema), the
ledger, the reference consumer, and the live path on the embedded broker.

The parts on real servers or subprocesses: tests/integration/test_actions_live.py."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.response import (
    DECIDED,
    ActionLedger,
    InvalidPolicy,
    ResponsePolicy,
    decide,
    format_time,
)
from streams.cli import main
from streams.response.enforce import Gateway, TokenBucket, demo
from tests.helpers.attack import extractor_events

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schemas" / "action.schema.json").read_text())
T0 = 1_771_840_800.0


def account_alert(account="acct-1", severity="critical", score=0.97, status="firing",
                  reasons=("template", "elicitation"), alert_id="a" * 32):
    return {"alert_id": alert_id, "dedup_key": f"account:{account}", "status": status,
            "detector": "account", "severity": severity, "score": score,
            "ts": format_time(T0 + 60), "episode_start": format_time(T0), "summary": "s",
            "details": {"reasons": list(reasons)}, "account_id": account}


def cluster_alert(detector="cluster", key="pay:pm_123", severity="critical", status="firing"):
    return {"alert_id": "c" * 32, "dedup_key": f"{detector}:{key}", "status": status,
            "detector": detector, "severity": severity, "score": 0.96,
            "ts": format_time(T0 + 120), "episode_start": format_time(T0),
            "summary": "s", "details": {"cluster_key": key, "key_kind": key.split(":")[0],
                                        "reasons": ["shared_template"]},
            "accounts": ["m1", "m2", "m3"], "account_count": 3}


def validate(records):
    for r in records:
        jsonschema.validate(r, SCHEMA)


def test_default_policy_proposes_by_scope_and_validates():
    policy = ResponsePolicy.from_mapping({})
    acct = policy.propose(account_alert())
    assert [r["data"]["action"] for r in acct] == ["throttle", "degrade_reasoning"]
    assert all(r["data"]["mode"] == "propose" for r in acct)
    clus = policy.propose(cluster_alert())
    by_action = {r["data"]["action"]: r for r in clus}
    assert set(by_action) == {"require_verification", "throttle", "block_payment_fingerprint"}
    assert by_action["throttle"]["data"]["scope"]["accounts"] == ["m1", "m2", "m3"]
    assert by_action["block_payment_fingerprint"]["subject"] == "key:pay:pm_123"
    # a detector added later (issue 23's campaign) maps by name alone
    assert {r["data"]["action"] for r in policy.propose(cluster_alert("campaign"))} == set(
        by_action)
    # an IP cluster never blocks a card
    assert "block_payment_fingerprint" not in {
        r["data"]["action"] for r in policy.propose(cluster_alert(key="ip:10.0.0.0/24"))}
    assert policy.propose(account_alert(severity="warning", score=0.72)) == []
    validate(acct + clus)


def test_a_campaign_record_blocks_each_card_it_folds_in():
    # what the campaign stage puts on the alerts topic: no cluster_key, the
    # folded clusters' keys under cluster_keys (detectors/campaign.py)
    policy = ResponsePolicy.from_mapping({})
    record = cluster_alert("campaign")
    record["dedup_key"] = "campaign:c-0123456789abcdef"
    record["details"] = {"campaign_id": "c-0123456789abcdef",
                         "cluster_keys": ["tmpl:9f2c", "pay:pm_2", "ip:10.0.0.0/24", "pay:pm_1"],
                         "reasons": ["shared_template"]}
    out = policy.propose(record)
    blocks = sorted(r["subject"] for r in out if r["data"]["action"] ==
                    "block_payment_fingerprint")
    assert blocks == ["key:pay:pm_1", "key:pay:pm_2"]
    assert len({r["data"]["action_id"] for r in out}) == len(out)
    # without a card among its keys, a campaign blocks nothing
    record["details"]["cluster_keys"] = ["tmpl:9f2c", "ip:10.0.0.0/24"]
    assert "block_payment_fingerprint" not in {
        r["data"]["action"] for r in policy.propose(record)}
    validate(out)


def test_ids_are_deterministic_and_resolution_proposes_a_lift():
    policy = ResponsePolicy.from_mapping({})
    first = policy.propose(account_alert())
    assert first == policy.propose(account_alert())
    assert {r["id"] for r in first}.isdisjoint(
        r["id"] for r in policy.propose(account_alert(alert_id="b" * 32)))
    lift = policy.propose(account_alert(status="resolved", alert_id="d" * 32))
    assert len(lift) == 1 and lift[0]["data"]["action"] == "lift"
    validate(lift)
    ledger = ActionLedger()
    # the firing alert id the lift names is the one the worker derives
    from detectors.alerts import make_alert_id
    firing = dict(account_alert(), alert_id=make_alert_id("account:acct-1", T0, "firing"))
    for r in policy.propose(firing) + lift:
        ledger.apply(r)
    throttle = next(a for a, p in ledger.proposals.items() if p["data"]["action"] == "throttle")
    ledger.apply(decide(ledger.proposals[throttle], "approved", "human", "ana", "ok", T0 + 70))
    assert [p["data"]["action"] for p, _ in ledger.active(T0 + 80)] == ["throttle"]
    ledger.apply(decide(lift[0], "approved", "human", "ana", "resolved", T0 + 90))
    assert ledger.status(throttle) == "lifted" and ledger.active(T0 + 100) == []


def test_auto_is_opt_in_and_only_for_reversible_types():
    with pytest.raises(InvalidPolicy, match="not reversible"):
        ResponsePolicy.from_mapping({"auto": ["block_payment_fingerprint"]})
    ResponsePolicy.from_mapping({"auto": ["suspend_key"], "allow_irreversible_auto": True})
    policy = ResponsePolicy.from_mapping({"auto": {"throttle": True}})
    out = policy.propose(account_alert())
    kinds = [(r["type"], r["data"]["action"]) for r in out]
    assert (DECIDED, "throttle") in kinds and (DECIDED, "degrade_reasoning") not in kinds
    auto = next(r for r in out if r["type"] == DECIDED)
    assert auto["data"]["decided_by"] == {"kind": "auto", "principal": "policy"}
    validate(out)


def test_policy_rejects_bad_rules_naming_them():
    for bad, match in (
        ({"rules": [{"name": "x", "action": "nuke"}]}, "action must be one of"),
        ({"rules": [{"name": "x", "action": "throttle"}]}, "rate_per_min"),
        ({"rules": [{"name": "x", "action": "throttle", "params": {"rate_per_min": 5},
                     "duration_s": 0}]}, "expires"),
        ({"rules": [{"name": "x", "action": "block_payment_fingerprint"}]}, "key_kinds"),
        ({"rules": [{"name": "x", "action": "suspend_key", "colour": 1}]}, "unknown key"),
        ({"mode": "x"}, "unknown key"),
    ):
        with pytest.raises(InvalidPolicy, match=match):
            ResponsePolicy.from_mapping(bad)


def test_own_rules_extend_or_replace_the_defaults():
    rule = {"name": "suspend-campaign", "detector": "campaign", "min_severity": "critical",
            "action": "suspend_key", "scope": "cluster_members", "duration_s": 3600}
    policy = ResponsePolicy.from_mapping({"rules": [rule], "replace_default_rules": True})
    assert [r["data"]["action"] for r in policy.propose(cluster_alert("campaign"))] == [
        "suspend_key"]
    assert policy.propose(account_alert()) == []


@given(st.dictionaries(st.text(max_size=12), st.one_of(st.text(max_size=20), st.floats(),
                                                       st.none(), st.lists(st.text()))))
def test_hostile_alert_records_never_crash_the_policy(extra):
    policy = ResponsePolicy.from_mapping({})
    alert = {**account_alert(), **{k: v for k, v in extra.items() if k not in (
        "ts", "episode_start", "score", "alert_id")}}
    validate(policy.propose(alert))


def test_token_bucket_gateway():
    gw = Gateway(buckets={"a": TokenBucket(6, 3, 0.0)}, verify={"v"}, suspended={"s"})
    counts = demo(gw, 0.0, 20)
    assert counts["a"] == {"allow": 3, "429": 17}
    assert counts["v"] == {"challenge": 20} and counts["s"] == {"403": 20}
    assert gw.request("a", 11.0) == "allow"  # a token refilled 10 s after the burst at 6/min


def test_replay_proposes_the_same_actions_as_the_worker(tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(v for _, v in extractor_events("harvester-replay",
                                                                  start=T0)) + b"\n")
    alerts, actions = tmp_path / "alerts.jsonl", tmp_path / "actions.jsonl"
    assert main(["replay", str(events), "--alerts-out", str(alerts), "--actions-out",
                 str(actions), "--no-progress", "--jobs", "1"]) == 0
    records = [json.loads(x) for x in actions.read_text().splitlines()]
    validate(records)
    policy = ResponsePolicy.from_mapping({})
    expected = [r for a in alerts.read_text().splitlines()
                for r in policy.propose(json.loads(a))]
    assert records == expected and {r["data"]["action"] for r in records} >= {"throttle"}


@given(st.floats(min_value=1.0e9, max_value=2.0e9, allow_nan=False),
       st.floats(min_value=0.0, max_value=1.0e5, allow_nan=False))
def test_a_lift_names_the_firing_alert_of_its_episode(start, length):
    from detectors.alerts import Alert

    fields = dict(detector="account", severity="error", score=0.95, episode_start=start,
                  summary="s", details={}, account_id="acct-9")
    firing = Alert(status="firing", ts=start, **fields)
    resolved = Alert(status="resolved", ts=start + length, **{**fields, "severity": "info"})
    lift = ResponsePolicy.from_mapping({}).propose(resolved.to_record())
    assert lift[0]["data"]["revokes_alert_id"] == firing.alert_id
