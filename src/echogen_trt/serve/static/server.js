// Talking to the server: messages where the user looks, the connection state (a header dot that
// follows /readyz, polled faster while the server is away) and the generate request.
"use strict";

import { $, state, bus } from "./state.js";

const POLL_ONLINE_MS = 5000;
const POLL_OFFLINE_MS = 1500;
let pollTimer = null;

// The footer line (a log of what happened) ...
export function status(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

// ... and the message on the frame card, where the user is looking (null hides it).
export function message(text, kind = "error") {
  const el = $("frame-msg");
  el.hidden = !text;
  el.textContent = text || "";
  el.dataset.kind = kind;
  if (text) status(text, kind === "error");
}

export async function errorText(response) {
  try {
    const body = await response.json();
    return body.error || `${response.status} ${response.statusText}`;
  } catch (_) {
    return `${response.status} ${response.statusText}`;
  }
}

// A fetch that says "server unreachable" in words and marks the connection down.
export async function request(path, options = {}) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    setOnline(false, "unreachable");
    throw new Error("the server is unreachable (stopped or restarting?)");
  }
  if (response.status === 503) setOnline(false, "not serving");
  if (!response.ok) throw new Error(await errorText(response));
  return response;
}

export async function getJson(path) {
  return (await request(path)).json();
}

export function setOnline(online, detail = "") {
  const dot = $("ready-dot");
  dot.classList.toggle("ok", online);
  dot.classList.toggle("bad", !online);
  dot.classList.remove("wait");
  const words = online ? "server: ready" : `server: ${detail || "offline"}, reconnecting`;
  dot.setAttribute("aria-label", words);
  dot.title = words;
  $("model").classList.toggle("offline", !online);
  if (!online) $("model-text").textContent = `${modelWords()} · ${detail || "offline"}, reconnecting…`;
  else if (state.model) $("model-text").textContent = modelWords();
  const changed = online !== state.online;
  state.online = online;
  if (changed) bus.dispatchEvent(new Event(online ? "online" : "offline"));
  schedulePoll();
}

function modelWords() {
  const info = state.model;
  if (!info) return "model not loaded";
  const kept = state.labelInfo.filter((l) => l.value && l.kept).map((l) => l.brush).join(", ");
  return `${info.name} · ${info.backend} · ${state.width}×${state.height} · ${info.meta.experiment} (${kept})`;
}

async function poll() {
  pollTimer = null;
  try {
    const response = await fetch("/readyz", { cache: "no-store", signal: AbortSignal.timeout(3000) });
    const body = await response.json().catch(() => ({}));
    setOnline(response.ok && body.ready === true, response.ok ? "" : "not serving");
  } catch (_) {
    setOnline(false, "unreachable");
  }
}

function schedulePoll() {
  if (pollTimer !== null) clearTimeout(pollTimer);
  pollTimer = setTimeout(poll, state.online ? POLL_ONLINE_MS : POLL_OFFLINE_MS);
}

export function startPolling() {
  poll();
}

// One frame for a mask PNG; `query` e.g. "?size=original".
export async function generate(body, query = "") {
  const t0 = performance.now();
  const response = await request(`/v1/generate${query}`, {
    method: "POST", headers: { "Content-Type": "image/png" }, body,
  });
  const blob = await response.blob();
  if (!state.online) setOnline(true);
  return { blob, ms: performance.now() - t0 };
}
