"""The layer rules of CONTRIBUTING.md, checked on the source: every `import` under
src/echogen_trt (module level and inside functions), read with `ast`, nothing imported.

- no part of echogen_trt imports a part on a higher layer (LAYERS, bottom first), and parts on one
  layer do not import each other;
- runtime/ imports only runtime, artifacts, errors and fileio (and the root's `__version__`);
- only runtime/registry.py opens a backend: its records name each backend module, the walk reads
  them, and nothing else imports a record's module (runtime/backends/*, train/torch_backend) or
  subclasses a backend, so a new backend is one record there plus one module;
- nothing outside the registry's table names a backend or a model suffix (string constants, read
  with `ast`; docstrings and the package names given to import probes excepted);
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
    {"bench", "evaluate", "doctor", "serve"},
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


def record_modules(registry_path: Path | None = None) -> dict[str, tuple[str, str]]:
    """{backend name: (module, class)} read with `ast` from the records in runtime/registry.py:
    the imports the registry makes by name, which the walk would otherwise not see."""
    path = registry_path or SRC / "runtime" / "registry.py"
    found = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "BackendRecord":
            fields = {k.arg: k.value for k in node.keywords}
            name, target = fields["name"], fields["module"]
            assert isinstance(name, ast.Constant) and isinstance(target, ast.Constant)
            module, cls = str(target.value).split(":")
            found[str(name.value)] = (module, cls)
    return found


RECORD_MODULES = record_modules()


def backend_violations(
    graph: dict[str, set[str]], backends: set[str] | None = None
) -> set[tuple[str, str]]:
    """Imports of a backend module (runtime/backends/*, base excepted, or any record's module)
    by anyone but the registry and the module itself."""
    backends = {m for m, _ in RECORD_MODULES.values()} if backends is None else backends
    return {
        (module, imported)
        for module, imported_set in graph.items()
        for imported in imported_set
        if (imported.startswith("echogen_trt.runtime.backends.") or imported in backends)
        and imported != BACKEND_INTERFACE
        and module not in (REGISTRY, imported)
    }


def test_only_the_registry_imports_a_backend() -> None:
    found = backend_violations(GRAPH)
    assert sorted(found - BACKEND_ALLOWED) == []
    assert sorted(BACKEND_ALLOWED - found) == [], "fixed: remove these from BACKEND_ALLOWED"


def test_the_check_sees_the_torch_backend_and_a_subclass() -> None:
    """The torch backend is loaded by name from train/: importing it directly (as bench's old
    baseline did) is caught, and so is subclassing a backend outside a record's module."""
    graph = {P + "bench.baseline": {P + "train.torch_backend", P + "runtime.backends.base"}}
    assert backend_violations(graph) == {(P + "bench.baseline", P + "train.torch_backend")}
    tree = ast.parse("class Mine(TorchBackend):\n    pass\n")
    assert backend_subclasses(tree, {"Backend", "TorchBackend"}) == ["Mine"]


def backend_subclasses(tree: ast.AST, bases: set[str]) -> list[str]:
    return [
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        and any(getattr(b, "id", getattr(b, "attr", "")) in bases for b in node.bases)
    ]


def test_backends_are_subclassed_only_in_record_modules() -> None:
    classes = {cls for _, cls in RECORD_MODULES.values()} | {"Backend"}
    found = []
    for path in sorted(SRC.rglob("*.py")):
        module = module_name(path)
        if module in {m for m, _ in RECORD_MODULES.values()}:
            continue
        tree = ast.parse(path.read_text())
        found += [(module, name) for name in backend_subclasses(tree, classes)]
    assert found == []


def test_every_registered_backend_module_exists() -> None:
    """Each record names a real module and class, on a layer the runtime may load it from (the
    runtime or above: a backend that needs torch lives in train/), whose `name` is the record's."""
    from echogen_trt.runtime.registry import names

    assert sorted(RECORD_MODULES) == sorted(names())
    for kind, (module, cls) in RECORD_MODULES.items():
        assert _is_module(module), f"{kind}: no module {module}"
        tree = ast.parse(SRC.joinpath(*module.split(".")[1:]).with_suffix(".py").read_text())
        classes = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
        assert cls in classes, f"{kind}: {module} has no class {cls}"
        assert layer_of(module) >= layer_of(REGISTRY), f"{kind}: {module} is below the runtime"
        assert _class_name_attr(classes[cls]) == kind, f"{kind}: {cls}.name differs"


def _class_name_attr(node: ast.ClassDef) -> str | None:
    for stmt in node.body:
        if isinstance(stmt, ast.Assign) and [getattr(t, "id", "") for t in stmt.targets] == [
            "name"
        ]:
            value = stmt.value
            return str(value.value) if isinstance(value, ast.Constant) else None
    return None


# -- backend names and model suffixes are the table's ----------------------------------------
# Calls whose string argument is a package to look for, not a backend ("torch" the package).
PROBE_CALLS = {"has_module", "module_version", "import_module", "find_spec", "_dist_version"}
SUFFIX_TOKEN = r"(?<![\w.])\.({})\b"
# (module, literal) still naming a backend or suffix outside the table, each with its reason.
LITERALS_ALLOWED: set[tuple[str, str]] = {
    # The IR format's suffix, defined beside its reader below the runtime; the table reads it.
    ("echogen_trt.artifacts.openvino_ir", ".xml"),
    # ONNX Runtime's provider alias "tensorrt" (the TensorRT execution provider), not a backend.
    ("echogen_trt.runtime.backends.onnxrt", "tensorrt"),
    # Package versions in the bench environment record, keyed by package name.
    ("echogen_trt.bench.env", "torch"),
    ("echogen_trt.bench.env", "tensorrt"),
    # demo/, train/ and evaluate/ are being edited under another issue (#24) in parallel: the
    # demo's TensorRT toolchain line, the checkpoint suffix, torch's RNG state key.
    ("echogen_trt.demo.run", "tensorrt"),
    ("echogen_trt.demo.steps", "tensorrt"),
    ("echogen_trt.evaluate.cache", ".pt"),
    ("echogen_trt.train.checkpoint", "torch"),
    ("echogen_trt.train.run_folder", ".pt"),
}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            found.add(id(first.value))
    return found


def literal_violations(
    tree: ast.AST, names: set[str], suffixes: set[str], record_class: str | None = None
) -> list[str]:
    """String constants in `tree` that name a backend or a model suffix outside the table: an
    exact backend name or suffix, or a text listing two or more suffixes ("an .engine, .onnx or
    .pt file": the list that goes stale when a backend is added)."""
    import re

    skip = _docstrings(tree)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", "")) in PROBE_CALLS
        ):
            skip.update(id(a) for a in node.args[:1])
        if isinstance(node, ast.ClassDef) and node.name == record_class:
            for stmt in node.body:  # a backend's own `name = ...` (checked against its record)
                if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant):
                    skip.add(id(stmt.value))
    token = re.compile(SUFFIX_TOKEN.format("|".join(re.escape(s[1:]) for s in suffixes)))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
            continue
        if id(node) in skip:
            continue
        text = node.value
        listed = len(set(token.findall(text.lower())))
        if text in names or text.lower() in suffixes or listed >= 2:
            found.append(text)
    return found


def test_nothing_outside_the_table_names_a_backend_or_suffix() -> None:
    from echogen_trt.runtime import registry

    names = set(registry.names())
    suffixes = {s for r in registry.records() for s in (*r.suffixes, *r.also_reads)}
    by_module = {module: cls for module, cls in RECORD_MODULES.values()}
    found = set()
    for path in sorted(SRC.rglob("*.py")):
        module = module_name(path)
        if module == REGISTRY:
            continue
        tree = ast.parse(path.read_text())
        for text in literal_violations(tree, names, suffixes, by_module.get(module)):
            found.add((module, text))
    assert sorted(found - LITERALS_ALLOWED) == []
    assert sorted(LITERALS_ALLOWED - found) == [], "fixed: remove from LITERALS_ALLOWED"


def test_literal_check_catches_names_and_suffix_lists() -> None:
    code = (
        '"""Docstrings may say torch and .onnx or .pt."""\n'
        'has_module("torch")\n'
        'if kind == "onnxrt": pass\n'
        'x = ".engine"\n'
        'msg = f"Expected an .engine, .onnx or .pt file, not {x}"\n'
        'ok = "model.onnx"\n'
    )
    found = literal_violations(ast.parse(code), {"onnxrt", "torch"}, {".engine", ".onnx", ".pt"})
    assert sorted(found) == [".engine", "Expected an .engine, .onnx or .pt file, not ", "onnxrt"]


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
