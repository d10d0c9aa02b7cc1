"""A resolved account or cluster record repeats its episode's firing severity
(``details.firing_severity``), so the Alertmanager forwarder labels the resolve
exactly like the firing alert and Alertmanager clears it (it identifies an
alert by its label set; before, the resolve had no ``severity`` label and the
firing alert stayed active until it timed out). The state keeps it, and a
state written before it was kept still restores."""

from __future__ import annotations

import random
import struct

import orjson

from detectors.cluster import AccountSummary, Cluster, ClusterDetector
from detectors.engine import Detector
from detectors.runner import PartitionRunner
from detectors.schema import Event
from detectors.state import _HEAD, FLOATS, INTS, AccountState
from streams.oncall.mappings import alertmanager_alert
from tests.helpers.summaries import T0, hydra_summaries, run_summaries

RESOLVED_LABELS = ("alertname", "detector", "dedup_key", "subject", "severity", "service")


def _same_labels(firing: dict, resolved: dict) -> None:
    f, r = alertmanager_alert(firing)["labels"], alertmanager_alert(resolved)["labels"]
    assert r == f, (f, r)
    assert set(RESOLVED_LABELS) <= set(r)


def _events(seed: int) -> list[Event]:
    """An extractor's burst (fires), then its silence and a neighbour's
    traffic moving event time on (resolves)."""
    rng = random.Random(seed)
    out = []
    t = T0
    for _ in range(400):
        t += rng.uniform(2, 6)
        out.append(Event(ts=t, account_id="x", topic="math/proofs",
                         prompt=f"Solve step by step and show every step of your reasoning: "
                                f"problem {rng.getrandbits(40)} about {rng.choice('abcdefgh')}"))
    for i in range(60):
        t += 120
        out.append(Event(ts=t, account_id="quiet", topic="chat/general",
                         prompt=f"hello number {i}"))
    return out


def test_account_resolved_repeats_the_firing_severity() -> None:
    runner = PartitionRunner(Detector())
    alerts = [a for e in _events(1) for a in runner.process(e)]
    acct = [a.to_record() for a in alerts if a.detector == "account" and a.account_id == "x"]
    firing = [a for a in acct if a["status"] == "firing"]
    resolved = [a for a in acct if a["status"] == "resolved"]
    assert firing and resolved, [a["status"] for a in acct]
    for r in resolved:
        f = next(a for a in firing if a["dedup_key"] == r["dedup_key"]
                 and a["episode_start"] == r["episode_start"])
        assert r["details"]["firing_severity"] == f["severity"] != "info"
        _same_labels(f, r)


def test_cluster_resolved_repeats_the_firing_severity_and_survives_a_restore() -> None:
    det = ClusterDetector(quiet_period_s=1800)
    summaries = hydra_summaries(random.Random(3), 8)
    alerts = run_summaries(det, summaries)
    firing = {a.dedup_key: a.to_record() for a in alerts
              if a.detector == "cluster" and a.status == "firing"}
    assert firing
    # every firing cluster restored from its checkpointed JSON (the changelog)
    for key in [a.details["cluster_key"] for a in alerts if a.detector == "cluster"]:
        c = det.cluster(key)
        assert c is not None and c.fire_sev == firing[f"cluster:{key}"]["severity"]
        again = Cluster.from_json(orjson.loads(orjson.dumps(c.to_json())))
        assert again.fire_sev == c.fire_sev
    end = summaries[-1].ts
    for i in range(12):
        s = AccountSummary(f"x{i}", end + 300 * (i + 1), end, ("pay:other",))
        alerts.extend(det.process("pay:other", s))
    resolved = [a.to_record() for a in alerts if a.detector == "cluster" and a.status == "resolved"]
    assert {r["dedup_key"] for r in resolved} == set(firing)
    for r in resolved:
        assert r["details"]["firing_severity"] == firing[r["dedup_key"]]["severity"]
        _same_labels(firing[r["dedup_key"]], r)


def test_cluster_state_written_before_the_field_restores_without_it() -> None:
    c = Cluster("pay:p", T0)
    c.fire_sev = "error"
    old = c.to_json()
    del old["fs"]
    assert Cluster.from_json(old).fire_sev == ""
    c.fire_sev = ""
    assert "fs" not in c.to_json()  # a quiet cluster's state is what it was


def test_account_state_version_4_still_decodes_with_the_severity_unknown() -> None:
    s = AccountState("acct-1", 1e9)
    s.n, s.episode_start, s.peak_score, s.fire_sev = 7, 1e9 + 5, 0.9, 2
    blob = s.encode()
    # the same state as version 4 wrote it: no fire_sev, the last of INTS
    head = struct.Struct("<BH")
    v5 = struct.Struct("<" + "d" * len(FLOATS) + "q" * len(INTS) + "BB")
    v4 = struct.Struct("<" + "d" * len(FLOATS) + "q" * (len(INTS) - 1) + "BB")
    version, n_aid = head.unpack_from(blob, 0)
    assert version == 8 and _HEAD.size == head.size
    ph = 2 * struct.calcsize("<7d")
    # (version 8 added the busy-period peaks, 24 bytes, before the two Page-Hinkley states)
    blob8, blob = blob, head.pack(7, n_aid) + blob[head.size : len(blob) - ph - 24] + blob[-ph:]
    # (version 7 added sur_long, 8 bytes, before the two Page-Hinkley states)
    blob7, blob = blob, head.pack(6, n_aid) + blob[head.size : len(blob) - ph - 8] + blob[-ph:]
    # (version 6 added the time-weighted topic mix before the two Page-Hinkley states)
    cut = len(blob) - ph - 8 * len(s.w_time)
    blob6, blob = blob, blob[:cut] + blob[cut + 8 * len(s.w_time):]
    pos = head.size + n_aid
    nums = list(v5.unpack_from(blob, pos))
    del nums[len(FLOATS) + len(INTS) - 1]
    old = head.pack(4, n_aid) + blob[head.size:pos] + v4.pack(*nums) + blob[pos + v5.size:]
    restored = AccountState.decode(old)
    assert restored.fire_sev == 0
    assert (restored.n, restored.episode_start, restored.peak_score) == (7, 1e9 + 5, 0.9)
    restored.fire_sev = 2
    assert restored == s
    assert AccountState.decode(head.pack(5, n_aid) + blob[head.size:]).fire_sev == 2
    assert AccountState.decode(blob6).fire_sev == 2
    assert AccountState.decode(blob7).fire_sev == 2
    assert AccountState.decode(blob8).fire_sev == 2
