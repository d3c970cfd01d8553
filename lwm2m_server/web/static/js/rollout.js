import { api, boot, clearError, el, followForever, showError, table } from "./api.js";

boot();
const id = decodeURIComponent(location.pathname.split("/")[2]);
document.getElementById("title").textContent = `Rollout ${id}`;
// Every action button stays enabled: the server decides what a state allows and answers 409 in words otherwise.
const FAILING = new Set(["failed", "incompatible"]);
let chart = null, refreshing = false, again = false, seeded = false;

function ensureChart() {
  if (chart) return chart;
  chart = new window.Chart(document.getElementById("progress-chart"), {
    type: "line",
    data: { datasets: [
      { label: "confirmed", data: [], borderColor: "#1c7c3c", backgroundColor: "#1c7c3c", stepped: true },
      { label: "failed", data: [], borderColor: "#b3261e", backgroundColor: "#b3261e", stepped: true }] },
    options: { animation: false, responsive: true, maintainAspectRatio: false, parsing: false,
      scales: { x: { type: "linear", title: { display: true, text: "seconds since the rollout was created" } },
                y: { beginAtZero: true, title: { display: true, text: "devices" } } } },
  });
  return chart;
}

function failedOf(counts) {
  return Object.entries(counts).filter(([k]) => FAILING.has(k)).reduce((a, [, n]) => a + n, 0);
}

function plot(counts, createdAt) {
  const c = ensureChart(), t = Math.max(0, Date.now() / 1000 - createdAt);
  c.data.datasets[0].data.push({ x: t, y: counts.confirmed || 0 });
  c.data.datasets[1].data.push({ x: t, y: failedOf(counts) });
  c.update("none");
}

/** The history before this page opened, from the audit log: each device's terminal state as it happened. */
async function seedHistory(createdAt) {
  const rows = await api("/api/audit", { query: { rollout: id, limit: 10000 } });
  const state = new Map();
  const c = ensureChart();
  c.data.datasets[0].data.push({ x: 0, y: 0 });
  c.data.datasets[1].data.push({ x: 0, y: 0 });
  for (const r of rows) {
    if (!r.endpoint || !r.action.startsWith("device.")) continue;
    state.set(r.endpoint, r.action === "device.retry" ? "pending" : r.action.slice(7));
    const counts = {};
    for (const s of state.values()) counts[s] = (counts[s] || 0) + 1;
    const t = Math.max(0, r.ts - createdAt);
    c.data.datasets[0].data.push({ x: t, y: counts.confirmed || 0 });
    c.data.datasets[1].data.push({ x: t, y: failedOf(counts) });
  }
}

function bar(counts, total) {
  const done = (counts.confirmed || 0) + (counts.skipped || 0);
  const pct = total ? Math.round((100 * done) / total) : 0;
  return el("span", {}, el("progress", { max: total || 1, value: done, "aria-label": `${pct}% done` }), ` ${pct}%`);
}

function countsText(counts) { return Object.entries(counts).map(([k, n]) => `${k}: ${n}`).join(", ") || "—"; }

async function failing(devices) {
  const bad = devices.filter((d) => FAILING.has(d.state)).slice(0, 50);
  const box = document.getElementById("failing");
  if (!bad.length) { box.textContent = "No failing devices."; return; }
  const fw = await Promise.all(bad.map((d) => api(`/api/devices/${encodeURIComponent(d.endpoint)}`).then(
    (x) => x.fw_result || "—", () => "unregistered")));
  box.replaceChildren(table([
    { label: "Device", value: (d) => el("a", { href: `/devices/${encodeURIComponent(d.endpoint)}`, text: d.endpoint }) },
    { label: "State", value: (d) => d.state }, { label: "Wave", value: (d) => d.wave + 1, num: true },
    { label: "Object 5 result", value: (d) => fw[bad.indexOf(d)] }, { label: "Reason", value: (d) => d.cause || "—" },
    { label: "Attempts", value: (d) => d.attempts, num: true }], bad));
}

async function refresh() {
  if (refreshing) { again = true; return; }
  refreshing = true;
  try {
    const r = await api(`/api/rollouts/${encodeURIComponent(id)}`, { query: { limit: 1000 } });
    document.getElementById("state").textContent = r.state;
    document.getElementById("state-detail").textContent =
      `${r.spec.model} · ${r.spec.filter || "all devices"} · wave ${r.current_wave + 1} of ${r.wave_count} · ${r.total} devices`
      + (r.reason ? ` · ${r.reason}` : "");
    document.getElementById("waves").replaceChildren(table([{ label: "Wave", value: (w) => w.wave + 1, num: true },
      { label: "Progress", value: (w) => bar(w.counts, Object.values(w.counts).reduce((a, n) => a + n, 0)) },
      { label: "Counts", value: (w) => countsText(w.counts) }], r.waves));
    document.getElementById("classes").replaceChildren(table([{ label: "Class", value: (c) => c.class_key },
      { label: "Variant", value: (c) => c.variant || "—" },
      { label: "Progress", value: (c) => bar(c.counts, Object.values(c.counts).reduce((a, n) => a + n, 0)) },
      { label: "Counts", value: (c) => countsText(c.counts) }, { label: "Reason", value: (c) => c.reason || "" }], r.classes));
    if (!seeded) { seeded = true; await seedHistory(r.created_at); }
    plot(r.counts, r.created_at);
    await failing(r.devices);
    document.body.dataset.state = r.state;
    document.body.dataset.loaded = "rollout";
  } catch (exc) { showError(exc); }
  finally { refreshing = false; if (again) { again = false; refresh(); } }
}

for (const b of document.querySelectorAll("[data-action]")) {
  b.addEventListener("click", async () => {
    try {
      await api(`/api/rollouts/${encodeURIComponent(id)}/${b.dataset.action}`, { method: "POST" });
      clearError();
    } catch (exc) { showError(exc); }
    refresh();
  });
}

const live = document.getElementById("live");
followForever({ type: ["rollout.progress"] }, ({ data }) => {
  if (data.data && data.data.rollout_id === id) refresh();
}, (s) => { live.textContent = `Live: ${s}`; if (s === "live") refresh(); });
refresh();
