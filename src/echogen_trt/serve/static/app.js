// echogen-trt serve page: a label-map editor, live generation, loading masks, phantom sliders and
// a cine of the user's own mask. Plain JS modules, no build step, nothing from elsewhere; it runs
// under a strict Content-Security-Policy (no inline script or style, same-origin requests, every
// server string shown with textContent).
"use strict";

import { $, state, bus, drawFrame } from "./state.js";
import {
  canvasPoint, labelsFromImage, labelsPng, maskCanvas, renderContours, renderMask, setPalette,
  sizeCanvases, stamp, strokeTo,
} from "./mask.js";
import { generate, getJson, message, request, setOnline, startPolling, status } from "./server.js";
import { exportCine, playCine, stopCine } from "./cine.js";
import { downloadFrame, downloadMask, setupLoading } from "./files.js";

const KEYS = { "1": 1, "2": 2, "3": 3, e: 0, E: 0 };
const HISTORY = 50;

// -- live generation: at most one request in flight; the latest mask goes when it returns ------
// A failed request leaves the frame stale: marked on the frame while there is one to mark.
function setStale(stale) {
  state.stale = stale;
  const shown = stale && state.generation > 0;
  $("stale").hidden = !shown;
  $("frame-viewport").classList.toggle("stale", shown);
}

async function requestFrame() {
  if (!state.ready) return;
  if (state.cine) stopCine();
  if (state.inFlight) { state.dirty = true; return; }
  state.inFlight = true;
  $("busy").hidden = false;
  try {
    do {
      state.dirty = false;
      const { blob, ms } = await generate(await labelsPng(state.labels));
      state.frameBitmap = await createImageBitmap(blob);
      state.frameBlob = blob;
      if (!state.cine) drawFrame(state.frameBitmap);
      state.generation += 1;
      $("frame").dataset.generation = String(state.generation);
      $("timing").textContent = `${ms.toFixed(0)} ms round trip`;
      setStale(false);
      message(null);
      status("Frame updated.");
    } while (state.dirty);
  } catch (err) {
    setStale(true);
    message(`Generation failed: ${err.message}. ` +
      (state.generation > 0 ? "The frame shown is from an earlier mask; " : "") +
      "the page retries when the server is back.");
  } finally {
    state.inFlight = false;
    $("busy").hidden = true;
  }
}

// -- history: one snapshot per stroke, clear, load or slider gesture; sliders included ----------
function sliderValues() {
  const values = {};
  document.querySelectorAll("input[data-param]").forEach((i) => { values[i.dataset.param] = i.value; });
  return values;
}

// Slider values as of the last finished gesture: an `input` event has already moved the slider
// when the gesture's undo snapshot is taken.
let settledSliders = {};

function snapshot() {
  return { labels: state.labels.slice(), sliders: { ...settledSliders } };
}

function pushUndo() {
  state.undo.push(snapshot());
  if (state.undo.length > HISTORY) state.undo.shift();
  state.redo = [];
  updateHistoryButtons();
}

function restore(from, to) {
  const previous = from.pop();
  if (!previous) return;
  if (state.cine) stopCine();
  to.push(snapshot());
  state.labels = previous.labels;
  document.querySelectorAll("input[data-param]").forEach((input) => {
    input.value = previous.sliders[input.dataset.param];
    showSlider(input);
  });
  settledSliders = sliderValues();
  renderMask();
  updateHistoryButtons();
  requestFrame();
}

const undo = () => restore(state.undo, state.redo);
const redo = () => restore(state.redo, state.undo);

function updateHistoryButtons() {
  $("undo").disabled = state.undo.length === 0;
  $("redo").disabled = state.redo.length === 0;
}

function replaceLabels(labels) {
  if (state.cine) stopCine();
  pushUndo();
  state.labels = labels;
  renderMask();
  requestFrame();
}

// -- drawing ----------------------------------------------------------------------------------
let last = null;
let lastSent = 0;

maskCanvas.addEventListener("pointerdown", (event) => {
  if (!state.ready || event.button > 0) return;
  if (state.cine) stopCine();
  maskCanvas.setPointerCapture(event.pointerId);
  pushUndo();
  last = canvasPoint(event);
  stamp(last[0], last[1]);
  renderMask();
});

maskCanvas.addEventListener("pointermove", (event) => {
  if (!last) return;
  const point = canvasPoint(event);
  strokeTo(last, point);
  last = point;
  renderMask();
  const now = performance.now();
  if (now - lastSent > 120) { lastSent = now; requestFrame(); }  // live while drawing
});

function endStroke() {
  if (!last) return;
  last = null;
  requestFrame();
}
maskCanvas.addEventListener("pointerup", endStroke);
maskCanvas.addEventListener("pointercancel", endStroke);

// -- tools: built from /v1/labels; a label the model does not use has its brush off, with why --
function buildTools() {
  const tools = $("tools"), legend = $("legend");
  tools.replaceChildren();
  legend.replaceChildren();
  const order = [...state.labelInfo.filter((l) => l.value), ...state.labelInfo.filter((l) => !l.value)];
  const experiment = state.model.meta.experiment;
  for (const l of order) {
    const key = l.value ? String(l.value) : "E";
    const button = document.createElement("button");
    button.className = "tool";
    button.dataset.label = String(l.value);
    button.setAttribute("aria-pressed", "false");
    const swatch = document.createElement("i");
    swatch.className = `sw sw-${l.value}`;
    button.append(swatch, document.createTextNode(l.brush));
    if (l.kept) {
      button.title = `${l.title} (${key})`;
      button.addEventListener("click", () => selectTool(l.value));
    } else {
      button.disabled = true;
      button.title = `${l.title}: not used by this model (${experiment}); drawing it would change nothing`;
    }
    tools.append(button);
    if (l.value) {
      const item = document.createElement("span");
      const sw = document.createElement("i");
      sw.className = `sw sw-${l.value}`;
      item.append(sw, document.createTextNode(l.title + (l.kept ? "" : " (unused)")));
      legend.append(item);
    }
  }
  const unused = state.labelInfo.filter((l) => !l.kept).map((l) => l.brush);
  $("unused").hidden = unused.length === 0;
  $("unused").textContent = unused.length
    ? `${unused.join(", ")}: not used by this model (${experiment}), so those brushes are off.` : "";
  const first = state.labelInfo.find((l) => l.value && l.kept);
  selectTool(first ? first.value : 0);
}

function toolUsable(label) {
  const info = state.labelInfo.find((l) => l.value === label);
  return Boolean(info && info.kept);
}

function selectTool(label) {
  if (!toolUsable(label)) return;
  state.tool = label;
  document.querySelectorAll("button.tool").forEach((b) => {
    const on = Number(b.dataset.label) === label;
    b.classList.toggle("active", on);
    b.setAttribute("aria-pressed", String(on));
  });
}

function setBrush(size) {
  state.brush = Math.max(1, Math.min(40, size));
  $("brush").value = String(state.brush);
  $("brush-out").textContent = String(state.brush);
}

// Shortcuts work whatever has focus (a checkbox, a slider, a button), except where one types.
function typing(target) {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable || target.tagName === "TEXTAREA") return true;
  return target.tagName === "INPUT" &&
    !["range", "checkbox", "radio", "button", "submit", "file", "color"].includes(target.type);
}

document.addEventListener("keydown", (e) => {
  if (typing(e.target) || !state.ready) return;
  const key = e.key.toLowerCase();
  if (e.ctrlKey || e.metaKey) {
    if (key === "z" && !e.shiftKey) { e.preventDefault(); undo(); }
    else if ((key === "z" && e.shiftKey) || key === "y") { e.preventDefault(); redo(); }
    return;
  }
  if (e.altKey) return;
  if (e.key in KEYS) { e.preventDefault(); selectTool(KEYS[e.key]); }
  else if (e.key === "[") { e.preventDefault(); setBrush(state.brush - 2); }
  else if (e.key === "]") { e.preventDefault(); setBrush(state.brush + 2); }
});

// -- phantom ----------------------------------------------------------------------------------
function showSlider(input) {
  const out = document.querySelector(`output[data-for="${input.dataset.param}"]`);
  out.textContent = `${Number(input.value).toFixed(input.dataset.param === "wall" ? 1 : 0)} mm`;
}

async function loadPhantom(record = true) {
  if (!state.ready) return;
  if (state.cine) stopCine();
  try {
    const params = new URLSearchParams(sliderValues());
    params.set("phase", "0");
    const response = await request(`/v1/phantom?${params}`);
    const labels = await labelsFromImage(await response.blob(), state.width, state.height);
    if (record) pushUndo();
    state.labels = labels;
    renderMask();
    requestFrame();
  } catch (err) {
    message(`Phantom failed: ${err.message}`);
  }
}

let slidersReady = false;
function setupSliders(ranges) {
  if (slidersReady) return;
  slidersReady = true;
  const defaults = { lv_length: 86, lv_width: 48, wall: 9.5, la_size: 40 };
  let timer = null, gesture = false;
  document.querySelectorAll("input[data-param]").forEach((input) => {
    const name = input.dataset.param;
    const [lo, hi] = ranges[name] || [0, 100];
    input.min = lo; input.max = hi; input.value = defaults[name];
    showSlider(input);
    input.addEventListener("input", () => {
      if (!gesture) { pushUndo(); gesture = true; }  // one undo step per slider gesture
      showSlider(input);
      clearTimeout(timer);
      timer = setTimeout(() => loadPhantom(false), 60);
    });
    input.addEventListener("change", () => { gesture = false; settledSliders = sliderValues(); });
  });
  settledSliders = sliderValues();
}

// -- fan outline (SVG built with DOM calls) ------------------------------------------------------
function drawFan(halfAngleDeg) {
  const svg = $("fan");
  const a = (halfAngleDeg * Math.PI) / 180;
  const points = [];
  for (let k = 0; k <= 40; k++) {
    const t = -a + (2 * a * k) / 40;
    points.push(`${(50 + (50 * Math.sin(t)) / Math.sin(a)).toFixed(2)} ${(Math.cos(t) * 100).toFixed(2)}`);
  }
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", `M 50 0 L ${points.join(" L ")} Z`);
  svg.replaceChildren(path);
}

// -- start: controls stay disabled until the model's metadata is in; retried until it is -------
let loading = false;
let retry = null;

async function loadModel() {
  if (loading || state.ready) return;
  loading = true;
  clearTimeout(retry);
  try {
    const [info, labels] = await Promise.all([getJson("/v1/model"), getJson("/v1/labels")]);
    if (!info.meta || !Array.isArray(info.meta.input_size) || !Array.isArray(labels.labels)) {
      throw new Error("the server's model metadata is incomplete");
    }
    state.model = info;
    state.labelInfo = labels.labels;
    [state.height, state.width] = info.meta.input_size;
    setPalette(state.labelInfo);
    sizeCanvases(state.width, state.height);
    drawFan(info.phantom_fan_half_angle_deg);
    state.labels = new Uint8Array(state.width * state.height);
    setBrush(Math.max(2, Math.round(state.width / 32)));
    buildTools();
    setupSliders(info.phantom_ranges || {});
    state.ready = true;
    $("controls").disabled = false;
    updateHistoryButtons();
    setOnline(true);
    message(null);
    status("Model loaded.");
    await loadPhantom(false);
  } catch (err) {
    message(`Cannot load the model: ${err.message}. Retrying…`);
    retry = setTimeout(loadModel, 2000);
  } finally {
    loading = false;
  }
}

function init() {
  $("brush").addEventListener("input", (e) => setBrush(Number(e.target.value)));
  $("undo").addEventListener("click", undo);
  $("redo").addEventListener("click", redo);
  $("clear").addEventListener("click", () => replaceLabels(new Uint8Array(state.width * state.height)));
  $("phantom-load").addEventListener("click", () => loadPhantom(true));
  $("play").addEventListener("click", playCine);
  $("export").addEventListener("click", exportCine);
  $("cine-ef").addEventListener("input", (e) => { $("cine-ef-out").textContent = `${e.target.value} %`; });
  $("show-contours").addEventListener("change", () => renderContours());
  $("show-fan").addEventListener("change", (e) => $("fan").classList.toggle("off", !e.target.checked));
  $("dl-mask").addEventListener("click", downloadMask);
  $("dl-frame").addEventListener("click", downloadFrame);
  setupLoading(replaceLabels);
  bus.addEventListener("online", () => {
    if (!state.ready) loadModel();
    else if (state.stale) requestFrame();
  });
  startPolling();
  loadModel();
}

init();
