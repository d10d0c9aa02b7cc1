"""detectors/ is pure: no Faust, Kafka clients, structlog, I/O-ish imports, and
no pickle anywhere in the data path."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"faust", "aiokafka", "kafka", "confluent_kafka", "structlog", "mode", "logging"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_detectors_import_nothing_forbidden():
    for path in sorted((ROOT / "detectors").rglob("*.py")):
        bad = _imports(path) & FORBIDDEN
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_importing_detectors_loads_no_stream_libraries():
    roots = sorted(FORBIDDEN - {"logging"})
    code = (
        "import sys, pkgutil, importlib, detectors\n"
        "for m in pkgutil.walk_packages(detectors.__path__, 'detectors.'):\n"
        "    importlib.import_module(m.name)\n"
        f"bad = sorted(n for n in sys.modules if n.split('.')[0] in {roots!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""


def test_no_pickle_in_the_data_path():
    for pkg in ("detectors", "streams", "simulator"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            assert not _imports(path) & {"pickle", "cPickle", "dill", "shelve", "marshal"}, path


def test_faust_serializers_are_raw_never_pickle():
    """Every topic and table the service declares moves raw bytes (orjson is
    applied by our code), so no Faust codec -- pickle included -- touches data."""
    from streams.service.app import build_service
    from streams.settings import Settings

    service = build_service(Settings.load(env={"DISTILLWATCH_BROKER": "kafka://127.0.0.1:9"}))
    app = service.app
    channels = [agent.channel for agent in app.agents.values()]
    tables = list(app.tables.values())
    assert channels and tables
    for channel in channels:
        assert channel.key_serializer == "raw" and channel.value_serializer == "raw", channel
    for table in tables:
        assert table.key_serializer == "raw" and table.value_serializer == "raw", table
        assert table.changelog_topic.value_serializer == "raw"
    for value in (app.conf.key_serializer, app.conf.value_serializer):
        assert value != "pickle"
