"""The HTTP API over real sockets: a `serve` process on 127.0.0.1, requests by urllib."""

from __future__ import annotations

import http.client
import io
import json
import re

import numpy as np
import pytest
from serve_helpers import META, Server, blocks, decode, npy, png

from echogen_trt.runtime import MaskToEcho


def expected(model: object, mask: np.ndarray) -> np.ndarray:
    with MaskToEcho(model, batch_size=1) as gen:  # type: ignore[arg-type]
        return gen.generate(mask)[0]


def test_generate_png_matches_the_python_api(server: Server, tiny_model) -> None:
    mask = blocks()
    status, headers, body = server.post("/v1/generate", png(mask * 85))  # the x85 convention
    assert status == 200, body
    assert headers["content-type"] == "image/png"
    frame = decode(body)
    assert frame.shape == META.input_size and frame.dtype == np.uint8
    assert np.abs(frame.astype(int) - expected(tiny_model, mask)).max() <= 1


def test_generate_npy_json_and_multipart_agree(server: Server) -> None:
    mask = blocks(seed=3)
    _, _, from_png = server.post("/v1/generate", png(mask))
    status, headers, body = server.post("/v1/generate?format=npy", npy(mask), "application/x-npy")
    assert status == 200 and headers["content-type"] == "application/x-npy"
    from_npy = np.load(io.BytesIO(body))
    status, _, from_json = server.post(
        "/v1/generate", json.dumps({"mask": mask.tolist()}).encode(), "application/json"
    )
    assert status == 200
    boundary = "echogenboundary"
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="mask"; filename="m.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png(mask)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, _, from_form = server.post(
        "/v1/generate", form, f"multipart/form-data; boundary={boundary}"
    )
    assert status == 200, from_form
    for other in (from_npy, decode(from_json), decode(from_form)):
        np.testing.assert_array_equal(decode(from_png), other)


def test_size_original_gives_the_mask_size(server: Server) -> None:
    status, _, body = server.post("/v1/generate?size=original", png(blocks((40, 30))))
    assert status == 200
    assert decode(body).shape == (40, 30)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "reason"),
    [
        (b"", "image/png", 400, "empty"),
        (b"this is not a png", "image/png", 400, "not a decodable image"),
        (png(np.full((8, 8), 7, np.uint8)), "image/png", 400, r"mask values \{7\}"),
        (png(np.dstack([blocks(), blocks() * 0, blocks()])), "image/png", 400, "colour image"),
        (npy(np.zeros((2, 3, 4), np.uint8)), "application/x-npy", 400, "Expected one 2-D mask"),
        (b"\x93NUMPY garbage", "application/x-npy", 400, "cannot be read"),
        (b'{"mask": [[0, 1], [2]]}', "application/json", 400, "different lengths"),
        (b'{"mask": "no"}', "application/json", 400, '2-D "mask"'),
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "not valid JSON"),
        (b'{"mask": [[0, 1], [2, 1e400]]}', "application/json", 400, "mask values"),
        (b'{"mask": [["a", "b"]]}', "application/json", 400, "dtype"),
        (b"x", "text/plain", 415, "content type 'text/plain'"),
        (b"--b\r\n\r\n--b--\r\n", "multipart/form-data; boundary=b", 400, "multipart request"),
        (
            b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\nhi\r\n--b--\r\n',
            "multipart/form-data; boundary=b",
            400,
            "no file in it",
        ),
    ],
)
def test_bad_requests_get_a_4xx_with_one_line_and_the_server_keeps_serving(
    server: Server, body: bytes, content_type: str, status: int, reason: str
) -> None:
    got, headers, answer = server.post("/v1/generate", body, content_type)
    assert got == status, answer
    assert headers["content-type"] == "application/json"
    message = json.loads(answer)["error"]
    assert "\n" not in message
    assert re.search(reason, message), message
    assert server.post("/v1/generate", png(blocks()))[0] == 200  # still serving


def test_too_large_body_and_too_many_pixels_are_413(serve_factory, tiny_model) -> None:
    small = serve_factory(tiny_model, "--max-body-mb", "0.01", "--max-pixels", "4096")
    big = np.zeros((100, 100), np.uint8)  # 10,000 pixels > 4096, PNG of a few hundred bytes
    status, _, body = small.post("/v1/generate", png(big))
    assert status == 413, body
    assert "over the limit of 4,096" in json.loads(body)["error"]
    status, _, body = small.post("/v1/generate", np.random.default_rng(0).bytes(20_000))
    assert status == 413
    assert "over the limit of 10,485" in json.loads(body)["error"]
    # no Content-Length: the limit holds while the body streams in
    conn = http.client.HTTPConnection("127.0.0.1", int(small.url.rsplit(":", 1)[1]), timeout=30)
    chunks = (bytes(4096) for _ in range(10))
    conn.request("POST", "/v1/generate", chunks, {"Content-Type": "image/png"}, encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 413
    assert "over the limit" in json.loads(response.read())["error"]
    conn.close()
    assert small.post("/v1/generate", png(blocks()))[0] == 200


def test_unknown_format_and_size_are_400(server: Server) -> None:
    for query in ("format=gif", "size=huge"):
        status, _, body = server.post(f"/v1/generate?{query}", png(blocks()))
        assert status == 400, body
    assert server.get("/v1/nothing")[0] == 404
    assert server.get("/v1/generate")[0] == 405


def test_model_health_ready_and_page(server: Server) -> None:
    info = server.json("/v1/model")
    assert info["name"] == "tiny.onnx" and info["backend"] == "onnxrt"
    assert info["meta"]["input_size"] == [16, 16]  # type: ignore[index]
    assert info["inputs"] == [{"name": "mask", "datatype": "float32", "shape": [-1, 1, 16, 16]}]
    assert info["batching"] == {"max_batch": 8, "max_delay_ms": 5.0}
    assert server.json("/healthz") == {"status": "ok"}
    assert server.json("/readyz") == {"ready": True}
    status, headers, page = server.get("/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'<canvas id="mask"' in page and b"/static/app.js" in page


def test_page_assets_are_local(server: Server) -> None:
    """No CDN: every script and stylesheet the page loads comes from this server."""
    _, _, page = server.get("/")
    for asset in (b"/static/app.js", b"/static/style.css"):
        assert asset in page
        assert server.get(asset.decode())[0] == 200
    for body in (page, server.get("/static/app.js")[2], server.get("/static/style.css")[2]):
        assert b"https://" not in body and b"//cdn" not in body


def test_phantom_masks_follow_the_sliders_and_the_phase(server: Server) -> None:
    status, _, body = server.get("/v1/phantom")
    assert status == 200
    ed = decode(body)
    assert ed.shape == META.input_size and set(np.unique(ed)) <= {0, 1, 2, 3}
    doc = server.json("/v1/phantom?format=json&phase=1")
    es = np.array(doc["mask"], np.uint8)
    assert es.shape == ed.shape
    status, _, body = server.get("/v1/phantom?lv_length=200")
    assert status == 400 and "Expected a number in [60, 105]" in json.loads(body)["error"]
    assert server.get("/v1/phantom?heart=big")[0] == 400


def test_metrics_count_requests_errors_and_batches(server: Server) -> None:
    server.post("/v1/generate", png(blocks()))
    server.post("/v1/generate", b"", "image/png")
    status, headers, body = server.get("/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    text = body.decode()
    assert 'echogen_requests_total{route="/v1/generate",status="200"}' in text
    assert 'echogen_requests_total{route="/v1/generate",status="400"}' in text
    assert 'echogen_request_errors_total{route="/v1/generate"}' in text
    assert "echogen_batch_size_bucket" in text
    assert 'echogen_request_seconds_bucket{le="0.005",route="/v1/generate"}' in text
