"""The Open Inference Protocol (KServe v2) as tritonclient speaks it, against a live `serve`.

Two servers: the toy float model (FP32 output) and its fused uint8-I/O variant (UINT8 output).
Every v2 frame must be byte-identical to `/v1/generate`'s for the same mask.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from serve_helpers import Server, blocks, npy, request

from echogen_trt.artifacts.model_meta import ModelMeta
from echogen_trt.serve.limits import ServeLimits
from echogen_trt.serve.requests import RequestRejected
from echogen_trt.serve.v2 import parse_infer
from fakes.onnx_models import TOY_SIZE, toy_model

httpclient = pytest.importorskip("tritonclient.http", reason="tritonclient[http] not installed")
from tritonclient.utils import InferenceServerException  # noqa: E402

NAME = "toy"  # the model file's stem


@pytest.fixture(scope="module", params=["float", "uint8"])
def v2_server(
    request: pytest.FixtureRequest,
    serve_factory: Callable[..., Server],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Server, str]:
    model = toy_model(tmp_path_factory.mktemp(request.param) / f"{NAME}.onnx", request.param)
    return serve_factory(model), request.param


@pytest.fixture
def client(v2_server: tuple[Server, str]) -> httpclient.InferenceServerClient:
    server, _ = v2_server
    triton = httpclient.InferenceServerClient(url=server.url.removeprefix("http://"))
    yield triton
    triton.close()


def masks(count: int) -> np.ndarray:
    """`count` different (40, 48) masks: not the model's size, so the server resizes them."""
    return np.stack([blocks((40, 48), seed=i) for i in range(count)])


def v1_frame(server: Server, mask: np.ndarray) -> np.ndarray:
    status, _, body = server.post("/v1/generate?format=npy", npy(mask), "application/x-npy")
    assert status == 200, body
    return np.load(io.BytesIO(body))


def test_health_and_metadata(client: httpclient.InferenceServerClient, v2_server) -> None:
    _, io_kind = v2_server
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(NAME) and client.is_model_ready(NAME, "1")
    assert not client.is_model_ready("other")
    meta = client.get_model_metadata(NAME)
    assert meta["name"] == NAME and meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "mask", "datatype": "UINT8", "shape": [-1, 64, 64]}]
    expected = (
        {"name": "echo", "datatype": "FP32", "shape": [-1, 1, TOY_SIZE, TOY_SIZE]}
        if io_kind == "float"
        else {"name": "echo", "datatype": "UINT8", "shape": [-1, TOY_SIZE, TOY_SIZE]}
    )
    assert meta["outputs"] == [expected]
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
@pytest.mark.parametrize("count", [1, 8])
def test_infer_matches_v1_generate(
    client: httpclient.InferenceServerClient, v2_server, binary: bool, count: int
) -> None:
    server, io_kind = v2_server
    batch = masks(count)
    tensor = httpclient.InferInput("mask", list(batch.shape), "UINT8")
    tensor.set_data_from_numpy(batch, binary_data=binary)
    wanted = [httpclient.InferRequestedOutput("echo", binary_data=binary)]
    result = client.infer(NAME, [tensor], outputs=wanted, request_id="r1")
    out = result.as_numpy("echo")
    assert result.get_response()["id"] == "r1"
    if io_kind == "float":
        assert out.dtype == np.float32 and out.shape == (count, 1, TOY_SIZE, TOY_SIZE)
        frames = np.rint(out[:, 0] * 255).astype(np.uint8)
        np.testing.assert_array_equal(frames.astype(np.float32) / 255, out[:, 0])
    else:
        assert out.dtype == np.uint8 and out.shape == (count, TOY_SIZE, TOY_SIZE)
        frames = out
    for mask, frame in zip(batch, frames, strict=True):
        np.testing.assert_array_equal(frame, v1_frame(server, mask))


def test_default_outputs_come_as_binary(client: httpclient.InferenceServerClient, v2_server):
    """tritonclient's defaults: binary input, no outputs named (all outputs, binary)."""
    server, _ = v2_server
    mask = blocks((64, 64), seed=5)
    tensor = httpclient.InferInput("mask", [1, 64, 64], "UINT8")
    tensor.set_data_from_numpy(mask[None])
    out = client.infer(NAME, [tensor], model_version="1").as_numpy("echo")
    frame = out.reshape(64, 64)
    frame = frame if frame.dtype == np.uint8 else np.rint(frame * 255).astype(np.uint8)
    np.testing.assert_array_equal(frame, v1_frame(server, mask))


def test_unbatched_mask_and_scaled_labels(v2_server) -> None:
    server, _ = v2_server
    mask = blocks((40, 48), seed=2)
    body = {"inputs": [{"name": "mask", "datatype": "INT32", "shape": [40, 48]}]}
    body["inputs"][0]["data"] = (mask.astype(int) * 85).tolist()  # the x85 convention, nested
    status, _, raw = server.post(f"/v2/models/{NAME}/infer", json.dumps(body).encode(), "")
    assert status == 200, raw
    output = json.loads(raw)["outputs"][0]
    values = np.array(output["data"]).reshape(output["shape"])
    assert len(output["shape"]) in (2, 3)  # no batch axis added
    frame = np.rint(values.reshape(64, 64) * (255 if output["datatype"] == "FP32" else 1))
    np.testing.assert_array_equal(frame.astype(np.uint8), v1_frame(server, mask))


def _infer_body(**tensor: object) -> bytes:
    spec = {"name": "mask", "datatype": "UINT8", "shape": [2, 2], "data": [0, 1, 2, 3]}
    return json.dumps({"inputs": [{**spec, **tensor}]}).encode()


def _with(**request: object) -> bytes:
    return json.dumps({**json.loads(_infer_body()), **request}).encode()


def _binary_body(size: int, data: bytes) -> tuple[bytes, dict[str, str]]:
    header = _infer_body(data=None, parameters={"binary_data_size": size})
    return header + data, {"Inference-Header-Content-Length": str(len(header))}


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "reason"),
    [
        ("infer", b"{not json", {}, 400, "not valid JSON"),
        ("infer", b"[1]", {}, 400, "not a JSON object"),
        ("infer", b'{"inputs": []}', {}, 400, "not a list of one tensor"),
        ("infer", _infer_body(name="x"), {}, 400, "Expected 'mask'"),
        ("infer", _infer_body(datatype="BYTES"), {}, 400, "datatype 'BYTES'"),
        ("infer", _infer_body(shape=[2, 2, 2, 2]), {}, 400, r"Expected \[N, H, W\]"),
        ("infer", _infer_body(shape=[0, 2]), {}, 400, r"Expected \[N, H, W\]"),
        ("infer", _infer_body(data=[0, 1, 2]), {}, 400, "holds 3 values. Expected 4"),
        ("infer", _infer_body(data=[0, 1, 2, 7]), {}, 400, r"mask values"),
        ("infer", _infer_body(data=[0, 1, 2, 0.5]), {}, 400, r"mask values"),
        ("infer", _infer_body(shape=[9000, 9000]), {}, 413, "pixels"),
        ("infer", *_binary_body(9, b"\0\1\2\3"), 400, "binary_data_size 9 with 4 bytes"),
        ("infer", *_binary_body(4, b"\0\1\2\3"), 200, ""),
        ("infer", b"{}", {"Inference-Header-Content-Length": "99"}, 400, "at most the body's"),
        ("versions/2/infer", _infer_body(), {}, 404, "version '2'"),
        (
            "infer",
            _infer_body(shape=[65, 1, 1], data=[0] * 65),
            {},
            413,
            "the 64 the model's queue",
        ),
        ("infer", _infer_body(parameters=[1]), {}, 400, '"parameters" is not a JSON object'),
        ("infer", _with(outputs={"name": "echo"}), {}, 400, "not this model's"),
        ("infer", _with(outputs=[{"name": "y"}]), {}, 400, "not this model's"),
    ],
)
def test_malformed_requests_get_v2_errors(
    v2_server, path: str, body: bytes, headers: dict[str, str], status: int, reason: str
) -> None:
    server, _ = v2_server
    got, _, raw = request(f"{server.url}/v2/models/{NAME}/{path}", body, headers)
    assert got == status, raw
    if status == 200:  # the well-formed control case
        return
    error = json.loads(raw)
    assert list(error) == ["error"] and "\n" not in error["error"]
    assert re.search(reason, error["error"]), error


def test_unknown_model_is_a_404_and_tritonclient_reports_it(
    client: httpclient.InferenceServerClient,
) -> None:
    tensor = httpclient.InferInput("mask", [1, 2, 2], "UINT8")
    tensor.set_data_from_numpy(np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(InferenceServerException, match="not served here"):
        client.infer("nope", [tensor])
    with pytest.raises(InferenceServerException, match="Expected 'mask'"):
        bad = httpclient.InferInput("labels", [1, 2, 2], "UINT8")
        bad.set_data_from_numpy(np.zeros((1, 2, 2), np.uint8))
        client.infer(NAME, [bad])


def test_v1_routes_stay(v2_server) -> None:
    server, _ = v2_server
    assert server.get("/")[0] == 200 and server.get("/v1/model")[0] == 200


README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize("v2_server", ["uint8"], indirect=True)
def test_the_readme_tritonclient_snippet_runs(v2_server) -> None:
    """The README's snippet, pointed at this server and model, gives /v1/generate's frames."""
    server, _ = v2_server
    text = README.read_text()
    code = text.split("<!-- tritonclient-snippet -->\n```python\n", 1)[1].split("```", 1)[0]
    setting = 'URL, MODEL = "127.0.0.1:8000", "model.u8"'
    assert setting in code
    address = server.url.removeprefix("http://")
    namespace: dict[str, object] = {}
    exec(code.replace(setting, f"URL, MODEL = {address!r}, {NAME!r}"), namespace)
    frames = namespace["frames"]
    assert isinstance(frames, np.ndarray) and frames.dtype == np.uint8
    masks = namespace["masks"]
    assert isinstance(masks, np.ndarray) and frames.shape == masks.shape
    for mask, frame in zip(masks, frames, strict=True):
        np.testing.assert_array_equal(frame, v1_frame(server, mask))


def test_the_batch_is_bounded_not_only_each_mask() -> None:
    """Many small masks become many model-sized ones: the pixel limit holds per request."""
    state = SimpleNamespace(
        meta=ModelMeta("all", (1, 2, 3), (64, 64)),
        limits=ServeLimits(max_pixels=64 * 64 * 10),
        batcher=SimpleNamespace(gen=SimpleNamespace(prepare=lambda mask: mask)),
    )
    body = json.dumps({"inputs": [{"name": "mask", "datatype": "UINT8", "shape": [11, 2, 2]}]})
    spec = json.loads(body)
    spec["inputs"][0]["data"] = [0] * 44
    with pytest.raises(RequestRejected, match="11 masks of 4,096 pixels") as info:
        parse_infer(state, json.dumps(spec).encode(), None)  # type: ignore[arg-type]
    assert info.value.status == 413
    spec["inputs"][0]["shape"], spec["inputs"][0]["data"] = [10, 2, 2], [0] * 40
    assert len(parse_infer(state, json.dumps(spec).encode(), None).prepared) == 10  # type: ignore[arg-type]


def test_v2_requests_are_counted_in_metrics(client: httpclient.InferenceServerClient, v2_server):
    server, _ = v2_server
    assert client.is_server_live()
    status, _, body = server.get("/metrics")
    assert status == 200 and 'route="/v2",status="200"' in body.decode()
