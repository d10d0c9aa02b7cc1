"""The mypyc-compiled detection core (tools/native.py) against the Python
sources: same alerts, byte for byte, and never a compiled module older than
its source.

Here the parts on real servers or subprocesses; the pure ones: tests/unit/test_native.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import detectors
from tools import native

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], cwd: Path, **env: str) -> str:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.skipif(detectors.NATIVE != "on",
                    reason=f"compiled detectors not in use here ({detectors.NATIVE}): "
                           "`python -m tools.native build` (make does it)")
def test_compiled_and_python_detectors_emit_identical_alerts(tmp_path):
    # every attack family, text-only producers too (online text topics), and
    # the cluster stage: the whole detection path replay and the agents share
    events, labels = tmp_path / "events.jsonl", tmp_path / "labels.jsonl"
    _run([sys.executable, "-m", "streams.cli", "simulate", "--seed", "3", "--hours", "3",
          "--accounts", "150", "--drop-topic", "0.3", "--out", str(events),
          "--labels", str(labels)], ROOT)
    outputs = {}
    for mode in ("1", "0"):
        alerts = tmp_path / f"alerts-{mode}.jsonl"
        check = ("import detectors, detectors.engine as e, detectors.cluster as c; "
                 "print(detectors.NATIVE, e.__file__.endswith('.py'), c.__file__.endswith('.py'))")
        status = _run([sys.executable, "-c", check], ROOT, DISTILLWATCH_NATIVE=mode).split()
        assert status == (["on", "False", "False"] if mode == "1" else ["off", "True", "True"])
        _run([sys.executable, "-m", "streams.cli", "replay", str(events), "--alerts-out",
              str(alerts), "--no-progress"], ROOT, DISTILLWATCH_NATIVE=mode)
        outputs[mode] = alerts.read_bytes()
    n_alerts = outputs["1"].count(b"\n")
    assert n_alerts > 20  # the comparison covers real firing and resolving
    assert outputs["1"] == outputs["0"]


@pytest.mark.skipif(detectors.NATIVE != "on",
                    reason=f"compiled detectors not in use here ({detectors.NATIVE})")
def test_every_module_of_the_cluster_package_runs_compiled():
    # a fresh interpreter, each submodule imported by its own name: mypyc's
    # compiled package __init__ must not hand any of them to the sources
    names = [f"detectors.cluster.{m.split('/')[1]}" for m in native.MODULES
             if m.startswith("cluster/") and m != "cluster/__init__"]
    code = ("import importlib, sys; names = sys.argv[1:]; "
            "mods = [importlib.import_module(n) for n in names] + "
            "[importlib.import_module('detectors.cluster')]; "
            "print(all(m.__file__.endswith('.so') for m in mods))")
    assert _run([sys.executable, "-c", code, *names], ROOT).strip() == "True"
    from detectors.cluster import keys
    assert keys._C_SHARED is not None  # the C kernel of detectors/_fpcount.c


def test_doctests_of_the_python_sources_pass():
    # pytest's doctest collection finds no examples in compiled functions, so
    # with the build in use the suite's own pass over detectors/ sees about
    # half of them; the sources' examples run here, as Python
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--doctest-modules",
         "detectors"], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "DISTILLWATCH_NATIVE": "0"})
    assert proc.returncode == 0, proc.stdout[-3000:]
    passed = int(proc.stdout.rsplit(" passed", 1)[0].rsplit(None, 1)[-1])
    assert passed >= 38, proc.stdout[-500:]  # 38 examples on 2026-11-30
