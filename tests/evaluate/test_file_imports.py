"""No import circle between the files of evaluate/, train/ and demo/ (imports anywhere in a file,
`TYPE_CHECKING` ones included: a circle there still ties the two files together)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGES = ("evaluate", "train", "demo")


def module_of(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, known: set[str]) -> set[str]:
    """The modules of `known` that `path` imports; `from pkg import name` counts as `pkg.name`
    when `name` is a submodule, else as `pkg` (the rule of tests/test_layers.py)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:
                here = module_of(path).split(".")
                keep = len(here) - node.level + (1 if path.name == "__init__.py" else 0)
                base = ".".join([*here[:keep], node.module])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return found & known


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle per module that can reach itself, as the path it takes."""
    found = []
    for start in sorted(graph):
        stack = [(start, [start])]
        seen = set()
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    found.append([*path, start])
                    stack.clear()
                    break
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_no_file_imports_a_file_that_imports_it_back(package: str) -> None:
    files = sorted((SRC / "echogen_trt" / package).rglob("*.py"))
    known = {module_of(p) for p in files}
    graph = {module_of(p): imports(p, known) - {module_of(p)} for p in files}
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})[0] == ["a", "b", "c", "a"]
    assert cycles({"a": {"b"}, "b": set()}) == []
