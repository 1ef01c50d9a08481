"""`echogen-trt generate` end to end through the CLI: backends agree, bad inputs are skipped,
runs resume, paths are mirrored safely, shards partition the inputs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest
from click.testing import CliRunner, Result
from runtime_helpers import SIZE, labels_mask, read_png, write_png

from echogen_trt.cli import cli
from echogen_trt.errors import ConfigError
from echogen_trt.runtime import io as rio
from echogen_trt.runtime.pipeline import run_generate


def generate(*args: Any) -> Result:
    return CliRunner().invoke(cli, ["generate", *map(str, args)])


def generate_json(*args: Any, code: int = 0) -> dict[str, Any]:
    result = generate(*args, "--json")
    assert result.exit_code == code, (result.output, result.exception)
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def frames_in(folder: Path) -> dict[str, np.ndarray]:
    """{relative path: frame} for every PNG under `folder`."""
    return {p.relative_to(folder).as_posix(): read_png(p) for p in sorted(folder.rglob("*.png"))}


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.startswith(".")]


def add_phantom_masks(folder: Path) -> int:
    """A few masks from the phantom generator, where it exists (CAMUS-sized, 500+ px)."""
    try:
        from echogen_trt.data.phantom import synth_patient
    except ImportError:
        return 0
    rec = synth_patient(0, 1, views=("4CH",), with_sequence=False)["4CH"]
    for phase in ("ED", "ES"):
        mask = rec.mask(phase)
        assert mask is not None
        write_png(folder / "phantom" / f"{rec.patient}_4CH_{phase}_gt.png", mask)
    return 2


def test_onnx_runtime_and_pytorch_agree(
    tmp_path: Path, models: SimpleNamespace, mask_dir: Path
) -> None:
    pytest.importorskip("torch")
    n = 4 + add_phantom_masks(mask_dir)
    a = generate_json(mask_dir, "-r", "--out", tmp_path / "ort", "--model", models.onnx)
    b = generate_json(
        mask_dir, "-r", "--out", tmp_path / "pt", "--model", models.ckpt, "--batch-size", 3
    )
    assert (a["backend"], b["backend"]) == ("onnxrt", "torch")
    assert a["written"] == b["written"] == a["total"] == n and a["failed"] == []
    assert a["ms_per_frame"] > 0 and a["compute_ms_per_frame"] > 0
    ort, pt = frames_in(tmp_path / "ort"), frames_in(tmp_path / "pt")
    assert sorted(ort) == sorted(pt) and len(ort) == n
    for rel, frame in ort.items():
        assert frame.shape == (SIZE, SIZE)
        assert np.abs(frame.astype(int) - pt[rel]).max() <= 1, rel
    assert len({f.tobytes() for f in ort.values()}) == n


def test_bad_inputs_are_reported_and_the_rest_written(
    tmp_path: Path, models: SimpleNamespace, mask_dir: Path
) -> None:
    (mask_dir / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    (mask_dir / "empty.png").write_bytes(b"")
    values = labels_mask((30, 30))
    values[3, 3] = 42
    write_png(mask_dir / "values.png", values)
    cv2.imwrite(
        str(mask_dir / "colour.png"), np.dstack([values % 4, values % 4, np.zeros_like(values)])
    )
    gone = tmp_path / "gone.png"
    out = tmp_path / "out"
    summary = generate_json(mask_dir, gone, "--out", out, "--model", models.onnx, code=1)
    reasons = {Path(f["input"]).name: f["reason"] for f in summary["failed"]}
    assert sorted(reasons) == ["colour.png", "corrupt.png", "empty.png", "gone.png", "values.png"]
    assert "not a decodable image" in reasons["corrupt.png"]
    assert "empty file" in reasons["empty.png"]
    assert "{0, 1, 2, 3, 42}" in reasons["values.png"]
    assert "colour image" in reasons["colour.png"]
    assert reasons["gone.png"] == "does not exist"
    assert summary["written"] == 4 and not summary["ok"]
    assert sorted(frames_in(out)) == ["m0.png", "m1.png", "m2.png", "m3.png"]

    text = generate(mask_dir, "--out", tmp_path / "out2", "--model", models.onnx)
    assert text.exit_code == 1
    assert "wrote 4 of 8 frames" in text.stdout and "4 failed" in text.stdout
    assert f"  {mask_dir / 'empty.png'}: empty file" in text.stdout


def test_scaled_masks_give_the_same_frames(
    tmp_path: Path, models: SimpleNamespace, mask_dir: Path
) -> None:
    scaled = tmp_path / "scaled"
    for path in mask_dir.glob("*.png"):
        write_png(scaled / path.name, read_png(path) * 85)
    generate_json(mask_dir, "--out", tmp_path / "a", "--model", models.onnx)
    generate_json(scaled, "--out", tmp_path / "b", "--model", models.onnx)
    a, b = frames_in(tmp_path / "a"), frames_in(tmp_path / "b")
    assert sorted(a) == sorted(b) and len(a) == 4
    for rel in a:
        np.testing.assert_array_equal(a[rel], b[rel])


def _eight_masks(root: Path) -> Path:
    for i in range(8):
        write_png(root / f"k{i}.png", labels_mask((48 + 4 * i, 60), i))
    return root


def _failing_replace(
    monkeypatch: pytest.MonkeyPatch, fail_on: set[int], exc: BaseException
) -> None:
    """os.replace raises `exc` on the listed calls: the temp file is written, the rename is not."""
    real, calls = os.replace, [0]

    def replace(src: Any, dst: Any) -> None:
        calls[0] += 1
        if calls[0] in fail_on:
            raise exc
        real(src, dst)

    monkeypatch.setattr(rio.os, "replace", replace)


def test_interrupted_run_leaves_whole_frames_and_resumes(
    tmp_path: Path, models: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    masks, out = _eight_masks(tmp_path / "masks"), tmp_path / "out"
    with monkeypatch.context() as patch:
        _failing_replace(patch, {4}, KeyboardInterrupt())
        with pytest.raises(KeyboardInterrupt):
            run_generate([masks], out, model=models.onnx, batch_size=2, workers=1, progress=False)
    done = frames_in(out)
    assert 3 <= len(done) < 8 and no_temp_files(out)
    summary = generate_json(masks, "--out", out, "--model", models.onnx, "--skip-existing")
    assert summary["skipped_existing"] == len(done) and summary["written"] == 8 - len(done)
    generate_json(masks, "--out", tmp_path / "clean", "--model", models.onnx)
    clean, resumed = frames_in(tmp_path / "clean"), frames_in(out)
    assert sorted(clean) == sorted(resumed)
    for rel in clean:
        np.testing.assert_array_equal(clean[rel], resumed[rel])


def test_writer_failures_are_reported_then_resumed(
    tmp_path: Path, models: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    masks, out = _eight_masks(tmp_path / "masks"), tmp_path / "out"
    with monkeypatch.context() as patch:
        _failing_replace(patch, {3, 4}, OSError(28, "No space left on device"))
        summary = generate_json(masks, "--out", out, "--model", models.onnx, "--workers", 1, code=1)
    assert summary["written"] == 6 and len(summary["failed"]) == 2
    assert all("No space left" in f["reason"] for f in summary["failed"])
    assert len(frames_in(out)) == 6 and no_temp_files(out)
    again = generate_json(masks, "--out", out, "--model", models.onnx, "--skip-existing")
    assert (again["written"], again["skipped_existing"], again["failed"]) == (2, 6, [])
    assert len(frames_in(out)) == 8


def test_nested_unicode_paths_and_output_inside_input(
    tmp_path: Path, models: SimpleNamespace
) -> None:
    root = tmp_path / "mes masques"
    rels = ["top.png", "a b/cœur été.png", "x/y/z.png"]
    for i, rel in enumerate(rels):
        write_png(root / rel, labels_mask((40 + i, 50), i))
    flat = generate_json(root, "--out", tmp_path / "flat", "--model", models.onnx)
    assert flat["total"] == 1 and sorted(frames_in(tmp_path / "flat")) == ["top.png"]
    inside = root / "frames"
    first = generate_json(root, "-r", "--out", inside, "--model", models.onnx)
    assert sorted(frames_in(inside)) == sorted(rels)
    second = generate_json(root, "-r", "--out", inside, "--model", models.onnx)
    assert second["total"] == first["total"] == 3  # its own frames are never read back
    refused = generate(root, "--out", root, "--model", models.onnx)
    assert refused.exit_code == 1 and isinstance(refused.exception, ConfigError)
    assert "is an input folder" in str(refused.exception)
    assert sorted(p.name for p in root.iterdir()) == ["a b", "frames", "top.png", "x"]


def test_glob_inputs_mirror_from_the_pattern_root(tmp_path: Path, models: SimpleNamespace) -> None:
    for rel in ("p1/ED_gt.png", "p2/ED_gt.png", "p2/note.png"):
        write_png(tmp_path / "db" / rel, labels_mask((40, 40)))
    summary = generate_json(
        f"{tmp_path}/db/*/ED_gt.png", "--out", tmp_path / "o", "--model", models.onnx
    )
    assert summary["written"] == 2
    assert sorted(frames_in(tmp_path / "o")) == ["p1/ED_gt.png", "p2/ED_gt.png"]


def test_shards_cover_every_input_once(tmp_path: Path, models: SimpleNamespace) -> None:
    masks = _eight_masks(tmp_path / "masks")
    seen: list[str] = []
    for i in range(3):
        out = tmp_path / f"shard{i}"
        summary = generate_json(masks, "--out", out, "--model", models.onnx, "--shard", f"{i}/3")
        assert summary["written"] == summary["total"] in (2, 3)
        seen += list(frames_in(out))
    assert sorted(seen) == sorted(f"k{i}.png" for i in range(8))
    bad = generate(masks, "--out", tmp_path / "x", "--model", models.onnx, "--shard", "3/3")
    assert bad.exit_code == 1 and "0 <= i < n" in str(bad.exception)


def test_size_formats_and_overlay(tmp_path: Path, models: SimpleNamespace, mask_dir: Path) -> None:
    shapes = {p.name: read_png(p).shape for p in mask_dir.glob("*.png")}
    generate_json(
        mask_dir,
        "--out",
        tmp_path / "orig",
        "--model",
        models.onnx,
        "--size",
        "original",
        "--overlay",
    )
    for name, frame in frames_in(tmp_path / "orig").items():
        if name.endswith("_overlay.png"):
            continue
        assert frame.shape == shapes[name]
        panel = cv2.imread(str(tmp_path / "orig" / name.replace(".png", "_overlay.png")))
        assert panel.shape == (shapes[name][0], 3 * shapes[name][1], 3)
    generate_json(mask_dir, "--out", tmp_path / "png", "--model", models.onnx)
    generate_json(mask_dir, "--out", tmp_path / "npy", "--model", models.onnx, "--format", "npy")
    generate_json(mask_dir, "--out", tmp_path / "jpg", "--model", models.onnx, "--format", "jpg")
    for rel, frame in frames_in(tmp_path / "png").items():
        assert frame.shape == (SIZE, SIZE)
        np.testing.assert_array_equal(
            np.load(tmp_path / "npy" / rel.replace(".png", ".npy")), frame
        )
        assert (tmp_path / "jpg" / rel.replace(".png", ".jpg")).is_file()


def test_uint8_fused_model_is_served(
    tmp_path: Path, models: SimpleNamespace, mask_dir: Path
) -> None:
    generate_json(mask_dir, "--out", tmp_path / "f", "--model", models.fused, "--batch-size", 3)
    generate_json(mask_dir, "--out", tmp_path / "p", "--model", models.onnx)
    fused, plain = frames_in(tmp_path / "f"), frames_in(tmp_path / "p")
    assert sorted(fused) == sorted(plain) and len(fused) == 4
    for rel in fused:
        assert np.abs(fused[rel].astype(int) - plain[rel]).max() <= 1


def test_default_model_discovery(
    tmp_path: Path, models: SimpleNamespace, mask_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    none = generate(mask_dir, "--out", "o")
    assert none.exit_code == 1 and "none found" in str(none.exception)
    (tmp_path / "runs" / "exp").mkdir(parents=True)
    shutil.copy(models.onnx, tmp_path / "runs" / "exp" / "model.onnx")
    result = generate(mask_dir, "--out", "o")
    assert result.exit_code == 0, result.output
    assert "using model runs/exp/model.onnx" in result.stderr
    assert len(frames_in(tmp_path / "o")) == 4
    shutil.copy(models.onnx, tmp_path / "other.onnx")
    two = generate(mask_dir, "--out", "o2")
    assert two.exit_code == 1
    assert "2 candidates: other.onnx, runs/exp/model.onnx" in str(two.exception)


def test_missing_inputs_and_help(tmp_path: Path, models: SimpleNamespace) -> None:
    (tmp_path / "empty").mkdir()
    result = generate(tmp_path / "empty", "--out", tmp_path / "o", "--model", models.onnx)
    assert result.exit_code == 1 and "no mask files found" in str(result.exception)
    help_text = generate("--help").output
    for option in (
        "--out",
        "--model",
        "--backend",
        "--skip-existing",
        "--shard",
        "--size",
        "--json",
    ):
        assert option in help_text


def test_inputs_inside_the_output_folder_get_their_own_error(
    tmp_path: Path, models: SimpleNamespace
) -> None:
    out = tmp_path / "work"
    write_png(out / "sub" / "m.png", labels_mask((40, 40)))
    refused = generate(out / "sub", "--out", out, "--model", models.onnx)
    assert refused.exit_code == 1 and isinstance(refused.exception, ConfigError)
    assert "inside the output folder" in str(refused.exception)
