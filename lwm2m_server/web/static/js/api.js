// The one client of the REST API used by every page: bearer token, JSON errors in words, SSE over fetch().
export const TOKEN_KEY = "tinymlaas.token";

export class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

export function token() { return sessionStorage.getItem(TOKEN_KEY); }
export function setToken(value) { if (value) sessionStorage.setItem(TOKEN_KEY, value); else sessionStorage.removeItem(TOKEN_KEY); }

/** `#token=...` in the URL logs in directly (the fragment never reaches the server); it is removed at once. */
export function takeFragmentToken() {
  const params = new URLSearchParams(location.hash.slice(1));
  const value = params.get("token");
  if (value) {
    setToken(value);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return value;
}

function headers(extra = {}) {
  const h = { Accept: "application/json", ...extra };
  const t = token();
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

function toLogin() {
  const next = encodeURIComponent(location.pathname + location.search);
  location.assign(`/login?next=${next}`);
}

async function failure(response) {
  let code = `http_${response.status}`, message = response.statusText || "request failed";
  try {
    const body = await response.json();
    if (body && typeof body.message === "string") { code = body.error || code; message = body.message; }
  } catch { /* not JSON: keep the status text */ }
  return new ApiError(response.status, code, message);
}

/** Call the API; returns parsed JSON or throws ApiError with the server's message. 401 goes to the login page. */
export async function api(path, { method = "GET", query, json, form, signal, redirect = true } = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (Array.isArray(v)) v.forEach((x) => url.searchParams.append(k, x));
    else if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  }
  const init = { method, signal, headers: headers() };
  if (json !== undefined) { init.body = JSON.stringify(json); init.headers["Content-Type"] = "application/json"; }
  if (form !== undefined) init.body = form;
  let response;
  try {
    response = await fetch(url, init);
  } catch (exc) {
    if (exc.name === "AbortError") throw exc;
    throw new ApiError(0, "network", `the server cannot be reached (${exc.message})`);
  }
  if (response.status === 401 && redirect) { toLogin(); throw new ApiError(401, "unauthorized", "log in first"); }
  if (!response.ok) throw await failure(response);
  return response.status === 204 ? null : response.json();
}

/** Follow `/api/events` (or another SSE route) with the bearer header; calls onEvent({event, data}). */
export async function follow(query, onEvent, { signal, onOpen } = {}) {
  const url = new URL("/api/events", location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (Array.isArray(v)) v.forEach((x) => url.searchParams.append(k, x));
    else if (v) url.searchParams.set(k, v);
  }
  const response = await fetch(url, { headers: headers({ Accept: "text/event-stream" }), signal });
  if (response.status === 401) { toLogin(); return; }
  if (!response.ok) throw await failure(response);
  if (onOpen) onOpen();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
      let event = "message"; const data = [];
      for (const line of frame.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length) {
        try { onEvent({ event, data: JSON.parse(data.join("\n")) }); } catch (exc) { console.error(exc); }
      }
    }
  }
}

/** Keep a live stream open, reconnecting after a pause when it drops; returns an AbortController. */
export function followForever(query, onEvent, status) {
  const ctl = new AbortController();
  (async () => {
    for (let attempt = 0; !ctl.signal.aborted; attempt++) {
      try {
        await follow(query, onEvent, { signal: ctl.signal, onOpen: () => status && status("live") });
      } catch (exc) {
        if (ctl.signal.aborted) return;
        status && status(`disconnected: ${exc.message}`);
      }
      await new Promise((r) => setTimeout(r, Math.min(500 * 2 ** attempt, 5000)));
    }
  })();
  return ctl;
}

// ---- page helpers -------------------------------------------------------------------------------------------
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}

export function table(columns, rows, { caption } = {}) {
  const head = el("tr", {}, columns.map((c) => el("th", { scope: "col", text: c.label })));
  const body = rows.map((row) => el("tr", {}, columns.map((c) => {
    const v = c.value(row);
    return el("td", { class: c.num ? "num" : null }, v instanceof Node ? v : (v ?? "—"));
  })));
  return el("div", { class: "table-wrap" }, el("table", {}, caption ? el("caption", { text: caption }) : null,
    el("thead", {}, head), el("tbody", {}, body)));
}

export function showError(exc, where = "errors") {
  const box = document.getElementById(where);
  if (!box) return;
  const words = exc instanceof ApiError
    ? (exc.status ? `${exc.message} (HTTP ${exc.status} ${exc.code})` : exc.message)
    : `unexpected error: ${exc && exc.message ? exc.message : exc}`;
  box.replaceChildren(el("p", { text: words }));
}

export function clearError(where = "errors") { const box = document.getElementById(where); if (box) box.replaceChildren(); }

export function bytes(n) {
  if (n === null || n === undefined) return "—";
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(n % (1 << 20) ? 1 : 0)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(n % 1024 ? 1 : 0)} KiB`;
  return `${n} B`;
}

export function ago(ts) {
  if (!ts) return "—";
  const s = Math.max(0, Date.now() / 1000 - ts);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(ts * 1000).toISOString().slice(0, 16).replace("T", " ");
}

export function when(ts) { return ts ? new Date(ts * 1000).toLocaleString() : "—"; }

/** Every page: take a `#token=`, wire "Log out". */
export function boot() {
  takeFragmentToken();
  const out = document.getElementById("logout");
  if (out) out.addEventListener("click", () => { setToken(null); location.assign("/login"); });
}
