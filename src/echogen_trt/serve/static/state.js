// Shared page state and the smallest DOM helpers; every other module imports from here.
"use strict";

export const $ = (id) => document.getElementById(id);

export const state = {
  ready: false,          // the model's metadata is loaded: controls are enabled
  online: false,         // the last /readyz (or request) reached a serving server
  model: null,           // /v1/model
  labelInfo: [],         // /v1/labels: [{value, key, brush, title, colour, kept}]
  width: 256, height: 256,
  labels: null,          // Uint8Array(width * height) of labels 0..3 at the model's size
  original: null,        // {width, height, name} of a loaded mask file, for size=original
  tool: 1, brush: 8,
  undo: [], redo: [],    // snapshots {labels, sliders}
  inFlight: false, dirty: false, stale: false,
  frameBlob: null, generation: 0,
  cine: null,            // {frames: ImageBitmap[], masks: Uint8Array[], index, dir, timer}
};

// Events between modules without import cycles: "frame" (a live frame is shown),
// "online" / "offline" (the server's state changed).
export const bus = new EventTarget();

export function timestamp(date = new Date()) {
  const p = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}-` +
    `${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`;
}

// A download name that says which model made it and when: echogen_frame_20261202-141500.png
export function fileName(kind, ext) {
  const model = (state.model?.name || "echogen").replace(/\.[^.]*$/, "").replace(/[^\w.-]+/g, "_");
  return `${model}_${kind}_${timestamp()}.${ext}`;
}

export function download(blob, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

// Draw a frame (ImageBitmap) on the frame canvas: what is on screen is what "Download frame"
// saves, live frame or cine frame alike.
export function drawFrame(bitmap) {
  const canvas = $("frame");
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
}
