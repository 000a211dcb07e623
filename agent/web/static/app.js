// vidagent web chat: plain JS, no build step. Model text is only ever set with textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORE = "vidagent.apiKey";
const state = { key: localStorage.getItem(KEY_STORE) || "", server: null, video: null,
                segments: [], session: null, busy: false };

function setStatus(text) { $("status").textContent = text; }

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (state.key) h["Authorization"] = "Bearer " + state.key;
  return h;
}

function askKey() {
  const key = window.prompt("This server needs an API key:", state.key || "");
  if (key === null) return false;
  state.key = key.trim();
  localStorage.setItem(KEY_STORE, state.key);
  return true;
}

async function errorText(resp) {
  try {
    const body = await resp.json();
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) return body.detail.map((d) => d.msg).join("; ");
  } catch (e) { /* not JSON */ }
  return resp.status + " " + resp.statusText;
}

// fetch under /api with the key; a 401 asks for the key once and tries again.
async function api(path, options, retried) {
  const opts = Object.assign({}, options || {});
  opts.headers = headers(opts.headers);
  const resp = await fetch("/api" + path, opts);
  if (resp.status === 401 && !retried && askKey()) return api(path, options, true);
  return resp;
}

async function apiJson(path, options) {
  const resp = await api(path, options);
  if (!resp.ok) throw new Error(await errorText(resp));
  return resp.status === 204 ? null : resp.json();
}

// ---- timestamps in text -> links that seek the player ----
const TIME_RE = new RegExp(
  [
    "<seg_(\\d+)>",                                             // <seg_3>
    "\\[(\\d+(?:\\.\\d+)?)\\s*s?\\s*(?:-|–|to)\\s*(\\d+(?:\\.\\d+)?)\\s*s\\]", // [2.0-4.0 s]
    "\\b(\\d+(?:\\.\\d+)?)\\s?(?:s|sec|seconds)\\b",            // 12.5 s
    "\\b(\\d{1,2}):([0-5]\\d)(?::([0-5]\\d))?\\b",              // 00:12, 1:02:03
  ].join("|"),
  "g",
);

function timeOf(m) {
  if (m[1] !== undefined) {
    const seg = state.segments.find((s) => s.index === Number(m[1]));
    return seg ? seg.start : null;
  }
  if (m[2] !== undefined) return Number(m[2]);
  if (m[4] !== undefined) return Number(m[4]);
  if (m[5] !== undefined) {
    const parts = [m[5], m[6], m[7]].filter((p) => p !== undefined).map(Number);
    return parts.length === 3 ? parts[0] * 3600 + parts[1] * 60 + parts[2]
                              : parts[0] * 60 + parts[1];
  }
  return null;
}

function renderText(el, text) {
  el.textContent = "";
  let last = 0;
  for (const m of text.matchAll(TIME_RE)) {
    const t = timeOf(m);
    if (t === null) continue;
    if (m.index > last) el.append(document.createTextNode(text.slice(last, m.index)));
    const a = document.createElement("a");
    a.className = "ts";
    a.href = "#t=" + t;
    a.dataset.t = String(t);
    a.textContent = m[0];
    a.title = "seek to " + t.toFixed(1) + " s";
    el.append(a);
    last = m.index + m[0].length;
  }
  if (last < text.length) el.append(document.createTextNode(text.slice(last)));
}

function seek(t) {
  const player = $("player");
  player.currentTime = t;
  highlightSegment(t);
}

document.addEventListener("click", (ev) => {
  const link = ev.target.closest("a.ts");
  if (!link) return;
  ev.preventDefault();
  seek(Number(link.dataset.t));
});

// ---- videos ----
async function loadVideos(selectId) {
  const videos = await apiJson("/videos");
  const select = $("video-select");
  select.textContent = "";
  const none = document.createElement("option");
  none.value = "";
  none.textContent = videos.length ? "(choose a video)" : "(no videos yet: upload one)";
  select.append(none);
  for (const v of videos) {
    const opt = document.createElement("option");
    opt.value = v.id;
    opt.textContent = v.name + (v.source === "folder" ? " (folder)" : "");
    select.append(opt);
  }
  state.videos = videos;
  if (selectId) { select.value = selectId; await openVideo(selectId); }
}

function showUploadError(text) {
  const box = $("upload-error");
  box.textContent = text || "";
  box.hidden = !text;
}

async function upload(file) {
  showUploadError("");
  const max = state.server ? state.server.max_upload_mb : null;
  if (max && file.size > max * 1024 * 1024) {
    showUploadError(`${file.name}: too large; the limit is ${max} MB`);
    return;
  }
  setStatus(`uploading ${file.name}…`);
  const form = new FormData();
  form.append("file", file);
  const resp = await api("/videos", { method: "POST", body: form });
  if (!resp.ok) {
    showUploadError(await errorText(resp));
    setStatus("");
    return;
  }
  const video = await resp.json();
  await loadVideos(video.id);
}

async function openVideo(id) {
  state.video = (state.videos || []).find((v) => v.id === id) || null;
  state.session = null;
  state.segments = [];
  setChatEnabled(false);
  $("timeline").textContent = "";
  $("messages").textContent = "";
  if (!state.video) return;
  const player = $("player");
  const keyParam = state.key ? "?key=" + encodeURIComponent(state.key) : "";
  player.src = state.video.media_url + keyParam;
  const token = id;
  let tl = await apiJson(`/videos/${id}/timeline`, { method: "POST" });
  while (tl.status === "pending" || tl.status === "running") {
    const steps = tl.steps_total ? `, ${tl.steps_done}/${tl.steps_total} steps` : "";
    $("timeline-state").textContent = `perceiving… ${tl.elapsed_s ?? 0} s${steps}`;
    await new Promise((r) => setTimeout(r, 700));
    if (!state.video || state.video.id !== token) return;  // another video was picked
    tl = await apiJson(`/videos/${id}/timeline`);
  }
  if (tl.status === "error") {
    $("timeline-state").textContent = "perception failed: " + tl.error;
    return;
  }
  state.segments = tl.segments;
  renderTimeline(tl);
  const session = await apiJson("/sessions", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ video_id: id }),
  });
  if (!state.video || state.video.id !== token) return;
  state.session = session.id;
  setChatEnabled(true);
  setStatus(`${state.video.name}: ${tl.segments.length} segments`);
}

function renderTimeline(tl) {
  $("timeline-state").textContent =
    `${tl.segments.length} segments, ${tl.duration.toFixed(1)} s`;
  const list = $("timeline");
  list.textContent = "";
  for (const s of tl.segments) {
    const li = document.createElement("li");
    li.className = "segment";
    li.dataset.start = String(s.start);
    li.dataset.end = String(s.end);
    li.title = "seek to " + s.start.toFixed(1) + " s";
    const token = document.createElement("span");
    token.className = "token";
    token.textContent = s.token;
    const span = document.createElement("span");
    span.className = "span";
    span.textContent = `${s.start.toFixed(1)}–${s.end.toFixed(1)} s`;
    const caption = document.createElement("span");
    caption.className = "caption";
    caption.textContent = s.caption || "(no caption)";
    const actions = document.createElement("span");
    actions.className = "actions";
    actions.textContent = s.actions.join(", ");
    li.append(token, span, caption, actions);
    li.addEventListener("click", () => seek(s.start));
    list.append(li);
  }
}

function highlightSegment(t) {
  for (const li of document.querySelectorAll("#timeline li")) {
    const on = t >= Number(li.dataset.start) && t < Number(li.dataset.end);
    li.classList.toggle("current", on);
    if (on && li.scrollIntoView) li.scrollIntoView({ block: "nearest", inline: "nearest" });
  }
}

// ---- chat ----
function setChatEnabled(on) {
  for (const id of ["question", "send", "reset"]) $(id).disabled = !on || state.busy;
}

function addMessage(kind, text) {
  const el = document.createElement("div");
  el.className = "msg " + kind;
  renderText(el, text || "");
  $("messages").append(el);
  el.scrollIntoView({ block: "end" });
  return el;
}

function addTool(call) {
  const el = document.createElement("div");
  el.className = "tool";
  el.dataset.callId = call.id;
  const args = typeof call.arguments === "string" ? call.arguments
                                                   : JSON.stringify(call.arguments);
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = `tool ${call.name}(${args.length > 120 ? args.slice(0, 117) + "…" : args})`;
  el.append(name);
  $("messages").append(el);
  return el;
}

function addToolResult(result) {
  let el = document.querySelector(`.tool[data-call-id="${CSS.escape(result.id)}"]`);
  if (!el) el = addTool({ id: result.id, name: result.name, arguments: "" });
  const body = document.createElement("div");
  body.className = "result";
  renderText(body, result.content);
  el.append(body);
  if (result.error) el.classList.add("failed");
}

// Parse a fetch body of Server-Sent Events; calls onEvent(name, data) per event.
async function readEvents(resp, onEvent) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trim());
      }
      onEvent(name, JSON.parse(data.join("\n") || "{}"));
    }
  }
}

async function ask(question) {
  state.busy = true;
  setChatEnabled(false);
  addMessage("user", question);
  let answer = null;
  let text = "";
  let chunks = 0;
  const messages = $("messages");
  try {
    const resp = await api(`/sessions/${state.session}/messages`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text: question }),
    });
    if (!resp.ok) throw new Error(await errorText(resp));
    await readEvents(resp, (name, data) => {
      if (name === "text") {
        if (!answer) { answer = addMessage("assistant", ""); text = ""; chunks = 0; }
        text += data.text;
        chunks += 1;
        answer.dataset.chunks = String(chunks);
        renderText(answer, text);
      } else if (name === "tool_call") {
        if (answer) answer.dataset.done = "round";
        answer = null;
        addTool(data);
      } else if (name === "tool_result") {
        addToolResult(data);
      } else if (name === "done") {
        if (!answer) answer = addMessage("assistant", "(no answer text)");
        answer.dataset.done = "true";
      } else if (name === "error") {
        addMessage("error", "error: " + data.detail);
      }
      messages.scrollTop = messages.scrollHeight;
    });
  } catch (err) {
    addMessage("error", "error: " + err.message);
  } finally {
    state.busy = false;
    setChatEnabled(Boolean(state.session));
    $("question").focus();
  }
}

function init() {
  $("video-select").addEventListener("change", (ev) => openVideo(ev.target.value)
    .catch((err) => setStatus("error: " + err.message)));
  $("upload-input").addEventListener("change", (ev) => {
    const file = ev.target.files[0];
    ev.target.value = "";
    if (file) upload(file).catch((err) => { showUploadError(err.message); setStatus(""); });
  });
  $("ask-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = $("question").value.trim();
    if (!q || state.busy || !state.session) return;
    $("question").value = "";
    ask(q);
  });
  $("question").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); $("ask-form").requestSubmit(); }
  });
  $("reset").addEventListener("click", async () => {
    if (!state.session) return;
    await apiJson(`/sessions/${state.session}/reset`, { method: "POST" });
    $("messages").textContent = "";
  });
  $("player").addEventListener("timeupdate", () => highlightSegment($("player").currentTime));
  $("key-button").addEventListener("click", () => { if (askKey()) loadVideos(); });
  fetch("/api/server").then((r) => r.json()).then((info) => {
    state.server = info;
    $("key-button").hidden = !info.auth_required;
    if (info.auth_required && !state.key) askKey();
    return loadVideos();
  }).catch((err) => setStatus("error: " + err.message));
}

init();
