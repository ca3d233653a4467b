"""The layers of rrqctl, in one direction (docs/architecture.md draws them): every import of
every module, at the top or inside a function, under TYPE_CHECKING too, goes down or
sideways, never up; the import graph has no cycle; no module imports a program."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "rrqctl"

# Top to bottom. A module may import its own layer's modules and any below.
LAYERS: list[tuple[str, list[str]]] = [
    ("programs", ["rrqctl.__main__", "rrqctl.cli", "rrqctl.rrqnet", "rrqctl.manpages",
                  "rrqctl.supervise.links_helper"]),
    ("commands", ["rrqctl.commands", "rrqctl.commands.*", "rrqctl.demo"]),
    ("integration", ["rrqctl.ifupdown", "rrqctl.supervise.check", "rrqctl.supervise.handover"]),
    ("engine process", ["rrqctl.supervise.*", "rrqctl.logs"]),
    ("host", ["rrqctl.system.host", "rrqctl.system.observe", "rrqctl.system.records",
              "rrqctl.system.names", "rrqctl.system.install"]),
    ("plans and text", ["rrqctl.plan", "rrqctl.aspects", "rrqctl.render", "rrqctl.resources"]),
    ("declarations", ["rrqctl.config.*"]),
    ("model", ["rrqctl.model"]),
    ("datapath", ["rrqctl.engine.*"]),
    ("operating system", ["rrqctl.system.*"]),  # one module per outside dependency
    ("words", ["rrqctl.errors", "rrqctl.view", "rrqctl", "rrqctl.config", "rrqctl.engine",
               "rrqctl.supervise", "rrqctl.system"]),
]  # fmt: skip
# Programs: run, never imported (python -m rrqctl is the rrqctl program itself).
SAME_PROGRAM = {("rrqctl.__main__", "rrqctl.cli")}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    return imports_in(path.read_text(), name, package, modules)


def imports_in(source: str, name: str, package: str, modules: set[str]) -> set[str]:
    """Every rrqctl module the source of module name imports, anywhere in it (`from a import
    b` counts a.b when b is a module, else a)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            subs = {f"{base}.{a.name}" for a in node.names} & modules
            found.update(subs or {base})
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, modules) for p in paths}


def layer_of(module: str) -> int:
    """The first layer with a pattern that names it (exact names before patterns)."""
    for exact in (True, False):
        for i, (_, patterns) in enumerate(LAYERS):
            for p in patterns:
                if (p == module) if exact else ("*" in p and fnmatchcase(module, p)):
                    return i
    raise AssertionError(f"{module} is in no layer: add it to LAYERS (and the architecture)")


def upward(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """Imports that go up a layer, each as 'a (layer) -> b (layer)'."""
    out = []
    for a, targets in sorted(graph.items()):
        for b in sorted(targets):
            if layer_of(b) < layer_of(a):
                out.append(f"{a} ({LAYERS[layer_of(a)][0]}) -> {b} ({LAYERS[layer_of(b)][0]})")
    return out


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def programs_imported(graph: Mapping[str, Iterable[str]]) -> list[str]:
    programs = {m for m in graph if layer_of(m) == 0}
    return [
        f"{a} -> {b}"
        for a, targets in sorted(graph.items())
        for b in sorted(targets)
        if b in programs and (a, b) not in SAME_PROGRAM
    ]


def test_every_import_goes_down_the_layers() -> None:
    assert upward(import_graph()) == []


def test_the_import_graph_has_no_cycle() -> None:
    assert cycles(import_graph()) == []


def test_no_module_imports_a_program() -> None:
    assert programs_imported(import_graph()) == []


def test_the_checks_catch_a_back_edge() -> None:
    """What the tests above would say if the model imported the CLI (a back edge), or the
    datapath imported a command (one that also closes a cycle through them)."""
    graph = import_graph()
    graph["rrqctl.model"] = graph["rrqctl.model"] | {"rrqctl.cli"}
    graph["rrqctl.engine.frames"] = graph["rrqctl.engine.frames"] | {"rrqctl.commands"}
    assert upward(graph) == [
        "rrqctl.engine.frames (datapath) -> rrqctl.commands (commands)",
        "rrqctl.model (model) -> rrqctl.cli (programs)",
    ]
    assert programs_imported(graph) == ["rrqctl.model -> rrqctl.cli"]
    assert any("rrqctl.engine.frames" in c and "rrqctl.commands" in c for c in cycles(graph))


def test_imports_inside_functions_and_under_type_checking_count() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from rrqctl.model import Cable\n"
        "def f():\n    from rrqctl import commands\n    import rrqctl.cli\n"
        "from ..errors import UsageError\n"
    )
    modules = {"rrqctl.model", "rrqctl.commands", "rrqctl.cli", "rrqctl.errors", "rrqctl"}
    found = imports_in(source, "rrqctl.engine.probe", "rrqctl.engine", modules)
    assert found == {"rrqctl.model", "rrqctl.commands", "rrqctl.cli", "rrqctl.errors"}
