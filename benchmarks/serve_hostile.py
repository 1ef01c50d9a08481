"""`echogen-trt serve` beside hostile clients: does every honest request still get an answer?

Three scenarios, each against its own `python -m echogen_trt serve` on 127.0.0.1 with the
open-file limit at 1,024 (`ulimit -n 1024`), each with 4 honest clients posting phantom masks:

- **slow**: 1,100 slow-loris connections (a request line, then one header line a second;
  reconnecting when the server closes them);
- **bombs**: 8 clients posting, back to back, a 335-byte JPEG that claims 30000x30000 pixels,
  sent as `image/png`;
- **flood**: open-loop requests at 4x the service's capacity (measured first, closed-loop, on the
  same server).

Each scenario runs a quiet phase (honest clients alone) and then the attack phase, both on the
clock; at the end of the attack, with the attackers still going, the server gets SIGTERM and the
time to exit is measured. Honest requests count as answered when they get 200, or 503 with a
Retry-After (after which the client waits that long); anything else (a timeout, a reset, a 5xx)
is unanswered. Reported per scenario: answered / sent, their p50/p95 latency (quiet and under
attack), the server's peak RSS (VmHWM) and its exit time, the machine's load before and after.

Everything is bounded: each phase stops on the clock, every request has a 30 s timeout, the
attackers stop with their phase. About 3 minutes in all with the defaults.

Run: `python benchmarks/serve_hostile.py [--model M] [--quiet-s 8] [--attack-s 30]`. Without
--model it exports a random-weight generator of the demo's CPU size (width 16, 128x128; needs the
train extra). Writes benchmarks/results/serve-hostile-<machine>-<date>.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "serve"))  # the tests' server start/stop helpers
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from serve_helpers import Server, start_server, stop_server  # noqa: E402

from echogen_trt.serve.limits import ServeLimits  # noqa: E402
from fakes.hostile_files import jpeg_bomb  # noqa: E402
from serve_load import masks, random_model  # noqa: E402

OPEN_FILES = 1024
HONEST_CLIENTS = 4
REQUEST_TIMEOUT_S = 30.0
SLOW_CONNECTIONS = 1100
BOMB_CLIENTS = 8
FLOOD_FACTOR = 4
SHUTDOWN_BOUND_S = ServeLimits().graceful_timeout_s + 5.0  # README: graceful timeout + 5 s


@dataclass
class Tally:
    """Outcomes and latencies of one group of clients over one phase."""

    latencies_s: list[float] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: str, seconds: float | None = None) -> None:
        with self.lock:
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
            if seconds is not None:
                self.latencies_s.append(seconds)

    def summary(self) -> dict[str, Any]:
        sent = sum(self.outcomes.values())
        answered = self.outcomes.get("200", 0) + self.outcomes.get("503+retry", 0)
        ms = sorted(x * 1e3 for x in self.latencies_s)
        return {
            "sent": sent,
            "answered": answered,
            "outcomes": dict(sorted(self.outcomes.items())),
            "p50_ms": round(statistics.median(ms), 1) if ms else None,
            "p95_ms": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 1) if ms else None,
        }


def post(conn: http.client.HTTPConnection, body: bytes) -> tuple[int, dict[str, str]]:
    conn.request("POST", "/v1/generate", body, {"Content-Type": "image/png"})
    response = conn.getresponse()
    response.read()
    return response.status, {k.lower(): v for k, v in response.getheaders()}


def honest_client(port: int, bodies: list[bytes], stop: threading.Event, tally: Tally) -> None:
    """Post masks until `stop`; on 503 wait the Retry-After; a failure reconnects."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
    k = 0
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            status, headers = post(conn, bodies[k % len(bodies)])
        except (OSError, http.client.HTTPException) as err:
            tally.add(type(err).__name__)
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
            stop.wait(0.2)
            continue
        k += 1
        if status == 503 and "retry-after" in headers:
            tally.add("503+retry", time.perf_counter() - t0)
            stop.wait(min(float(headers["retry-after"]), 5.0))
        else:
            tally.add(str(status), time.perf_counter() - t0)
        if headers.get("connection", "").lower() == "close":
            conn.close()
    conn.close()


def slow_loris(port: int, count: int, stop: threading.Event, tally: Tally) -> None:
    """`count` connections sending one header line a second, reopened when closed."""
    socks: list[socket.socket | None] = [None] * count
    started = [False] * count  # the request line is out; header lines follow

    def opened() -> socket.socket:
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        return sock

    first = b"POST /v1/generate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    while not stop.is_set():
        for i in range(count):
            sock = socks[i]
            try:
                if sock is None:
                    socks[i], started[i] = opened(), False
                    tally.add("opened")
                    continue
                sock.send(b"X-a: b\r\n" if started[i] else first)
                started[i] = True
            except BlockingIOError:
                pass
            except OSError:
                if sock is not None:
                    sock.close()
                socks[i] = None
                tally.add("closed by server")
        stop.wait(1.0)
    for sock in socks:
        if sock is not None:
            sock.close()


def bomber(port: int, stop: threading.Event, tally: Tally) -> None:
    bomb = jpeg_bomb()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            status, _ = post(conn, bomb)
            tally.add(str(status), time.perf_counter() - t0)
        except (OSError, http.client.HTTPException) as err:
            tally.add(type(err).__name__)
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
    conn.close()


def flooder(port: int, body: bytes, rate: float, stop: threading.Event, tally: Tally) -> None:
    """Open loop: request i is due at t0 + i / rate, whatever the answers (threads enough for
    2 s of requests in flight, so slow answers do not slow the flood)."""
    workers = min(512, max(32, int(2 * rate)))
    t0 = time.perf_counter()
    next_index = [0]
    lock = threading.Lock()

    def work() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
        while not stop.is_set():
            with lock:
                due = t0 + next_index[0] / rate
                next_index[0] += 1
            delay = due - time.perf_counter()
            if delay > 0 and stop.wait(delay):
                break
            start = time.perf_counter()
            try:
                status, headers = post(conn, body)
                tally.add(str(status), time.perf_counter() - start)
                if headers.get("connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException) as err:
                tally.add(type(err).__name__)
                conn.close()
        conn.close()

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def run_phase(
    port: int, bodies: list[bytes], seconds: float, attack: Callable[..., None] | None = None
) -> tuple[Tally, Tally]:
    """Honest clients (and `attack(stop, tally)` in its own thread) for `seconds`."""
    stop = threading.Event()
    honest, hostile = Tally(), Tally()
    threads = [
        threading.Thread(target=honest_client, args=(port, bodies, stop, honest), daemon=True)
        for _ in range(HONEST_CLIENTS)
    ]
    if attack is not None:
        threads.append(threading.Thread(target=attack, args=(stop, hostile), daemon=True))
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=REQUEST_TIMEOUT_S + 5)
    return honest, hostile


class RssWatch:
    """The server's resident memory, sampled every 0.2 s, and its kernel high-water mark."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_kb = pid, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _status(self, key: str) -> int:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def _run(self) -> None:
        while not self.stop.wait(0.2):
            self.peak_kb = max(self.peak_kb, self._status("VmRSS"), self._status("VmHWM"))

    def close(self) -> float:
        self.peak_kb = max(self.peak_kb, self._status("VmHWM"))
        self.stop.set()
        self.thread.join()
        return round(self.peak_kb / 1024, 1)


def capacity(port: int, bodies: list[bytes], seconds: float) -> float:
    """Frames/s of 16 closed-loop clients (the service's capacity on this machine)."""
    stop = threading.Event()
    tally = Tally()
    threads = [
        threading.Thread(target=honest_client, args=(port, bodies, stop, tally), daemon=True)
        for _ in range(16)
    ]
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=REQUEST_TIMEOUT_S + 5)
    return tally.outcomes.get("200", 0) / seconds


def scenario(
    name: str, model: Path, bodies: list[bytes], args: argparse.Namespace, log_dir: Path
) -> dict[str, Any]:
    server = start_server(model, log_dir / f"{name}.log", open_files=OPEN_FILES)
    port = int(server.url.rsplit(":", 1)[1])
    watch = RssWatch(server.process.pid)
    row: dict[str, Any] = {"scenario": name, "load_before": list(os.getloadavg())}
    try:
        quiet, _ = run_phase(port, bodies, args.quiet_s)
        row["quiet"] = quiet.summary()
        if name == "slow":
            attack = lambda stop, tally: slow_loris(port, SLOW_CONNECTIONS, stop, tally)  # noqa: E731
        elif name == "bombs":

            def attack(stop: threading.Event, tally: Tally) -> None:
                bombers = [
                    threading.Thread(target=bomber, args=(port, stop, tally), daemon=True)
                    for _ in range(BOMB_CLIENTS)
                ]
                for thread in bombers:
                    thread.start()
                for thread in bombers:
                    thread.join()
        else:
            fps = capacity(port, bodies, args.capacity_s)
            row["capacity_fps"] = round(fps, 1)
            rate = FLOOD_FACTOR * max(fps, 1.0)
            row["flood_rate_per_s"] = round(rate, 1)
            attack = lambda stop, tally: flooder(port, bodies[0], rate, stop, tally)  # noqa: E731
        honest, hostile, row["exit_s"] = run_attack_then_sigterm(
            server, port, bodies, args.attack_s, attack
        )
        row["attack"] = honest.summary()
        row["attackers"] = hostile.summary()
    finally:
        if server.process.poll() is None:
            row["exit_s"] = terminate(server)
        row["peak_rss_mb"] = watch.close()
        row["load_after"] = list(os.getloadavg())
    log = (log_dir / f"{name}.log").read_text(errors="replace")
    row["server_log_bytes"] = len(log)
    row["server_tracebacks"] = log.count("Traceback")
    row["accept_error_lines"] = log.count("accept() failed")
    return row


def run_attack_then_sigterm(
    server: Server, port: int, bodies: list[bytes], seconds: float, attack: Callable[..., None]
) -> tuple[Tally, Tally, float]:
    """The attack phase; at its end, attackers still running, SIGTERM and time the exit.
    Requests cut by the shutdown itself (after SIGTERM) are not counted against the server."""
    result: list[tuple[Tally, Tally]] = []
    thread = threading.Thread(
        target=lambda: result.append(run_phase(port, bodies, seconds, attack)), daemon=True
    )
    thread.start()
    thread.join(timeout=seconds + REQUEST_TIMEOUT_S + 10)
    # the phase is over; its attackers were running until now. SIGTERM while new ones start:
    stop, hostile = threading.Event(), Tally()
    parting = threading.Thread(target=attack, args=(stop, hostile), daemon=True)
    parting.start()
    time.sleep(1.0)
    exit_s = terminate(server)
    stop.set()
    parting.join(timeout=REQUEST_TIMEOUT_S + 5)
    honest, attackers = result[0] if result else (Tally(), Tally())
    return honest, attackers, exit_s


def terminate(server: Server) -> float:
    """SIGTERM, then seconds until the process exits (killed after 60 s: reported as inf)."""
    t0 = time.perf_counter()
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=60)
    except subprocess.TimeoutExpired:  # a hung server is a result, not a crash
        stop_server(server)
        return float("inf")
    return round(time.perf_counter() - t0, 2)


MEASURE = """
import sys, time
from pathlib import Path
from echogen_trt.artifacts.model_meta import ModelMeta
from echogen_trt.runtime.io import mask_from_bytes
from echogen_trt.runtime.model_tensors import prepare_mask
from echogen_trt.serve.limits import ServeLimits
from echogen_trt.serve.requests import mask_from_json
def hwm():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
path = Path(sys.argv[1]); data = path.read_bytes(); limits = ServeLimits()
base = hwm()
try:
    if path.suffix == ".json":
        mask = mask_from_json(data, limits)
    else:
        mask = mask_from_bytes(data, "body", max_pixels=limits.max_pixels)
    prepare_mask(mask, ModelMeta("x", (1, 2, 3), (256, 256)))
    what = "decoded"
except Exception as err:
    what = "refused"
print((hwm() - base) * 1024, what)
"""


def decode_costs(folder: Path) -> dict[str, Any]:
    """Peak memory of decoding the worst body each format allows at the default limits (a
    fresh process each), against the budget README states (DECODE_BYTES_PER_PIXEL)."""
    import io

    import cv2
    import numpy as np

    from echogen_trt.serve.limits import DECODE_BYTES_PER_PIXEL, JSON_BYTES_PER_BODY_BYTE

    limits = ServeLimits()
    side = int(limits.max_pixels**0.5)
    scaled = (np.arange(side * side) % 4).reshape(side, side).astype(np.uint16) * 21845
    rgba = np.dstack([scaled] * 4)  # 16-bit, 4 channels, grey in fact, x21845 labels
    buffer = io.BytesIO()
    np.save(buffer, scaled.astype(np.int32))
    rows = int((limits.max_body_bytes // 2 - 64) ** 0.5)
    bodies = {
        "png": cv2.imencode(".png", rgba)[1].tobytes(),
        "tiff": cv2.imencode(".tiff", rgba)[1].tobytes(),
        "npy": buffer.getvalue(),
        "json": json.dumps({"mask": [[0] * rows] * rows}, separators=(",", ":")).encode(),
    }
    out: dict[str, Any] = {}
    for kind, body in bodies.items():
        path = folder / f"worst.{kind}"
        path.write_bytes(body)
        run = subprocess.run(
            [sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True, timeout=120
        )
        peak, what = run.stdout.split()
        budget = (
            len(body) * JSON_BYTES_PER_BODY_BYTE
            if kind == "json"
            else limits.max_pixels * DECODE_BYTES_PER_PIXEL
        )
        out[kind] = {
            "body_mb": round(len(body) / 2**20, 1),
            "outcome": what,
            "peak_mb": round(int(peak) / 2**20, 1),
            "budget_mb": round(budget / 2**20, 1),
        }
    return out


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "host": platform.node(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def write_results(doc: dict[str, Any], out_dir: Path) -> Path:
    slug = "-".join(doc["machine"]["cpu"].split()[:2]).lower().replace("(r)", "")
    stem = out_dir / f"serve-hostile-{slug}-{doc['machine']['cores']}c-{doc['date']}"
    stem.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
    m = doc["machine"]
    lines = [
        f"# `echogen-trt serve` beside hostile clients, {doc['date']}",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, shared with other "
        f"work (load below). Model: {doc['model_note']}. Server open-file limit {OPEN_FILES}; "
        f"{HONEST_CLIENTS} honest clients; {doc['quiet_s']:g} s quiet, then {doc['attack_s']:g} s "
        f"of attack ended by SIGTERM. Command: `{doc['command']}`.",
        "",
        "| scenario | honest answered (attack) | outcomes | p50 / p95 ms quiet | p50 / p95 ms "
        "attack | peak RSS MB | SIGTERM to exit s | tracebacks | load before -> after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        q, a = r["quiet"], r["attack"]
        lines.append(
            f"| {r['scenario']} | {a['answered']} / {a['sent']} | {a['outcomes']} | "
            f"{q['p50_ms']} / {q['p95_ms']} | {a['p50_ms']} / {a['p95_ms']} | "
            f"{r['peak_rss_mb']} | {r['exit_s']} | {r['server_tracebacks']} | "
            f"{r['load_before'][0]:.1f} -> {r['load_after'][0]:.1f} |"
        )
    lines += ["", "Attackers' side:", ""]
    for r in doc["rows"]:
        extra = (
            f" (capacity {r['capacity_fps']} frames/s, flood {r['flood_rate_per_s']} req/s)"
            if "capacity_fps" in r
            else ""
        )
        lines.append(f"- **{r['scenario']}**{extra}: {r['attackers']['outcomes']}")
    lines += ["", "Decoding the worst body each format allows at the default limits (peak memory"]
    lines += ["of a fresh process, against the budget the README states):", ""]
    for kind, c in doc["decode_cost"].items():
        lines.append(
            f"- {kind}: {c['body_mb']} MB body, {c['outcome']}, peak {c['peak_mb']} MB "
            f"(budget {c['budget_mb']} MB)"
        )
    lines += ["", "Targets: " + doc["verdict"]]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return stem


def verdict(rows: list[dict[str, Any]]) -> str:
    notes = []
    for r in rows:
        a = r["attack"]
        ok = (
            a["answered"] == a["sent"]
            and r["peak_rss_mb"] < 2048
            and r["exit_s"] <= SHUTDOWN_BOUND_S
        )
        notes.append(f"{r['scenario']} {'met' if ok else 'MISSED'}")
    return (
        f"every honest request answered, peak RSS < 2 GB, exit within {SHUTDOWN_BOUND_S:g} s "
        f"of SIGTERM: {', '.join(notes)}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="Default: a random width-16 128x128 model.")
    parser.add_argument("--quiet-s", type=float, default=8.0)
    parser.add_argument("--attack-s", type=float, default=30.0)
    parser.add_argument("--capacity-s", type=float, default=6.0)
    parser.add_argument("--scenarios", default="slow,bombs,flood")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--logs", type=Path, help="Keep the servers' logs in this folder.")
    args = parser.parse_args()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the attackers need 1,100+
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or random_model(Path(tmp), width=16, size=128)
        note = "given" if args.model else "random weights, width 16, 128x128, FP32 ONNX"
        from echogen_trt.artifacts.onnx_file import read_meta

        bodies = masks(32, read_meta(model).input_size)
        costs = decode_costs(Path(tmp))
        print(json.dumps(costs), flush=True)
        rows = []
        for name in args.scenarios.split(","):
            if args.logs:
                args.logs.mkdir(parents=True, exist_ok=True)
            row = scenario(name, model, bodies, args, args.logs or Path(tmp))
            print(json.dumps(row), flush=True)
            rows.append(row)
    doc = {
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "model_note": note,
        "quiet_s": args.quiet_s,
        "attack_s": args.attack_s,
        "command": "python benchmarks/serve_hostile.py " + " ".join(sys.argv[1:]),
        "limits": asdict(ServeLimits()) | {"connection_limit_at_1024": OPEN_FILES - 96},
        "decode_cost": costs,
        "rows": rows,
        "verdict": verdict(rows),
    }
    print(write_results(doc, args.out))


if __name__ == "__main__":
    main()
