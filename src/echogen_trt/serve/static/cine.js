// The cine of the user's own mask: POST it to /v1/cine (the server deforms it ED -> ES with the
// EF asked for and runs every frame through the model, batched), play the strip it returns,
// or export the same cine as GIF / MP4 / zip (made by `generate`'s preview code).
"use strict";

import { $, state, download, drawFrame, fileName } from "./state.js";
import { labelsFromImage, labelsPng, renderMask } from "./mask.js";
import { message, request, status } from "./server.js";

function cineQuery(format) {
  const params = new URLSearchParams({
    format,
    frames: $("cine-frames").value,
    ef: (Number($("cine-ef").value) / 100).toFixed(2),
    fps: $("cine-fps").value,
    overlay: $("cine-overlay").checked ? "1" : "0",
  });
  return params.toString();
}

async function postCine(format) {
  const body = await labelsPng(state.labels);
  return request(`/v1/cine?${cineQuery(format)}`, {
    method: "POST", headers: { "Content-Type": "image/png" }, body,
  });
}

export async function playCine() {
  if (state.cine) { stopCine(); return; }
  if (!state.ready) return;
  const n = Number($("cine-frames").value);
  const fps = Number($("cine-fps").value);
  const play = $("play");
  play.disabled = true;
  $("busy").hidden = false;
  status(`Generating a ${n}-frame cine of your mask…`);
  try {
    const t0 = performance.now();
    const response = await postCine("strip");
    const strip = await createImageBitmap(await response.blob(), { colorSpaceConversion: "none" });
    const w = state.width, h = state.height;
    const frames = [], masks = [];
    for (let k = 0; k < n; k++) {
      frames.push(await createImageBitmap(strip, w, k * h, w, h));
      masks.push(await labelsFromImage(strip, w, h, [0, k * h, w, h]));
    }
    const ms = performance.now() - t0;
    $("cine-info").textContent = `${n} frames in ${ms.toFixed(0)} ms`;
    status(`Cine ready: ${n} frames of your mask in ${ms.toFixed(0)} ms. Playing ED → ES → ED.`);
    message(null);
    startCine(frames, masks, fps);
  } catch (err) {
    message(`Cine failed: ${err.message}`);
  } finally {
    play.disabled = false;
    $("busy").hidden = true;
  }
}

function startCine(frames, masks, fps) {
  const cine = { frames, masks, index: 0, shown: 0, dir: 1, saved: state.labels };
  const step = () => {
    drawFrame(cine.frames[cine.index]);
    renderMask(cine.masks[cine.index]);
    cine.shown = cine.index;
    $("frame").dataset.cineIndex = String(cine.index);
    $("cine-bar").value = cine.index / (cine.frames.length - 1);
    if (cine.index + cine.dir < 0 || cine.index + cine.dir >= cine.frames.length) cine.dir *= -1;
    cine.index += cine.dir;
  };
  state.cine = cine;
  step();
  cine.timer = setInterval(step, 1000 / fps);
  $("play").textContent = "■ Stop";
  $("play").setAttribute("aria-pressed", "true");
}

export function stopCine() {
  const cine = state.cine;
  if (!cine) return;
  clearInterval(cine.timer);
  state.cine = null;
  state.labels = cine.saved;
  renderMask();
  if (state.frameBitmap) drawFrame(state.frameBitmap);
  delete $("frame").dataset.cineIndex;
  $("cine-bar").value = 0;
  $("play").textContent = "▶ Play";
  $("play").setAttribute("aria-pressed", "false");
}

// The labels on screen: the cine's current mask while it plays, else the drawing.
export function shownLabels() {
  return state.cine ? state.cine.masks[state.cine.shown] : state.labels;
}

export async function exportCine() {
  if (!state.ready) return;
  const format = $("cine-format").value;
  const button = $("export");
  button.disabled = true;
  status(`Exporting the cine as ${format.toUpperCase()}…`);
  try {
    const response = await postCine(format);
    download(await response.blob(), fileName("cine", format));
    status(`Cine exported (${format.toUpperCase()}).`);
  } catch (err) {
    message(`Cine export failed: ${err.message}`);
  } finally {
    button.disabled = false;
  }
}
