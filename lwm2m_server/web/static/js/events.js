import { api, boot, el, followForever, showError, table, when } from "./api.js";

boot();
const feed = document.getElementById("feed");
const status = document.getElementById("feed-status");
const pause = document.getElementById("feed-pause");
const MAX_ITEMS = 300;
let stream = null, paused = false;

function start() {
  if (stream) stream.abort();
  const endpoint = document.getElementById("feed-endpoint").value.trim();
  const types = document.getElementById("feed-type").value.split(",").map((t) => t.trim()).filter(Boolean);
  stream = followForever({ endpoint, type: types }, ({ data }) => {
    if (paused) return;
    feed.prepend(el("li", {}, `${new Date(data.ts * 1000).toLocaleTimeString()} ${data.type} ${data.endpoint || ""} `,
      el("span", { class: "hint", text: JSON.stringify(data.data) })));
    while (feed.children.length > MAX_ITEMS) feed.lastChild.remove();
  }, (s) => { status.textContent = s; });
}

async function audit() {
  const rollout = document.getElementById("audit-rollout").value.trim();
  const endpoint = document.getElementById("audit-endpoint").value.trim();
  const text = document.getElementById("audit-text").value.trim().toLowerCase();
  try {
    let rows = await api("/api/audit", { query: { rollout, endpoint, limit: 10000 } });
    if (text) rows = rows.filter((r) => JSON.stringify(r).toLowerCase().includes(text));
    rows.reverse();
    document.getElementById("audit").replaceChildren(el("p", { role: "status", text: `${rows.length} entr${rows.length === 1 ? "y" : "ies"}, newest first` }),
      table([{ label: "At", value: (r) => when(r.ts) }, { label: "Action", value: (r) => r.action },
        { label: "Rollout", value: (r) => (r.rollout_id ? el("a", { href: `/rollouts/${encodeURIComponent(r.rollout_id)}`, text: r.rollout_id }) : "") },
        { label: "Device", value: (r) => r.endpoint || "" }, { label: "Actor", value: (r) => r.actor },
        { label: "Detail", value: (r) => JSON.stringify(r.detail) }], rows.slice(0, 1000)));
    document.body.dataset.loaded = "events";
  } catch (exc) { showError(exc); }
}

document.getElementById("feed-form").addEventListener("submit", (ev) => { ev.preventDefault(); start(); });
pause.addEventListener("click", () => {
  paused = !paused; pause.setAttribute("aria-pressed", String(paused)); pause.textContent = paused ? "Resume" : "Pause";
});
document.getElementById("audit-form").addEventListener("submit", (ev) => { ev.preventDefault(); audit(); });
start();
audit();
