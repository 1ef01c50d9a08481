"""Bounded load on 127.0.0.1: 16 concurrent clients x 50 requests, every answer checked against
the Python API's frame for that client's own mask, and the batches counted from /metrics."""

from __future__ import annotations

import numpy as np
from serve_helpers import blocks, decode, png

from echogen_trt.runtime import MaskToEcho
from echogen_trt.serve.load import run_load, scrape

CLIENTS, REQUESTS = 16, 50


def mask_of(client: int, index: int) -> np.ndarray:
    """A different mask per request, so a frame sent to the wrong caller is caught."""
    mask = blocks((24 + client % 5, 20 + index % 7), seed=client * REQUESTS + index)
    mask[client % 4, : 1 + index % 9] = 1 + (client + index) % 3
    return mask


def test_concurrent_clients_each_get_their_own_correct_frame(serve_factory, tiny_model) -> None:
    server = serve_factory(tiny_model, "--max-batch", "8", "--max-delay-ms", "10")
    result = run_load(
        server.url, lambda c, i: png(mask_of(c, i)), clients=CLIENTS, requests=REQUESTS
    )
    assert result.errors == 0, {k: v for k, v in result.responses.items() if v[0] != 200}
    assert len(result.responses) == CLIENTS * REQUESTS
    keys = sorted(result.responses)
    with MaskToEcho(tiny_model, batch_size=64) as gen:
        want = gen.generate([mask_of(c, i) for c, i in keys])
    got = np.stack([decode(result.responses[key][1]) for key in keys])
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    distinct = len({frame.tobytes() for frame in want})
    assert distinct > CLIENTS * REQUESTS // 2  # the check above can tell callers apart

    _, _, metrics = server.get("/metrics")
    text = metrics.decode()
    frames = scrape(text, "echogen_batch_size_sum")
    calls = scrape(text, "echogen_batch_size_count")
    assert frames == CLIENTS * REQUESTS
    assert calls < frames  # concurrent requests shared model calls
    assert server.get("/healthz")[0] == 200  # and it is still up
