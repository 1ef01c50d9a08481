"""Issue #14, export side, checked on the source: the engine builder takes nothing from the
runtime's backends, and the decisions made once stay in one place (precision names, PSNR,
phantom masks). Import circles between files are tests/test_layers.py's job.
"""

from __future__ import annotations

import ast

import numpy as np

from test_layers import GRAPH, SRC, module_name

PRECISION_HOME = "echogen_trt.artifacts.precision"
PSNR_HOME = "echogen_trt.metrics"


def test_builder_takes_nothing_from_the_runtime_backends() -> None:
    """The TensorRT helpers live in runtime.gpu.trt_api, shared by the builder and the backend."""
    found = sorted(
        (module, imported)
        for module, imported_set in GRAPH.items()
        if module.startswith("echogen_trt.export")
        for imported in imported_set
        if imported.startswith("echogen_trt.runtime.backends")
    )
    assert found == []
    shared = "echogen_trt.runtime.gpu.trt_api"
    for user in ("export.trt_build", "export.trt_inspect", "runtime.backends.tensorrt"):
        assert shared in GRAPH[f"echogen_trt.{user}"]


def _source_files() -> list[tuple[str, ast.Module]]:
    return [
        (module_name(path), ast.parse(path.read_text(), filename=str(path)))
        for path in sorted(SRC.rglob("*.py"))
    ]


def test_precision_names_are_listed_once() -> None:
    """No tuple, list or set of precision names outside artifacts.precision (there were four,
    in two orders: export, build-engine, the export CLI and the bench ceiling)."""
    names = {"fp32", "fp16"}
    found = []
    for module, tree in _source_files():
        for node in ast.walk(tree):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                values = {e.value for e in node.elts if isinstance(e, ast.Constant)}
                if names <= values and module != PRECISION_HOME:
                    found.append(f"{module}:{node.lineno}")
    assert found == []


def test_psnr_is_defined_once() -> None:
    """One PSNR formula (metrics.psnr_db); export verification had its own. A function that
    computes one calls log10 and names psnr (a gate that calls psnr_db does not count)."""
    found = [
        f"{module}.{node.name}"
        for module, tree in _source_files()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and "psnr" in node.name.lower()
        and "log10" in ast.unparse(node)
    ]
    assert found == [f"{PSNR_HOME}.psnr_db"]


def test_verification_and_bench_draw_the_same_phantom_masks() -> None:
    """One maker: verify's phantom masks follow its random ones from the same generator, and
    the bench's inputs are the maker's masks for the seed."""
    from echogen_trt.bench import runner
    from echogen_trt.data.phantom_masks import phantom_mask, phantom_masks
    from echogen_trt.export.verify import default_masks

    rng = np.random.default_rng(4)
    noise = [rng.integers(0, 4, (40, 48), dtype=np.uint8) for _ in range(2)]
    expected = np.stack(noise + [phantom_mask((40, 48), rng) for _ in range(3)])
    np.testing.assert_array_equal(default_masks((40, 48), 2, 3, seed=4), expected)
    np.testing.assert_array_equal(runner.synthetic_masks(3, (40, 48), seed=7),
                                  phantom_masks(3, (40, 48), seed=7))  # fmt: skip
    assert phantom_masks(0, (8, 8)).shape == (0, 8, 8)
