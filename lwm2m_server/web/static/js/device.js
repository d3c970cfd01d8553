import { ago, api, boot, bytes, clearError, el, followForever, showError, table, when } from "./api.js";

boot();
const endpoint = decodeURIComponent(location.pathname.split("/").slice(2).join("/"));
document.getElementById("title").textContent = endpoint;
document.title = `${endpoint} · TinyMLaaS`;
const base = `/api/devices/${encodeURIComponent(endpoint)}`;
const outputs = new Map();  // "/3/0/13" -> <output>

function show(path, value) {
  const out = outputs.get(path);
  if (!out) return;
  out.textContent = typeof value === "object" && value !== null ? JSON.stringify(value) : String(value);
  out.classList.remove("bad");
}

function showContent(content) { for (const [p, v] of Object.entries(content || {})) show(p, v); }

function fail(path, exc) {
  const out = outputs.get(path);
  if (out) { out.textContent = exc.message; out.classList.add("bad"); }
  showError(exc);
}

async function operate(path, op, input) {
  const url = `${base}${path}`;
  try {
    if (op === "read") showContent((await api(url)).content);
    else if (op === "write") {
      const raw = input.value;
      let value; try { value = JSON.parse(raw); } catch { value = raw; }
      await api(url, { method: "PUT", json: value });
      show(path, raw);
    } else if (op === "execute") { await api(url, { method: "POST" }); show(path, "executed"); }
    else if (op === "observe") { showContent((await api(`${url}/observe`, { method: "POST" })).content); }
    else if (op === "cancel") { await api(`${url}/observe`, { method: "DELETE" }); }
    clearError();
    return true;
  } catch (exc) { fail(path, exc); return false; }
}

function resourceRow(instPath, res) {
  const path = `${instPath}/${res.id}`;
  const out = el("output", { id: `v${path.replaceAll("/", "-")}`, "aria-label": `value of ${res.name}` });
  outputs.set(path, out);
  const ops = el("div", { class: "ops" });
  if (res.readable) {
    ops.append(el("button", { type: "button", class: "small", "aria-label": `Read ${res.name} ${path}`,
      onclick: () => operate(path, "read") }, "Read"));
    const toggle = el("button", { type: "button", class: "small", "aria-pressed": "false",
      "aria-label": `Observe ${res.name} ${path}` }, "Observe");
    toggle.addEventListener("click", async () => {
      const on = toggle.getAttribute("aria-pressed") === "true";
      if (await operate(path, on ? "cancel" : "observe")) {
        toggle.setAttribute("aria-pressed", String(!on)); toggle.textContent = on ? "Observe" : "Stop observing";
      }
    });
    ops.append(toggle);
  }
  if (res.writable) {
    const input = el("input", { "aria-label": `New value for ${res.name} ${path}` });
    ops.append(input, el("button", { type: "button", class: "small", "aria-label": `Write ${res.name} ${path}`,
      onclick: () => operate(path, "write", input) }, "Write"));
  }
  if (res.executable) {
    ops.append(el("button", { type: "button", class: "small", "aria-label": `Execute ${res.name} ${path}`,
      onclick: () => operate(path, "execute") }, "Execute"));
  }
  return el("div", { class: "res" }, el("code", { text: path }),
    el("span", { title: `${res.type}${res.units ? `, ${res.units}` : ""}; ${res.operations}` }, res.name,
      res.units ? el("small", {}, ` (${res.units})`) : null), out, ops);
}

function tree(device, defs) {
  const byId = new Map(defs.map((d) => [String(d.id), d]));
  const instances = new Map();
  for (const p of device.instances) {
    const [obj] = p.split("/").filter(Boolean);
    if (!instances.has(obj)) instances.set(obj, []);
    instances.get(obj).push(p);
  }
  const root = el("div");
  for (const [obj, version] of Object.entries(device.objects)) {
    const def = byId.get(obj);
    const insts = instances.get(obj) || [];
    const label = `/${obj} ${def ? def.name : "(no DDF)"}${version ? ` v${version}` : ""} — ${insts.length} instance${insts.length === 1 ? "" : "s"}`;
    const node = el("details", { open: obj === "3" ? true : null }, el("summary", { text: label }));
    for (const inst of insts) {
      const idetail = el("details", {}, el("summary", { text: inst }));
      if (def) {
        idetail.append(el("button", { type: "button", class: "small", "aria-label": `Read all of ${inst}`,
          onclick: () => operate(inst, "read") }, `Read ${inst}`));
        for (const res of def.resources) idetail.append(resourceRow(inst, res));
      }
      node.append(idetail);
    }
    root.append(node);
  }
  return root;
}

function summary(d) {
  const p = d.profile || {};
  const items = [["Status", d.sleeping ? "sleeping" : (d.online ? "online" : "offline")], ["Address", d.address],
    ["LwM2M", d.lwm2m_version], ["Binding", d.binding], ["Queue mode", d.queue_mode ? "yes" : "no"],
    ["Lifetime", `${d.lifetime} s`], ["Registered", when(d.registered_at)], ["Last seen", ago(d.last_seen)],
    ["Compile class", d.compile_class], ["Manufacturer / model", `${p.manufacturer || "—"} / ${p.model || "—"}`],
    ["CPU", p.cpu ? `${p.cpu} ${p.clock_mhz || ""} MHz${p.fpu ? ", FPU" : ""}` : "—"],
    ["Accelerator", p.accelerator || "—"], ["Runtime", p.runtime || "—"],
    ["RAM total / for ML", `${bytes(p.ram_total)} / ${bytes(p.ram_free_ml)}`],
    ["Flash total / free", `${bytes(p.flash_total)} / ${bytes(p.flash_free)}`],
    ["Installed model", d.installed_model ? `${d.installed_model} ${d.installed_version || ""}` : "—"],
    ["Object 5", d.fw_state ? `${d.fw_state} (result: ${d.fw_result})` : "—"]];
  document.getElementById("summary").replaceChildren(...items.map(([k, v]) => el("div", {}, el("dt", { text: k }), el("dd", { text: v }))));
}

async function ota() {
  const box = document.getElementById("ota");
  try {
    const s = await api(`${base}/update`);
    if (!s.job) { box.textContent = "No OTA update so far."; return; }
    const jobs = [s.job, ...s.previous];
    box.replaceChildren(
      table([{ label: "Job", value: (j) => j.id }, { label: "Phase", value: (j) => j.phase },
        { label: "Method", value: (j) => j.method }, { label: "Attempt", value: (j) => j.attempt, num: true },
        { label: "Cause", value: (j) => j.cause || "" }, { label: "Summary", value: (j) => j.summary || "" },
        { label: "Created", value: (j) => when(j.created_at) }], jobs, { caption: "Jobs, newest first" }),
      table([{ label: "At", value: (h) => when(h.ts) }, { label: "From", value: (h) => h.from_phase },
        { label: "To", value: (h) => h.to_phase }, { label: "Attempt", value: (h) => h.attempt, num: true },
        { label: "Note", value: (h) => h.note || "" }],
        s.history, { caption: `History of ${s.job.id}` }));
  } catch (exc) { box.textContent = exc.message; }
}

async function audit() {
  const box = document.getElementById("audit");
  try {
    const rows = await api("/api/audit", { query: { endpoint, limit: 200 } });
    box.replaceChildren(rows.length ? table([{ label: "At", value: (r) => when(r.ts) }, { label: "Action", value: (r) => r.action },
      { label: "Rollout", value: (r) => r.rollout_id || "" }, { label: "Actor", value: (r) => r.actor || "" },
      { label: "Detail", value: (r) => JSON.stringify(r.detail ?? "") }], rows) : "No audit entries for this device.");
  } catch (exc) { box.textContent = exc.message; }
}

async function main() {
  try {
    const [device, defs] = await Promise.all([api(base), api("/api/objects")]);
    summary(device);
    document.getElementById("tree").replaceChildren(tree(device, defs));
    document.body.dataset.loaded = "device";
  } catch (exc) { showError(exc); document.body.dataset.loaded = "error"; return; }
  followForever({ endpoint, type: ["notification"] }, ({ data }) => showContent(data.data && data.data.values));
  ota(); audit();
}
main();
