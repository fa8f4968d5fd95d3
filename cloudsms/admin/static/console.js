// cloudsms console: live dashboard numbers, charts (Chart.js), confirmations. No inline script
// anywhere (the pages' Content-Security-Policy forbids it), so everything is wired up here.
"use strict";

const REFRESH_MS = 5000;
const PALETTE = ["#2457d6", "#1f8a4c", "#c23b2e", "#b7791f", "#7b3fc4", "#0f8b8d", "#d45d9e", "#6b7a8f", "#9aa5b5"];
const STATE_COLOURS = { delivered: "#1f8a4c", submitted: "#b7791f", queued: "#e0b04a", accepted: "#2457d6",
  undeliverable: "#c23b2e", rejected: "#e2685b", failed: "#8c1d13", expired: "#7b3fc4", deleted: "#555", unknown: "#9aa5b5" };

function pct(v) { return v === null || v === undefined ? "–" : (v * 100).toFixed(1) + "%"; }

function label(ms, bucket) {
  // UTC+8, like every time the platform shows.
  const d = new Date(ms + 8 * 3600 * 1000);
  const hm = d.toISOString().slice(11, 16);
  return bucket >= 3 * 3600000 ? d.toISOString().slice(5, 10) + " " + hm : hm;
}

function rangeParams(canvas) {
  const select = canvas.dataset.range && document.getElementById(canvas.dataset.range);
  if (!select) return "";
  const [span, bucket] = select.value.split(":").map(Number);
  const since = Date.now() - span * 1000;
  return "&since=" + since + "&bucket_s=" + bucket;
}

async function fetchJson(url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  const body = await response.json();
  if (!body.ok) throw new Error(body.error || "request failed");
  return body.data;
}

async function drawChart(canvas) {
  if (typeof Chart === "undefined") return;
  const data = await fetchJson(canvas.dataset.series + rangeParams(canvas));
  const labels = data.buckets.map((b) => label(b, data.bucket_ms));
  const datasets = Object.entries(data.points).map(([key, values], i) => ({
    label: key, data: values, borderWidth: 0,
    backgroundColor: (data.by === "state" && STATE_COLOURS[key]) || PALETTE[i % PALETTE.length],
  }));
  const existing = Chart.getChart(canvas);
  if (existing) {
    existing.data.labels = labels;
    existing.data.datasets = datasets;
    existing.update("none");
    return;
  }
  new Chart(canvas, {
    type: "bar",
    data: { labels, datasets },
    options: {
      animation: false, responsive: true, maintainAspectRatio: false,
      scales: { x: { stacked: true, ticks: { maxTicksLimit: 12 } }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
      plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
    },
  });
}

async function refreshSummary(section) {
  const data = await fetchJson(section.dataset.source);
  for (const el of section.querySelectorAll("[data-field]")) {
    const field = el.dataset.field;
    if (field === "bound") {
      const bound = data.connectors.filter((c) => c.state === "bound").length;
      el.textContent = bound + " / " + data.connectors.length;
    } else if (el.dataset.format === "pct") {
      el.textContent = pct(data[field]);
    } else {
      el.textContent = data[field];
    }
  }
  for (const c of data.connectors) {
    const row = document.querySelector('tr[data-connector="' + CSS.escape(c.name) + '"]');
    if (!row) continue;
    const state = row.querySelector('[data-field="state"] .badge');
    if (state) { state.textContent = c.state; state.className = "badge s-" + c.state; }
    row.querySelector('[data-field="window"]').textContent = c.window_in_use + " / " + c.window_size;
    row.querySelector('[data-field="submit_rate"]').textContent = c.submit_rate;
    row.querySelector('[data-field="submitted_total"]').textContent = c.submitted_total;
  }
}

async function refreshSessions(table) {
  // Live SMPP sessions: update the numbers of the rows shown; a session gone is marked closed
  // (its Disconnect button removed); sessions bound since are counted, not inserted.
  const sessions = await fetchJson(table.dataset.source);
  const live = new Map(sessions.map((s) => [String(s.id), s]));
  for (const row of table.querySelectorAll("tr[data-session]")) {
    const s = live.get(row.dataset.session);
    live.delete(row.dataset.session);
    const state = row.querySelector('[data-field="state"] .badge');
    if (!s) {
      state.textContent = "closed"; state.className = "badge s-closed";
      for (const form of row.querySelectorAll("form")) form.remove();
      continue;
    }
    row.querySelector('[data-field="window"]').textContent = s.window_in_use + " / " + s.window;
    for (const field of ["submit_rate", "submitted", "refused", "receipts"]) {
      row.querySelector('[data-field="' + field + '"]').textContent = s[field];
    }
  }
  const fresh = document.getElementById("sessions-new");
  if (fresh) fresh.textContent = live.size ? live.size + " new session(s). " : "";
}

function drawAll() {
  for (const canvas of document.querySelectorAll("canvas[data-series]")) {
    drawChart(canvas).catch((e) => console.warn("chart", canvas.id, e));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  const sessions = document.getElementById("sessions");
  if (sessions) {
    setInterval(() => {
      if (!document.hidden) refreshSessions(sessions).catch((e) => console.warn("sessions", e));
    }, REFRESH_MS);
  }
  const summary = document.getElementById("summary");
  const range = document.getElementById("range");
  if (range) range.addEventListener("change", drawAll);
  drawAll();
  if (summary || document.querySelector("canvas[data-series]")) {
    setInterval(() => {
      if (document.hidden) return;
      if (summary) refreshSummary(summary).catch((e) => console.warn("summary", e));
      drawAll();
    }, REFRESH_MS);
  }
});
