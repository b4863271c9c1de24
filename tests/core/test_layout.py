"""The layout is the flow: each package imports only the layers below it, and no module imports
itself back through others. A new upward import or cycle fails here, with the offending lines."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# lowest first; a package may import its own modules and any package of a lower layer. The core and
# the data contracts are one foundation: the store builds its raw tables from the contracts, and the
# contracts' rules are SQL written with the core's helpers.
LAYERS = [
    {"valuecredit", "data_contracts"},
    {"ingestion", "simulate"},
    {"scoring"},
    {"models"},
    {"lending"},
    {"reports"},
    {"pipelines"},
]
RANK = {package: i for i, layer in enumerate(LAYERS) for package in layer}


def _modules() -> dict[str, Path]:
    out = {}
    for package in RANK:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _imports(path: Path, modules: dict[str, Path]) -> list[tuple[int, str]]:
    """(line, module) for every import of a project module, at any depth of the file (a function's
    deferred import counts as much as one at the top)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        resolved = set()
        for name in names:
            # the longest project module the name starts with (`from a.b import c` names a.b.c or a.b)
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                resolved.add(name)
        # `from a import b, c` imports the modules b and c when they are modules, else a itself
        found += [(node.lineno, name) for name in sorted(resolved)]
    return found


def test_no_import_runs_upward():
    modules = _modules()
    upward = []
    for module, path in modules.items():
        mine = RANK[module.split(".")[0]]
        for line, target in _imports(path, modules):
            theirs = RANK[target.split(".")[0]]
            if theirs > mine:
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {target} (layer {theirs} above {mine})")
    assert not upward, "imports that run upward:\n" + "\n".join(upward)


def cycles_in(graph: dict[str, list[str]]) -> list[str]:
    """Every cycle a depth-first walk meets, as "a -> b -> a"."""
    found, done, stack = [], set(), []

    def visit(m: str) -> None:
        stack.append(m)
        for t in graph.get(m, []):
            if t in stack:
                found.append(" -> ".join(stack[stack.index(t):] + [t]))
            elif t not in done:
                visit(t)
        stack.pop()
        done.add(m)

    for m in sorted(graph):
        if m not in done:
            visit(m)
    return found


def test_the_cycle_finder_finds_cycles():
    assert cycles_in({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == ["a -> b -> c -> a"]
    assert cycles_in({"a": ["b", "c"], "b": ["c"], "c": []}) == []


def test_no_import_cycle():
    modules = _modules()
    graph = {m: sorted({t for _, t in _imports(p, modules) if t != m}) for m, p in modules.items()}
    cycles = cycles_in(graph)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_every_package_has_a_layer():
    packages = {p.parent.relative_to(ROOT).parts[0] for p in ROOT.glob("*/**/*.py")
                if p.relative_to(ROOT).parts[0] not in {".venv", "tests", "benchmarks", "notebooks", "docs", "build", "data"}
                and not p.relative_to(ROOT).parts[0].startswith(".")}
    assert packages <= set(RANK), f"packages without a layer: {sorted(packages - set(RANK))}"
