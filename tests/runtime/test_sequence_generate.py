"""`generate` on sequence masks (CAMUS `_half_sequence_gt`, a 3-D .npy): every frame, and an
animated ED -> ES -> ED preview written last."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from runtime_helpers import SIZE, labels_mask

from echogen_trt.cli import cli
from echogen_trt.data.camus_write import write_view
from echogen_trt.runtime import MaskToEcho, run_generate


def gif_frames(path: Path) -> list[np.ndarray]:
    ok, animation = cv2.imdecodeanimation(np.fromfile(path, np.uint8))
    assert ok
    return list(animation.frames)


def test_a_camus_half_sequence_gives_its_frames_and_a_gif(
    toy, record_factory, tmp_path: Path
) -> None:
    rec = record_factory(shape=(60, 80), frames=5)
    write_view(tmp_path / "camus", "nifti", rec)
    seq = next((tmp_path / "camus").rglob("*_half_sequence_gt.nii.gz"))
    model = toy()
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["generate", str(seq), "--out", str(out), "--model", str(model)]
    )
    assert result.exit_code == 0, result.output
    stem = "patient0001_4CH_half_sequence_gt"
    frames = sorted((out / stem).glob("frame_*.png"))
    assert [f.name for f in frames] == [f"frame_{i:03d}.png" for i in range(5)]
    from echogen_trt.artifacts.medical_image import read_medical

    with MaskToEcho(model) as gen:
        want = gen.generate(read_medical(seq)[0])
    for path, frame in zip(frames, want, strict=True):
        np.testing.assert_array_equal(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), frame)
    played = gif_frames(out / f"{stem}.gif")
    assert len(played) == 5 + 3  # ED..ES, then back without repeating either end
    assert played[0].shape[:2] == (SIZE, SIZE)
    assert not (out / f"{stem}.png").exists()


def test_a_3d_npy_with_overlay_and_original_size(toy, tmp_path: Path) -> None:
    masks = np.stack([labels_mask((50, 40), seed) for seed in range(3)])
    np.save(tmp_path / "beat.npy", masks)
    summary = run_generate(
        [tmp_path / "beat.npy"], tmp_path / "out", model=toy(), size="original", overlay=True
    )
    assert summary.ok and summary.written == 1
    frames = sorted((tmp_path / "out" / "beat").glob("frame_*.png"))
    assert len(frames) == 3
    assert cv2.imread(str(frames[0]), cv2.IMREAD_UNCHANGED).shape == (50, 40)
    played = gif_frames(tmp_path / "out" / "beat.gif")
    assert played[0].shape[:2] == (50, 3 * 40)  # mask | frame | contours


def test_skip_existing_sees_a_finished_sequence(toy, tmp_path: Path) -> None:
    np.save(tmp_path / "beat.npy", np.stack([labels_mask((32, 32), s) for s in range(2)]))
    model = toy()
    run_generate([tmp_path / "beat.npy"], tmp_path / "out", model=model)
    again = run_generate([tmp_path / "beat.npy"], tmp_path / "out", model=model, skip_existing=True)
    assert again.skipped_existing == 1 and again.written == 0


def test_stills_and_sequences_in_one_run(toy, tmp_path: Path) -> None:
    np.save(tmp_path / "beat.npy", np.stack([labels_mask((32, 32), s) for s in range(4)]))
    np.save(tmp_path / "still.npy", labels_mask((32, 32), 1))
    summary = run_generate([tmp_path], tmp_path / "out", model=toy(), batch_size=3)
    assert summary.ok and summary.written == 2
    assert (tmp_path / "out" / "still.png").is_file()
    assert len(list((tmp_path / "out" / "beat").glob("*.png"))) == 4


def test_without_gif_support_the_preview_is_an_mp4(
    toy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(cv2, "imencodeanimation")
    np.save(tmp_path / "beat.npy", np.stack([labels_mask((32, 32), s) for s in range(3)]))
    summary = run_generate([tmp_path / "beat.npy"], tmp_path / "out", model=toy())
    assert summary.ok
    video = cv2.VideoCapture(str(tmp_path / "out" / "beat.mp4"))
    assert video.isOpened() and int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 3 + 1
