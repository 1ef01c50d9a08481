// The label map: colours, drawing, rendering and the PNG codecs. Labels are 0..3 at the model's
// size; requests carry them as greyscale PNG (the page encodes 1-channel PNGs itself, so a
// downloaded mask is the label PNG `generate` reads, not the canvas's RGBA).
"use strict";

import { $, state } from "./state.js";

let colours = { 0: [0, 0, 0], 1: [0, 114, 178], 2: [240, 228, 66], 3: [213, 94, 0] };

const maskCanvas = $("mask");
const maskCtx = maskCanvas.getContext("2d", { willReadFrequently: true });
const scratch = document.createElement("canvas");
const scratchCtx = scratch.getContext("2d", { willReadFrequently: true });

export { maskCanvas };

// The label list from /v1/labels: colours for the canvas and CSS custom properties (CSSOM, which
// a strict style-src allows) for the swatches.
export function setPalette(labels) {
  colours = {};
  for (const l of labels) {
    colours[l.value] = [1, 3, 5].map((i) => parseInt(l.colour.slice(i, i + 2), 16));
    document.documentElement.style.setProperty(`--label-${l.value}`, l.colour);
  }
}

export function sizeCanvases(width, height) {
  for (const canvas of [maskCanvas, $("contours"), $("frame"), scratch]) {
    canvas.width = width;
    canvas.height = height;
  }
}

export function renderMask(labels = state.labels) {
  if (!labels) return;
  const image = maskCtx.createImageData(state.width, state.height);
  for (let i = 0; i < labels.length; i++) {
    const c = colours[labels[i]] || colours[0];
    image.data[4 * i] = c[0];
    image.data[4 * i + 1] = c[1];
    image.data[4 * i + 2] = c[2];
    image.data[4 * i + 3] = 255;
  }
  maskCtx.putImageData(image, 0, 0);
  renderContours(labels);
}

export function renderContours(labels = state.labels) {
  const canvas = $("contours");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!$("show-contours").checked || !labels) return;
  const image = ctx.createImageData(state.width, state.height);
  const w = state.width, h = state.height;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x, v = labels[i];
      if (!v) continue;
      const edge = x === 0 || y === 0 || x === w - 1 || y === h - 1 ||
        labels[i - 1] !== v || labels[i + 1] !== v || labels[i - w] !== v || labels[i + w] !== v;
      if (edge) {
        const c = colours[v] || colours[0];
        image.data.set([c[0], c[1], c[2], 255], 4 * i);
      }
    }
  }
  ctx.putImageData(image, 0, 0);
}

// -- drawing ----------------------------------------------------------------------------------
export function canvasPoint(event) {
  const rect = maskCanvas.getBoundingClientRect();
  return [
    ((event.clientX - rect.left) / rect.width) * state.width,
    ((event.clientY - rect.top) / rect.height) * state.height,
  ];
}

export function stamp(cx, cy) {
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

export function strokeTo(from, to) {
  const dist = Math.hypot(to[0] - from[0], to[1] - from[1]);
  const steps = Math.max(1, Math.ceil(dist / Math.max(0.5, state.brush / 4)));
  for (let s = 1; s <= steps; s++) {
    const t = s / steps;
    stamp(from[0] + (to[0] - from[0]) * t, from[1] + (to[1] - from[1]) * t);
  }
}

// -- codecs -----------------------------------------------------------------------------------
// The request body for the live path: the canvas's own PNG encoder (fast), grey x85.
export function labelsPng(labels = state.labels) {
  const image = scratchCtx.createImageData(state.width, state.height);
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i] * 85;
    image.data[4 * i] = v; image.data[4 * i + 1] = v; image.data[4 * i + 2] = v;
    image.data[4 * i + 3] = 255;
  }
  scratchCtx.putImageData(image, 0, 0);
  return new Promise((resolve) => scratch.toBlob(resolve, "image/png"));
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

// An 8-bit, 1-channel PNG of labels x `scale` (zlib by the browser's CompressionStream).
export async function greyPng(labels, width, height, scale = 85) {
  const raw = new Uint8Array((width + 1) * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) raw[y * (width + 1) + 1 + x] = labels[y * width + x] * scale;
  }
  const stream = new Blob([raw]).stream().pipeThrough(new CompressionStream("deflate"));
  const zipped = new Uint8Array(await new Response(stream).arrayBuffer());
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header.set([8, 0, 0, 0, 0], 8);  // 8 bit, greyscale, deflate, no filter, no interlace
  const signature = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);
  const parts = [signature, chunk("IHDR", header), chunk("IDAT", zipped), chunk("IEND", new Uint8Array())];
  return new Blob(parts, { type: "image/png" });
}

// Labels from a grey image (raw 0..3 or x85), optionally a crop of it, at (width, height).
export async function labelsFromImage(source, width, height, crop = null) {
  const bitmap = source instanceof Blob
    ? await createImageBitmap(source, { colorSpaceConversion: "none", premultiplyAlpha: "none" })
    : source;
  const [sx, sy, sw, sh] = crop || [0, 0, bitmap.width, bitmap.height];
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(bitmap, sx, sy, sw, sh, 0, 0, width, height);
  const data = ctx.getImageData(0, 0, width, height).data;
  const labels = new Uint8Array(width * height);
  for (let i = 0; i < labels.length; i++) {
    const v = data[4 * i];
    labels[i] = v > 3 ? Math.min(3, Math.round(v / 85)) : v;
  }
  return labels;
}

// Nearest-neighbour resize of a label map (for size=original downloads of an edited mask).
export function resizeLabels(labels, w0, h0, w1, h1) {
  const out = new Uint8Array(w1 * h1);
  for (let y = 0; y < h1; y++) {
    const sy = Math.min(h0 - 1, Math.floor(((y + 0.5) * h0) / h1));
    for (let x = 0; x < w1; x++) {
      out[y * w1 + x] = labels[sy * w0 + Math.min(w0 - 1, Math.floor(((x + 0.5) * w0) / w1))];
    }
  }
  return out;
}

export function base64Blob(text, type = "image/png") {
  const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  return new Blob([bytes], { type });
}
