"""Indicator sharing: the STIX 2.1 bundle (validated, hashed, marked, no
prompt text), its way back into the watchlist, the watchlist as evidence,
and a TAXII 2.1 round trip through a real local medallion server.

Here the parts on real servers or subprocesses; the pure ones: tests/unit/test_sharing.py."""

from __future__ import annotations

import json

from streams.response.indicators import load_watchlist_file, publish, pull
from streams.response.sharing import watchlist_records
from tests.helpers.sharing import account_alert, bundle_objects, cluster_alert
from tests.helpers.taxii_server import COLLECTION, PASSWORD, USER, medallion


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
