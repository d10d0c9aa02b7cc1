"""tools/import_graph.py: no import circle within streams/, and the check
finds one when there is (a deferred import closing it counts)."""

from __future__ import annotations

from pathlib import Path

from tools.import_graph import cycles, edges, main


def test_streams_has_no_import_cycle(capsys):
    assert main(["--check"]) == 0, capsys.readouterr().out


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_deferred_import_closing_a_circle_is_a_cycle(tmp_path):
    root = _tree(tmp_path, {
        "streams/__init__.py": "",
        "streams/a.py": "from streams.b import f\n",
        "streams/b.py": "def f():\n    from streams import a\n",
        "streams/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                        "    from streams.a import x\nfrom . import b\n",
    })
    graph = edges(root, ["streams"])
    kinds = {(e.source, e.target): e.kind for e in graph}
    assert kinds == {("streams.a", "streams.b"): "top", ("streams.b", "streams.a"): "deferred",
                     ("streams.c", "streams.a"): "typing", ("streams.c", "streams.b"): "top"}
    assert cycles(graph) == [["streams.a", "streams.b"]]


def test_typing_only_imports_make_no_cycle(tmp_path):
    root = _tree(tmp_path, {
        "streams/__init__.py": "",
        "streams/a.py": "import streams.b\n",
        "streams/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                        "    import streams.a\n",
    })
    assert cycles(edges(root, ["streams"])) == []


def test_dot_groups_modules_by_package(tmp_path):
    out = tmp_path / "g.dot"
    assert main(["--dot", str(out)]) == 0
    text = out.read_text()
    assert 'label="streams/replay/"' in text and '"streams.replay.sweep" -> ' in text
