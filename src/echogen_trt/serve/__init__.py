"""`echogen-trt serve`: the model behind an HTTP API with dynamic batching, and a drawing page.

Torch-free, like the runtime it serves from. One job per module: `batcher` (one worker owns the
model and groups concurrent requests), `requests` (bodies to masks, user errors to 4xx),
`limits` (every limit and timeout, decided once), `guard` (Host/Origin checks, security
headers), `protocol` (header timeout, connection limit, accept errors), `metrics` (Prometheus
text), `phantom` (the page's slider hearts), `app` (routes), `server` (uvicorn), `load` (a
bounded load generator for tests and benchmarks); the page is `static/`.
Needs the `serve` extra: `pip install 'echogen-trt[serve]'`.
"""
