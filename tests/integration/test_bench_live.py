"""``distillwatch bench`` runs end to end on tiny sizes and yields all
sections. Functional only: no timing is asserted here (timings live in the
benchmark's own output).

Here the parts on real servers or subprocesses; the pure ones: tests/unit/test_bench.py."""

from __future__ import annotations

import pytest

from benchmarks.bench import SECTIONS, Profile, assess, run, table

# it times workers and reads their CPU shares: alone, after the parallel pass
pytestmark = pytest.mark.serial


@pytest.mark.timeout(180)
def test_bench_tiny_produces_all_sections(tmp_path):
    profile = Profile(hours=0.05, accounts=40, repeats=1, latency_max_events=400,
                      memory_accounts=(200, 1000), partitions=4, scaleout_repeats=1)
    results = run(profile, say=lambda _: None, workdir=tmp_path / "bench")
    for section in SECTIONS:
        assert section in results, section
    events = results["data"]["events"]
    assert events > 100
    for section in ("raw", "noop", "single", "batched", "replay", "detectors"):
        assert results[section]["events_per_s"] > 0, section
    det = results["detectors"]
    assert det["account_stage"]["events_per_s"] > 0 and det["both_stages"]["events_per_s"] > 0
    assert results["single"]["rejected"] == 0 and results["batched"]["rejected"] == 0
    assert results["latency"]["events"] > 0
    assert set(results["memory"]) == {"200", "1000"}
    scaled = events * profile.scaleout_copies
    assert results["scaleout"]["1"]["events"] == results["scaleout"]["2"]["events"] == scaled
    # the cores the workers and the broker used in each timed window
    for section in (results["batched"], results["scaleout"]["2"]):
        assert section["worker_cores"] >= 0 and section["broker_cores"] >= 0
    assert "broker" in [line for line in table(results).splitlines() if "2 workers" in line][0]
    assert sum(results["scaleout"]["2"]["per_worker"]) >= scaled
    # both workers took part, each joined once: no rebalance inside the window
    so = results["scaleout"]
    assert so["1"]["assignments"] == [1] and so["2"]["assignments"] == [1, 1]
    assert all(n > 0 for n in so["2"]["per_worker"])
    assert so["compression"] == profile.scaleout_compression and so["copies"] == 4
    # workers are timed by their own stamps (the polled rate is kept beside it)
    for section in (results["noop"], results["single"], results["batched"], so["2"]):
        assert section["timed_by"] == "worker stamps" and section["polled_events_per_s"] > 0
    assert set(assess(results)) == set(results["targets"])
    text = table(results)
    for n in ("1", "2", "3", "4", "5", "5b", "6", "7", "8"):
        assert f"| {n} " in text
