"""Indicator sharing: the STIX 2.1 bundle (validated, hashed, marked, no
prompt text), its way back into the watchlist, the watchlist as evidence,
and a TAXII 2.1 round trip through a real local medallion server.

Here the parts on real servers or subprocesses; the pure ones: tests/unit/test_sharing.py."""

from __future__ import annotations

import json

from detectors.response import format_time
from streams.response.indicators import load_watchlist_file, publish, pull
from streams.response.sharing import build_bundle, watchlist_records
from tests.helpers.taxii_server import COLLECTION, PASSWORD, USER, medallion

KEY = b"community-key-for-tests-000000001"
T0 = 1_771_840_800.0
MARKER = "ZQXV-PROMPT-MARKER"


def cluster_alert(key="pay:pm_secret_card", score=0.93, extra_details=None):
    details = {"cluster_key": key, "key_kind": key.split(":")[0],
               "reasons": ["shared_template", "synchronized"],
               "shared_keys": ["ip:203.0.113.0/24", "ua:harvest-client/1.0", "tmpl:deadbeef",
                               "org:org_internal", "lsh:0-0000abcd"],
               **(extra_details or {})}
    return {"alert_id": "c" * 32, "dedup_key": f"cluster:{key}", "status": "firing",
            "detector": "cluster", "severity": "critical", "score": score,
            "ts": format_time(T0 + 600), "episode_start": format_time(T0), "summary": "s",
            "details": details, "accounts": ["acct-m1", "acct-m2"], "account_count": 9}


def account_alert(account="acct-m1"):
    return {"alert_id": "a" * 32, "dedup_key": f"account:{account}", "status": "firing",
            "detector": "account", "severity": "error", "score": 0.91,
            "ts": format_time(T0 + 300), "episode_start": format_time(T0 + 300),
            "summary": "s", "account_id": account,
            "details": {"reasons": ["template", "elicitation"],
                        "prompt_fingerprints": ["0badc0de", "12345678"],
                        "top_topics": [[MARKER, 0.9]]}}


def bundle_objects(alerts, **kw):
    text = build_bundle(alerts, key=KEY, key_id="c1", **kw).serialize()
    return text, json.loads(text)["objects"]


def test_taxii_round_trip_on_a_local_medallion(tmp_path, monkeypatch):
    many = [dict(cluster_alert(key=f"ip:10.{i}.0.0/24"), dedup_key=f"cluster:{i}")
            for i in range(40)]  # > 100 objects: the pull follows "next" pages
    text, objects = bundle_objects([cluster_alert(), account_alert(), *many])
    assert len(objects) > 150
    monkeypatch.setenv("DISTILLWATCH_TAXII_PASSWORD", PASSWORD)
    with medallion(tmp_path) as root:
        status = publish(json.loads(text), root, COLLECTION, USER)
        assert status["status"] == "complete" and status["failure_count"] == 0
        assert status["success_count"] == len(objects)
        pulled, cursor = pull(root, COLLECTION, None, USER)
        assert {o["id"] for o in pulled} == {
            o["id"] for o in objects if o["type"] != "extension-definition"} and cursor
        again, cursor2 = pull(root, COLLECTION, cursor, USER)
        assert again == [] and cursor2 == cursor  # the added_after cursor
        records = watchlist_records(pulled)
        assert sorted(r["id"] for r in records) == sorted(
            r["id"] for r in watchlist_records(objects))
    out = tmp_path / "bundle.json"
    out.write_text(text)
    assert load_watchlist_file(str(out)) == watchlist_records(objects)
