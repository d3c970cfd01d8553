import { api, boot, clearError, el, showError, when } from "./api.js";

boot();
const form = document.getElementById("create-form");
const count = document.getElementById("r-count");
let timer = null, seq = 0;

async function liveCount() {
  const mine = ++seq;
  const filter = form.filter.value.trim();
  try {
    const page = await api("/api/devices", { query: { filter, limit: 1 } });
    if (mine !== seq) return;
    count.textContent = page.total === 1 ? "1 device matches" : `${page.total} devices match`;
    count.className = "";
  } catch (exc) {
    if (mine !== seq) return;
    count.textContent = exc.message;
    count.className = "bad";
  }
}

async function list() {
  const rows = await api("/api/rollouts");
  document.querySelector("#rollouts tbody").replaceChildren(...rows.slice().reverse().map((r) => el("tr", {},
    el("th", { scope: "row" }, el("a", { href: `/rollouts/${encodeURIComponent(r.id)}`, text: r.id })),
    el("td", { text: r.spec.name || "—" }), el("td", { text: r.spec.model }), el("td", {}, el("code", { text: r.spec.filter || "(all)" })),
    el("td", { text: r.state }), el("td", { text: `${r.current_wave + 1} / ${r.wave_count}` }), el("td", { text: when(r.created_at) }))));
}

async function models() {
  const all = await api("/api/models");
  form.model.replaceChildren(...all.map((m) => el("option", { value: m.name, text: `${m.name} (${m.source})` })));
}

form.filter.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(liveCount, 250); });
form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const num = (name) => (form[name].value === "" ? undefined : Number(form[name].value));
  const spec = { model: form.model.value, filter: form.filter.value.trim(), waves: form.waves.value.trim() || "100%",
    success_threshold_pct: num("success_threshold_pct"), error_threshold_pct: num("error_threshold_pct"),
    error_threshold_count: num("error_threshold_count"), max_concurrency: num("max_concurrency"),
    rate_per_minute: num("rate_per_minute"), method: form.method.value || undefined, name: form.name.value.trim(),
    start: form.start.checked };
  try {
    const created = await api("/api/rollouts", { method: "POST", json: spec });
    location.assign(`/rollouts/${encodeURIComponent(created.id)}`);
  } catch (exc) { showError(exc); }
});

Promise.all([models(), list(), liveCount()]).then(() => { document.body.dataset.loaded = "rollouts"; }).catch(showError);
