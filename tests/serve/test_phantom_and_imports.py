"""The page's phantom masks (sliders, ED -> ES) and the service's torch-free imports."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import replace

import numpy as np
import pytest

from echogen_trt.serve.phantom import PhantomShape, phantom_mask, shape_from_query
from echogen_trt.serve.requests import RequestRejected

SIZE = (128, 128)


def area(mask: np.ndarray, label: int) -> int:
    return int((mask == label).sum())


def test_the_phantom_has_the_three_structures_inside_the_fan() -> None:
    mask = phantom_mask(PhantomShape(), SIZE)
    assert mask.shape == SIZE and mask.dtype == np.uint8
    assert {1, 2, 3} <= set(np.unique(mask).tolist())
    assert not mask[0, :10].any() and not mask[0, -10:].any()  # outside the fan at the top


def test_sliders_and_phase_move_the_anatomy() -> None:
    base = phantom_mask(PhantomShape(), SIZE)
    es = phantom_mask(PhantomShape(phase=1.0), SIZE)
    assert area(es, 1) < 0.85 * area(base, 1)  # systole empties the LV
    assert area(es, 3) > area(base, 3)  # and fills the atrium
    longer = phantom_mask(replace(PhantomShape(), lv_length=100.0), SIZE)
    assert area(longer, 1) > area(base, 1)
    thicker = phantom_mask(replace(PhantomShape(), wall=15.0), SIZE)
    assert area(thicker, 2) > 1.3 * area(base, 2)
    bigger_la = phantom_mask(replace(PhantomShape(), la_size=52.0), SIZE)
    assert area(bigger_la, 3) > area(base, 3)


def test_query_values_are_checked() -> None:
    assert shape_from_query({"lv_length": "70", "phase": "0.5"}).lv_length == 70.0
    for query, match in (
        ({"lv_length": "59"}, r"lv_length \| '59'. Expected a number in \[60, 105\]"),
        ({"phase": "nan"}, "phase"),
        ({"wall": "thick"}, "wall"),
        ({"heart": "1"}, "unknown parameter"),
    ):
        with pytest.raises(RequestRejected, match=match):
            shape_from_query(query)


def test_the_service_never_imports_torch(tiny_model) -> None:
    code = textwrap.dedent(
        f"""
        import importlib.abc, sys

        class BlockTorch(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is blocked in this test")

        sys.meta_path.insert(0, BlockTorch())
        import uvicorn
        from echogen_trt.cli.serve import serve
        from echogen_trt.serve.server import service_state, serving

        with service_state({str(tiny_model)!r}) as state:
            import numpy as np
            from echogen_trt.runtime.model_tensors import prepare_mask

            batcher = state.batcher
            prepared = prepare_mask(np.zeros((40, 30), np.uint8), batcher.meta)
            print(batcher.submit(prepared).result(timeout=60).shape)
        print(any(m == "torch" or m.startswith("torch.") for m in sys.modules))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["(16,", "16)", "False"]
