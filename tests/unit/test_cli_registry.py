"""The command table of ``streams/cli.py``: every command is listed once, its
implementation exists, and the product never imports the simulator or the
benchmarks (nor faust or stix2 for building the parser) unless that command runs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from streams.cli import COMMANDS, build_parser, implementation

_PROBE = """
import json, sys
import streams.cli
streams.cli.build_parser().format_help()
{extra}
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in
                        ("simulator", "benchmarks", "faust", "stix2"))))
"""


def _loaded(extra: str = "") -> list[str]:
    out = subprocess.run([sys.executable, "-c", _PROBE.format(extra=extra)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_building_the_parser_imports_no_command_module():
    assert _loaded() == []


def test_the_service_imports_neither_simulator_nor_benchmarks():
    loaded = _loaded("import streams.service.app\nstreams.cli.build_parser()"
                     ".parse_args(['worker'])")
    assert not [m for m in loaded if m.split(".")[0] in ("simulator", "benchmarks")], loaded


def test_a_command_loads_its_module_only_when_named():
    loaded = _loaded("streams.cli.build_parser().parse_args(['simulate', '--out', 'x', "
                     "'--labels', 'y'])")
    assert "simulator.cli" in loaded
    assert not [m for m in loaded if m.startswith("benchmarks")], loaded


def test_every_command_is_listed_once_and_implemented():
    names = [c.name for c in COMMANDS]
    assert len(names) == len(set(names))
    for command in COMMANDS:
        assert callable(implementation(command)), command


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_each_command_help_names_its_table_help(command, capsys):
    top = build_parser().format_help()
    assert command.name in top
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([command.name, "--help"])
    assert exc.value.code == 0
    assert f"usage: distillwatch {command.name}" in capsys.readouterr().out
