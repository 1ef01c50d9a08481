"""Stroke to frame on the drawing page, in headless Chromium: the time from a stroke's pointerup
to the frame it asked for being on screen (the next animation frame after it is drawn, or after
the old page's <img> decoded it).

One `serve` process (127.0.0.1, a free port), one browser. Rounds alternate between pages -
this package's page and, with --old-page DIR, an older page's static files (index.html, app.js,
style.css, served in place of the package's by Playwright's routing) - so a noisy neighbour hits
both alike. Each round draws strokes until its time is up (--seconds), one stroke at a time:
move, press, 10 moves, release, wait for the frame.

Run: `python benchmarks/serve_page_latency.py [--model demo/models/echogen.onnx]
[--old-page DIR] [--rounds 2] [--seconds 15]`. Without --model it exports a random-weight
generator of the demo's CPU size (width 16, 128x128; speed does not depend on the weights).
Writes benchmarks/results/serve-page-latency-DATE.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "serve"))
sys.path.insert(0, str(Path(__file__).parent))

from serve_helpers import start_server, stop_server  # noqa: E402

from serve_load import random_model  # noqa: E402

# Records each pointerup and when the frame after it is on screen (either page's #frame).
PROBE = """
window.__lat = []; window.__up = null;
document.addEventListener('pointerup', () => { window.__up = performance.now(); }, true);
const watch = () => {
  const frame = document.querySelector('#frame');
  if (!frame) { requestAnimationFrame(watch); return; }
  new MutationObserver(async () => {
    const up = window.__up;
    if (up === null) return;
    window.__up = null;
    if (frame.tagName === 'IMG') { try { await frame.decode(); } catch (_) {} }
    requestAnimationFrame(() => window.__lat.push(performance.now() - up));
  }).observe(frame, { attributes: true, attributeFilter: ['data-generation'] });
};
document.addEventListener('DOMContentLoaded', watch);
"""


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}


def run_round(
    browser: Any, url: str, old_page: Path | None, seconds: float, seed: int
) -> list[float]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.add_init_script(PROBE)
    if old_page is not None:
        files = {"/": "index.html", "/static/app.js": "app.js", "/static/style.css": "style.css"}

        def serve_old(route: Any) -> None:
            path = "/" + route.request.url.split("/", 3)[3].split("?")[0]
            name = files.get(path)
            if name is None:
                route.continue_()
                return
            kind = {"html": "text/html", "js": "text/javascript", "css": "text/css"}
            route.fulfill(
                body=(old_page / name).read_bytes(), content_type=kind[name.rsplit(".")[-1]]
            )

        context.route(f"{url}/**", serve_old)
        context.route(f"{url}/", serve_old)
    page = context.new_page()
    page.goto(url + "/")
    page.wait_for_function("() => Number(document.querySelector('#frame').dataset.generation) >= 1")
    page.wait_for_timeout(500)
    box = page.locator("#mask").bounding_box()
    rng = random.Random(seed)
    deadline = time.monotonic() + seconds
    done = 0
    while time.monotonic() < deadline:
        page.click(f"button.tool[data-label='{rng.choice('123')}']")
        x0, y0 = (
            box["x"] + box["width"] * rng.uniform(0.2, 0.8),
            box["y"] + box["height"] * rng.uniform(0.2, 0.8),
        )
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move(x0 + rng.uniform(-60, 60), y0 + rng.uniform(-60, 60), steps=10)
        page.mouse.up()
        done += 1
        page.wait_for_function(f"() => window.__lat.length >= {done}", timeout=10_000)
        page.wait_for_timeout(100)
    latencies = [float(v) for v in page.evaluate("window.__lat")]
    context.close()
    return latencies


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "strokes": len(values),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(pick(0.95), 1),
        "min_ms": round(ordered[0], 1),
        "max_ms": round(ordered[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument(
        "--old-page", type=Path, help="folder with an older index.html/app.js/style.css"
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("ECHOGEN_CHROMIUM") or shutil.which("chromium")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        model = args.model or random_model(Path(folder), 16, 128)
        server = start_server(model, Path(folder) / "serve.log")
        results: dict[str, list[float]] = {"new": [], "old": []}
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
                for r in range(args.rounds):
                    pages = (
                        [("old", args.old_page), ("new", None)]
                        if args.old_page
                        else [("new", None)]
                    )
                    for name, folder_of_page in pages:
                        results[name] += run_round(
                            browser, server.url, folder_of_page, args.seconds, r
                        )
                browser.close()
        finally:
            stop_server(server)
    report = {
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "load_before": [round(v, 2) for v in load_before],
        "load_after": [round(v, 2) for v in os.getloadavg()],
        "model": str(args.model or "random-weight generator, width 16, 128x128 (ONNX, CPU)"),
        "rounds": args.rounds,
        "seconds_per_round": args.seconds,
        "pages": {name: summary(v) for name, v in results.items() if v},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"serve-page-latency-{report['date']}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"# Stroke to frame on the serve page ({report['date']})",
        "",
        f"Machine: {report['machine']['cpu']}, {report['machine']['cores']} cores; load "
        f"{report['load_before']} before, {report['load_after']} after. Model: {report['model']}.",
        f"Headless Chromium, {args.rounds} interleaved rounds of {args.seconds:g} s per page, one "
        "stroke at a time (10 moves), time from pointerup to the frame on screen.",
        "",
        "| page | strokes | p50 ms | p95 ms | min | max |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in report["pages"].items():
        cells = [name, s["strokes"], s["p50_ms"], s["p95_ms"], s["min_ms"], s["max_ms"]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
