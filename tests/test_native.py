"""The mypyc-compiled detection core (tools/native.py) against the Python
sources: same alerts, byte for byte, and never a compiled module older than
its source."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import detectors
from tools import native

ROOT = Path(__file__).resolve().parent.parent


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


def _package_copy(tmp_path: Path, manifest: dict[str, object] | None) -> Path:
    """This package's sources in a scratch tree, with a ``_native`` manifest
    (and no compiled files: only the import choice is under test)."""
    pkg = tmp_path / "detectors"
    shutil.copytree(ROOT / "detectors", pkg, ignore=shutil.ignore_patterns("_native*",
                                                                           "__pycache__"))
    if manifest is not None:
        (pkg / "_native").mkdir()
        (pkg / "_native" / "manifest.json").write_text(json.dumps(manifest))
    return pkg


def _choice(tree: Path, **env: str) -> str:
    code = "import detectors; print(detectors.NATIVE, detectors.__path__[0].endswith('_native'))"
    return _run([sys.executable, "-c", code], tree, PYTHONPATH=str(tree), **env).strip()


def _manifest(pkg: Path) -> dict[str, object]:
    return {"cache_tag": sys.implementation.cache_tag,
            "sources": {p.name: native.source_digest(p)
                        for p in sorted((*pkg.glob("*.py"), *pkg.glob("*.c")))
                        if p.name != "__init__.py"}}


def test_import_uses_the_build_only_when_every_source_matches(tmp_path):
    pkg = _package_copy(tmp_path, None)
    assert _choice(tmp_path) == "absent False"
    (pkg / "_native").mkdir()
    (pkg / "_native" / "manifest.json").write_text(json.dumps(_manifest(pkg)))
    assert _choice(tmp_path) == "on True"
    assert _choice(tmp_path, DISTILLWATCH_NATIVE="0") == "off False"
    # one edited source: the whole build is ignored, the sources run
    engine = pkg / "engine.py"
    engine.write_text(engine.read_text() + "\n# edited after the build\n")
    assert _choice(tmp_path) == "stale False"


def test_import_calls_a_build_stale_when_the_set_of_sources_changed(tmp_path):
    pkg = _package_copy(tmp_path, None)
    manifest = _manifest(pkg)
    assert "_arrays.c" in manifest["sources"]  # type: ignore[operator]
    (pkg / "_native").mkdir()
    path = pkg / "_native" / "manifest.json"
    # a build from before the C kernel existed would run its scan in Python
    # while claiming to be compiled
    path.write_text(json.dumps({**manifest, "sources": {
        k: v for k, v in manifest["sources"].items() if k != "_arrays.c"}}))  # type: ignore[attr-defined]
    assert _choice(tmp_path) == "stale False"
    path.write_text(json.dumps(manifest))
    assert _choice(tmp_path) == "on True"
    (pkg / "newmodule.py").write_text("X = 1\n")
    assert _choice(tmp_path) == "stale False"


def test_import_ignores_a_build_for_another_interpreter(tmp_path):
    pkg = _package_copy(tmp_path, None)
    manifest = _manifest(pkg)
    manifest["cache_tag"] = "cpython-27"
    (pkg / "_native").mkdir()
    (pkg / "_native" / "manifest.json").write_text(json.dumps(manifest))
    assert _choice(tmp_path) == "incompatible False"
    (pkg / "_native" / "manifest.json").write_text("{not json")
    assert _choice(tmp_path) == "absent False"


def test_every_detector_module_is_compiled():
    # a new module is compiled too (the list is read from the folder)
    on_disk = sorted(p.stem for p in (ROOT / "detectors").glob("*.py") if p.stem != "__init__")
    assert list(native.MODULES) == on_disk


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
