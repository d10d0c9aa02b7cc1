"""Replay split across processes gives exactly the one-process replay's output."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import orjson
import pytest

from streams.cli import main
from streams.replay.parallel import ParallelReplayError, replay_files_parallel
from streams.replay.replayer import replay_files


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two overlapping files (one gzipped) of simulator traffic with every attack
    family, hydra campaigns included; some events a little out of order, one
    far beyond the lateness allowance, bad lines, and batched (array) lines."""
    from simulator.simulate import simulate

    sim = simulate(seed=3, hours=2, accounts=150, attacks="all")
    events = [orjson.dumps(e) for e in sim.events]
    rng = random.Random(5)
    a, b = [], []
    for line in events:
        (a if rng.random() < 0.5 else b).append(line)
    for i in range(0, len(a) - 1, 97):  # local disorder within the lateness allowance
        a[i], a[i + 1] = a[i + 1], a[i]
    a.insert(len(a) // 2, events[0])  # an hour late: released at once, counted late
    a.insert(10, b"{not json")
    a.insert(20, b'{"ts": "yesterday", "account_id": "x"}')
    b.insert(30, b"[" + b",".join(events[:3]) + b"]")
    root = tmp_path_factory.mktemp("logs")
    pa, pb = root / "a.jsonl", root / "b.jsonl.gz"
    pa.write_bytes(b"\n".join(a) + b"\n")
    with gzip.open(pb, "wb") as fh:
        fh.write(b"\n".join(b) + b"\n")
    return [pa, pb]


def _records(alerts) -> list[bytes]:  # type: ignore[no-untyped-def]
    return [orjson.dumps(a.to_record()) for a in alerts]


@pytest.mark.parametrize("jobs", [2, 3])
def test_parallel_replay_is_byte_identical(logs: list[Path], jobs: int) -> None:
    one = replay_files(logs, partitions=8, show_progress=False)
    many = replay_files(logs, partitions=8, show_progress=False, jobs=jobs)
    assert many.replayer is None
    assert _records(one.alerts) == _records(many.alerts)
    assert any(a.detector == "campaign" for a in one.alerts)  # stage 3 folds clusters
    # resolutions wait the campaign stage's hold-down (30 min), longer than
    # this log runs after its last episode; firing ones are all there
    assert "firing" in {a.status for a in one.alerts}
    assert one.stats == many.stats and one.stats.bad == 2 and one.stats.late >= 1
    assert one.accounts == many.accounts
    assert one.seen_accounts == many.seen_accounts


def test_a_failing_child_is_reported_not_hung(logs: list[Path]) -> None:
    with pytest.raises(ParallelReplayError, match="failed"):
        replay_files_parallel(logs, {"score": {"fire_threshold": 7.0}}, jobs=2)


def test_jobs_must_fit_the_partitions(logs: list[Path]) -> None:
    with pytest.raises(ValueError, match="jobs"):
        replay_files_parallel(logs, jobs=9, partitions=8)


def test_replay_cli_jobs(logs: list[Path], tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    outs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"alerts-{jobs}.jsonl"
        assert main(["replay", *map(str, logs), "--alerts-out", str(out), "--jobs", jobs,
                     "--no-progress"]) == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] and outs[0]
    assert "2 bad line(s)" in capsys.readouterr().out


def test_replay_collects_the_young_generation_less_often_and_restores_it(
    logs: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    from detectors.replay import Replayer
    from streams.replay import replayer as replay_mod

    before = gc.get_threshold()
    during: list[tuple[int, int, int]] = []
    real = Replayer.process

    def spy(self: Replayer, event):  # type: ignore[no-untyped-def]
        if not during:
            during.append(gc.get_threshold())
        return real(self, event)

    monkeypatch.setattr(Replayer, "process", spy)
    replay_files(logs, partitions=4, show_progress=False)
    assert during == [(replay_mod.REPLAY_GC_THRESHOLD, *before[1:])]
    assert gc.get_threshold() == before
    # restored when the replay fails, too
    with pytest.raises(FileNotFoundError):
        replay_files([logs[0].with_name("missing.jsonl")], show_progress=False)
    assert gc.get_threshold() == before
