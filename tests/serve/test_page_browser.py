"""The drawing page in real headless Chromium (Debian's `chromium`, driven by Playwright), one
server (a 64x64 conv+sigmoid model) and one browser shared by the module; a fresh browser
context per test. Every page is served under a strict Content-Security-Policy (the header added
by the test, as a hardened server would send it) and a test fails on any CSP violation or
uncaught page error.

One test per broken item of issue #27: errors where the user looks and reconnection, a model
that fails at load, shortcuts after clicking a control, undo across sliders, the cine of the
user's own drawing and its export, the grey label PNG download, loading PNG / .npy / CAMUS
masks (file picker, drop), accessibility, the phone layout, brushes a model does not use.

The first test's screenshot lands in its tmp folder; with ECHOGEN_SERVE_SCREENSHOT=PATH it is
also saved there, and ECHOGEN_SERVE_MODEL=M serves M for that test instead (how
docs/serve-page.png was made from the demo's model).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cv2
import numpy as np
import pytest
from serve_helpers import Server, blocks, decode, png

from echogen_trt.artifacts.medical_image import write_nifti
from echogen_trt.artifacts.model_meta import ModelMeta
from echogen_trt.runtime.model_tensors import resize_mask
from fakes.onnx_models import write_plain_onnx

CHROMIUM = os.environ.get("ECHOGEN_CHROMIUM") or shutil.which("chromium")

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium executable (scripts/setup installs Debian's chromium where apt and root "
    "are available; or set ECHOGEN_CHROMIUM)",
)

SIZE = 64
# ECHOGEN_PAGE_CSP=0 serves the page without the CSP header (to run these tests against an
# older page, which needed blob: images, and see which behaviour fails).
ENFORCE_CSP = os.environ.get("ECHOGEN_PAGE_CSP", "1") != "0"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
RECORD_CSP = (
    "window.__csp = []; document.addEventListener('securitypolicyviolation', "
    "(e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
)
MASK_PIXELS = (
    "(() => { const c = document.querySelector('#mask'); "
    "return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); })()"
)


@pytest.fixture(scope="module")
def page_server(serve_factory: Callable[..., Server], tmp_path_factory: Any) -> Server:
    meta = ModelMeta("ventricle_myocard_atrium", (1, 2, 3), (SIZE, SIZE))
    model = write_plain_onnx(tmp_path_factory.mktemp("page") / "page64.onnx", meta)
    return serve_factory(model)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(browser: Any, server: Server, **context_options: Any) -> tuple[Any, list[str]]:
    """A fresh context and page under the strict CSP; (page, problems) - CSP violations and
    uncaught errors are appended to `problems` when `check(page, problems)` runs."""
    options = {"viewport": {"width": 1180, "height": 1000}, "accept_downloads": True}
    context = browser.new_context(**{**options, **context_options})
    context.add_init_script(RECORD_CSP)

    def with_csp(route: Any) -> None:
        response = route.fetch()
        route.fulfill(
            response=response, headers={**response.headers, "content-security-policy": CSP}
        )

    if ENFORCE_CSP:
        context.route(server.url + "/", with_csp)
    else:
        context.set_default_timeout(8000)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
    return page, problems


def check(page: Any, problems: list[str]) -> None:
    problems += [f"CSP: {v}" for v in page.evaluate("window.__csp || []")]
    page.context.close()
    assert problems == []


@pytest.fixture
def open_app(browser: Any, page_server: Server) -> Iterator[Callable[..., Any]]:
    """open_app(**context_options) -> a page showing its first frame; checked afterwards."""
    opened: list[tuple[Any, list[str]]] = []

    def start(goto: bool = True, **options: Any) -> Any:
        page, problems = open_page(browser, page_server, **options)
        opened.append((page, problems))
        page.url_of_app = page_server.url + "/"
        if goto:
            page.goto(page.url_of_app)
            wait_for_frame(page, 1)
        return page

    yield start
    for page, problems in opened:
        check(page, problems)


def generation(page: Any) -> int:
    return int(page.get_attribute("#frame", "data-generation") or 0)


def wait_for_frame(page: Any, at_least: int) -> None:
    page.wait_for_function(
        f"() => Number(document.querySelector('#frame').dataset.generation) >= {at_least}"
    )


def stroke(page: Any, points: list[tuple[float, float]], steps: int = 8) -> None:
    """Drag over the mask canvas through `points` (fractions of its width and height)."""
    box = page.locator("#mask").bounding_box()
    assert box is not None
    xy = [(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy) for fx, fy in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for point in xy[1:]:
        page.mouse.move(*point, steps=steps)
    page.mouse.up()


def page_labels(page: Any) -> np.ndarray:
    """The mask canvas's labels, from its colours and the server's palette (GET /v1/labels)."""
    rgba = np.array(page.evaluate(MASK_PIXELS), np.uint8).reshape(SIZE, SIZE, 4)[..., :3]
    palette = page.evaluate("fetch('/v1/labels').then((r) => r.json())")["labels"]
    labels = np.full((SIZE, SIZE), 255, np.uint8)
    for entry in palette:
        colour = [int(entry["colour"][i : i + 2], 16) for i in (1, 3, 5)]
        labels[np.all(rgba == colour, axis=-1)] = entry["value"]
    assert (labels != 255).all(), "mask canvas pixels outside the palette"
    return labels


def settled_labels(page: Any, unlike: np.ndarray, seconds: float = 20.0) -> np.ndarray:
    """The mask canvas's labels once they differ from `unlike` and stay the same for 0.5 s
    (a debounced reload has landed), however slow the machine."""
    deadline = time.monotonic() + seconds
    last = page_labels(page)
    while time.monotonic() < deadline:
        page.wait_for_timeout(500)
        now = page_labels(page)
        if np.array_equal(now, last) and not np.array_equal(now, unlike):
            return now
        last = now
    raise AssertionError("the mask did not settle on a new state")


def downloaded(page: Any, selector: str) -> tuple[str, bytes]:
    with page.expect_download() as info:
        page.click(selector)
    path = info.value.path()
    return info.value.suggested_filename, Path(path).read_bytes()


def test_draw_a_stroke_and_the_frame_follows(
    browser: Any, page_server: Server, serve_factory: Callable[..., Server], tmp_path: Path
) -> None:
    server = page_server
    if os.environ.get("ECHOGEN_SERVE_MODEL"):
        server = serve_factory(Path(os.environ["ECHOGEN_SERVE_MODEL"]))
    page, problems = open_page(browser, server, viewport={"width": 1440, "height": 1020})
    page.goto(server.url + "/")
    wait_for_frame(page, 1)
    page.wait_for_timeout(200)
    before = decode(page.locator("#frame").screenshot())

    page.click("button.tool[data-label='3']")  # the LA brush, wide
    page.fill("#brush", "24")
    page.dispatch_event("#brush", "input")
    with page.expect_response(lambda r: r.url.endswith("/v1/generate")) as answer:
        stroke(page, [(0.12, 0.55), (0.4, 0.3)], steps=12)
    assert answer.value.status == 200
    page.wait_for_function(
        "() => document.querySelector('#status').textContent === 'Frame updated.'"
    )
    page.wait_for_timeout(300)
    after = decode(page.locator("#frame").screenshot())
    changed = np.abs(after.astype(int) - before.astype(int)) > 8
    assert changed.mean() > 0.01, changed.mean()
    assert page.is_hidden("#frame-msg") and page.is_hidden("#stale")

    shot = tmp_path / "serve-page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert cv2.imread(str(shot)) is not None
    target = os.environ.get("ECHOGEN_SERVE_SCREENSHOT")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)
    check(page, problems)


def test_errors_show_on_the_frame_and_the_page_reconnects(open_app: Callable[..., Any]) -> None:
    """Item 1: server gone -> message on the frame card, stale marker, red dot; server back ->
    the page notices by itself, the frame catches up, the marks go."""
    page = open_app()
    shown = generation(page)
    page.route("**/v1/generate", lambda route: route.abort())
    page.route("**/readyz", lambda route: route.abort())
    stroke(page, [(0.3, 0.3), (0.6, 0.6)])
    page.wait_for_selector("#frame-msg", state="visible")
    assert "Generation failed" in page.text_content("#frame-msg")
    assert page.is_visible("#stale")
    page.wait_for_function("() => document.querySelector('#ready-dot').classList.contains('bad')")
    assert "reconnecting" in page.get_attribute("#ready-dot", "aria-label")
    assert generation(page) == shown

    page.unroute("**/v1/generate")
    page.unroute("**/readyz")
    page.wait_for_function("() => document.querySelector('#ready-dot').classList.contains('ok')")
    wait_for_frame(page, shown + 1)  # the stale frame is redone without another stroke
    page.wait_for_selector("#stale", state="hidden")
    assert page.is_hidden("#frame-msg")


def test_a_model_that_fails_at_load_is_retried(open_app: Callable[..., Any]) -> None:
    """Item 2: /v1/model failing at load leaves controls disabled (no throwing, no bad requests)
    and the page recovers on its own once the model answers."""
    failures = {"left": 2}
    generate_calls: list[str] = []

    def flaky(route: Any) -> None:
        if failures["left"] > 0:
            failures["left"] -= 1
            route.fulfill(
                status=503, content_type="application/json", body='{"error": "restarting"}'
            )
        else:
            route.continue_()

    page = open_app(goto=False)
    page.route("**/v1/model", flaky)
    page.on("request", lambda r: generate_calls.append(r.url) if "/v1/generate" in r.url else None)
    page.goto(page.url_of_app)
    page.wait_for_selector("#frame-msg", state="visible")
    assert "Cannot load the model" in page.text_content("#frame-msg")
    assert page.evaluate("document.querySelector('#controls').disabled")
    assert page.is_disabled("#play") and page.is_disabled("#dl-mask")
    stroke(page, [(0.3, 0.3), (0.6, 0.6)])  # no model yet: nothing drawn, nothing sent
    assert generate_calls == []
    wait_for_frame(page, 1)
    assert not page.evaluate("document.querySelector('#controls').disabled")
    assert page.is_hidden("#frame-msg")


def test_shortcuts_work_after_clicking_a_checkbox(open_app: Callable[..., Any]) -> None:
    """Item 3: tick "mask contours", press E, draw: it erases."""
    page = open_app()
    page.click("#show-contours")
    page.keyboard.press("e")
    assert page.get_attribute("button.tool[data-label='0']", "aria-pressed") == "true"
    assert page.get_attribute("button.tool[data-label='1']", "aria-pressed") == "false"
    before = page_labels(page)
    assert (before[28:36, 28:36] > 0).any()  # the phantom heart is there
    page.fill("#brush", "16")
    page.dispatch_event("#brush", "input")
    page.click("#show-fan")  # focus on a checkbox again, then draw
    stroke(page, [(0.4, 0.45), (0.6, 0.45)])
    after = page_labels(page)
    assert (after[26:32, 28:36] == 0).all()


def test_undo_covers_a_slider_gesture_as_one_step_and_redo(open_app: Callable[..., Any]) -> None:
    """Item 4: a slider drag is one undo step; undo restores the slider too; redo."""
    page = open_app()
    slider = page.locator("#p-lv_length")
    start_value = slider.input_value()
    start_labels = page_labels(page)
    box = slider.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    page.mouse.down()
    for fx in (0.55, 0.6, 0.7, 0.8, 0.9):  # a wiggle: five input events, one gesture
        page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] / 2, steps=2)
        page.wait_for_timeout(80)
    page.mouse.up()
    moved = slider.input_value()
    assert moved != start_value
    moved_labels = settled_labels(page, start_labels)  # the phantom after the last move

    page.click("#show-fan")  # focus elsewhere: Ctrl+Z still undoes
    page.keyboard.press("Control+z")
    assert slider.input_value() == start_value
    assert page.text_content("output[data-for='lv_length']") == f"{float(start_value):.0f} mm"
    assert np.array_equal(page_labels(page), start_labels)
    page.keyboard.press("Control+Shift+z")
    assert slider.input_value() == moved
    assert np.array_equal(page_labels(page), moved_labels)


def test_the_cine_plays_the_drawing_and_download_saves_the_shown_frame(
    open_app: Callable[..., Any], page_server: Server
) -> None:
    """Item 5: the cine is the user's own mask (not the phantom), and "Download frame" during
    playback saves the cine frame on screen, not the last live frame."""
    page = open_app()
    page.click("#clear")
    page.keyboard.press("1")
    page.fill("#brush", "14")
    page.dispatch_event("#brush", "input")
    stroke(page, [(0.3, 0.5), (0.7, 0.5)])  # an LV bar where the phantom has none
    page.wait_for_function(
        "() => document.querySelector('#status').textContent === 'Frame updated.'"
    )
    drawn = page_labels(page)
    page.select_option("#cine-frames", "8")
    page.select_option("#cine-fps", "8")
    with page.expect_response(lambda r: "/v1/cine" in r.url) as answer:
        page.click("#play")
    assert answer.value.status == 200
    # the same request again, from here (Playwright does not keep this response's body)
    sent = answer.value.request
    target = urlsplit(sent.url)
    status, _, body = page_server.post(f"{target.path}?{target.query}", sent.post_data_buffer)
    assert status == 200, body
    strip = decode(body)
    assert strip.shape == (8 * SIZE, 2 * SIZE)
    masks = [strip[k * SIZE : (k + 1) * SIZE, :SIZE] // 85 for k in range(8)]
    frames = [strip[k * SIZE : (k + 1) * SIZE, SIZE:] for k in range(8)]
    assert np.array_equal(masks[0], drawn)  # ED is the drawing
    assert masks[-1].sum() < masks[0].sum()  # ES: the LV has contracted
    page.wait_for_function("() => Number(document.querySelector('#frame').dataset.cineIndex) >= 6")
    name, data = downloaded(page, "#dl-frame")
    assert name.endswith(".png") and "_frame_" in name
    saved = decode(data)
    saved = saved if saved.ndim == 2 else saved[..., 0]
    distances = [int(np.abs(saved.astype(int) - f.astype(int)).max()) for f in frames]
    assert min(distances[3:]) <= 2, distances  # a contracted cine frame ...
    assert distances[0] > 2, distances  # ... not the live frame of the drawing (= ED)
    page.click("#play")
    assert np.array_equal(page_labels(page), drawn)  # stopping restores the drawing


@pytest.mark.parametrize("overlay", [False, True])
def test_export_the_cine_as_gif(open_app: Callable[..., Any], overlay: bool) -> None:
    """Item 5: export the cine end to end: an animated GIF, ED -> ES -> back (2n - 2 frames),
    at the model's size (x3 wide with the mask panels, as `generate --overlay`)."""
    page = open_app()
    page.select_option("#cine-frames", "8")
    if overlay:
        page.check("#cine-overlay")
    name, data = downloaded(page, "#export")
    assert re.fullmatch(r"page64_cine_\d{8}-\d{6}\.gif", name), name
    ok, animation = cv2.imdecodeanimation(np.frombuffer(data, np.uint8))
    assert ok
    assert len(animation.frames) == 2 * 8 - 2
    assert animation.frames[0].shape[:2] == (SIZE, SIZE * (3 if overlay else 1))


def test_download_mask_is_the_grey_label_png(
    open_app: Callable[..., Any], page_server: Server
) -> None:
    """Item 6: the mask downloads as a 1-channel label PNG (x85) named after the model and
    the time, which `/v1/generate` accepts."""
    page = open_app()
    labels = page_labels(page)
    name, data = downloaded(page, "#dl-mask")
    assert re.fullmatch(r"page64_mask_\d{8}-\d{6}\.png", name), name
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image.ndim == 2 and image.dtype == np.uint8
    assert np.array_equal(image, labels * 85)
    assert page_server.post("/v1/generate", data)[0] == 200


def _load(page: Any, files: list[Path]) -> None:
    page.set_input_files("#file", [str(f) for f in files])
    page.wait_for_function(
        "() => document.querySelector('#status').textContent.startsWith('Loaded')"
    )


def test_load_a_mask_png_npy_and_camus(open_app: Callable[..., Any], tmp_path: Path) -> None:
    """Item 7: load masks by the file button (PNG, .npy, CAMUS .nii.gz with its image, shown
    side by side), by drop (the page stays), and see a refusal where the user looks."""
    page = open_app()
    mask = blocks((96, 80), seed=3)
    expected = resize_mask(mask, (SIZE, SIZE))

    (tmp_path / "drawn.png").write_bytes(png(mask * 85))
    _load(page, [tmp_path / "drawn.png"])
    assert np.array_equal(page_labels(page), expected)
    assert page.is_hidden("#real-viewport")
    page.select_option("#dl-size", "original")
    _, data = downloaded(page, "#dl-frame")
    assert decode(data).shape[:2] == (96, 80)  # size=original: the file's size

    np.save(tmp_path / "other.npy", np.flipud(mask))
    _load(page, [tmp_path / "other.npy"])
    assert np.array_equal(page_labels(page), resize_mask(np.flipud(mask), (SIZE, SIZE)))

    image = np.tile(np.linspace(20, 220, 80, dtype=np.uint8), (96, 1))
    write_nifti(tmp_path / "patient0001_4CH_ED_gt", mask, (0.3, 0.15))
    write_nifti(tmp_path / "patient0001_4CH_ED", image, (0.3, 0.15))
    files = [tmp_path / "patient0001_4CH_ED_gt.nii.gz", tmp_path / "patient0001_4CH_ED.nii.gz"]
    _load(page, files)
    assert np.array_equal(page_labels(page), expected)
    page.wait_for_selector("#real-viewport", state="visible")
    real = decode(page.locator("#real").screenshot())
    real = real if real.ndim == 2 else real[..., 0]
    left, right = real[:, : real.shape[1] // 4].mean(), real[:, -real.shape[1] // 4 :].mean()
    assert right - left > 80  # the real image's left-to-right ramp
    frame_box, real_box = (
        page.locator("#frame").bounding_box(),
        page.locator("#real").bounding_box(),
    )
    assert abs(frame_box["y"] - real_box["y"]) < 2 and real_box["x"] > frame_box["x"]

    # drop: the page loads it and stays where it is
    url = page.url
    payload = list(png(np.fliplr(mask) * 85))
    page.evaluate(
        """(bytes) => {
            const transfer = new DataTransfer();
            const file = new File([new Uint8Array(bytes)], 'dropped.png', {type: 'image/png'});
            transfer.items.add(file);
            const target = document.querySelector('#mask');
            const init = {dataTransfer: transfer, bubbles: true, cancelable: true};
            target.dispatchEvent(new DragEvent('dragover', init));
            target.dispatchEvent(new DragEvent('drop', init));
        }""",
        payload,
    )
    page.wait_for_function(
        "() => document.querySelector('#status').textContent.startsWith('Loaded dropped.png')"
    )
    assert page.url == url
    assert np.array_equal(page_labels(page), resize_mask(np.fliplr(mask), (SIZE, SIZE)))

    colour = np.dstack([mask * 40, mask * 80, mask * 20]).astype(np.uint8)
    (tmp_path / "colour.png").write_bytes(png(colour))
    page.set_input_files("#file", str(tmp_path / "colour.png"))
    page.wait_for_selector("#frame-msg", state="visible")
    assert "colour image" in page.text_content("#frame-msg")


CONTRAST = """() => {
  const lum = (rgb) => {
    const [r, g, b] = rgb.map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const parse = (s) => s.match(/[\\d.]+/g).map(Number);
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = parse(getComputedStyle(el).backgroundColor);
      if (c.length < 4 || c[3] > 0.9) return c.slice(0, 3);
      if (getComputedStyle(el).backgroundImage !== 'none') return null;
    }
    return [13, 17, 23];
  };
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const own = Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.checkVisibility()) continue;
    if (el.closest(':disabled') || el.closest('[aria-hidden=true]')) continue;
    const bg = background(el);
    if (!bg) continue;
    const fg = parse(getComputedStyle(el).color).slice(0, 3);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const what = `${el.tagName}#${el.id}.${el.className} ${el.textContent.trim().slice(0, 20)}`;
    out.push([what, (a + 0.05) / (b + 0.05)]);
  }
  return out;
}"""


def test_accessibility(open_app: Callable[..., Any], page_server: Server) -> None:
    """Item 8: named sliders, aria-pressed tools, the palette from /v1/labels, text contrast
    >= 4.5:1 (WCAG AA), the fan outline >= 3:1 on black (non-text)."""
    page = open_app()
    for name in ("LV length", "LV width", "Wall thickness", "LA size", "brush size", "EF"):
        assert page.get_by_role("slider", name=re.compile(f"^{name}")).count() == 1, name
    pressed = page.eval_on_selector_all(
        "button.tool", "(bs) => bs.map((b) => b.getAttribute('aria-pressed'))"
    )
    assert sorted(pressed) == ["false", "false", "false", "true"]
    page.click("button.tool[data-label='2']")
    assert page.get_attribute("button.tool[data-label='2']", "aria-pressed") == "true"
    colours = {e["value"]: e["colour"] for e in page_server.json("/v1/labels")["labels"]}  # type: ignore[union-attr]
    swatch = page.eval_on_selector(
        "button.tool[data-label='1'] .sw", "(e) => getComputedStyle(e).backgroundColor"
    )
    assert swatch == "rgb({}, {}, {})".format(*(int(colours[1][i : i + 2], 16) for i in (1, 3, 5)))

    ratios = page.evaluate(CONTRAST)
    assert len(ratios) > 20
    low = [(what, round(r, 2)) for what, r in ratios if r < 4.5]
    assert low == []
    stroke_colour = page.eval_on_selector("#fan path", "(p) => getComputedStyle(p).stroke")
    rgba = [float(v) for v in re.findall(r"[\d.]+", stroke_colour)]
    grey = rgba[0] * (rgba[3] if len(rgba) == 4 else 1.0) / 255  # white over black
    linear = grey / 12.92 if grey <= 0.03928 else ((grey + 0.055) / 1.055) ** 2.4
    assert (linear + 0.05) / 0.05 >= 3.0


def test_phone_layout_keeps_mask_and_frame_in_view(open_app: Callable[..., Any]) -> None:
    """Item 9: on a 390x844 phone the mask and the frame are on screen together, drawing too."""
    page = open_app(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)

    def in_view(selector: str) -> bool:
        box = page.locator(selector).bounding_box()
        return (
            box is not None
            and box["y"] >= 0
            and box["y"] + box["height"] <= 844
            and (box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["width"] >= 120)
        )

    assert in_view("#mask") and in_view("#frame")
    shown = generation(page)
    stroke(page, [(0.3, 0.3), (0.7, 0.7)])
    wait_for_frame(page, shown + 1)
    assert in_view("#mask") and in_view("#frame")


def test_brushes_a_model_does_not_use_are_off(open_app: Callable[..., Any]) -> None:
    """Item 10: with an LV-only model the MYO and LA brushes are disabled, with the reason."""
    page = open_app(goto=False)

    def lv_only(route: Any) -> None:
        response = route.fetch()
        body = response.json()
        if route.request.url.endswith("/v1/labels"):
            body["experiment"] = "ventricle"
            for entry in body["labels"]:
                entry["kept"] = entry["value"] in (0, 1)
        else:
            body["meta"]["experiment"], body["meta"]["kept_labels"] = "ventricle", [1]
        route.fulfill(response=response, body=json.dumps(body))

    page.route(re.compile(r".*/v1/(model|labels)$"), lv_only)
    page.goto(page.url_of_app)
    wait_for_frame(page, 1)
    for label in ("2", "3"):
        button = page.locator(f"button.tool[data-label='{label}']")
        assert button.is_disabled()
        assert "not used by this model (ventricle)" in (button.get_attribute("title") or "")
    assert "MYO, LA" in page.text_content("#unused")
    page.keyboard.press("2")
    assert page.get_attribute("button.tool[data-label='1']", "aria-pressed") == "true"


def test_page_sources_are_csp_clean() -> None:
    """No inline script or handlers, no style attributes or writes, no HTML from strings, no
    eval, no other origins: what a strict Content-Security-Policy would block."""
    static = Path(__file__).resolve().parents[2] / "src" / "echogen_trt" / "serve" / "static"
    html = (static / "index.html").read_text()
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert re.findall(r"\son[a-z]+\s*=", html) == []
    assert re.findall(r"\sstyle\s*=", html) == []
    assert re.findall(r"(?:src|href)\s*=\s*\"(?:https?:|//|data:)", html) == []
    scripts = list(static.glob("*.js"))
    assert len(scripts) >= 2
    banned = r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|\.style\.(?!setProperty)|setAttribute\(\"style|https?://(?!www\.w3\.org)"
    for script in scripts:
        hits = re.findall(banned, script.read_text())
        assert hits == [], (script.name, hits)


MARKUP = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>'


def test_markup_in_model_metadata_is_shown_as_text_and_runs_nothing(
    browser: Any, serve_factory: Callable[..., Server], tmp_path: Path
) -> None:
    """The model's name comes from its file's metadata: the page must show it as text."""
    model = write_plain_onnx(tmp_path / "markup.onnx", ModelMeta(MARKUP, (1, 2, 3), (SIZE, SIZE)))
    server = serve_factory(model)
    page, problems = open_page(browser, server)
    page.goto(server.url + "/")
    wait_for_frame(page, 1)
    page.wait_for_timeout(300)  # an onerror handler would have run by now
    assert page.title() != "pwned"
    assert MARKUP in (page.text_content("#model-text") or "")  # the text, verbatim
    assert page.locator("#model-text img").count() == 0
    check(page, problems)
