"""The layer rules of CONTRIBUTING.md, checked on the source: every `import` under
src/echogen_trt (module level and inside functions), read with `ast`, nothing imported.

- runtime/ imports only runtime, artifacts, errors and fileio from echogen_trt (and the root
  package's `__version__`);
- artifacts/ imports none of the stages above it;
- no import cycle between the top-level parts of echogen_trt (subpackages and modules).

Known violations that later steps of issue #14 remove are listed below, each with its reason. An
entry that no longer occurs fails the test too, so the lists only shrink.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "echogen_trt"
SRC = Path(__file__).resolve().parents[1] / "src" / PACKAGE

RUNTIME_MAY_IMPORT = {"runtime", "artifacts", "errors", "fileio"}
ARTIFACTS_MUST_NOT_IMPORT = {
    "train", "export", "runtime", "models", "cli", "demo", "bench", "evaluate",
}  # fmt: skip

# (importing module, imported module) pairs still breaking the runtime rule.
RUNTIME_ALLOWED: set[tuple[str, str]] = {
    # The torch backend loads a training checkpoint; needs the checkpoint reader moved to
    # artifacts (a torch-importing part of it) or the backend moved out of runtime.
    ("echogen_trt.runtime.backends.torch_backend", "echogen_trt.train.checkpoint"),
    # Label facts (kept labels, selection, palette) and mask/image file readers live in data/;
    # issue #14 step "a small module for label facts" moves the first into artifacts.
    ("echogen_trt.runtime.io", "echogen_trt.data.experiments"),
    ("echogen_trt.runtime.io", "echogen_trt.data.preview"),
    ("echogen_trt.runtime.io", "echogen_trt.data.camus"),
    ("echogen_trt.runtime.model_tensors", "echogen_trt.data.experiments"),
    ("echogen_trt.runtime.model_tensors", "echogen_trt.data.preprocess"),
}

# Cycles (sets of top-level parts) not broken yet. Empty: runtime <-> export was the last one
# (runtime.backends.tensorrt imported export.provenance, now artifacts.provenance).
CYCLES_ALLOWED: set[frozenset[str]] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> Iterator[str]:
    """The echogen_trt modules `path` imports, anywhere in the file, relative imports resolved.
    `from pkg import name` yields `pkg.name` when `name` is a submodule, else `pkg`."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found = []
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                found.append(sub if _is_module(sub) else module)
        else:
            continue
        yield from (m for m in found if m == PACKAGE or m.startswith(PACKAGE + "."))


def _is_module(dotted: str) -> bool:
    parts = dotted.split(".")
    if parts[0] != PACKAGE:
        return False
    where = SRC.joinpath(*parts[1:])
    return where.with_suffix(".py").is_file() or (where / "__init__.py").is_file()


def top(module: str) -> str:
    """The top-level part of echogen_trt a module belongs to ("" for the root package)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for path in sorted(SRC.rglob("*.py")):
        graph[module_name(path)] = set(imports_of(path))
    return graph


GRAPH = import_graph()


def test_the_walk_sees_imports_inside_functions() -> None:
    """torch_backend imports train.checkpoint inside `_open` only: the walk must see it."""
    assert "echogen_trt.train.checkpoint" in GRAPH["echogen_trt.runtime.backends.torch_backend"]
    assert "echogen_trt.artifacts.provenance" in GRAPH["echogen_trt.runtime.backends.tensorrt"]


def runtime_violations() -> set[tuple[str, str]]:
    return {
        (module, imported)
        for module, imported_set in GRAPH.items()
        if top(module) == "runtime"
        for imported in imported_set
        if top(imported) not in RUNTIME_MAY_IMPORT | {""}
    }


def test_runtime_imports_only_artifacts_errors_fileio() -> None:
    found = runtime_violations()
    assert sorted(found - RUNTIME_ALLOWED) == []
    assert sorted(RUNTIME_ALLOWED - found) == [], "fixed: remove these from RUNTIME_ALLOWED"


def test_artifacts_imports_no_stage_above_it() -> None:
    assert any(top(m) == "artifacts" for m in GRAPH)
    found = sorted(
        (module, imported)
        for module, imported_set in GRAPH.items()
        if top(module) == "artifacts"
        for imported in imported_set
        if top(imported) in ARTIFACTS_MUST_NOT_IMPORT
    )
    assert found == []


def top_level_cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """Strongly connected components (size > 1) of the graph between top-level parts."""
    edges: dict[str, set[str]] = {}
    for module, imported_set in graph.items():
        source = top(module)
        edges.setdefault(source, set())
        for imported in imported_set:
            if top(imported) not in ("", source):
                edges[source].add(top(imported))
                edges.setdefault(top(imported), set())
    reach = {node: _reachable(edges, node) for node in edges}
    return {
        frozenset(n for n in edges if n in reach[node] and node in reach[n]) | {node}
        for node in edges
        if any(node in reach[n] for n in reach[node])
    }


def _reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(edges[start])
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(edges[node])
    return seen


def test_no_import_cycle_between_top_level_parts() -> None:
    found = top_level_cycles(GRAPH)
    assert sorted(map(sorted, found - CYCLES_ALLOWED)) == []
    assert sorted(map(sorted, CYCLES_ALLOWED - found)) == [], "fixed: remove from CYCLES_ALLOWED"


@pytest.mark.parametrize(
    ("graph", "cycles"),
    [
        ({"echogen_trt.a.x": {"echogen_trt.b.y"}, "echogen_trt.b.y": {"echogen_trt.a.z"}},
         {frozenset({"a", "b"})}),
        ({"echogen_trt.a.x": {"echogen_trt.b.y"}, "echogen_trt.b.y": {"echogen_trt.errors"}},
         set()),
        ({"echogen_trt.a.x": {"echogen_trt.a.z"}, "echogen_trt.a.z": {"echogen_trt.a.x"}}, set()),
    ],
)  # fmt: skip
def test_cycle_finder(graph: dict[str, set[str]], cycles: set[frozenset[str]]) -> None:
    """A cycle through two parts is found; a chain, or a circle inside one part, is not."""
    assert top_level_cycles(graph) == cycles
