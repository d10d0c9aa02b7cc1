"""Pure detection logic: events in, alerts and state out.

The modules here are plain Python. ``python -m tools.native build`` (run by
``make``) may also compile them with mypyc into ``_native/``; this file puts
that folder first on the package's import path only when it was compiled
from exactly the sources beside it, for this interpreter. Otherwise the
sources run as they are. :data:`NATIVE` tells which:

- ``"on"``: the compiled modules are in use;
- ``"absent"``: never built, or the build failed;
- ``"stale"``: a source (``*.py`` or a C kernel ``*.c``) changed, appeared
  or went since the build (rebuild with ``make``);
- ``"incompatible"``: built for another interpreter;
- ``"off"``: turned off with ``DISTILLWATCH_NATIVE=0`` (an import switch for
  comparing the two, the one place this package reads the environment).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path


def _choose() -> str:
    here = Path(__file__).resolve().parent
    native = here / "_native"
    manifest = native / "manifest.json"
    if os.environ.get("DISTILLWATCH_NATIVE", "1") == "0":
        return "off"
    try:
        meta = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return "absent"
    if meta.get("cache_tag") != sys.implementation.cache_tag:
        return "incompatible"
    sources = meta.get("sources", {})
    # every source of the package must be in the build: a new module or C
    # kernel since then makes it stale too
    if set(sources) != {p.name for p in here.glob("*.py") if p.name != "__init__.py"} | {
        p.name for p in here.glob("*.c")
    }:
        return "stale"
    for name, digest in sources.items():
        try:
            current = hashlib.sha256((here / name).read_bytes()).hexdigest()
        except OSError:
            return "stale"
        if current != digest:
            return "stale"
    __path__.insert(0, str(native))
    return "on"


NATIVE = _choose()
