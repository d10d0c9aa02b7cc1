"""The optimised cluster stage (detectors/cluster.py) against the frozen
original (tests/reference_cluster.py): the same summaries, alerts, encoded
cluster state at every checkpoint and partition snapshots, bit for bit.

Streams: simulator traffic with hydra and hydra_cover campaigns through the
full two-stage replay, the detector benchmark's stream, and direct summary
streams with a small sample (bottom-k replacement, stale-member pruning,
episodes that resolve, idle keys that expire, restarts from a checkpoint)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import partial
from types import ModuleType
from typing import Any

import pytest

import detectors.cluster as fast
import tests.reference_cluster as ref
from detectors.engine import Detector
from detectors.replay import Replayer
from detectors.schema import Event, parse_event

T0 = 1_771_840_800.0
Digest = dict[str, Any]


def _checkpoint(stage: Any, out: list[Any]) -> None:
    for p, d in enumerate(stage.detectors):
        changed, removed = d.take_dirty()
        if changed or removed:
            out.append((p, changed, removed))


def _two_stage(
    mod: ModuleType, events: Sequence[Event], partitions: int = 4, every: int = 300, **kw: Any
) -> Digest:
    """Replayer's loop with ``mod``'s emitter and cluster stage; everything it outputs."""
    factory = partial(mod.ClusterDetector, **kw)
    rep = Replayer(Detector, partitions=partitions, summary_emitter=mod.SummaryEmitter())
    rep.clusters = stage = mod.ClusterStage(factory, partitions)
    summaries, alerts, ckpt = [], [], []  # type: ignore[var-annotated]
    for i, event in enumerate(events):
        runner = rep.runners[rep.partition_of(event.account_id)]
        alerts += [a.to_record() for a in runner.process(event)]
        for s in runner.take_summaries():
            summaries.append(s.encode())
            alerts += [a.to_record() for a in stage.process(s)]
        if i % every == 0:
            _checkpoint(stage, ckpt)
    _checkpoint(stage, ckpt)
    return {
        "summaries": summaries,
        "alerts": alerts,
        "checkpoints": ckpt,
        "snapshots": [d.snapshot() for d in stage.detectors],
        "memory": [
            [
                (k, mod.encode_entry(c), c.count(), c.score)
                for k, c in sorted(d._clusters.items())
            ]
            + sorted(d._singles.items())
            for d in stage.detectors
        ],
    }


def _assert_same(got: Digest, want: Digest) -> None:
    for part in want:
        assert got[part] == want[part], part


def _simulated(seed: int, attacks: dict[str, int]) -> list[Event]:
    from simulator.simulate import simulate

    sim = simulate(seed=seed, hours=4, accounts=120, attacks=attacks)
    return [parse_event(e) for e in sim.events]


@pytest.mark.parametrize(
    ("seed", "attacks"),
    [(5, {"hydra_cover": 1}), (1, {"hydra": 1, "hydra_cover": 1}), (11, {"hydra": 2})],
)
def test_two_stage_replay_matches_reference(seed: int, attacks: dict[str, int]) -> None:
    events = _simulated(seed, attacks)
    want = _two_stage(ref, events)
    got = _two_stage(fast, events)
    statuses = {(a["detector"], a["status"]) for a in want["alerts"]}
    assert ("cluster", "firing") in statuses and ("cluster_member", "firing") in statuses
    _assert_same(got, want)


def test_benchmark_stream_matches_reference() -> None:
    from benchmarks.detectors import make_events

    events = make_events(12_000, n_accounts=400)
    # a small sample: full samples, bottom-k replacement and big-cluster rescoring
    kw = {"max_sample": 24, "rescore_interval_s": 20.0}
    want = _two_stage(ref, events, partitions=8, **kw)
    got = _two_stage(fast, events, partitions=8, **kw)
    assert any(a["detector"] == "cluster" for a in want["alerts"])
    _assert_same(got, want)


# ------------------------------------------------------ direct summary streams


def _rotating(seed: int, rounds: int = 30) -> list[Any]:
    """Campaigns whose accounts come and go (stale members, bottom-k churn),
    organisations, and one-off accounts; as ``(account, ts, first_ts, keys,
    top_topics, fps, template, elicitation, flatness, rate, score, events)``."""
    rng = random.Random(seed)
    topics = ["coding/rust", "math/proofs", "writing/email", "data/sql", "support/faq"]
    out = []
    for r in range(rounds):
        base = T0 + r * 300 + (1800 if r >= rounds // 2 else 0)  # a gap: episodes resolve
        for i in range(rng.randint(40, 90)):
            kind = rng.random()
            if kind < 0.5:  # campaign members, a rotating subset of 300
                n = rng.randrange(300) if r < rounds * 3 // 4 else 300 + rng.randrange(200)
                acct = f"hyd-{n}"
                keys = (f"pay:pm_h{n % 3}", f"ip:203.0.{n % 4}.0/24", "ua:aiohttp/3.9.5",
                        "tmpl:1234abcd", "lsh:0-0000beef")
                top: tuple[tuple[str, float], ...] = (("coding/rust", rng.choice([0.9, 0.7])),)
                fps = (0x1234ABCD, rng.getrandbits(32)) if rng.random() < 0.9 else (7,)
                first = T0 + 3600 + rng.uniform(0, 600) if n < 300 else base
                vals = (0.8, 0.5, rng.uniform(0.3, 0.95), rng.uniform(0.05, 2.0), 0.5)
            elif kind < 0.85:  # organisations
                n = rng.randrange(60)
                acct = f"org-{n}"
                keys = (f"pay:pm_o{n % 4}", f"org:org_{n % 4}", f"ua:lumen/{n % 2}")
                top = ((rng.choice(topics), round(rng.uniform(0.2, 0.6), 4)),
                       (rng.choice(topics), 0.1))
                fps = tuple(rng.getrandbits(32) for _ in range(rng.randint(0, 8)))
                first = T0 + rng.uniform(0, 7200)
                vals = (rng.uniform(0, 0.2), rng.uniform(0, 0.05), 0.4, 0.2, 0.1)
            else:  # one-off accounts, keys seen once
                acct = f"solo-{r}-{i}"
                keys = (f"pay:pm_s{r}_{i}", "ua:curl/8")
                top = ()
                fps = ()
                first = base
                vals = (0.0, 0.0, 0.0, 0.0, 0.0)
            ts = base + rng.uniform(0, 299)
            out.append((acct, ts, min(first, ts), keys, top, fps, *vals, rng.randint(1, 99)))
    out.sort(key=lambda v: v[1])
    return out


def _direct(mod: ModuleType, rows: list[Any], restart_at: int | None = None,
            then: ModuleType | None = None, **kw: Any) -> Digest:
    """Feed ``rows`` to ``mod``'s detector; at ``restart_at`` checkpoint, and go on
    with a fresh detector of ``then`` that loads the checkpoint."""
    det = mod.ClusterDetector(**kw)
    alerts, ckpt = [], []
    table: dict[str, bytes] = {}
    for i, row in enumerate(rows):
        s = mod.AccountSummary(*row)
        for key in s.keys:
            alerts += [a.to_record() for a in det.process(key, s)]
        if i % 97 == 0:
            changed, removed = det.take_dirty()
            ckpt.append((changed, removed))
            table.update(changed)
            for k in removed:
                table.pop(k, None)
        if i == restart_at:
            changed, removed = det.take_dirty()
            table.update(changed)
            for k in removed:
                table.pop(k, None)
            meta = det.snapshot()
            mod = then or mod
            det = mod.ClusterDetector(**kw)
            det.loader = lambda k, m=mod: m.decode_entry(table[k]) if k in table else None
            det.restore(meta)
    ckpt.append(det.take_dirty())
    return {
        "alerts": alerts,
        "checkpoints": ckpt,
        "snapshot": det.snapshot(),
        "memory": [(k, mod.encode_entry(c)) for k, c in sorted(det._clusters.items())],
    }


_SMALL = {"max_sample": 12, "member_ttl_s": 900.0, "quiet_period_s": 900.0,
          "idle_ttl_s": 3600.0, "rescore_interval_s": 45.0, "alert_bloom_bits": 1 << 12}


# loose core thresholds: the incremental fingerprint counts often say "a core
# may exist", so full evaluations and skipped ones interleave
_LOOSE = {**_SMALL, "min_members": 2, "shared_fp_share": 0.1}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("kw", [{}, _SMALL, _LOOSE], ids=["default", "small-sample", "loose"])
def test_cluster_detector_matches_reference(seed: int, kw: dict[str, Any]) -> None:
    # the incremental fingerprint counts through eviction, pruning, restarts
    rows = _rotating(seed)
    want = _direct(ref, rows, **kw)
    got = _direct(fast, rows, **kw)
    statuses = {(a["detector"], a["status"]) for a in want["alerts"]}
    assert {("cluster", "firing"), ("cluster", "resolved")} <= statuses
    _assert_same(got, want)
    # a restart from the reference's checkpoint continues as the reference does
    half = len(rows) // 2
    got = _direct(ref, rows, restart_at=half, then=fast, **kw)
    want = _direct(ref, rows, restart_at=half, **kw)
    _assert_same(got, want)


def test_cluster_benchmark_summaries_match_reference() -> None:
    from benchmarks.clusters import summaries

    stream = summaries(1500, 300, 3)

    def run(mod: ModuleType) -> Digest:
        stage = mod.ClusterStage(partial(mod.ClusterDetector, max_sample=32), 4)
        alerts = []
        for s in stream:
            alerts += [a.to_record() for a in stage.process(mod.AccountSummary(*_fields(s)))]
        ckpt: list[Any] = []
        _checkpoint(stage, ckpt)
        return {"alerts": alerts, "checkpoints": ckpt,
                "snapshots": [d.snapshot() for d in stage.detectors]}

    want = run(ref)
    assert any(a["detector"] == "cluster" for a in want["alerts"])
    _assert_same(run(fast), want)


def _fields(s: Any) -> tuple[Any, ...]:
    return (s.account_id, s.ts, s.first_ts, s.keys, s.top_topics, s.fps, s.template,
            s.elicitation, s.flatness, s.rate, s.score, s.events)


def test_emitter_helpers_match_reference() -> None:
    rng = random.Random(3)
    names = ["coding/rust", "math/proofs", "a", "ü/ß", "x" * 300, "\ud800bad"]
    for _ in range(500):
        top = [(rng.choice(names), rng.choice([0.0, 0.05, 0.15, 0.1499, 0.5, 1.0]))
               for _ in range(rng.randint(0, 4))]
        bands = rng.randint(0, 3)
        share = rng.choice([0.0, 0.15, 0.6])
        assert fast.topic_signature(top, bands, share) == ref.topic_signature(top, bands, share)
    for ip in ["10.1.2.3", " 10.1.2.3 ", "::ffff:1.2.3.4", "2001:db8::1", "1.2.3", "x", "", None,
               "01.2.3.4", "1.2.3.４", "fe80::1%eth0"]:
        ev = Event(T0, "a", ip=ip, payment_fingerprint=" pm  1 ", org_id="", user_agent="ua")
        assert fast.linkage_keys(ev, [1, 0xFFFFFFFF], ["0-1"]) == ref.linkage_keys(
            ev, [1, 0xFFFFFFFF], ["0-1"])
    for a in ["", "a", "acct-ü", "\ud800"]:
        assert fast.account_hash(a) == ref.account_hash(a)

