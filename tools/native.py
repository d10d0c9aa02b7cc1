"""Compile the detection core with mypyc, next to the Python sources.

The detectors are plain, mypy-strict Python; mypyc (part of mypy) turns them
into C extension modules with the same behaviour. Measured here: the
per-message path (decode, validate, both detection stages) went from 37 to
22 µs per event. The compiled modules are an optional accelerator: the
Python sources stay the reference, every test passes on either, and
``tests/unit/test_native.py`` checks that both produce byte-identical alerts.

    python -m tools.native build     # make does this (make run, make test)
    python -m tools.native status

It also builds the hand-written C kernels ``detectors/*.c`` (the prompt
scan of ``detectors/text.py``: 11 → 3.6 µs per event), which the Python
sources use when they are importable.

``build`` compiles a snapshot of ``detectors/*.py`` in ``build/native`` and
installs the extension modules in ``detectors/_native/`` with a manifest of
the sources' SHA-256 (``*.py`` and ``*.c``). ``detectors/__init__.py`` puts
that folder first on the package's import path only when every hash still
matches and no source came or went, so an edited source
is never shadowed by an old compiled module: it runs as Python until the next
build (``detectors.NATIVE`` says which, and the worker logs it at start).

A failed build (no C compiler, say) leaves pure Python in place and says so;
it never fails ``make``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "detectors"
TARGET = PACKAGE / "_native"
MANIFEST = "manifest.json"
#: mypyc's shared library becomes ``detectors/_native/native__mypyc*.so``
GROUP = "detectors.native"


def _sources(pattern: str) -> list[Path]:
    """The package's sources matching ``pattern``, subpackages included (not
    the build output ``_native/``)."""
    return sorted(p for p in PACKAGE.rglob(pattern)
                  if "_native" not in p.relative_to(PACKAGE).parts[0]
                  and "__pycache__" not in p.parts)


#: paths relative to ``detectors/`` without ``.py`` (``cluster/keys``, and
#: ``cluster/__init__`` for the subpackage ``detectors.cluster``): everything
#: but the package's own ``__init__``, which chooses between the two
MODULES = tuple(
    p.relative_to(PACKAGE).with_suffix("").as_posix() for p in _sources("*.py")
    if p.relative_to(PACKAGE).as_posix() != "__init__.py"
)
#: hand-written C kernels, built beside the mypyc modules (``_arrays.c``
#: becomes ``detectors._arrays``)
C_SOURCES = tuple(sorted(p.name for p in PACKAGE.glob("*.c")))

_SETUP = """
import sys
from setuptools import Extension, setup
from mypyc.build import mypycify

modules = sys.argv[1].split(",")
GROUP = sys.argv[2]
kernels = [c for c in sys.argv[3].split(",") if c]
setup(
    name="distillwatch-native",
    ext_modules=mypycify(["detectors/" + m + ".py" for m in modules], group_name=GROUP,
                         opt_level="3")
    + [Extension("detectors." + c[:-2], ["detectors/" + c], extra_compile_args=["-O2"])
       for c in kernels],
    script_args=["build_ext", "--build-lib", "out", "--build-temp", "tmp"],
)
"""


def source_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(verbose: bool = False) -> bool:
    """Compile ``MODULES``; True when the compiled modules are installed."""
    work = ROOT / "build" / "native"
    shutil.rmtree(work, ignore_errors=True)
    (work / "detectors").mkdir(parents=True)
    # a snapshot, so the manifest describes exactly what was compiled
    sources = {}
    for file in ("__init__.py",) + tuple(f"{m}.py" for m in MODULES) + C_SOURCES:
        (work / "detectors" / file).parent.mkdir(parents=True, exist_ok=True)
        (work / "detectors" / file).write_bytes((PACKAGE / file).read_bytes())
        if file != "__init__.py":
            sources[file] = source_digest(work / "detectors" / file)
    # config read at import, and the C kernels' type stubs for mypyc's type check
    for extra in (*PACKAGE.glob("*.toml"), *PACKAGE.glob("*.pyi")):
        shutil.copy(extra, work / "detectors" / extra.name)
    (work / "setup.py").write_text(_SETUP)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "setup.py", ",".join(MODULES), GROUP, ",".join(C_SOURCES)], cwd=work,
        capture_output=True, text=True,
    )
    took = time.monotonic() - started
    if proc.returncode != 0:
        log = work / "build.log"
        log.write_text(proc.stdout + proc.stderr)
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
        print(f"native: mypyc build failed after {took:.0f} s; the detectors run as "
              f"pure Python (full log: {log})\n{tail}", file=sys.stderr)
        return False
    out = work / "out" / "detectors"
    built = sorted(out.rglob("*.so"))
    # install atomically: a half-copied folder must never be importable; a
    # subpackage's modules keep their folder (``_native/cluster/keys*.so``)
    staging = Path(tempfile.mkdtemp(prefix="_native-", dir=PACKAGE))
    for so in built:
        (staging / so.relative_to(out)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(so, staging / so.relative_to(out))
    (staging / MANIFEST).write_text(json.dumps({
        "cache_tag": sys.implementation.cache_tag,
        "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX"),
        "sources": sources,
        "built_s": round(took, 1),
    }, indent=1, sort_keys=True))
    old = staging.with_name(f"{staging.name}-old")
    if TARGET.exists():
        TARGET.rename(old)
    staging.rename(TARGET)
    shutil.rmtree(old, ignore_errors=True)
    if verbose:
        print(proc.stdout[-2000:])
    print(f"native: compiled {len(MODULES)} detector modules with mypyc and "
          f"{len(C_SOURCES)} C kernel(s) in {took:.0f} s "
          f"({len(built)} extension files in {TARGET.relative_to(ROOT)})")
    return True


def status() -> str:
    """What ``import detectors`` would choose now, in a fresh interpreter."""
    proc = subprocess.run([sys.executable, "-c", "import detectors; print(detectors.NATIVE)"],
                          cwd=ROOT, capture_output=True, text=True)
    return proc.stdout.strip() or proc.stderr.strip()


def clean() -> None:
    shutil.rmtree(TARGET, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.native", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("build", "status", "clean"))
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "build":
        build(args.verbose)  # a failed build leaves pure Python; never an error
    elif args.command == "clean":
        clean()
    print(f"native: detectors {status()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
