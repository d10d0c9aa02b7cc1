"""The mypyc-compiled detection core (tools/native.py) against the Python
sources: same alerts, byte for byte, and never a compiled module older than
its source.

The parts on real servers or subprocesses: tests/integration/test_native_build.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tools import native

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], cwd: Path, **env: str) -> str:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


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
            "sources": {p.relative_to(pkg).as_posix(): native.source_digest(p)
                        for p in sorted((*pkg.rglob("*.py"), *pkg.glob("*.c")))
                        if p.relative_to(pkg).as_posix() != "__init__.py"}}


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
    # in a subpackage too
    (pkg / "_native" / "manifest.json").write_text(json.dumps(_manifest(pkg)))
    assert _choice(tmp_path) == "on True"
    keys = pkg / "cluster" / "keys.py"
    keys.write_text(keys.read_text() + "\n# edited after the build\n")
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
    (pkg / "cluster" / "newmodule.py").write_text("X = 1\n")
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
    # a new module is compiled too (the list is read from the folder), and the
    # modules of a subpackage (detectors/cluster/) with its __init__
    pkg = ROOT / "detectors"
    on_disk = sorted(p.relative_to(pkg).with_suffix("").as_posix() for p in pkg.rglob("*.py")
                     if p.parts[len(pkg.parts)] != "_native" and p != pkg / "__init__.py")
    assert list(native.MODULES) == on_disk
    assert {"cluster/__init__", "cluster/keys", "cluster/detector", "scoring"} <= set(on_disk)
