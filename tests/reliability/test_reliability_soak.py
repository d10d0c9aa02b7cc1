"""Shortened soak (issue 8): one worker at a fixed fraction of its measured
maximum rate for 50 s: resident memory flat after warm-up (bounded state,
idle-account expiry), backlog and consumer lag bounded and drained. The full
10-minute run: ``distillwatch soak --minutes 10`` (see docs/reliability.md)."""

from __future__ import annotations

import pytest

from benchmarks.soak import run_soak

pytestmark = [pytest.mark.integration, pytest.mark.serial]


def test_short_soak_memory_flat_and_lag_bounded(broker, tmp_path):
    # The maximum is the rate sustained while this process publishes (see
    # benchmarks.soak); 0.5 of it, not the full soak's 0.8, because the shared CI
    # machine's load changes between calibration and soak (stop 11 failed at
    # 0.6 of a burst-only maximum: the backlog grew the whole run).
    result = run_soak(broker.url, minutes=50 / 60, load=0.5, workdir=tmp_path,
                      calibrate_events=8_000, sustain_s=8.0)
    print("\n" + result.summary())
    for s in result.samples[::5]:
        print(f"  t={s.t:6.1f}s rss={s.rss_mb:6.1f} MB lag={s.lag:6d} backlog={s.behind:6d} "
              f"events={s.events} accounts={s.accounts} cluster_keys={s.cluster_keys}")
    assert result.samples, "no samples taken"
    # the account state is bounded: idle accounts expire while event time runs
    # over days (1,100 = 20 concurrent + one day of rotated accounts)
    assert max(s.accounts for s in result.samples) <= 2_000
    # memory: a 50 s run only reaches the first idle-account expiries, so the
    # bound is looser than the 10-minute run's 15%
    problems = result.problems(max_growth=0.20)
    assert not problems, problems
