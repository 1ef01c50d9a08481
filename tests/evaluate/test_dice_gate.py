"""The INT8 export's segmentation-consistency gate (Dice drop of a candidate against FP32)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from eval_helpers import TINY

pytest.importorskip("openvino", reason="openvino not installed (extra [openvino])")

from echogen_trt.evaluate import dice_gate


def test_identical_models_lose_nothing(
    tiny_model: SimpleNamespace, phantom_tree: Path, tmp_path: Path
) -> None:
    """The real judge (trained once, cached): FP32 against itself drops exactly 0."""
    gate = dice_gate.dice_drop_gate(phantom_tree, config=TINY, cache_dir=tmp_path)
    check = gate(tiny_model.path, tiny_model.path)
    assert check.ok and check.number == 0.0 and check.bound == "<= 0.01"
    assert list(tmp_path.rglob("real-*.pt")), "the judge is cached for the second model"


def test_worst_structure_decides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    scores = {
        Path("fp32.onnx"): {"lv": 0.90, "myo": 0.80, "la": 0.85},
        Path("int8.xml"): {"lv": 0.899, "myo": 0.78, "la": 0.86},
    }
    monkeypatch.setattr(dice_gate, "consistency_dice", lambda model, *a: scores[model])
    gate = dice_gate.dice_drop_gate(tmp_path, cache_dir=tmp_path)
    check = gate(Path("fp32.onnx"), Path("int8.xml"))
    assert not check.ok and check.number == pytest.approx(0.02)
    assert check.value == "0.0200 (myo: 0.800 -> 0.780)"
    scores[Path("int8.xml")]["myo"] = 0.795
    assert dice_gate.dice_drop_gate(tmp_path, cache_dir=tmp_path)(*scores).ok


def test_the_library_export_runs_the_dice_gate_by_default(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`export --precision int8` and a library caller get the same gates: PSNR and Dice."""
    sentinel = object()
    calls: list[dict[str, object]] = []
    monkeypatch.setattr(dice_gate, "dice_drop_gate", lambda root: sentinel)
    monkeypatch.setattr(dice_gate, "export_int8", lambda *a, **kw: calls.append(kw))
    dice_gate.export_int8_gated("g.pt", tmp_path / "m.int8.xml", calibrate=tmp_path)
    dice_gate.export_int8_gated(
        "g.pt", tmp_path / "m.int8.xml", calibrate=tmp_path, dice_gate=False
    )
    assert [c["gates"] for c in calls] == [[sentinel], []]
