"""A bounded load generator for the service: C clients x R requests, each on its own keep-alive
connection, recording status, latency and body. Used by the load test and the serving benchmark.
Standard library only (http.client, threads), so it measures the server, not a client stack.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np


@dataclass
class LoadResult:
    """Every response of a run: (client, index) -> (status, body), plus latencies and wall time."""

    clients: int
    requests: int
    seconds: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    responses: dict[tuple[int, int], tuple[int, bytes]] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        """Successful responses per second over the whole run."""
        ok = sum(1 for status, _ in self.responses.values() if status == 200)
        return ok / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(np.array(self.latencies_s) * 1e3, q))

    @property
    def errors(self) -> int:
        return sum(1 for status, _ in self.responses.values() if status != 200)


def run_load(
    url: str,
    body_for: Callable[[int, int], bytes],
    *,
    clients: int = 16,
    requests: int = 50,
    path: str = "/v1/generate",
    content_type: str = "image/png",
    timeout: float = 60.0,
) -> LoadResult:
    """POST `body_for(client, index)` from `clients` threads, `requests` each, all at once."""
    parts = urlsplit(url)
    result = LoadResult(clients, requests)
    lock = threading.Lock()
    start_line = threading.Barrier(clients + 1)

    def client(c: int) -> None:
        conn = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=timeout
        )
        bodies = [body_for(c, i) for i in range(requests)]  # encode before the clock starts
        start_line.wait()
        try:
            for i, body in enumerate(bodies):
                t0 = time.perf_counter()
                conn.request("POST", path, body, {"Content-Type": content_type})
                response = conn.getresponse()
                data = response.read()
                elapsed = time.perf_counter() - t0
                with lock:
                    result.latencies_s.append(elapsed)
                    result.responses[(c, i)] = (response.status, data)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    for thread in threads:
        thread.start()
    start_line.wait()
    t0 = time.perf_counter()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - t0
    return result


def scrape(metrics_text: str, name: str) -> float:
    """The value of an unlabelled sample `name` in Prometheus text (0.0 when absent)."""
    for line in metrics_text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0
