import { ago, api, boot, bytes, clearError, el, showError } from "./api.js";

boot();
const form = document.getElementById("fleet-form");
const tbody = document.querySelector("#fleet-table tbody");
const count = document.getElementById("fleet-count");
const state = { filter: "", sort: "endpoint", limit: 100, offset: 0 };

function fromUrl() {
  const q = new URLSearchParams(location.search);
  state.filter = q.get("filter") || "";
  state.sort = q.get("sort") || "endpoint";
  state.limit = Number(q.get("limit")) || 100;
  state.offset = Number(q.get("offset")) || 0;
  form.filter.value = state.filter; form.sort.value = state.sort; form.limit.value = String(state.limit);
}

function toUrl() {
  const q = new URLSearchParams();
  if (state.filter) q.set("filter", state.filter);
  if (state.sort !== "endpoint") q.set("sort", state.sort);
  if (state.limit !== 100) q.set("limit", state.limit);
  if (state.offset) q.set("offset", state.offset);
  history.replaceState(null, "", q.toString() ? `?${q}` : location.pathname);
}

function status(d) {
  if (d.sleeping) return el("span", { class: "badge warn", text: "sleeping" });
  return d.online ? el("span", { class: "badge ok", text: "online" }) : el("span", { class: "badge bad", text: "offline" });
}

function row(d) {
  const p = d.profile || {};
  const fw = d.fw_state ? `${d.fw_state}${d.fw_result && d.fw_result !== "initial" ? ` / ${d.fw_result}` : ""}` : "—";
  return el("tr", {},
    el("th", { scope: "row" }, el("a", { href: `/devices/${encodeURIComponent(d.endpoint)}`, text: d.endpoint })),
    el("td", {}, status(d)),
    el("td", { title: d.compile_class }, d.compile_class === "hardware-unknown" ? "hardware unknown" : d.compile_class.slice(0, 8)),
    el("td", { class: "num" }, `${bytes(p.ram_free_ml)} / ${bytes(p.flash_free)}`),
    el("td", {}, p.cpu ? `${p.cpu}${p.clock_mhz ? ` @${p.clock_mhz} MHz` : ""}${p.fpu ? " FPU" : ""}` : "—"),
    el("td", {}, p.accelerator || "—"),
    el("td", {}, p.runtime || "—"),
    el("td", {}, d.lwm2m_version),
    el("td", {}, d.binding),
    el("td", { title: new Date(d.last_seen * 1000).toISOString() }, ago(d.last_seen)),
    el("td", {}, d.installed_model ? `${d.installed_model} ${d.installed_version || ""}` : "—"),
    el("td", {}, fw));
}

async function load() {
  toUrl();
  count.textContent = "Loading…";
  try {
    const page = await api("/api/devices", { query: { filter: state.filter, sort: state.sort, limit: state.limit, offset: state.offset } });
    clearError();
    tbody.replaceChildren(...page.items.map(row));
    const first = page.total ? page.offset + 1 : 0, last = page.offset + page.items.length;
    const one = page.total === 1;
    count.textContent = `${page.total} device${one ? "" : "s"} ${state.filter ? `match${one ? "es" : ""} the filter` : "registered"}`;
    document.getElementById("page-info").textContent = `${first}–${last} of ${page.total}`;
    document.getElementById("prev").disabled = page.offset === 0;
    document.getElementById("next").disabled = last >= page.total;
    performance.mark("fleet-rendered");
    document.body.dataset.loaded = "fleet";
  } catch (exc) {
    showError(exc);
    count.textContent = "Could not load the fleet.";
    tbody.replaceChildren();
    document.body.dataset.loaded = "error";
  }
}

form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  state.filter = form.filter.value.trim(); state.sort = form.sort.value; state.limit = Number(form.limit.value);
  state.offset = 0;
  load();
});
form.sort.addEventListener("change", () => form.requestSubmit());
form.limit.addEventListener("change", () => form.requestSubmit());
document.getElementById("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - state.limit); load(); });
document.getElementById("next").addEventListener("click", () => { state.offset += state.limit; load(); });
fromUrl();
load();
