"""``evaluate --list-flagged``: which accounts paged, at which stage, on what evidence."""

from __future__ import annotations

import io

import pytest

from detectors.alerts import Alert
from simulator.cli import main
from simulator.flagged import check_seeds, flagged_accounts, format_flagged

T0 = 1_772_409_600.0


def _alert(detector: str, ts: float, account: str | None = None,
           accounts: tuple[str, ...] = (), status: str = "firing", **details: object) -> Alert:
    return Alert(detector, status, "warning", 0.9, T0 + ts, T0 + ts, "", details=details,
                 account_id=account, accounts=accounts)


KINDS = {"t1": "tutor", "t2": "tutor", "r1": "reseller", "x1": "extractor", "q": "regular"}


def test_lists_each_benign_account_once_with_its_stages_and_first_alert() -> None:
    alerts = [
        _alert("account", 900.0, "x1", reasons=["template"], evidence={"template": 1.0}),
        _alert("cluster", 600.0, accounts=("t1", "t2", "x1"), cluster_key="tmpl:ab",
               key_kind="tmpl", core_members=3, reasons=["shared_template", "template"],
               evidence={"shared_template": 1.0, "template": 0.7, "volume": 0.0}),
        _alert("cluster_member", 700.0, "t1", cluster_key="tmpl:ab"),
        _alert("account", 1200.0, "t1", reasons=["elicitation"],
               evidence={"elicitation": 0.8, "sweep": 0.0}, events=40, age_s=7200.0),
        _alert("account_member", 1500.0, "r1", via="card:zz", reasons=["harvest"]),
        _alert("account", 100.0, "q", status="resolved"),  # not a page
    ]
    rows = flagged_accounts(alerts, KINDS, "benign", T0, first_seen={"t1": T0 + 60.0})
    assert [(r["account_id"], r["kind"], r["first_s"]) for r in rows] == [
        ("r1", "reseller", 1500.0), ("t1", "tutor", 600.0), ("t2", "tutor", 600.0)]
    t1 = rows[1]
    assert t1["first_seen_s"] == 60.0
    assert sorted(t1["stages"]) == ["account", "cluster"]
    cl = t1["stages"]["cluster"]
    # the first cluster-stage alert is the cluster's own: its reasons and non-zero evidence
    assert cl["detector"] == "cluster" and cl["cluster_key"] == "tmpl:ab"
    assert cl["reasons"] == ["shared_template", "template"]
    assert cl["evidence"] == {"shared_template": 1.0, "template": 0.7}
    assert cl["context"] == {"key_kind": "tmpl", "core_members": 3}
    acc = t1["stages"]["account"]
    assert acc["at_s"] == 1200.0 and acc["evidence"] == {"elicitation": 0.8}
    assert acc["context"] == {"events": 40, "age_s": 7200.0}
    camp = rows[0]["stages"]["campaign"]
    assert camp["detector"] == "account_member" and camp["via"] == "card:zz"
    text = format_flagged(rows, seed=2)
    assert "seed 2  tutor  t1  first 10.0m  first seen 1.0m" in text
    assert "cluster  10.0m  score 0.9  key tmpl:ab  reasons shared_template,template" in text
    assert "via account_member" in text and "shares card:zz" in text
    assert "x1" not in text and "q" not in text.split()


def test_a_member_alert_borrows_its_clusters_evidence() -> None:
    alerts = [
        _alert("cluster", 50.0, accounts=("t1", "t2"), cluster_key="org:o", reasons=["one_topic"],
               evidence={"one_topic": 0.9}),
        _alert("cluster_member", 400.0, "r1", cluster_key="org:o"),
    ]
    rows = flagged_accounts(alerts, KINDS, "reseller", T0)
    assert len(rows) == 1
    assert rows[0]["stages"]["cluster"]["reasons"] == ["one_topic"]
    assert rows[0]["stages"]["cluster"]["detector"] == "cluster_member"


def test_a_campaign_alert_shows_its_keys() -> None:
    alerts = [
        _alert("campaign", 30.0, accounts=("q", "x1"), members=2, firing_keys=["card:c"],
               evidence={"card:c": {"score": 0.9, "reasons": ["synchronized", "template"],
                                    "core_members": 2},
                         "tmpl:t": {"score": 0.85, "reasons": ["elicitation"]}}),
        _alert("campaign_member", 90.0, "t1", via="ip:1.2.3"),
    ]
    rows = {r["account_id"]: r["stages"]["campaign"]
            for r in flagged_accounts(alerts, KINDS, "benign", T0)}
    assert rows["q"]["context"] == {"members": 2, "firing_keys": ["card:c"]}
    # the campaign's evidence is per firing cluster key: the keys' scores, the union of reasons
    assert rows["q"]["evidence"] == {"card:c": 0.9, "tmpl:t": 0.85}
    assert rows["q"]["reasons"] == ["elicitation", "synchronized", "template"]
    assert rows["t1"]["via"] == "ip:1.2.3"
    assert "shares ip:1.2.3" in format_flagged([{"account_id": "t1", "kind": "tutor",
                                                  "first_s": 90.0,
                                                  "stages": {"campaign": rows["t1"]}}])


def test_selection_by_kind_family_or_all() -> None:
    alerts = [_alert("account", 10.0, a) for a in ("t1", "x1", "q")]
    ids = lambda sel: [r["account_id"] for r in flagged_accounts(alerts, KINDS, sel, T0)]  # noqa: E731
    assert ids("benign") == ["q", "t1"]
    assert ids("extractor") == ["x1"]
    assert ids("all") == ["x1", "q", "t1"]
    assert ids("tutor,regular") == ["q", "t1"]


def test_held_out_seeds_are_refused() -> None:
    check_seeds(range(0, 10))
    with pytest.raises(ValueError, match="held-out seeds 10,14"):
        check_seeds([3, 10, 14])
    err = io.StringIO()
    import contextlib

    with contextlib.redirect_stderr(err):
        code = main(["evaluate", "--scenario", "small", "--seeds", "9-11",
                     "--list-flagged", "benign"])
    assert code == 2 and "held-out seeds 10,11" in err.getvalue()


def test_evaluate_lists_flagged_accounts_of_a_tiny_run() -> None:
    from simulator.evaluate import evaluate_seeds

    out = io.StringIO()
    rep = evaluate_seeds("1", hours=0.5, accounts=20, attacks="extractor:2", mix="classic",
                         text="synthetic", out=out, list_flagged="extractor")
    rows = rep["seeds"][1]["flagged"]
    assert rows and all(r["kind"] == "extractor" for r in rows)
    assert all("account" in r["stages"] or "cluster" in r["stages"] for r in rows)
    assert f"seed 1  extractor  {rows[0]['account_id']}" in out.getvalue()
