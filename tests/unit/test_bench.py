"""``distillwatch bench`` runs end to end on tiny sizes and yields all
sections. Functional only: no timing is asserted here (timings live in the
benchmark's own output).

The parts on real servers or subprocesses: tests/integration/test_bench_live.py."""

from __future__ import annotations

from benchmarks.bench import Profile, table


def test_bench_cli_registered():
    from streams.cli import build_parser

    args = build_parser().parse_args(["bench", "--quick", "--json", "x.json"])
    assert args.quick and args.json == "x.json" and callable(args.func)


def test_worker_sections_report_the_median_run(monkeypatch):
    # sections 2-4 repeat on fresh topics; the reported run is the median one,
    # and every run's figures are kept (no broker needed: the runs are canned)
    from benchmarks import bench

    canned = iter([{"events_per_s": 50, "events_per_cpu_s": 40, "seconds": 1.0, "alerts": 1},
                   {"events_per_s": 70, "events_per_cpu_s": 65, "seconds": 0.7, "alerts": 2},
                   {"events_per_s": 60, "events_per_cpu_s": 66, "seconds": 0.8, "alerts": 3}])
    monkeypatch.setattr(bench, "phase_worker", lambda *a, **k: next(canned))
    calls = []

    class Ctx:
        profile = Profile(hours=0.05, accounts=40, repeats=3)

    out = bench.phase_worker_median(Ctx(), "m", "k", [], 0,  # type: ignore[arg-type]
                                    lambda: calls.append(1))
    assert out["events_per_s"] == 60 and out["events_per_cpu_s"] == 66 and out["alerts"] == 3
    assert [r["events_per_s"] for r in out["runs"]] == [50, 70, 60]
    assert len(calls) == 2  # before the second and the third run
    row = [line for line in table({"single": out}).splitlines() if "full detection" in line]
    assert "median of 3" in row[0]


def test_scaleout_reports_medians_and_reruns_a_rebalanced_run(monkeypatch):
    # runs interleave 1, 2, 1, 2, ...; a run in which a worker was assigned
    # twice (a rebalance in the window) or got nothing is recorded and run
    # again; the ratio is of the two medians (no broker: the runs are canned)
    from benchmarks import bench

    def run(rate, assignments, per_worker):
        return {"events_per_s": rate, "events_per_cpu_s": rate, "seconds": 1.0,
                "assignments": assignments, "per_worker": per_worker}

    canned = iter([
        run(50, [1], [9]), run(80, [1, 1], [4, 5]),
        run(40, [1], [9]), run(99, [2, 1], [4, 5]), run(90, [1, 1], [5, 4]),
        run(60, [1], [9]), run(85, [1, 0], [9, 0]), run(70, [1, 1], [4, 5]),
        # a fourth round in which no two-worker run is clean: the last is kept
        run(55, [1], [9]), run(71, [2, 1], [4, 5]), run(72, [1, 2], [4, 5]),
        run(73, [2, 2], [4, 5]),
    ])
    seen = []

    def fake(ctx, messages, total, n_workers):
        seen.append(n_workers)
        return next(canned)

    monkeypatch.setattr(bench, "_scaleout_run", fake)
    monkeypatch.setattr(bench, "replicate", lambda messages, copies: messages)

    class Ctx:
        profile = Profile(hours=0.05, accounts=40, scaleout_repeats=4)

    class Data:
        batched: list = []
        batched_events = 9

    out = bench.phase_scaleout(Ctx(), Data())  # type: ignore[arg-type]
    assert seen == [1, 2, 1, 2, 2, 1, 2, 2, 1, 2, 2, 2]
    assert [r["events_per_s"] for r in out["1"]["runs"]] == [50, 40, 60, 55]
    assert [r["events_per_s"] for r in out["2"]["runs"]] == [80, 90, 70, 73]
    assert [r["clean"] for r in out["2"]["runs"]] == [True, True, True, False]
    assert out["1"]["events_per_s"] == 50 and out["2"]["events_per_s"] == 73
    assert out["ratio"] == 1.46
    assert [f["assignments"] for f in out["join_failures"]] == [[2, 1], [1, 0], [2, 1], [1, 2],
                                                                [2, 2]]
    rows = [line for line in table({"scaleout": out}).splitlines() if "in one group" in line]
    assert all("median of 4" in row for row in rows)


def test_stamped_rate_spans_all_workers_and_needs_every_stamp():
    from benchmarks.bench import stamped_rate

    a = {"events": 60, "first_message_at": 100.0, "last_message_at": 101.5}
    b = {"events": 40, "first_message_at": 100.5, "last_message_at": 102.0}
    assert stamped_rate([a, b], 100) == 50.0  # 100 events over 100.0 .. 102.0
    idle = {"events": 0, "first_message_at": 0.0, "last_message_at": 0.0}
    assert stamped_rate([a, idle], 60) == 40.0  # a worker with no events does not count
    assert stamped_rate([{"events": 5}], 5) is None  # an agent without stamps: polled instead
    assert stamped_rate([{"events": 5, "first_message_at": 3.0, "last_message_at": 3.0}], 5) is None


def test_bench_workload_selection_runs_each_and_compares(monkeypatch, capsys, tmp_path):
    # --workload picks the data; each workload runs in full and gets its own
    # table, then a side-by-side row each (no broker: the runs are canned)
    from benchmarks import bench
    from streams.cli import main

    seen = []

    def fake_run(profile, *, sections, say):
        seen.append((profile.workload, profile.accounts, profile.hours, sections))
        eps = 1000 if profile.workload == "realistic" else 3000
        return {"data": {"workload": profile.workload, "events": eps * 10,
                         "accounts": profile.accounts},
                "replay": {"events_per_s": eps, "jobs": 2,
                           "jobs_1": {"jobs": 1, "events_per_s": eps // 2}},
                "detectors": {"both_stages": {"us_per_event": 12.5,
                                              "cluster_work_per_1k_events": {"scored": 33.5}},
                              "state_bytes_per_account": 1234},
                "targets": {}, "elapsed_s": 1.0, "machine": {},
                "loadavg_start": (1.5, 2.0, 3.0), "loadavg_end": (4.0, 3.0, 2.0)}

    monkeypatch.setattr(bench, "run", fake_run)
    out_json = tmp_path / "b.json"
    assert main(["bench", "--workload", "realistic,classic", "--only", "replay,detectors",
                 "--json", str(out_json)]) == 0
    assert seen == [("realistic", 10_000, 0.5, ("replay", "detectors")),
                    ("classic", 1_000, 0.5, ("replay", "detectors"))]
    text = capsys.readouterr().out
    assert "## workload realistic: production mix" in text and "## workload classic" in text
    side = text.split("## side by side")[1]
    rows = [line for line in side.splitlines() if line.startswith("| realistic")
            or line.startswith("| classic")]
    assert len(rows) == 2 and "1,000 (2 proc)" in rows[0] and "33.5" in rows[0]
    assert "3,000 (2 proc)" in rows[1] and "| 500 " in rows[0]
    assert "| 1,234 " in rows[0]  # encoded state per account
    # the machine's load beside every run's figures
    assert "load average 1.5, 2.0, 3.0 at the start, 4.0, 3.0, 2.0 at the end" in text
    import json

    assert set(json.loads(out_json.read_text())["workloads"]) == {"realistic", "classic"}
    # quick sizes, one workload: the JSON is that run's, as before
    seen.clear()
    assert main(["bench", "--quick", "--workload", "realistic-100k", "--only", "replay",
                 "--json", str(out_json)]) == 0
    assert seen == [("realistic-100k", 10_000, 0.05, ("replay",))]
    assert json.loads(out_json.read_text())["data"]["workload"] == "realistic-100k"
    # the default is both rows: the realistic workload first, the classic one beside it
    from streams.cli import build_parser

    assert build_parser().parse_args(["bench"]).workload == "realistic,classic"
    assert main(["bench", "--workload", "nope"]) == 2
    assert "unknown workload" in capsys.readouterr().err


def test_realistic_workload_has_big_shared_key_organisations():
    from collections import Counter
    from itertools import islice

    from benchmarks.workloads import workload_dicts

    events = list(workload_dicts("realistic", 7, 300, 1.0))
    assert events[:500] == list(islice(workload_dicts("realistic", 7, 300, 1.0), 500))
    members: dict[str, set[str]] = {}
    for e in events:
        members.setdefault(e.get("payment_fingerprint") or "", set()).add(e["account_id"])
    sizes = Counter({k: len(v) for k, v in members.items() if k.startswith("pm_big")})
    # 4%, 2%, 1% of 300 benign accounts (12, 6, 3), those that sent an event
    # in the hour
    assert len(sizes) == 3 and 5 <= max(sizes.values()) <= 12
    big = [e for e in events if e.get("payment_fingerprint") == "pm_big0_0007"]
    assert {e["ip"].rsplit(".", 1)[0] for e in big} == {"10.40.7"}
    assert {e["org_id"] for e in big} == {"org_big0_7"}
    # the production mix: real-text prompts and metadata-only events are in it
    assert any(not e.get("prompt") for e in events)
