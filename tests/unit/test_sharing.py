"""Indicator sharing: the STIX 2.1 bundle (validated, hashed, marked, no
prompt text), its way back into the watchlist, the watchlist as evidence,
and a TAXII 2.1 round trip through a real local medallion server.

The parts on real servers or subprocesses: tests/integration/test_sharing_taxii.py."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stix2validator import ValidationOptions, validate_string

from detectors.engine import Detector
from detectors.response import format_time
from detectors.schema import Event
from detectors.watchlist import Watchlist, hmac_hex
from streams.response.indicators import validate_bundle
from streams.response.sharing import TLP_IDS, watchlist_records
from tests.helpers.sharing import KEY, MARKER, T0, account_alert, bundle_objects, cluster_alert


def test_bundle_validates_and_shares_only_hashes_and_networks():
    text, objects = bundle_objects([cluster_alert(), account_alert()])
    # valid even in strict mode (every warning an error): no warnings at all
    result = validate_string(text, ValidationOptions(version="2.1", strict=True))
    assert result.is_valid, (result.errors, result.warnings)
    indicators = [o for o in objects if o["type"] == "indicator"]
    kinds = sorted(o["extensions"][next(iter(o["extensions"]))]["kind"] for o in indicators)
    assert kinds == ["ip", "pay", "tmpl", "tmpl", "tmpl", "ua"]  # org and lsh stay home
    for raw in ("pm_secret_card", "harvest-client", "org_internal", "acct-m1", "deadbeef",
                "0badc0de", MARKER):
        assert raw not in text, raw
    assert hmac_hex(KEY, "pay", "pm_secret_card") in text
    assert "[ipv4-addr:value ISSUBSET '203.0.113.0/24']" in text
    ind = next(o for o in indicators if "pay" in json.dumps(o["extensions"]))
    assert ind["confidence"] == 93 and ind["valid_until"] > ind["valid_from"]
    assert ind["object_marking_refs"] == [TLP_IDS["amber"]]
    ext = next(o for o in objects if o["type"] == "extension-definition")
    assert ext["name"] == "x_distillwatch" and next(iter(ind["extensions"])) == ext["id"]
    campaign = next(o for o in objects if o["type"] == "campaign")
    rels = [o for o in objects if o["type"] == "relationship"]
    assert {r["target_ref"] for r in rels} == {campaign["id"]} and len(rels) == len(indicators)
    # deterministic: the same alerts, the same bundle
    assert bundle_objects([cluster_alert(), account_alert()])[0] == text
    # TLP is a choice; an unknown one is refused
    assert TLP_IDS["clear"] in bundle_objects([cluster_alert()], tlp="clear")[0]
    with pytest.raises(ValueError):
        bundle_objects([cluster_alert()], tlp="purple")


def test_a_record_timed_before_its_episode_start_still_gives_a_valid_campaign():
    # a campaign record whose event time precedes the episode start it names
    # (seen on the embedded-broker end-to-end run): first_seen <= last_seen
    early = cluster_alert()
    early["ts"], early["episode_start"] = format_time(T0 + 60), format_time(T0 + 900)
    later = cluster_alert()
    later["ts"], later["episode_start"] = format_time(T0 + 1200), format_time(T0 + 900)
    for alerts in ([early], [later, early]):
        text, objects = bundle_objects(alerts)
        result = validate_string(text, ValidationOptions(version="2.1", strict=True))
        assert result.is_valid, (result.errors, result.warnings)
        campaign = next(o for o in objects if o["type"] == "campaign")
        assert campaign["first_seen"][:19] == format_time(T0 + 60)[:19]
        assert campaign["last_seen"] >= campaign["first_seen"]


@settings(max_examples=12, deadline=None)
@given(st.dictionaries(st.sampled_from(["summary_text", "top_topics", "prompt", "reasons",
                                        "shared_keys", "member_alerts", "cluster_key"]),
                       st.one_of(st.just(MARKER), st.lists(st.just(MARKER + " x"), max_size=3),
                                 st.just([[MARKER, 0.5]]),
                                 st.just(["tmpl:" + MARKER, "ua:" + MARKER]))))
def test_no_prompt_text_leaves_whatever_the_alert_holds(extra):
    alert = cluster_alert(extra_details=extra)
    text, _ = bundle_objects([alert, account_alert()])
    assert MARKER not in text
    validate_bundle(text)


def test_bundle_back_to_watchlist_and_evidence():
    _, objects = bundle_objects([cluster_alert(), account_alert()])
    records = watchlist_records(objects)
    assert {r["kind"] for r in records} == {"pay", "ip", "ua", "tmpl"}
    assert all(r["tlp"] == "amber" and r["confidence"] >= 91 for r in records)
    w = Watchlist({"c1": KEY})
    assert w.load(records) == len(records)
    assert Watchlist({"other-key": KEY}).load(records) == 1  # only the network is usable
    ev = Event(T0 + 700, "new-acct", payment_fingerprint="pm_secret_card", ip="203.0.113.77")
    term = w.evidence(ev)
    assert term == pytest.approx(0.93 + 0.5 * 0.93) and {k for k, _, _ in w.matched} == {
        "pay", "ip"}
    assert w.evidence(Event(T0, "x", payment_fingerprint="pm_other", ip="198.51.100.1")) == 0
    # expired indicators do not count
    assert w.evidence(Event(T0 + 400 * 86400, "y", payment_fingerprint="pm_secret_card")) == 0
    # revoked indicators come back as deletions
    revoked = dict(objects[-1], revoked=True) if objects[-1]["type"] == "indicator" else None
    if revoked is not None:
        assert watchlist_records([revoked]) == [{"id": revoked["id"], "revoked": True}]


def test_a_match_alone_does_not_fire_but_lowers_the_bar():
    w = Watchlist({"c1": KEY})
    w.upsert({"id": "indicator--1", "kind": "pay", "value": hmac_hex(KEY, "pay", "pm_9"),
              "key_id": "c1", "confidence": 100, "tlp": "amber"})
    det = Detector()
    det.watchlist = w
    rng = random.Random(3)
    words = ("invoice retry loop onboarding budget merge photosynthesis garden recipe travel "
             "poem email summary").split()
    state = None
    t = T0
    for _ in range(6):  # a new account with no evidence of its own, on a matching card
        t += rng.expovariate(1 / 900)
        prompt = " ".join(rng.choice(words) for _ in range(rng.randint(4, 12)))
        state, alerts = det.process(state, Event(
            t, "quiet", prompt=prompt, payment_fingerprint="pm_9",
            topic=rng.choice(["coding/python", "writing/email", "math/algebra"])))
        assert alerts == []
    # the match alone: z = 1.0, score 1 - e^-1 = 0.63 < fire threshold 0.8 (z >= 1.61)
    assert det.describe(state)["score"] == pytest.approx(0.632, abs=0.01)
    det.watchlist = None
    assert det.process(state, Event(t + 60, "quiet", topic="coding/python"))[0].score < 0.05


@settings(max_examples=30, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["status", "ts", "details", "accounts",
                                                 "episode_start", "score", "account_id"]),
                                st.one_of(st.text(max_size=10), st.integers(), st.none(),
                                          st.just("firing"), st.just({"cluster_key": 5}))),
                max_size=5))
def test_records_that_are_not_alerts_are_skipped(junk):
    _, objects = bundle_objects([*junk, cluster_alert()])
    assert sum(o["type"] == "indicator" for o in objects) == 4  # pay, ip, ua, tmpl


def test_sharing_table_weights_the_watchlist(tmp_path):
    from streams.errors import ConfigError
    from streams.response.indicators import watchlist_for
    from streams.settings import Settings

    toml = tmp_path / "d.toml"
    toml.write_text("[sharing]\nweight = 0.5\ncap = 1.0\n")
    w = watchlist_for(Settings(detector_config=str(toml)))
    assert (w.weight, w.cap) == (0.5, 1.0)
    toml.write_text("[sharing]\nweigth = 0.5\n")
    with pytest.raises(ConfigError, match="weigth"):
        watchlist_for(Settings(detector_config=str(toml)))
