"""The TensorRT Python API as `tensorrt-stubs` (10.13) declares it, read with `ast`.

The fake `tensorrt` module and our code are checked against this, so neither can drift from the
real API. The stub files have a few syntax errors (a parameter named `in`, a non-default
parameter after defaults); `sanitized_source` patches exactly those so `ast` and mypy can read
them.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import shutil
from pathlib import Path

# (broken text, replacement): the only edits made to the stubs.
_FIXES = ((", in: ", ", in_: "), ("channel_axis: int)", "channel_axis: int = 0)"))


def stub_root() -> Path | None:
    """site-packages folder holding tensorrt/__init__.pyi, or None without tensorrt-stubs."""
    spec = importlib.util.find_spec("tensorrt")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        if (Path(location) / "__init__.pyi").is_file():
            return Path(location).parent
    return None


def sanitized_source(path: Path) -> str:
    text = path.read_text()
    for broken, fixed in _FIXES:
        text = text.replace(broken, fixed)
    return text


def write_sanitized_stubs(dest: Path) -> Path:
    """Copy tensorrt/ and tensorrt_bindings/ stubs to `dest`, patched; returns `dest`."""
    root = stub_root()
    assert root is not None, "tensorrt-stubs not installed"
    for package in ("tensorrt", "tensorrt_bindings"):
        shutil.copytree(root / package, dest / package, dirs_exist_ok=True)
        for pyi in (dest / package).glob("*.pyi"):
            pyi.write_text(sanitized_source(pyi))
    return dest


def _members(cls: ast.ClassDef) -> tuple[set[str], dict[str, ast.ClassDef]]:
    names: set[str] = set()
    nested: dict[str, ast.ClassDef] = {}
    for node in cls.body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
            nested[node.name] = node
    return names, nested


@functools.cache
def stub_api() -> dict[str, frozenset[str]]:
    """{"": module-level names, "Class": members incl. inherited, "Outer.Inner": members}."""
    root = stub_root()
    assert root is not None, "tensorrt-stubs not installed"
    tree = ast.parse(sanitized_source(root / "tensorrt_bindings" / "tensorrt.pyi"))
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    own: dict[str, set[str]] = {}
    bases: dict[str, list[str]] = {}
    for name, cls in classes.items():
        own[name], nested = _members(cls)
        bases[name] = [ast.unparse(b) for b in cls.bases]
        for inner_name, inner in nested.items():
            own[f"{name}.{inner_name}"] = _members(inner)[0]
            bases[f"{name}.{inner_name}"] = []

    def resolve(name: str) -> set[str]:
        found = set(own.get(name, set()))
        for base in bases.get(name, []):
            found |= resolve(base)
        return found

    api = {name: frozenset(resolve(name)) for name in own}
    api[""] = frozenset(_module_names(root / "tensorrt" / "__init__.pyi"))
    return api


def _module_names(init: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(sanitized_source(init)).body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == "__all__":
                    names.update(ast.literal_eval(node.value))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom):
            names.update(alias.asname or alias.name for alias in node.names)
    return names
