"""The module import graph of streams/, detectors/, simulator/ and benchmarks/.

Read from the source (``ast``, nothing is imported): every ``import`` and
``from ... import``, also those inside functions (marked ``deferred``: they run
only when the function does) and those under ``if TYPE_CHECKING:`` (marked
``typing``: they never run).

    python -m tools.import_graph             # one line per edge
    python -m tools.import_graph --check     # exit 1 on an import cycle within streams/
    python -m tools.import_graph --dot FILE  # Graphviz dot, modules grouped by package

A cycle counts deferred imports too (a deferred import that closes a circle
only hides the tie); ``typing`` edges do not count (they never run).
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("streams", "detectors", "simulator", "benchmarks")


@dataclass(frozen=True, order=True)
class Edge:
    """``source`` imports ``target``; ``kind`` is ``top``, ``deferred`` or ``typing``."""

    source: str
    target: str
    kind: str
    line: int


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Every module of ``packages`` under ``root``: dotted name -> file."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "_native" in path.parts:
                continue
            found[module_name(path, root)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, in_function: bool = False,
             typing_only: bool = False) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import statement with its kind, walking into functions and ``if`` blocks."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            kind = "typing" if typing_only else "deferred" if in_function else "top"
            yield node, kind
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                yield from _imports(ast.Module(body=[child], type_ignores=[]), in_function, True)
            for child in node.orelse:
                yield from _imports(ast.Module(body=[child], type_ignores=[]), in_function,
                                    typing_only)
        else:
            nested = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            yield from _imports(node, in_function or nested, typing_only)


def _resolve(source: str, is_package: bool, node: ast.Import | ast.ImportFrom,
             known: set[str]) -> list[str]:
    """The modules of ``known`` an import statement loads (most specific name)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            anchor = source.split(".")
            anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
            base = ".".join([*anchor, base] if base else anchor)
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                 for alias in node.names]
    targets = []
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name not in targets:
            targets.append(name)
    return targets


def edges(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> list[Edge]:
    """Every import between the modules of ``packages`` (one edge per statement)."""
    found = modules(root, packages)
    known = set(found)
    out = []
    for source, path in found.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, kind in _imports(tree):
            for target in _resolve(source, path.name == "__init__.py", node, known):
                if target != source:
                    out.append(Edge(source, target, kind, node.lineno))
    return sorted(out)


def cycles(graph: Iterable[Edge], within: str = "streams") -> list[list[str]]:
    """The import circles among modules under ``within`` (strongly connected
    components of more than one module; ``typing`` edges excluded)."""
    succ: dict[str, set[str]] = defaultdict(set)
    nodes: set[str] = set()
    prefix = within + "."
    for e in graph:
        inside = all(m == within or m.startswith(prefix) for m in (e.source, e.target))
        if e.kind != "typing" and inside:
            succ[e.source].add(e.target)
            nodes.update((e.source, e.target))
    # Tarjan, iteratively
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(succ[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(succ[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def dot(graph: Iterable[Edge], found: dict[str, Path]) -> str:
    """Graphviz dot: one cluster per package, deferred imports dashed, typing
    imports dotted, several statements between two modules drawn once."""
    by_package: dict[str, list[str]] = defaultdict(list)
    for name, path in sorted(found.items()):
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        by_package[package].append(name)
    lines = ["digraph imports {", "  rankdir=LR;", "  node [shape=box, fontsize=10];"]
    for i, (package, names) in enumerate(sorted(by_package.items())):
        lines.append(f'  subgraph cluster_{i} {{ label="{package.replace(".", "/")}/";')
        lines.extend(f'    "{n}" [label="{"__init__" if n == package else n.rpartition(".")[2]}"];'
                     for n in names)
        lines.append("  }")
    strongest: dict[tuple[str, str], str] = {}
    rank = {"top": 0, "deferred": 1, "typing": 2}
    for e in graph:
        key = (e.source, e.target)
        if key not in strongest or rank[e.kind] < rank[strongest[key]]:
            strongest[key] = e.kind
    style = {"top": "", "deferred": " [style=dashed]", "typing": " [style=dotted]"}
    for (source, target), kind in sorted(strongest.items()):
        lines.append(f'  "{source}" -> "{target}"{style[kind]};')
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.import_graph",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when modules of streams/ import each other in a circle")
    parser.add_argument("--dot", metavar="FILE", help="write Graphviz dot here ('-': stdout)")
    args = parser.parse_args(argv)
    graph = edges()
    if args.dot:
        text = dot(graph, modules())
        if args.dot == "-":
            sys.stdout.write(text)
        else:
            Path(args.dot).write_text(text, encoding="utf-8")
    if args.check:
        circles = cycles(graph)
        for circle in circles:
            print("import cycle in streams/: " + " <-> ".join(circle))
            members = set(circle)
            for e in graph:
                if e.source in members and e.target in members and e.kind != "typing":
                    print(f"  {e.source}:{e.line} imports {e.target} ({e.kind})")
        if circles:
            return 1
        print("no import cycle in streams/")
    if not (args.check or args.dot):
        for e in graph:
            print(f"{e.source} -> {e.target}" + ("" if e.kind == "top" else f"  ({e.kind})"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
