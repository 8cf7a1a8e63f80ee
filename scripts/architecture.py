"""rnnperf's layers, read from the code: the import graph, its rules, and the picture in the docs.

    python scripts/architecture.py          print the rule violations (exit 1 if any)
    python scripts/architecture.py --write  regenerate the diagram in docs/architecture.md

The graph is read statically (``ast``), every ``import`` counted, including those inside
functions (rnnperf imports engines lazily on purpose, and a lazy import is still a dependency).
:data:`LAYERS` is the architecture: a module may import its own layer and the layers below it.
``tests/test_architecture.py`` runs :func:`violations` and checks that the diagram is current.
"""

from __future__ import annotations

import ast
import fnmatch
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rnnperf"
DOC = ROOT / "docs" / "architecture.md"
BEGIN, END = "<!-- BEGIN GENERATED: scripts/architecture.py -->", "<!-- END GENERATED -->"

#: bottom first; a module may import modules of its own layer and of the layers below it
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("rnnperf.errors", "rnnperf.atomic", "rnnperf.host", "rnnperf.ui")),
    ("registry", ("rnnperf.engines", "rnnperf.engines.registry")),
    ("cells", ("rnnperf.cells", "rnnperf.cells.*")),
    ("flags", ("rnnperf.flags", "rnnperf.flags.*")),
    ("model", ("rnnperf.model", "rnnperf.model.*")),
    ("engines", ("rnnperf.engines.*",)),
    ("api", ("rnnperf", "rnnperf.rnn", "rnnperf.data")),
    ("bench", ("rnnperf.bench", "rnnperf.bench.*")),
    ("tune", ("rnnperf.tune", "rnnperf.tune.*")),
    ("cli", ("rnnperf.cli", "rnnperf.cli.*", "rnnperf.__main__")),
]
#: the parent side of a benchmark: no engine module, no engine library, at import time
PARENT_SIDE = ("rnnperf.cli", "rnnperf.cli.*", "rnnperf.tune", "rnnperf.tune.*", "rnnperf.bench",
               "rnnperf.bench.plan", "rnnperf.bench.sweep", "rnnperf.bench.runners",
               "rnnperf.bench.process", "rnnperf.bench.results", "rnnperf.bench.measurement",
               "rnnperf.bench.schema", "rnnperf.bench.machine",
               "rnnperf.bench.compare", "rnnperf.bench.table", "rnnperf.bench.plot",
               "rnnperf.bench.parity", "rnnperf.bench.fused_check", "rnnperf.bench.cell_check",
               "rnnperf.bench.warm", "rnnperf.bench.timing",
               "rnnperf.bench.flops")
ENGINE_LIBRARIES = ("pytensor", "jax", "jaxlib", "torch", "numba", "theano")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
#: a longer function must say why in its docstring, after this marker
LONG_FUNCTION_MARKER = "Long because"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(name: str) -> int:
    """The index of the first layer whose patterns match ``name``."""
    for index, (_, patterns) in enumerate(LAYERS):
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
            return index
    raise KeyError(f"{name}: in no layer of scripts/architecture.py")


def _resolve(name: str, path: Path, node: ast.ImportFrom) -> list[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    if node.level:
        base = package.split(".")
        base = ".".join(base[:len(base) - node.level + 1])
        base = f"{base}.{node.module}" if node.module else base
    else:
        base = node.module or ""
    submodules = [f"{base}.{alias.name}" for alias in node.names]
    # ``from . import flags`` imports the submodule, not (again) the package it sits in
    if node.module is None:
        return submodules
    return [base] + submodules


def imports(known: dict[str, Path]) -> dict[str, list[tuple[str, int, bool]]]:
    """module -> [(imported module, line, at module level)] for every import, rnnperf's or not."""
    graph: dict[str, list[tuple[str, int, bool]]] = {}
    for name, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        top = {id(n) for n in tree.body} | {id(n) for stmt in tree.body if isinstance(stmt, ast.If)
                                            for n in stmt.body}
        edges = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                targets = _resolve(name, path, node)
            else:
                continue
            for target in targets:
                if target.startswith("rnnperf"):
                    if target in known:
                        edges.append((target, node.lineno, id(node) in top))
                else:
                    edges.append((target, node.lineno, id(node) in top))
        graph[name] = edges
    return graph


def internal(graph) -> dict[str, set[str]]:
    return {m: {t for t, _, _ in edges if t.startswith("rnnperf") and t != m}
            for m, edges in graph.items()}


def cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    edges = internal(graph)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
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
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _package_of(target: str) -> str:
    return target.split(".")[0]


def _parent_violations(graph, known) -> list[str]:
    """What a parent-side module pulls in at import time, followed through rnnperf's modules."""
    out = []
    parent = [m for m in known if any(fnmatch.fnmatchcase(m, p) for p in PARENT_SIDE)]
    for start in parent:
        seen, todo = {start}, [start]
        while todo:
            module = todo.pop()
            for target, line, at_top in graph[module]:
                if not at_top:
                    continue
                if _package_of(target) in ENGINE_LIBRARIES or (
                        target.startswith("rnnperf.engines.") and
                        target != "rnnperf.engines.registry"):
                    out.append(f"{start}: imports {target} at import time (via {module}:{line}); "
                               "the parent side never imports an engine")
                elif target in known and target not in seen:
                    seen.add(target)
                    todo.append(target)
    return out


def _size_violations(known) -> list[str]:
    out = []
    for name, path in known.items():
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            out.append(f"{name}: {len(text.splitlines())} lines (> {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                doc = ast.get_docstring(node) or ""
                if length > MAX_FUNCTION_LINES and LONG_FUNCTION_MARKER not in doc:
                    out.append(f"{name}.{node.name} (line {node.lineno}): {length} lines "
                               f"(> {MAX_FUNCTION_LINES}, and no '{LONG_FUNCTION_MARKER}' "
                               "in its docstring)")
    return out


def violations() -> list[str]:
    """Every broken rule: cycles, imports upward, the parent importing engines, sizes."""
    known = modules()
    graph = imports(known)
    out = [f"import cycle: {' -> '.join(c)}" for c in cycles(graph)]
    for module, edges in graph.items():
        for target, line, _ in edges:
            if target in known and target != module and layer_of(target) > layer_of(module):
                out.append(f"{module}:{line} imports {target}: the {LAYERS[layer_of(module)][0]} "
                           f"layer may not import the {LAYERS[layer_of(target)][0]} layer")
    return out + _parent_violations(graph, known) + _size_violations(known)


def diagram() -> str:
    """A Mermaid flowchart: one box per layer listing its modules, one arrow per layer that
    imports another (the label: how many module-to-module imports)."""
    known = modules()
    edges = internal(imports(known))
    lines = ["```mermaid", "flowchart BT"]
    members: dict[int, list[str]] = {}
    for module in known:
        members.setdefault(layer_of(module), []).append(module)
    for index, (layer, _) in enumerate(LAYERS):
        shown = sorted(m.removeprefix("rnnperf.") or "rnnperf" for m in members.get(index, []))
        lines.append(f'    {layer}["<b>{layer}</b><br/>{"<br/>".join(shown)}"]')
    counts: dict[tuple[int, int], int] = {}
    for module, targets in edges.items():
        for target in targets:
            a, b = layer_of(module), layer_of(target)
            if a != b:
                counts[(a, b)] = counts.get((a, b), 0) + 1
    for (a, b), count in sorted(counts.items()):
        lines.append(f"    {LAYERS[a][0]} -->|{count}| {LAYERS[b][0]}")
    lines.append("```")
    return "\n".join(lines)


def current_doc_block() -> str:
    text = DOC.read_text()
    return text[text.index(BEGIN) + len(BEGIN):text.index(END)].strip()


def write_doc() -> None:
    text = DOC.read_text()
    head, tail = text[:text.index(BEGIN) + len(BEGIN)], text[text.index(END):]
    DOC.write_text(f"{head}\n{diagram()}\n{tail}")


def main(argv: list[str]) -> int:
    if argv == ["--write"]:
        write_doc()
        print(f"wrote {DOC.relative_to(ROOT)}")
        return 0
    problems = violations()
    for line in problems:
        print(line)
    if current_doc_block() != diagram():
        print(f"{DOC.relative_to(ROOT)}: the diagram is stale (python scripts/architecture.py "
              "--write)")
        return 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
