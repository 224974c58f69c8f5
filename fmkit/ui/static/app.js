// fmkit dashboard front end: plain JS, hand-written SVG charts, no network beyond this server.
"use strict";

const state = { runs: [], sort: { key: "started", dir: -1 }, selected: new Set(), detail: null, timer: null };
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"];
const $ = (sel) => document.querySelector(sel);

function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function fmtNum(v) { return v == null ? "-" : Number.isInteger(v) || Math.abs(v) >= 1000 ? Math.round(v).toLocaleString() : Number(v).toFixed(4); }
function fmtTime(ts) { return ts ? new Date(ts * 1000).toLocaleString([], { dateStyle: "short", timeStyle: "short" }) : "-"; }
function fmtDur(s) {
  if (s == null) return "-";
  s = Math.round(s);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}
async function api(path, options) {
  const res = await fetch(path, options);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.detail ? JSON.stringify(body.detail) : res.statusText);
  return body;
}
function headlineMetric(run) {
  const m = run.metrics || {};
  const key = [run.primary_metric, "macro_f1", "accuracy", "f1", "micro_f1", "ndcg@10", "mrr@10", "perplexity"].find((k) => k && k in m);
  return key ? { key, value: m[key] } : { key: null, value: null };
}

// --- charts ---------------------------------------------------------------------------------------
function ticks(lo, hi, n) {
  if (!isFinite(lo) || !isFinite(hi) || hi - lo < 1e-12) return [lo];
  const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) out.push(Number(t.toPrecision(10)));
  return out;
}
function lineChart(title, series, { width = 460, height = 260, xlabel = "step" } = {}) {
  const pts = series.flatMap((s) => s.points).filter((p) => isFinite(p[1]));
  if (!pts.length) return `<div class="chart"><b>${esc(title)}</b><p class="muted">no data yet</p></div>`;
  const L = 52, R = 12, T = 24, B = 36 + 16 * Math.ceil(series.length / 2);
  let x0 = Math.min(...pts.map((p) => p[0])), x1 = Math.max(...pts.map((p) => p[0]));
  let y0 = Math.min(...pts.map((p) => p[1])), y1 = Math.max(...pts.map((p) => p[1]));
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
  const pw = width - L - R, ph = height - T - B;
  const sx = (x) => L + ((x - x0) / (x1 - x0)) * pw, sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * ph;
  let svg = `<svg width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-size="11" font-family="system-ui,sans-serif">`;
  svg += `<text x="${L}" y="15" font-size="13" font-weight="600">${esc(title)}</text>`;
  for (const t of ticks(y0, y1, 5)) svg += `<line x1="${L}" x2="${L + pw}" y1="${sy(t)}" y2="${sy(t)}" stroke="#e5e7eb"/><text x="${L - 5}" y="${sy(t) + 4}" text-anchor="end" fill="#4b5563">${Number(t.toPrecision(3))}</text>`;
  for (const t of ticks(x0, x1, 6)) svg += `<text x="${sx(t)}" y="${T + ph + 14}" text-anchor="middle" fill="#4b5563">${Number(t.toPrecision(4))}</text>`;
  svg += `<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#9ca3af"/>`;
  svg += `<text x="${L + pw / 2}" y="${T + ph + 28}" text-anchor="middle">${esc(xlabel)}</text>`;
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length], p = s.points.filter((q) => isFinite(q[1]));
    if (p.length > 1) svg += `<polyline fill="none" stroke="${c}" stroke-width="1.8" points="${p.map((q) => `${sx(q[0]).toFixed(1)},${sy(q[1]).toFixed(1)}`).join(" ")}"/>`;
    if (p.length <= 20) for (const q of p) svg += `<circle cx="${sx(q[0])}" cy="${sy(q[1])}" r="2.8" fill="${c}"><title>${esc(s.name)} step ${q[0]}: ${q[1]}</title></circle>`;
    const lx = L + (i % 2) * (pw / 2), ly = T + ph + 44 + 16 * Math.floor(i / 2);
    svg += `<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${c}"/><text x="${lx + 14}" y="${ly}">${esc(s.name.slice(0, 38))}</text>`;
  });
  return `<div class="chart">${svg}</svg></div>`;
}
// "probe:eval/eval_accuracy" -> {phase: "probe", kind: "eval", name: "accuracy"}
function splitCurve(key) {
  const [head, name] = key.split("/");
  const [phase, kind] = head.includes(":") ? head.split(":") : ["", head];
  return { phase, kind, name: name.replace(/^eval_/, "") };
}
function curveCharts(runs) {
  // One chart per (phase, kind, metric) that matters; every run is one line in it.
  const wanted = ["loss", "accuracy", "macro_f1", "f1", "micro_f1", "ndcg@10", "mrr@10", "recall@10", "perplexity"];
  const groups = new Map();
  for (const run of runs) {
    for (const [key, points] of Object.entries(run.curves || {})) {
      const c = splitCurve(key);
      if (!wanted.includes(c.name) || (c.kind === "eval" && c.name === "loss" && false)) continue;
      const title = `${c.kind === "train" ? "train" : "eval"} ${c.name}${c.phase ? ` (${c.phase})` : ""}`;
      if (!groups.has(title)) groups.set(title, []);
      groups.get(title).push({ name: runs.length > 1 ? run.id : c.name, points: points.map((p) => [p.step, p.value]) });
    }
  }
  return [...groups.entries()].map(([title, series]) => lineChart(title, series)).join("");
}

// --- runs list ------------------------------------------------------------------------------------
async function loadRuns() {
  const params = new URLSearchParams();
  if ($("#filter").value) params.set("q", $("#filter").value);
  if ($("#status-filter").value) params.set("status", $("#status-filter").value);
  if ($("#task-filter").value) params.set("task", $("#task-filter").value);
  const body = await api(`api/runs?${params}`);
  state.runs = body.runs;
  $("#root").textContent = body.root;
  const tasks = new Set(body.runs.map((r) => r.task).filter(Boolean));
  const taskSel = $("#task-filter");
  for (const t of tasks) if (![...taskSel.options].some((o) => o.value === t)) taskSel.add(new Option(t, t));
  renderRuns();
  const anyRunning = body.runs.some((r) => r.status === "running");
  schedulePoll(anyRunning || (state.detail && state.detail.status === "running"));
}
function sortValue(run, key) {
  if (key === "metric") return headlineMetric(run).value ?? -Infinity;
  const v = run[key];
  return v == null ? "" : v;
}
function renderRuns() {
  const { key, dir } = state.sort;
  const runs = [...state.runs].sort((a, b) => {
    const x = sortValue(a, key), y = sortValue(b, key);
    return (x < y ? -1 : x > y ? 1 : 0) * dir;
  });
  document.querySelectorAll("#runs-table th[data-sort]").forEach((th) => {
    th.classList.toggle("sorted-asc", th.dataset.sort === key && dir === 1);
    th.classList.toggle("sorted-desc", th.dataset.sort === key && dir === -1);
  });
  $("#runs-table tbody").innerHTML = runs.map((r) => {
    const m = headlineMetric(r);
    return `<tr data-id="${esc(r.id)}" class="${state.selected.has(r.id) ? "selected" : ""}">
      <td><input type="checkbox" class="pick" aria-label="select ${esc(r.id)}" ${state.selected.has(r.id) ? "checked" : ""}></td>
      <td>${esc(r.id)}${r.command !== "train" ? ` <span class="muted">(${esc(r.command)})</span>` : ""}</td>
      <td><span class="status ${esc(r.status)}">${esc(r.status)}</span></td>
      <td>${esc(r.task || "-")}</td><td title="${esc(r.model)}">${esc((r.model || "-").split("/").pop())}</td>
      <td>${esc(r.strategy || "-")}</td><td>${fmtTime(r.started)}</td><td>${fmtDur(r.duration)}</td>
      <td class="num">${m.key ? `${fmtNum(m.value)} <span class="muted">${esc(m.key)}</span>` : "-"}</td></tr>`;
  }).join("");
  $("#run-count").textContent = `${runs.length} run${runs.length === 1 ? "" : "s"}`;
  $("#compare-selected").disabled = state.selected.size < 2;
}
async function showRun(id) {
  const run = await api(`api/run?id=${encodeURIComponent(id)}`);
  state.detail = run;
  const m = run.final_metrics || {};
  const scalars = Object.entries(m).filter(([, v]) => typeof v === "number");
  let progress = "";
  if (run.status === "running") {
    const curves = Object.entries(run.curves || {}).filter(([k]) => k.endsWith("/loss"));
    const last = curves.length ? curves[curves.length - 1][1].slice(-1)[0] : null;
    const share = last && last.epoch != null && run.epochs ? Math.min(1, last.epoch / run.epochs) : null;
    progress = `<div class="live"><b>Training live</b>: step ${last ? last.step : 0}${last && last.epoch != null ? `, epoch ${last.epoch.toFixed(2)} of ${run.epochs}` : ""}
      ${share != null ? `<span class="progress"><span style="width:${(share * 100).toFixed(1)}%"></span></span> ${(share * 100).toFixed(0)}%` : ""}
      · last heartbeat ${fmtTime(run.heartbeat)} <span class="muted">(updates every 2 s)</span></div>`;
  }
  $("#run-detail").hidden = false;
  $("#run-detail").innerHTML = `<h2>${esc(run.id)} <span class="status ${esc(run.status)}">${esc(run.status)}</span></h2>
    ${progress}
    <dl class="facts"><dt>path</dt><dd>${esc(run.path || "-")}</dd><dt>task / model</dt><dd>${esc(run.task || "-")} · ${esc(run.model || "-")}</dd>
    <dt>strategy</dt><dd>${esc(run.strategy || "-")}</dd><dt>host / pid</dt><dd>${esc(run.host)} / ${esc(run.pid)}</dd>
    <dt>started · took</dt><dd>${fmtTime(run.started)} · ${fmtDur(run.duration)}</dd>
    ${run.error ? `<dt>error</dt><dd class="error">${esc(run.error)}</dd>` : ""}
    ${run.parent ? `<dt>evaluates</dt><dd>${esc(run.parent)}</dd>` : ""}</dl>
    <p>${run.path && run.status === "finished" ? `<a id="open-report" href="report?id=${encodeURIComponent(run.id)}" target="_blank">Open report</a>` : ""}
    ${run.has_model ? ` · <a href="#" id="try-model">Try this model</a>` : ""}</p>
    <div class="charts">${curveCharts([run])}</div>
    ${scalars.length ? `<h3>Final metrics</h3><table class="metrics"><tbody>${scalars.map(([k, v]) => `<tr><td>${esc(k)}</td><td class="num">${fmtNum(v)}</td></tr>`).join("")}</tbody></table>` : ""}`;
  const tryLink = $("#try-model");
  if (tryLink) tryLink.onclick = (e) => { e.preventDefault(); openTab("playground", run.id); };
  schedulePoll(run.status === "running" || state.runs.some((r) => r.status === "running"));
}
function schedulePoll(active) {
  clearTimeout(state.timer);
  if (!active) return;
  state.timer = setTimeout(async () => {
    await loadRuns().catch(() => {});
    if (state.detail && !$("#run-detail").hidden) await showRun(state.detail.id).catch(() => {});
  }, 2000);
}

// --- compare --------------------------------------------------------------------------------------
async function showCompare() {
  const ids = [...state.selected];
  if (ids.length < 2) { $("#compare-hint").hidden = false; return; }
  $("#compare-hint").hidden = true;
  const body = await api(`api/compare?ids=${ids.map(encodeURIComponent).join(",")}`);
  $("#compare-charts").innerHTML = curveCharts(body.runs);
  const keys = [...new Set(body.runs.flatMap((r) => Object.keys(r.metrics || {})))];
  const lowerBetter = new Set(["perplexity", "train_seconds", "peak_memory_mb", "wall_seconds"]);
  const notScores = new Set(["num_examples", "train_examples", "best_step", "steps", "epochs_completed", "num_entities", "num_predicted", "num_sentences"]);
  const rows = keys.map((k) => {
    const vals = body.runs.map((r) => (r.metrics || {})[k]);
    const finite = vals.filter((v) => v != null);
    const best = notScores.has(k) ? NaN : lowerBetter.has(k) ? Math.min(...finite) : Math.max(...finite);
    return `<tr><td>${esc(k)}</td>${vals.map((v) => `<td class="num${v === best && finite.length > 1 ? " best" : ""}">${v === best && finite.length > 1 ? "<b>" + fmtNum(v) + "</b>" : fmtNum(v)}</td>`).join("")}</tr>`;
  });
  $("#compare-table").innerHTML = `<h3>Final metrics (best in bold)</h3><table id="compare-metrics"><thead><tr><th>metric</th>${body.runs.map((r) => `<th>${esc(r.id)}</th>`).join("")}</tr></thead><tbody>
    <tr><td>status</td>${body.runs.map((r) => `<td><span class="status ${esc(r.status)}">${esc(r.status)}</span></td>`).join("")}</tr>
    <tr><td>model</td>${body.runs.map((r) => `<td>${esc((r.model || "-").split("/").pop())}</td>`).join("")}</tr>
    <tr><td>strategy</td>${body.runs.map((r) => `<td>${esc(r.strategy || "-")}</td>`).join("")}</tr>${rows.join("")}</tbody></table>`;
}

// --- playground -----------------------------------------------------------------------------------
async function loadModels(preferred) {
  const body = await api("api/models");
  const sel = $("#model-select");
  sel.innerHTML = body.models.map((m) => `<option value="${esc(m.id)}">${esc(m.id)} (${esc(m.task || "?")}, ${fmtNum(headlineMetric(m).value)} ${esc(headlineMetric(m).key || "")})</option>`).join("");
  if (!body.models.length) $("#predict-status").textContent = "no finished run with a saved model yet";
  if (preferred) sel.value = preferred;
}
async function predict() {
  const texts = $("#texts").value.split("\n").map((t) => t.trim()).filter(Boolean);
  if (!texts.length) { $("#predict-status").textContent = "type at least one text"; return; }
  $("#predict").disabled = true;
  $("#predict-status").textContent = "predicting… (the first call loads the model)";
  try {
    const body = await api("api/predict", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ run: $("#model-select").value, texts }) });
    $("#predictions").innerHTML = body.predictions.map((p) => {
      if (Array.isArray(p.entities)) {  // NER models: entities with types and scores
        const ents = p.entities.map((e) => `<tr><td>${esc(e.text)}</td><td class="label">${esc(e.type)}</td><td><span class="bar" style="width:${Math.round((e.score || 0) * 200)}px"></span>${((e.score || 0) * 100).toFixed(1)}%</td></tr>`).join("");
        return `<div class="pred"><div>${esc(p.text)}</div>${ents ? `<table class="scores"><tbody>${ents}</tbody></table>` : '<p class="muted">no entities</p>'}</div>`;
      }
      if (typeof p.generated === "string") return `<div class="pred"><div class="muted">${esc(p.text)}</div><div>${esc(p.generated)}</div></div>`;
      if (Array.isArray(p.embedding)) {
        return `<div class="pred"><div>${esc(p.text)}</div><div class="muted">${p.embedding.length}-dim embedding: [${p.embedding.slice(0, 6).map((x) => x.toFixed(3)).join(", ")}, …]</div></div>`;
      }
      const scores = Object.entries(p.scores || {}).sort((a, b) => b[1] - a[1]).slice(0, 5);
      return `<div class="pred"><div>${esc(p.text)}</div><div>→ <span class="label">${esc(p.label)}</span></div>
        <table class="scores"><tbody>${scores.map(([lab, s]) => `<tr><td>${esc(lab)}</td><td><span class="bar" style="width:${Math.round(s * 200)}px"></span>${(s * 100).toFixed(1)}%</td></tr>`).join("")}</tbody></table></div>`;
    }).join("");
    $("#predict-status").textContent = `${body.predictions.length} prediction${body.predictions.length === 1 ? "" : "s"} from ${body.run}`;
  } catch (err) {
    $("#predict-status").innerHTML = `<span class="error">${esc(err.message)}</span>`;
  } finally {
    $("#predict").disabled = false;
  }
}

// --- wiring ---------------------------------------------------------------------------------------
function openTab(name, arg) {
  document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
  document.querySelectorAll(".view").forEach((v) => { v.hidden = v.id !== `view-${name}`; });
  if (name === "compare") showCompare().catch(showError);
  if (name === "playground") loadModels(arg).catch(showError);
}
function showError(err) { $("#run-count").innerHTML = `<span class="error">${esc(err.message)}</span>`; }

document.querySelectorAll("#tabs button").forEach((b) => { b.onclick = () => openTab(b.dataset.tab); });
document.querySelectorAll("#runs-table th[data-sort]").forEach((th) => {
  th.onclick = () => {
    const key = th.dataset.sort;
    state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : key === "started" || key === "metric" ? -1 : 1 };
    renderRuns();
  };
});
$("#runs-table tbody").addEventListener("click", (e) => {
  const row = e.target.closest("tr");
  if (!row) return;
  const id = row.dataset.id;
  if (e.target.classList.contains("pick")) {
    if (e.target.checked) state.selected.add(id); else state.selected.delete(id);
    row.classList.toggle("selected", e.target.checked);
    $("#compare-selected").disabled = state.selected.size < 2;
    return;
  }
  showRun(id).catch(showError);
});
let filterTimer = null;
$("#filter").oninput = () => { clearTimeout(filterTimer); filterTimer = setTimeout(() => loadRuns().catch(showError), 200); };
$("#status-filter").onchange = () => loadRuns().catch(showError);
$("#task-filter").onchange = () => loadRuns().catch(showError);
$("#compare-selected").onclick = () => openTab("compare");
$("#predict").onclick = () => predict();
loadRuns().catch(showError);
