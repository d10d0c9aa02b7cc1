"""Per-stage timings (streams.service.stages): present in the replay summary, in the
metrics file and on /metrics; monotone; adding up to the time spent; and not
changing what is detected."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import orjson
import pytest

from streams.service.metrics import Metrics
from streams.service.processor import StreamProcessor
from streams.service.stages import STAGES, StageTimes


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two simulated hours with a hydra campaign: every stage has work."""
    from simulator.simulate import simulate

    sim = simulate(seed=3, hours=2, accounts=80, attacks={"hydra": 1, "extractor": 1})
    path = tmp_path_factory.mktemp("stages") / "day.jsonl.gz"
    with gzip.open(path, "wb") as fh:
        for event in sim.events:
            fh.write(orjson.dumps(event) + b"\n")
    return path


def test_stage_times_validate_sample_and_stay_monotone() -> None:
    with pytest.raises(ValueError, match="every"):
        StageTimes(every=0)
    ticks = iter(range(0, 10**6, 7))
    times = StageTimes(every=4, clock=ticks.__next__)
    sampled = [times.event_sampled() for _ in range(12)]
    assert sampled == [False, False, False, True] * 3
    last = times.seconds()
    for stage in STAGES * 3:
        with times.measure(stage):
            pass
        now = times.seconds()
        assert all(now[s] >= last[s] for s in STAGES)
        last = now
    # each measure took one tick (7 ns) and stands for 4 units
    assert last == {s: 3 * 7 * 4 / 1e9 for s in STAGES}
    assert times.samples == dict.fromkeys(STAGES, 3)
    # merging another process's timings (in its own sampling unit)
    other = StageTimes(every=8)
    other.add("cluster", 1000)
    times.merge(other.to_json())
    assert times.seconds()["cluster"] == pytest.approx(last["cluster"] + 8000 / 1e9)


def test_timed_event_charges_the_inner_stages_to_them() -> None:
    ticks = iter(range(0, 10**6, 10))
    times = StageTimes(every=1, clock=ticks.__next__)

    def process(event: object) -> list[object]:
        times.add("summaries", 3)  # what the wrapped summarizer would record
        return [event]

    assert times.timed_event(process, "e") == ["e"]
    assert times.ns["account"] == 10 - 3 and times.ns["summaries"] == 3
    assert times.on is False


@pytest.mark.slow  # a whole simulated run through replay
@pytest.mark.parametrize("jobs", [1, 2])
def test_replay_reports_every_stage_adding_up(day: Path, jobs: int) -> None:
    from streams.replay.replayer import replay_files

    timed = replay_files([day], jobs=jobs, stage_every=1, show_progress=False)
    plain = replay_files([day], jobs=jobs, stage_every=0, show_progress=False)
    # timing changes nothing that is detected
    assert [a.to_record() for a in timed.alerts] == [a.to_record() for a in plain.alerts]
    assert plain.stages is None
    times = timed.stages
    assert times is not None
    secs = times.seconds()
    assert all(secs[s] > 0 for s in STAGES), secs
    events = timed.stats.events
    assert times.samples["account"] == events
    # each event is decoded and validated by the replay process it belongs
    # to; without the C line scanner, by every process
    from streams.replay import logfiles

    per = 1 if jobs == 1 or logfiles.SCAN is not None else jobs
    assert times.samples["validate"] == per * events
    assert times.samples["decode"] == per * timed.stats.lines
    assert 0 < times.samples["summaries"] < events
    if jobs == 1:
        # one process: the stages are inside the elapsed time, and most of it
        total = sum(secs.values())
        assert 0.4 * timed.elapsed_s < total <= timed.elapsed_s
        report = times.report(events, timed.elapsed_s)
        assert report["other_s"] >= 0
        assert sum(report[s]["share"] for s in STAGES) == pytest.approx(1.0, abs=1e-3)


def test_replay_sampling_one_in_n(day: Path) -> None:
    from streams.replay.replayer import replay_files

    result = replay_files([day], jobs=1, stage_every=16, show_progress=False)
    assert result.stages is not None
    assert result.stages.samples["account"] == result.stats.events // 16


def test_replay_cli_prints_and_writes_stages(day: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from streams.cli import main

    metrics = tmp_path / "m.json"
    rc = main(["replay", str(day), "--alerts-out", str(tmp_path / "a.jsonl"),
               "--metrics-out", str(metrics), "--jobs", "1", "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    assert re.search(r"per event: decode [\d.]+ µs \(\d+%\), validate", out), out
    stages = orjson.loads(metrics.read_bytes())["stages"]
    assert set(STAGES) <= set(stages) and stages["sampled_1_in"] == 16
    assert stages["processes"] == 1


def test_processor_and_metrics_expose_monotone_stage_counters(day: Path) -> None:
    from detectors.cluster import ClusterDetector, SummaryEmitter
    from streams.service.clusters import ClusterProcessor
    from streams.service.detection import AccountState, detector_factory

    times = StageTimes(every=2)
    proc = StreamProcessor(detector_factory({}), AccountState, summarizer=SummaryEmitter(),
                           times=times)
    clusters = ClusterProcessor(ClusterDetector, times=times)
    metrics = Metrics()
    metrics.stages = times
    with gzip.open(day, "rb") as fh:
        lines = fh.read().splitlines()
    scraped: list[dict[str, float]] = []
    for i, line in enumerate(lines):
        account = orjson.loads(line)["account_id"].encode()
        out = proc.handle(line, account, "api-requests", 0, i)
        assert not out.dead
        for summary in out.summaries:
            for key in summary.keys:
                clusters._process(0, key, summary, None)
        if i % 500 == 0 or i == len(lines) - 1:
            text = metrics.render()
            found = dict(re.findall(
                r'^distillwatch_stage_seconds_total\{stage="(\w+)"\} ([\d.e-]+)$', text, re.M))
            assert set(found) == set(STAGES)
            scraped.append({s: float(v) for s, v in found.items()})
    for before, after in zip(scraped, scraped[1:], strict=False):
        assert all(after[s] >= before[s] for s in STAGES)
    assert all(scraped[-1][s] > 0 for s in STAGES), scraped[-1]
    assert 'distillwatch_stage_samples_total{stage="decode"}' in metrics.render()


def test_setting_turns_stage_timing_off() -> None:
    from streams.errors import ConfigError
    from streams.settings import Settings

    assert Settings().stage_timing_every == 16
    assert Settings.load(env={"DISTILLWATCH_STAGE_TIMING_EVERY": "0"}).stage_timing_every == 0
    with pytest.raises(ConfigError, match="stage_timing_every"):
        Settings(stage_timing_every=-1)


def test_collector_pauses_are_timed_apart_and_kept_out_of_the_stages() -> None:
    import gc

    ticks = iter(range(0, 10_000, 10))
    times = StageTimes(every=1, clock=ticks.__next__)
    with times.track_gc():
        t0 = times.clock()  # 0
        gc.collect()  # the callback reads the raw clock at start and stop: 10, 20
        times.add("summaries", times.clock() - t0)  # raw 30, less the 10 ns pause
        assert gc.callbacks[-1].__name__ == "on_gc"
    assert times.ns["summaries"] == 20 and times.gc_ns == 10 * times.gc_pauses
    assert times.gc_pauses >= 1
    assert all(getattr(cb, "__name__", "") != "on_gc" for cb in gc.callbacks)
    merged = StageTimes(every=1)
    merged.merge(times.to_json())
    assert merged.gc_ns == times.gc_ns and "gc pauses" in merged.line(10)
