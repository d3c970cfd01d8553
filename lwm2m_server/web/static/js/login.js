import { api, boot, setToken, showError, token } from "./api.js";

boot();
const next = new URLSearchParams(location.search).get("next");
const target = next && next.startsWith("/") && !next.startsWith("//") ? next : "/";
const status = document.getElementById("login-status");

async function check(value) {
  setToken(value);
  try {
    await api("/api/devices", { query: { limit: 1 }, redirect: false });
    location.assign(target);
  } catch (exc) {
    setToken(null);
    showError(exc.status === 401 ? new Error("that token was not accepted") : exc);
    status.textContent = "";
  }
}

if (token()) check(token());  // arrived with #token=...
document.getElementById("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  status.textContent = "Checking…";
  check(document.getElementById("token").value.trim());
});
