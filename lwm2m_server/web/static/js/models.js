import { api, boot, bytes, clearError, el, showError, table } from "./api.js";

boot();
const planSelect = document.getElementById("plan-model");
let chart = null;

async function catalog() {
  const models = await api("/api/models");
  const tbody = document.querySelector("#catalog tbody");
  tbody.replaceChildren(...models.map((m) => el("tr", {},
    el("th", { scope: "row", text: m.name }), el("td", { text: m.source }), el("td", { text: m.kind || "—" }),
    el("td", { text: m.version || "—" }), el("td", { text: m.numeric || "—" }),
    el("td", { class: "num", text: m.size ? bytes(m.size) : "—" }),
    el("td", { text: (m.data_keys || []).join(", ") || "—" }),
    el("td", {}, el("button", { type: "button", class: "small", "aria-label": `Fit report for ${m.name}`,
      onclick: () => { planSelect.value = m.name; document.getElementById("plan-form").requestSubmit(); } }, "Report")))));
  const current = planSelect.value;
  planSelect.replaceChildren(...models.map((m) => el("option", { value: m.name, text: m.name })));
  if (current) planSelect.value = current;
  return models;
}

function verdict(v) {
  const why = v.reason && v.reason !== "fits" ? ` — ${v.reason}` : "";
  return el("span", { class: v.fits ? "ok" : "bad" }, v.fits ? "fits" : "does not fit", why);
}

function classCard(c) {
  const t = c.target || {};
  const head = `${c.class_key === "hardware-unknown" ? "hardware unknown" : c.class_key} · ${c.endpoints.length} device${c.endpoints.length === 1 ? "" : "s"}`
    + (c.target ? ` · RAM ${bytes(t.ram_bytes)}, flash ${bytes(t.flash_bytes)}, ${t.accelerator}${t.fpu ? ", FPU" : ", no FPU"}` : "");
  const body = [el("p", {}, el("strong", { text: c.fits ? `chosen: ${c.chosen}` : "nothing fits" }), ` — ${c.summary}`)];
  if (c.report) {
    body.push(table([
      { label: "Variant", value: (v) => v.variant + (v.variant === c.chosen ? " (chosen)" : "") },
      { label: "Backend", value: (v) => v.backend }, { label: "Size", value: (v) => bytes(v.size), num: true },
      { label: "Arena", value: (v) => bytes(v.arena_bytes), num: true },
      { label: "RAM need", value: (v) => bytes(v.ram_bytes), num: true },
      { label: "Accuracy", value: (v) => (v.accuracy === null || v.accuracy === undefined ? "—" : `${(v.accuracy * 100).toFixed(1)} %`), num: true },
      { label: "Latency", value: (v) => (v.latency_us ? `${(v.latency_us / 1000).toFixed(1)} ms` : "—"), num: true },
      { label: "Verdict", value: verdict }], c.report.variants, { caption: `Variants for class ${c.class_key}` }));
  }
  return el("section", { class: "card", "aria-label": `compile class ${c.class_key}` }, el("h3", { text: head }), ...body);
}

function drawChart(plan) {
  const classes = plan.classes.filter((c) => c.report);
  const chosen = (c) => c.report.variants.find((v) => v.variant === c.chosen)
    || c.report.variants.reduce((a, b) => (a.ram_bytes <= b.ram_bytes ? a : b));
  const kib = (n) => Math.round(n / 102.4) / 10;
  const data = {
    labels: classes.map((c) => `${c.class_key.slice(0, 8)} (${c.endpoints.length})`),
    datasets: [
      { label: "RAM need (KiB)", data: classes.map((c) => kib(chosen(c).ram_bytes)), backgroundColor: "#1f5fbf" },
      { label: "RAM budget (KiB)", data: classes.map((c) => kib(c.target.ram_bytes)), backgroundColor: "#9db8e6" },
      { label: "Flash need (KiB)", data: classes.map((c) => kib(chosen(c).size)), backgroundColor: "#b3261e" },
      { label: "Flash budget (KiB)", data: classes.map((c) => kib(c.target.flash_bytes)), backgroundColor: "#eba7a2" },
    ],
  };
  if (chart) chart.destroy();
  chart = new window.Chart(document.getElementById("plan-chart"), {
    type: "bar", data, options: { responsive: true, maintainAspectRatio: false, animation: false,
      scales: { y: { title: { display: true, text: "KiB" } } } },
  });
}

document.getElementById("plan-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const status = document.getElementById("plan-status");
  const name = planSelect.value;
  status.textContent = `Compiling ${name} for each compile class…`;
  try {
    const filter = document.getElementById("plan-filter").value.trim();
    const plan = await api(`/api/models/${encodeURIComponent(name)}/plan`, { method: "POST", query: { filter: filter || "True" } });
    clearError();
    status.textContent = `${plan.model}: ${plan.devices} device${plan.devices === 1 ? "" : "s"} in ${plan.classes.length} compile class${plan.classes.length === 1 ? "" : "es"}`;
    document.getElementById("plan").replaceChildren(...plan.classes.map(classCard));
    drawChart(plan);
    document.body.dataset.loaded = "plan";
  } catch (exc) { showError(exc); status.textContent = "No fit report."; }
});

document.getElementById("upload-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = ev.target, status = document.getElementById("upload-status");
  const body = new FormData();
  body.append("file", form.file.files[0]);
  if (form.data.files[0]) body.append("data", form.data.files[0]);
  if (form.name.value.trim()) body.append("name", form.name.value.trim());
  if (form.task.value) body.append("task", form.task.value);
  status.textContent = "Uploading…";
  try {
    const entry = await api("/api/models", { method: "POST", form: body });
    clearError();
    await catalog();
    planSelect.value = entry.name;
    status.textContent = `Uploaded ${entry.name} version ${entry.version} (${entry.kind}, ${bytes(entry.size)}).`;
  } catch (exc) { showError(exc); status.textContent = "Upload failed."; }
});

catalog().then(() => { document.body.dataset.loaded = "models"; }).catch(showError);
