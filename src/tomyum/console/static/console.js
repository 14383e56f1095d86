// tomyum console: the sparkline, confirmations and the live tail. No framework, no build step.
"use strict";

function drawSparkline(svg, rates) {
  const line = svg.querySelector("polyline");
  const max = Math.max(1, ...rates);
  const step = rates.length > 1 ? 300 / (rates.length - 1) : 300;
  line.setAttribute("points", rates.map((r, i) => `${(i * step).toFixed(1)},${(58 - (r / max) * 56).toFixed(1)}`).join(" "));
  const now = document.getElementById("rate-now");
  if (now) now.textContent = rates.length ? `now ${rates[rates.length - 1].toFixed(1)} records/s` : "sampling…";
}

function sparkline() {
  const svg = document.getElementById("sparkline");
  if (!svg) return;
  drawSparkline(svg, JSON.parse(svg.dataset.rates || "[]"));
  setInterval(async () => {
    const response = await fetch(svg.dataset.src);
    if (response.ok) drawSparkline(svg, (await response.json()).rates);
  }, 3000);
}

function confirmations() {
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => { if (!confirm(form.dataset.confirm)) event.preventDefault(); });
  });
}

function recordElement(r) {
  const article = document.createElement("article");
  article.className = "record";
  article.dataset.partition = r.partition;
  article.dataset.offset = r.offset;
  const header = document.createElement("header");
  for (const text of [`p${r.partition} @ ${r.offset}`, r.time, r.key === null ? null : `key: ${r.key}`]) {
    if (text === null) continue;
    const span = document.createElement("span");
    span.textContent = text;
    header.appendChild(span);
  }
  article.appendChild(header);
  if (r.headers.length) {
    const ul = document.createElement("ul");
    ul.className = "headers";
    for (const [name, value] of r.headers) {
      const li = document.createElement("li");
      li.textContent = `${name}=${value}`;
      ul.appendChild(li);
    }
    article.appendChild(ul);
  }
  const pre = document.createElement("pre");
  pre.className = "value";
  pre.textContent = r.pretty || r.value || "";
  article.appendChild(pre);
  return article;
}

function liveTail() {
  const button = document.getElementById("tail-toggle");
  if (!button) return;
  const status = document.getElementById("tail-status");
  const out = document.getElementById("tail");
  const url = `/topics/${encodeURIComponent(button.dataset.topic)}/tail`;
  let after = null, timer = null, busy = false;
  async function poll() {
    if (busy) return;
    busy = true;
    try {
      const response = await fetch(`${url}?after=${encodeURIComponent(JSON.stringify(after || {}))}`);
      const body = await response.json();
      if (!response.ok) { status.textContent = body.error; return; }
      after = body.after;
      for (const r of body.records) out.prepend(recordElement(r));
      status.textContent = `watching since ${new Date().toISOString()}`;
      button.dataset.ready = "1";
    } finally { busy = false; }
  }
  button.addEventListener("click", () => {
    if (timer === null) {
      after = null;
      button.textContent = "Stop live tail";
      poll();
      timer = setInterval(poll, 1000);
    } else {
      clearInterval(timer);
      timer = null;
      button.textContent = "Start live tail";
      status.textContent = "stopped";
    }
  });
}

document.addEventListener("DOMContentLoaded", () => { sparkline(); confirmations(); liveTail(); });
