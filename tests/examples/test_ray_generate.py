"""examples/ray_generate.py writes the same files, byte for byte, as `echogen-trt generate`.

The actor's work (FramesFromMasks) runs everywhere; the Ray Data pipeline around it runs where
`ray` is installed (`pip install 'ray[data]'`, ~1.3 GB: not in the default CI) and skips with
the reason elsewhere.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from echogen_trt.cli import cli
from fakes.onnx_models import toy_model

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ray_generate.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ray_generate", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["ray_generate"] = module  # Ray pickles the actor class by module name
    spec.loader.exec_module(module)
    return module


def masks(folder: Path, count: int = 5) -> Path:
    rng = np.random.default_rng(0)
    for i in range(count):
        mask = np.zeros((40 + i, 48), np.uint8)
        mask[5 : 20 + i, 8:30] = 1
        mask[22:35, 10 + i : 40] = rng.integers(2, 4)
        (folder / f"sub{i % 2}").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"sub{i % 2}" / f"m{i}.png"), mask * 85)
    (folder / "sub0" / "bad.png").write_bytes(b"not a png")
    return folder


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*.png")}


@pytest.fixture
def reference(tmp_path: Path) -> tuple[Path, Path, dict[str, bytes]]:
    """(masks, model, the frames `generate -r` wrote)."""
    source, model = masks(tmp_path / "masks"), toy_model(tmp_path / "toy.onnx")
    out = tmp_path / "generate"
    args = ["generate", str(source), "-r", "--out", str(out), "--model", str(model), "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1  # bad.png is reported, the rest written
    return source, model, files(out)


def test_the_actor_writes_what_generate_writes(tmp_path: Path, reference) -> None:
    source, model, expected = reference
    example = load_example()
    found, _ = example.collect_inputs([str(source)], recursive=True)
    jobs = example.plan_jobs(found, tmp_path / "actor", input_dirs=[source])
    for job in jobs:
        job.out.parent.mkdir(parents=True, exist_ok=True)
    batch = {
        "src": np.array([str(j.src) for j in jobs], dtype=object),
        "out": np.array([str(j.out) for j in jobs], dtype=object),
    }
    result = example.FramesFromMasks(str(model), batch_size=2)(batch)
    assert [bool(e) for e in result["error"]] == [j.src.name == "bad.png" for j in jobs]
    assert files(tmp_path / "actor") == expected and len(expected) == 5


def test_ray_pipeline_matches_generate(tmp_path: Path, reference) -> None:
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'ray[data]')")
    source, model, expected = reference
    example = load_example()
    ray.cloudpickle.register_pickle_by_value(example)  # the workers cannot import it by name
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        failed = example.ray_generate(
            [str(source)], str(tmp_path / "ray"), str(model), actors=2, batch_size=2, recursive=True
        )
    finally:
        ray.shutdown()
    assert [Path(p).name for p, _ in failed] == ["bad.png"]
    assert files(tmp_path / "ray") == expected
