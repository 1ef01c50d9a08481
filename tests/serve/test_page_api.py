"""The routes the page needs (GET /v1/labels, POST /v1/mask, POST /v1/cine) on a real server,
and the drawn-mask contraction (`serve.drawn_cine`) they use."""

from __future__ import annotations

import base64
import io
import itertools
import json
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from serve_helpers import Server, blocks, decode, npy, png

from echogen_trt.artifacts.medical_image import write_mhd, write_nifti
from echogen_trt.artifacts.model_meta import ModelMeta
from echogen_trt.errors import InputMismatch
from echogen_trt.runtime.model_tensors import resize_mask
from echogen_trt.serve import drawn_cine
from echogen_trt.serve.palette import labels_info
from echogen_trt.serve.phantom import PhantomShape, phantom_mask
from fakes.onnx_models import write_plain_onnx

SIZE = 48


@pytest.fixture(scope="module")
def api(serve_factory: Callable[..., Server], tmp_path_factory: Any) -> Server:
    meta = ModelMeta("ventricle_myocard_atrium", (1, 2, 3), (SIZE, SIZE))
    return serve_factory(write_plain_onnx(tmp_path_factory.mktemp("api") / "m48.onnx", meta))


def multipart(files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """(body, content type) of a multipart/form-data upload of (field, filename, data)."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
        for field, name, data in files
    ]
    return b"".join(
        parts
    ) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def upload(api: Server, files: list[tuple[str, str, bytes]]) -> tuple[int, dict[str, Any]]:
    body, kind = multipart(files)
    status, _, answer = api.post("/v1/mask", body, kind)
    return status, json.loads(answer)


def b64image(text: str) -> np.ndarray:
    return decode(base64.b64decode(text))


def test_labels_say_which_brushes_the_model_uses(api: Server) -> None:
    served = api.json("/v1/labels")
    assert [e["kept"] for e in served["labels"]] == [True, True, True, True]  # type: ignore[index]
    lv_only = labels_info((1,), "ventricle")
    assert {e["value"]: e["kept"] for e in lv_only["labels"]} == {
        0: True,
        1: True,
        2: False,
        3: False,
    }


def test_mask_upload_reads_what_generate_reads(api: Server, tmp_path: Path) -> None:
    mask = blocks((60, 44), seed=2)
    image = np.tile(np.arange(44, dtype=np.uint8) * 5, (60, 1))

    status, answer = upload(api, [("file", "m.png", png(mask * 85))])
    assert status == 200, answer
    assert (answer["height"], answer["width"], answer["image"]) == (60, 44, None)
    assert np.array_equal(b64image(answer["mask"]), mask * 85)
    assert np.array_equal(b64image(answer["model_mask"]), resize_mask(mask, (SIZE, SIZE)) * 85)

    status, _, raw = api.post("/v1/mask", npy(mask.astype(np.int64)), "application/x-npy")
    assert status == 200 and np.array_equal(b64image(json.loads(raw)["mask"]), mask * 85)

    # CAMUS 2023: NIfTI mask and its image, in either order; the image comes back beside it
    write_nifti(tmp_path / "patient0007_2CH_ES_gt", mask, (0.3, 0.2))
    write_nifti(tmp_path / "patient0007_2CH_ES", image, (0.3, 0.2))
    files = [
        (
            "file",
            "patient0007_2CH_ES.nii.gz",
            (tmp_path / "patient0007_2CH_ES.nii.gz").read_bytes(),
        ),
        (
            "file",
            "patient0007_2CH_ES_gt.nii.gz",
            (tmp_path / "patient0007_2CH_ES_gt.nii.gz").read_bytes(),
        ),
    ]
    status, answer = upload(api, files)
    assert status == 200, answer
    assert answer["name"] == "patient0007_2CH_ES_gt.nii.gz"
    assert np.array_equal(b64image(answer["mask"]), mask * 85)
    assert np.array_equal(b64image(answer["image"]), image)

    # CAMUS 2019: MetaImage header + .raw
    write_mhd(tmp_path / "patient0008_4CH_ED_gt", mask, (0.3, 0.2))
    header = (tmp_path / "patient0008_4CH_ED_gt.mhd").read_bytes()
    data = (tmp_path / "patient0008_4CH_ED_gt.raw").read_bytes()
    status, answer = upload(
        api,
        [("mask", "patient0008_4CH_ED_gt.mhd", header), ("raw", "patient0008_4CH_ED_gt.raw", data)],
    )
    assert status == 200, answer
    assert np.array_equal(b64image(answer["mask"]), mask * 85)
    status, answer = upload(api, [("mask", "patient0008_4CH_ED_gt.mhd", header)])
    assert status == 400 and "without its data file 'patient0008_4CH_ED_gt.raw'" in answer["error"]
    elsewhere = header.replace(b"patient0008_4CH_ED_gt.raw", b"../../../../etc/hostname")
    files = [("mask", "p_gt.mhd", elsewhere), ("raw", "patient0008_4CH_ED_gt.raw", data)]
    status, answer = upload(api, files)
    assert status == 400 and "without its data file '../../../../etc/hostname'" in answer["error"]


def test_mask_upload_refusals_name_the_upload(api: Server, tmp_path: Path) -> None:
    colour = np.dstack([blocks() * 40, blocks() * 80, blocks() * 20]).astype(np.uint8)
    status, answer = upload(api, [("file", "scan.png", png(colour))])
    assert status == 400 and answer["error"].startswith("upload 'scan.png' | colour image")
    write_nifti(tmp_path / "bad_gt", (blocks() * 7).astype(np.uint8), (0.3, 0.3))  # values 0..21
    status, answer = upload(
        api, [("file", "bad_gt.nii.gz", (tmp_path / "bad_gt.nii.gz").read_bytes())]
    )
    assert status == 400 and answer["error"].startswith("upload 'bad_gt.nii.gz' | mask values")
    assert "echogen-upload" not in answer["error"]  # no temporary path in the message


def test_cine_of_a_drawn_mask_in_every_format(api: Server) -> None:
    ed = phantom_mask(PhantomShape(), (SIZE, SIZE))
    status, headers, body = api.post("/v1/cine?format=gif&frames=6&ef=0.6&fps=12", png(ed * 85))
    assert status == 200 and headers["content-type"] == "image/gif"
    ok, animation = cv2.imdecodeanimation(np.frombuffer(body, np.uint8))
    assert ok and len(animation.frames) == 2 * 6 - 2
    assert animation.frames[0].shape == (SIZE, SIZE, 3)
    assert abs(int(animation.durations[0]) - 83) <= 10  # GIF: centiseconds

    status, _, body = api.post("/v1/cine?format=gif&frames=4&overlay=1", png(ed))
    ok, animation = cv2.imdecodeanimation(np.frombuffer(body, np.uint8))
    assert ok and animation.frames[0].shape == (SIZE, 3 * SIZE, 3)

    status, _, body = api.post("/v1/cine?format=strip&frames=5&ef=0.6", png(ed))
    strip = decode(body)
    assert strip.shape == (5 * SIZE, 2 * SIZE)
    masks = strip[:, :SIZE].reshape(5, SIZE, SIZE) // 85
    assert np.array_equal(masks, drawn_cine.sequence(ed, 5, 0.6))
    frames = strip[:, SIZE:].reshape(5, SIZE, SIZE)
    _, _, live = api.post("/v1/generate", png(ed))
    assert np.array_equal(frames[0], decode(live))  # the same model path as /v1/generate

    status, _, body = api.post("/v1/cine?format=zip&frames=3", png(ed))
    names = zipfile.ZipFile(io.BytesIO(body)).namelist()
    assert status == 200 and sorted(names) == sorted(
        [f"frame_{k:03d}.png" for k in range(3)] + [f"mask_{k:03d}.png" for k in range(3)]
    )
    status, headers, body = api.post("/v1/cine?format=mp4&frames=3", png(ed))
    assert (status == 200 and body[4:8] == b"ftyp") or (status == 400 and "mp4" in str(body))


@pytest.mark.parametrize(
    ("query", "expected"),
    [("ef=0.99", "cine ef | '0.99'"), ("frames=1", "cine frames"), ("format=avi", "format 'avi'")],
)
def test_cine_refuses_bad_options(api: Server, query: str, expected: str) -> None:
    status, _, body = api.post(f"/v1/cine?{query}", png(blocks((SIZE, SIZE))))
    assert status == 400 and expected in json.loads(body)["error"]


def test_cine_without_an_lv_says_so(api: Server) -> None:
    status, _, body = api.post(
        "/v1/cine", png(np.where(blocks((SIZE, SIZE)) == 1, 0, blocks((SIZE, SIZE))))
    )
    assert status == 400 and "no LV cavity" in json.loads(body)["error"]


@pytest.mark.parametrize("ef", [0.3, 0.6])
def test_end_systole_follows_the_ejection_fraction(ef: float) -> None:
    ed = phantom_mask(PhantomShape(), (128, 128))
    es = drawn_cine.end_systole(ed, ef)
    area = {label: (int((ed == label).sum()), int((es == label).sum())) for label in (1, 2, 3)}
    assert area[1][1] / area[1][0] == pytest.approx((1 - ef) ** (2 / 3), abs=0.03)
    assert area[2][1] / area[2][0] == pytest.approx(1.0, abs=0.08)  # muscle keeps its area
    assert area[3][1] > area[3][0]  # the atrium fills
    assert not ((es == 1) & (ed != 1)).any()  # the cavity only shrinks
    frames = drawn_cine.sequence(ed, 9, ef)
    lv = [int((f == 1).sum()) for f in frames]
    assert np.array_equal(frames[0], ed) and np.array_equal(frames[-1], es)
    assert all(a >= b for a, b in itertools.pairwise(lv)) and lv[0] > lv[4] > lv[-1]


def test_end_systole_needs_an_lv() -> None:
    with pytest.raises(InputMismatch, match="no LV cavity"):
        drawn_cine.end_systole(np.full((8, 8), 2, np.uint8), 0.5)
