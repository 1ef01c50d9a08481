// Files in and out: load a mask (button, drop, paste) through POST /v1/mask, which reads every
// format `generate` reads; download the mask as the greyscale label PNG and the frame on screen,
// at the model's size or the loaded file's (size=original).
"use strict";

import { $, state, download, fileName } from "./state.js";
import { base64Blob, greyPng, labelsFromImage, resizeLabels } from "./mask.js";
import { generate, message, request, status } from "./server.js";
import { shownLabels } from "./cine.js";

// `apply(labels)` puts loaded labels in place as one undo step (app.js owns the history).
export function setupLoading(apply) {
  const load = async (files) => {
    if (!state.ready || !files || !files.length) return;
    const names = Array.from(files, (f) => f.name).join(", ");
    const form = new FormData();
    for (const file of files) form.append("file", file, file.name);
    status(`Loading ${names}…`);
    try {
      const info = await (await request("/v1/mask", { method: "POST", body: form })).json();
      const labels = await labelsFromImage(base64Blob(info.model_mask), state.width, state.height);
      state.original = { width: info.width, height: info.height, name: info.name };
      const option = $("dl-size").querySelector("option[value='original']");
      option.disabled = false;
      option.textContent = `original ${info.width}×${info.height}`;
      await showReal(info);
      apply(labels);
      message(null);
      status(`Loaded ${info.name} (${info.width}×${info.height})` +
        (info.image ? `, with the real image ${info.image_name}.` : "."));
    } catch (err) {
      message(`Could not load ${names}: ${err.message}`);
    }
  };
  $("load").addEventListener("click", () => $("file").click());
  $("file").addEventListener("change", async (e) => {
    await load(e.target.files);
    e.target.value = "";
  });
  // A dropped file must never make the browser navigate away from the drawing.
  document.addEventListener("dragover", (e) => {
    e.preventDefault();
    document.body.classList.add("dragging");
  });
  document.addEventListener("dragleave", (e) => {
    if (!e.relatedTarget) document.body.classList.remove("dragging");
  });
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    document.body.classList.remove("dragging");
    load(e.dataTransfer && e.dataTransfer.files);
  });
  document.addEventListener("paste", (e) => {
    const files = e.clipboardData && e.clipboardData.files;
    if (files && files.length) { e.preventDefault(); load(files); }
  });
}

async function showReal(info) {
  const figure = $("real-viewport");
  $("views").classList.toggle("with-real", Boolean(info.image));
  figure.hidden = !info.image;
  if (!info.image) return;
  const bitmap = await createImageBitmap(base64Blob(info.image));
  const canvas = $("real");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  canvas.getContext("2d").drawImage(bitmap, 0, 0);
  $("real-name").textContent = `real · ${info.image_name}`;
}

function downloadSize() {
  return $("dl-size").value === "original" && state.original
    ? [state.original.width, state.original.height] : [state.width, state.height];
}

export async function downloadMask() {
  if (!state.ready) return;
  const [w, h] = downloadSize();
  const labels = resizeLabels(shownLabels(), state.width, state.height, w, h);
  download(await greyPng(labels, w, h), fileName("mask", "png"));
}

// The frame on screen (the cine's current frame while it plays); at the original size the
// server makes it from the same mask (`?size=original`).
export async function downloadFrame() {
  if (!state.ready) return;
  const [w, h] = downloadSize();
  try {
    let blob;
    if (w === state.width && h === state.height) {
      blob = await new Promise((resolve) => $("frame").toBlob(resolve, "image/png"));
    } else {
      const labels = resizeLabels(shownLabels(), state.width, state.height, w, h);
      blob = (await generate(await greyPng(labels, w, h), "?size=original")).blob;
    }
    download(blob, fileName("frame", "png"));
  } catch (err) {
    message(`Download failed: ${err.message}`);
  }
}
