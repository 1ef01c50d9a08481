"""The drawing page in real headless Chromium (Debian's `chromium`, driven by Playwright): open
it, draw a stroke, wait for the new frame, check its pixels changed and the request succeeded.

The screenshot lands in the test's tmp folder; with ECHOGEN_SERVE_SCREENSHOT=PATH it is also
saved there, and ECHOGEN_SERVE_MODEL=M serves M instead of the tiny test model (how
docs/serve-page.png was made from the demo's model).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from echogen_trt.artifacts.model_meta import ModelMeta
from fakes.onnx_models import write_plain_onnx

CHROMIUM = os.environ.get("ECHOGEN_CHROMIUM") or shutil.which("chromium")

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium executable (scripts/setup installs Debian's chromium where apt and root "
    "are available; or set ECHOGEN_CHROMIUM)",
)


def element_pixels(page: object, selector: str) -> np.ndarray:
    data = page.locator(selector).screenshot()  # type: ignore[attr-defined]
    return np.asarray(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE))


def test_draw_a_stroke_and_the_frame_follows(serve_factory, tiny_model, tmp_path: Path) -> None:
    model = Path(os.environ.get("ECHOGEN_SERVE_MODEL") or tiny_model)
    server = serve_factory(model)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1180, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.on(  # the page must run under its Content-Security-Policy, not beside it
                "console",
                lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None,
            )
            page.goto(server.url + "/")
            # the page starts from the phantom heart and shows its frame
            # predicates as functions: the page's CSP forbids evaluating strings (no eval)
            page.wait_for_function(
                "() => Number(document.querySelector('#frame').dataset.generation) >= 1"
            )
            page.wait_for_function("() => document.querySelector('#frame').complete")
            before = element_pixels(page, "#frame")

            page.click("button.tool[data-label='3']")  # the LA brush, wide
            page.fill("#brush", "24")
            page.dispatch_event("#brush", "input")
            box = page.locator("#mask").bounding_box()
            assert box is not None
            with page.expect_response(lambda r: r.url.endswith("/v1/generate")) as answer:
                page.mouse.move(box["x"] + box["width"] * 0.12, box["y"] + box["height"] * 0.55)
                page.mouse.down()
                page.mouse.move(
                    box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.3, steps=12
                )
                page.mouse.up()
            assert answer.value.status == 200
            assert answer.value.header_value("content-type") == "image/png"
            page.wait_for_function(
                "() => document.querySelector('#status').textContent === 'Frame updated.' && "
                "document.querySelector('#frame').complete"
            )
            page.wait_for_timeout(300)
            after = element_pixels(page, "#frame")
            changed = np.abs(after.astype(int) - before.astype(int)) > 8
            assert changed.mean() > 0.01, changed.mean()
            assert errors == []
            assert "error" not in (page.get_attribute("#status", "class") or "")

            shot = tmp_path / "serve-page.png"
            page.screenshot(path=str(shot), full_page=True)
            assert cv2.imread(str(shot)) is not None
            target = os.environ.get("ECHOGEN_SERVE_SCREENSHOT")
            if target:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(shot, target)

            # the cine: phantom ED -> ES masks, one request per frame, then it plays
            page.select_option("#cine-frames", "8")
            page.click("#play")
            page.wait_for_function(
                "() => document.querySelector('#play').textContent.includes('Stop')"
            )
            assert page.locator("#cine-view").count() == 1
            assert page.text_content("#status").startswith("Cine ready: 8 frames")  # type: ignore[union-attr]
            page.click("#play")
            assert page.locator("#cine-view").count() == 0
        finally:
            browser.close()


MARKUP = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>'


def test_markup_in_model_metadata_is_shown_as_text_and_runs_nothing(
    serve_factory, tmp_path: Path
) -> None:
    model = write_plain_onnx(tmp_path / "markup.onnx", ModelMeta(MARKUP, (1, 2, 3), (16, 16)))
    server = serve_factory(model)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(server.url + "/")
            page.wait_for_function("() => document.querySelector('#ready-dot.ok') !== null")
            page.wait_for_timeout(300)  # an onerror handler would have run by now
            assert page.title() != "pwned"
            assert MARKUP in (page.text_content("#model-text") or "")  # the text, verbatim
            assert page.locator("#model-text img").count() == 0
        finally:
            browser.close()
