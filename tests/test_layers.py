"""The layer rules of CONTRIBUTING.md, checked on the source: every `import` under
src/echogen_trt (module level and inside functions), read with `ast`, nothing imported.

- no part of echogen_trt imports a part on a higher layer (LAYERS, bottom first), and parts on one
  layer do not import each other;
- runtime/ imports only runtime, artifacts, errors and fileio (and the root's `__version__`);
- only runtime/registry.py imports a concrete backend (runtime/backends/*, base excepted): every
  other caller asks the registry, so a new backend is one entry there;
- no import cycle between files.

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

# Bottom first. A part may import parts on lower layers only ("" is the root package).
LAYERS: list[set[str]] = [
    {"", "errors"},
    {"fileio", "metrics", "option_values"},
    {"artifacts"},
    {"runtime"},
    {"data", "models"},
    {"train"},
    {"export"},
    {"bench", "evaluate", "doctor", "serve", "deploy"},
    {"demo"},
    {"cli"},
    {"__main__"},
]
RUNTIME_MAY_IMPORT = {"runtime", "artifacts", "errors", "fileio"}
REGISTRY = "echogen_trt.runtime.registry"
BACKEND_INTERFACE = "echogen_trt.runtime.backends.base"

# (importing module, imported module) pairs still breaking the layer or backend rules.
LAYER_ALLOWED: set[tuple[str, str]] = set()
BACKEND_ALLOWED: set[tuple[str, str]] = set()
# Import cycles between files not broken yet.
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


def layer_of(module: str) -> int:
    part = top(module)
    for rank, parts in enumerate(LAYERS):
        if part in parts:
            return rank
    raise AssertionError(f"{module}: part {part!r} is on no layer; add it to LAYERS")


def layer_violations(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Imports of a part on the same layer (another part) or a higher one."""
    return {
        (module, imported)
        for module, imported_set in graph.items()
        for imported in imported_set
        if top(imported) != top(module) and layer_of(imported) >= layer_of(module)
    }


def test_the_walk_sees_imports_inside_functions() -> None:
    """runtime.io imports the CAMUS reader inside a function: the walk must see it."""
    assert "echogen_trt.artifacts.medical_image" in GRAPH["echogen_trt.runtime.io"]
    assert "echogen_trt.artifacts.provenance" in GRAPH["echogen_trt.runtime.backends.tensorrt"]


def test_every_part_is_on_a_layer() -> None:
    for module in GRAPH:
        layer_of(module)


def test_no_part_imports_one_on_its_layer_or_above() -> None:
    found = layer_violations(GRAPH)
    assert sorted(found - LAYER_ALLOWED) == []
    assert sorted(LAYER_ALLOWED - found) == [], "fixed: remove these from LAYER_ALLOWED"


def test_runtime_imports_only_artifacts_errors_fileio() -> None:
    found = sorted(
        (module, imported)
        for module, imported_set in GRAPH.items()
        if top(module) == "runtime"
        for imported in imported_set
        if top(imported) not in RUNTIME_MAY_IMPORT | {""}
    )
    assert found == []


def backend_violations(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {
        (module, imported)
        for module, imported_set in graph.items()
        for imported in imported_set
        if imported.startswith("echogen_trt.runtime.backends.")
        and imported != BACKEND_INTERFACE
        and module not in (REGISTRY, imported)
    }


def test_only_the_registry_imports_a_backend() -> None:
    found = backend_violations(GRAPH)
    assert sorted(found - BACKEND_ALLOWED) == []
    assert sorted(BACKEND_ALLOWED - found) == [], "fixed: remove these from BACKEND_ALLOWED"


def test_every_registered_backend_module_exists() -> None:
    """The registry names backends by module path (so the torch one can live in train/ without
    the runtime importing upwards): each name must be a real module and class."""
    from echogen_trt.runtime.registry import BACKENDS

    for kind, (module, cls) in BACKENDS.items():
        assert _is_module(module), f"{kind}: no module {module}"
        tree = ast.parse(SRC.joinpath(*module.split(".")[1:]).with_suffix(".py").read_text())
        classes = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
        assert cls in classes, f"{kind}: {module} has no class {cls}"


def file_cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """Strongly connected components (size > 1) of the import graph between files."""
    reach = {node: _reachable(graph, node) for node in graph}
    return {
        frozenset(n for n in graph if n in reach[node] and node in reach[n])
        for node in graph
        if node in reach[node]
    }


def _reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(edges.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(edges.get(node, ()))
    return seen


def test_no_import_cycle_between_files() -> None:
    found = file_cycles(GRAPH)
    assert sorted(map(sorted, found - CYCLES_ALLOWED)) == []
    assert sorted(map(sorted, CYCLES_ALLOWED - found)) == [], "fixed: remove from CYCLES_ALLOWED"


P = "echogen_trt."


@pytest.mark.parametrize(
    ("graph", "cycles"),
    [
        ({P + "a.x": {P + "b.y"}, P + "b.y": {P + "a.x"}}, {frozenset({P + "a.x", P + "b.y"})}),
        ({P + "a.x": {P + "b.y"}, P + "b.y": {P + "errors"}}, set()),
        ({P + "a.x": {P + "a.z"}, P + "a.z": {P + "a.w"}, P + "a.w": {P + "a.x"}},
         {frozenset({P + "a.x", P + "a.z", P + "a.w"})}),
    ],
)  # fmt: skip
def test_cycle_finder(graph: dict[str, set[str]], cycles: set[frozenset[str]]) -> None:
    """A circle through two or three files is found, inside one part too; a chain is not."""
    assert file_cycles(graph) == cycles


def test_layer_check_catches_upward_and_sideways_imports() -> None:
    graph = {
        P + "runtime.x": {P + "train.loop", P + "artifacts.labels"},
        P + "data.camus": {P + "models.generator"},
        P + "cli.train": {P + "train.loop"},
    }
    assert layer_violations(graph) == {
        (P + "runtime.x", P + "train.loop"),
        (P + "data.camus", P + "models.generator"),
    }
