// echogen-trt serve page: a label-map editor, live generation, phantom sliders and an ED->ES cine.
// Plain JS, no build step, no external resources. The mask is a Uint8Array of labels 0..3 at the
// model's resolution; it travels to POST /v1/generate as a greyscale PNG (labels x85).
"use strict";

const COLOURS = { 0: [0, 0, 0], 1: [230, 60, 60], 2: [60, 200, 60], 3: [40, 120, 230] };
const $ = (id) => document.getElementById(id);

const state = {
  width: 256, height: 256,
  labels: null,         // Uint8Array(width * height)
  tool: 1, brush: 8,
  undo: [],
  inFlight: false, dirty: false,
  frameBlob: null, generation: 0,
  cine: null,           // {frames, masks, timer, index, dir}
  ranges: {},
};

const maskCanvas = $("mask");
const maskCtx = maskCanvas.getContext("2d", { willReadFrequently: true });
const scratch = document.createElement("canvas");
const scratchCtx = scratch.getContext("2d", { willReadFrequently: true });

// -- status -------------------------------------------------------------------------------------
function status(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

async function errorText(response) {
  try {
    const body = await response.json();
    return body.error || response.statusText;
  } catch (_) {
    return response.statusText;
  }
}

// -- mask rendering and encoding ----------------------------------------------------------------
function renderMask(labels = state.labels) {
  const image = maskCtx.createImageData(state.width, state.height);
  for (let i = 0; i < labels.length; i++) {
    const c = COLOURS[labels[i]];
    image.data[4 * i] = c[0];
    image.data[4 * i + 1] = c[1];
    image.data[4 * i + 2] = c[2];
    image.data[4 * i + 3] = 255;
  }
  maskCtx.putImageData(image, 0, 0);
  renderContours(labels);
}

function renderContours(labels = state.labels) {
  const canvas = $("contours");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!$("show-contours").checked) return;
  const image = ctx.createImageData(state.width, state.height);
  const w = state.width, h = state.height;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x, v = labels[i];
      if (!v) continue;
      const edge = x === 0 || y === 0 || x === w - 1 || y === h - 1 ||
        labels[i - 1] !== v || labels[i + 1] !== v || labels[i - w] !== v || labels[i + w] !== v;
      if (edge) {
        const c = COLOURS[v];
        image.data.set([c[0], c[1], c[2], 255], 4 * i);
      }
    }
  }
  ctx.putImageData(image, 0, 0);
}

function labelsPng(labels = state.labels) {
  const image = scratchCtx.createImageData(state.width, state.height);
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i] * 85;
    image.data[4 * i] = v; image.data[4 * i + 1] = v; image.data[4 * i + 2] = v;
    image.data[4 * i + 3] = 255;
  }
  scratchCtx.putImageData(image, 0, 0);
  return new Promise((resolve) => scratch.toBlob(resolve, "image/png"));
}

async function labelsFromPng(blob) {
  const bitmap = await createImageBitmap(blob);
  scratchCtx.clearRect(0, 0, state.width, state.height);
  scratchCtx.drawImage(bitmap, 0, 0, state.width, state.height);
  const data = scratchCtx.getImageData(0, 0, state.width, state.height).data;
  const labels = new Uint8Array(state.width * state.height);
  for (let i = 0; i < labels.length; i++) labels[i] = data[4 * i];
  return labels;
}

// -- generation -----------------------------------------------------------------------------------
async function generateOnce(labels) {
  const body = await labelsPng(labels);
  const t0 = performance.now();
  const response = await fetch("/v1/generate", {
    method: "POST", headers: { "Content-Type": "image/png" }, body,
  });
  if (!response.ok) throw new Error(await errorText(response));
  return { blob: await response.blob(), ms: performance.now() - t0 };
}

function showFrame(blob) {
  const img = $("frame");
  const old = img.src;
  img.src = URL.createObjectURL(blob);
  if (old && old.startsWith("blob:")) URL.revokeObjectURL(old);
}

// Live updates: at most one request in flight; the latest mask is sent when it returns.
async function requestFrame() {
  if (state.cine) stopCine();
  if (state.inFlight) { state.dirty = true; return; }
  state.inFlight = true;
  $("busy").hidden = false;
  try {
    do {
      state.dirty = false;
      const { blob, ms } = await generateOnce(state.labels);
      state.frameBlob = blob;
      showFrame(blob);
      state.generation += 1;
      $("frame").dataset.generation = String(state.generation);
      $("timing").textContent = `${ms.toFixed(0)} ms round trip`;
      status("Frame updated.");
    } while (state.dirty);
  } catch (err) {
    status(`Generation failed: ${err.message}`, true);
  } finally {
    state.inFlight = false;
    $("busy").hidden = true;
  }
}

// -- drawing --------------------------------------------------------------------------------------
function canvasPoint(event) {
  const rect = maskCanvas.getBoundingClientRect();
  return [
    ((event.clientX - rect.left) / rect.width) * state.width,
    ((event.clientY - rect.top) / rect.height) * state.height,
  ];
}

function stamp(cx, cy) {
  const r = state.brush / 2, r2 = r * r;
  const x0 = Math.max(0, Math.floor(cx - r)), x1 = Math.min(state.width - 1, Math.ceil(cx + r));
  const y0 = Math.max(0, Math.floor(cy - r)), y1 = Math.min(state.height - 1, Math.ceil(cy + r));
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const dx = x + 0.5 - cx, dy = y + 0.5 - cy;
      if (dx * dx + dy * dy <= r2 || (r < 1 && Math.abs(dx) <= 0.5 && Math.abs(dy) <= 0.5)) {
        state.labels[y * state.width + x] = state.tool;
      }
    }
  }
}

function strokeTo(from, to) {
  const dist = Math.hypot(to[0] - from[0], to[1] - from[1]);
  const steps = Math.max(1, Math.ceil(dist / Math.max(0.5, state.brush / 4)));
  for (let s = 1; s <= steps; s++) {
    const t = s / steps;
    stamp(from[0] + (to[0] - from[0]) * t, from[1] + (to[1] - from[1]) * t);
  }
}

let last = null;
let lastSent = 0;

maskCanvas.addEventListener("pointerdown", (event) => {
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

function pushUndo() {
  state.undo.push(state.labels.slice());
  if (state.undo.length > 50) state.undo.shift();
}

function undo() {
  const previous = state.undo.pop();
  if (!previous) return;
  state.labels = previous;
  renderMask();
  requestFrame();
}

function selectTool(label) {
  state.tool = label;
  document.querySelectorAll("button.tool").forEach((b) => {
    b.classList.toggle("active", Number(b.dataset.label) === label);
  });
}

function setBrush(size) {
  state.brush = Math.max(1, Math.min(40, size));
  $("brush").value = String(state.brush);
  $("brush-out").textContent = String(state.brush);
}

// -- phantom ------------------------------------------------------------------------------------
function phantomQuery(phase = 0) {
  const params = new URLSearchParams();
  document.querySelectorAll("input[data-param]").forEach((input) => {
    params.set(input.dataset.param, input.value);
  });
  params.set("phase", phase.toFixed(4));
  return params;
}

async function phantomLabels(phase = 0) {
  const response = await fetch(`/v1/phantom?${phantomQuery(phase)}`);
  if (!response.ok) throw new Error(await errorText(response));
  return labelsFromPng(await response.blob());
}

async function loadPhantom() {
  if (state.cine) stopCine();
  try {
    const labels = await phantomLabels(0);
    pushUndo();
    state.labels = labels;
    renderMask();
    requestFrame();
  } catch (err) {
    status(`Phantom failed: ${err.message}`, true);
  }
}

function setupSliders(ranges) {
  const defaults = { lv_length: 86, lv_width: 48, wall: 9.5, la_size: 40 };
  let timer = null;
  document.querySelectorAll("input[data-param]").forEach((input) => {
    const name = input.dataset.param;
    const [lo, hi] = ranges[name] || [0, 100];
    input.min = lo; input.max = hi; input.value = defaults[name];
    const out = document.querySelector(`output[data-for="${name}"]`);
    const show = () => { out.textContent = `${Number(input.value).toFixed(name === "wall" ? 1 : 0)} mm`; };
    show();
    input.addEventListener("input", () => {
      show();
      clearTimeout(timer);
      timer = setTimeout(loadPhantom, 60);
    });
  });
}

// -- cine -----------------------------------------------------------------------------------------
async function playCine() {
  if (state.cine) { stopCine(); return; }
  const n = Number($("cine-frames").value);
  const fps = Number($("cine-fps").value);
  const play = $("play");
  play.disabled = true;
  $("busy").hidden = false;
  status(`Generating ${n} cine frames…`);
  try {
    const t0 = performance.now();
    const phases = Array.from({ length: n }, (_, k) => k / (n - 1));
    const masks = await Promise.all(phases.map((p) => phantomLabels(p)));
    const results = await Promise.all(masks.map((m) => generateOnce(m)));  // batched server-side
    const ms = performance.now() - t0;
    const frames = await Promise.all(results.map((r) => createImageBitmap(r.blob)));
    $("cine-info").textContent = `${n} frames in ${ms.toFixed(0)} ms`;
    status(`Cine ready: ${n} frames generated in ${ms.toFixed(0)} ms. Playing ED → ES → ED.`);
    startCine(frames, masks, fps);
  } catch (err) {
    status(`Cine failed: ${err.message}`, true);
  } finally {
    play.disabled = false;
    $("busy").hidden = true;
  }
}

function startCine(frames, masks, fps) {
  const img = $("frame");
  const view = document.createElement("canvas");
  view.width = state.width; view.height = state.height;
  view.id = "cine-view";
  view.style.cssText = "position:absolute;inset:0;width:100%;height:100%";
  img.parentElement.insertBefore(view, img.nextSibling);
  const ctx = view.getContext("2d");
  const cine = { frames, masks, index: 0, dir: 1, view, saved: state.labels };
  const step = () => {
    ctx.drawImage(cine.frames[cine.index], 0, 0, state.width, state.height);
    renderMask(cine.masks[cine.index]);
    $("cine-bar").style.width = `${(100 * cine.index) / (cine.frames.length - 1)}%`;
    if (cine.index + cine.dir < 0 || cine.index + cine.dir >= cine.frames.length) cine.dir *= -1;
    cine.index += cine.dir;
  };
  step();
  cine.timer = setInterval(step, 1000 / fps);
  state.cine = cine;
  $("play").textContent = "■ Stop";
}

function stopCine() {
  const cine = state.cine;
  if (!cine) return;
  clearInterval(cine.timer);
  cine.view.remove();
  state.cine = null;
  state.labels = cine.saved;
  renderMask();
  $("cine-bar").style.width = "0";
  $("play").textContent = "▶ Play";
}

// -- downloads ------------------------------------------------------------------------------------
function download(blob, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

// -- fan outline ----------------------------------------------------------------------------------
function drawFan(halfAngleDeg) {
  const svg = $("fan");
  const a = (halfAngleDeg * Math.PI) / 180;
  const yEdge = Math.cos(a) * 100;
  const points = [];
  for (let k = 0; k <= 40; k++) {
    const t = -a + (2 * a * k) / 40;
    points.push(`${(50 + (50 * Math.sin(t)) / Math.sin(a)).toFixed(2)} ${(Math.cos(t) * 100).toFixed(2)}`);
  }
  svg.innerHTML = `<path d="M 50 0 L 0 ${yEdge.toFixed(2)} L ${points.join(" L ")} Z"/>`;
}

// -- start ----------------------------------------------------------------------------------------
async function init() {
  document.querySelectorAll("button.tool").forEach((b) => {
    b.addEventListener("click", () => selectTool(Number(b.dataset.label)));
  });
  selectTool(1);
  $("brush").addEventListener("input", (e) => setBrush(Number(e.target.value)));
  $("undo").addEventListener("click", undo);
  $("clear").addEventListener("click", () => {
    pushUndo();
    state.labels = new Uint8Array(state.width * state.height);
    renderMask();
    requestFrame();
  });
  $("phantom-load").addEventListener("click", loadPhantom);
  $("play").addEventListener("click", playCine);
  $("show-contours").addEventListener("change", () => renderContours());
  $("show-fan").addEventListener("change", (e) => { $("fan").style.display = e.target.checked ? "" : "none"; });
  $("dl-mask").addEventListener("click", async () => download(await labelsPng(), "mask.png"));
  $("dl-frame").addEventListener("click", () => {
    if (state.frameBlob) download(state.frameBlob, "echo.png");
  });
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
    if ((e.ctrlKey || e.metaKey) && e.key === "z") { e.preventDefault(); undo(); return; }
    const keys = { "1": 1, "2": 2, "3": 3, e: 0, E: 0 };
    if (e.key in keys) selectTool(keys[e.key]);
    if (e.key === "[") setBrush(state.brush - 2);
    if (e.key === "]") setBrush(state.brush + 2);
  });

  try {
    const response = await fetch("/v1/model");
    if (!response.ok) throw new Error(await errorText(response));
    const info = await response.json();
    [state.height, state.width] = info.meta.input_size;
    state.ranges = info.phantom_ranges;
    const kept = info.meta.kept_labels.map((k) => info.labels[String(k)]).join(", ");
    $("model-text").replaceChildren(  // as text: the name and experiment come from the model file
      Object.assign(document.createElement("b"), { textContent: info.name }),
      ` · ${info.backend} · ${state.width}×${state.height} · ${info.meta.experiment} (${kept})`);
    $("ready-dot").classList.add("ok");
    drawFan(info.phantom_fan_half_angle_deg);
  } catch (err) {
    $("model-text").textContent = "model unavailable";
    $("ready-dot").classList.add("bad");
    status(`Cannot reach the model: ${err.message}`, true);
    return;
  }
  for (const canvas of [maskCanvas, $("contours"), scratch]) {
    canvas.width = state.width;
    canvas.height = state.height;
  }
  state.labels = new Uint8Array(state.width * state.height);
  setBrush(Math.max(2, Math.round(state.width / 32)));
  setupSliders(state.ranges);
  await loadPhantom();
}

init();
