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
// Durations and metric values arrive formatted by the server (fmkit/evaluation/display.py), so a time reads
// the same here, in report.html and in `fmkit runs`: `metricText(run.metrics_text, key, value)`.
function metricText(texts, key, value) { return texts && key in texts ? texts[key] : fmtNum(value); }
// Phases of a strategy, as history.jsonl tags them (the same words as PHASE_TITLES in evaluation/display.py).
const PHASE_TITLES = { probe: "head warm-up (linear probe, before fine-tuning)" };
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
// Round tick values over [lo, hi]; `integer` (optimizer steps): whole numbers, a step of at least 1.
function ticks(lo, hi, n, integer = false) {
  if (!isFinite(lo) || !isFinite(hi) || hi - lo < 1e-12) return [lo];
  const raw = integer ? Math.max(1, (hi - lo) / n) : (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const multiples = integer && mag < 10 ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10];
  const step = multiples.map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) out.push(Number(t.toPrecision(10)));
  return out;
}
function tickText(t) { return Math.abs(t) >= 1000 ? Math.round(t).toLocaleString() : String(Number(t.toPrecision(4))); }
function lineChart(title, series, { width = 460, height = 260, xlabel = "step", subtitle = "" } = {}) {
  const pts = series.flatMap((s) => s.points).filter((p) => isFinite(p[1]));
  if (!pts.length) return `<div class="chart"><b>${esc(title)}</b><p class="muted">no data yet</p></div>`;
  const L = 52, R = 12, T = subtitle ? 38 : 24, B = 36 + 16 * Math.ceil(series.length / 2);
  let x0 = Math.min(...pts.map((p) => p[0])), x1 = Math.max(...pts.map((p) => p[0]));
  let y0 = Math.min(...pts.map((p) => p[1])), y1 = Math.max(...pts.map((p) => p[1]));
  const singleX = x1 === x0;
  if (singleX) { x0 -= 1; x1 += 1; }
  if (y1 === y0) { const pad = Math.abs(y0) * 0.1 || 0.5; y0 -= pad; y1 += pad; }
  const pw = width - L - R, ph = height - T - B;
  const sx = (x) => L + ((x - x0) / (x1 - x0)) * pw, sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * ph;
  let svg = `<svg width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-size="11" font-family="system-ui,sans-serif">`;
  svg += `<text x="${L}" y="15" font-size="13" font-weight="600">${esc(title)}</text>`;
  if (subtitle) svg += `<text class="chart-subtitle" x="${L}" y="30" fill="#6b7280">${esc(subtitle)}</text>`;
  for (const t of ticks(y0, y1, 5)) svg += `<line x1="${L}" x2="${L + pw}" y1="${sy(t)}" y2="${sy(t)}" stroke="#e5e7eb"/><text x="${L - 5}" y="${sy(t) + 4}" text-anchor="end" fill="#4b5563">${Number(t.toPrecision(3))}</text>`;
  const xTicks = singleX ? [pts[0][0]] : ticks(x0, x1, 6, xlabel === "step");
  for (const t of xTicks) svg += `<text class="x-tick" x="${sx(t)}" y="${T + ph + 14}" text-anchor="middle" fill="#4b5563">${tickText(t)}</text>`;
  svg += `<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#9ca3af"/>`;
  svg += `<text x="${L + pw / 2}" y="${T + ph + 28}" text-anchor="middle">${esc(xlabel)}</text>`;
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length], p = s.points.filter((q) => isFinite(q[1]));
    if (p.length > 1) svg += `<polyline fill="none" stroke="${c}" stroke-width="1.8" points="${p.map((q) => `${sx(q[0]).toFixed(1)},${sy(q[1]).toFixed(1)}`).join(" ")}"/>`;
    if (p.length <= 20) for (const q of p) svg += `<circle cx="${sx(q[0])}" cy="${sy(q[1])}" r="${p.length === 1 ? 4.5 : 2.8}" fill="${c}"><title>${esc(s.name)} ${esc(xlabel)} ${q[0]}: ${q[1]}</title></circle>`;
    if (p.length === 1) {  // a lone point is easy to miss: say what it is beside it
      const [x, y] = [sx(p[0][0]), sy(p[0][1])], right = x > L + pw * 0.6;
      const ly = y < T + 30 ? y + 16 + 13 * (i % 2) : y - 6 - 13 * (i % 2);  // below the marker near the top edge
      svg += `<text class="point-label" x="${x + (right ? -8 : 8)}" y="${ly}" text-anchor="${right ? "end" : "start"}" fill="${c}" font-weight="600">${Number(p[0][1].toPrecision(4))} at ${esc(xlabel)} ${tickText(p[0][0])}</text>`;
    }
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
      if (!wanted.includes(c.name)) continue;
      const title = `${c.kind === "train" ? "train" : "eval"} ${c.name}`;
      const group = `${title}|${c.phase}`;
      if (!groups.has(group)) groups.set(group, { title, subtitle: c.phase ? PHASE_TITLES[c.phase] || c.phase : "", series: [] });
      groups.get(group).series.push({ name: runs.length > 1 ? run.id : c.name, points: points.map((p) => [p.step, p.value]) });
    }
  }
  // In the order they ran: a strategy's earlier phases (the probe) first, then training; loss before eval.
  const order = (g) => (g.subtitle ? 0 : 2) + (g.title.startsWith("train") ? 0 : 1);
  return [...groups.values()].sort((a, b) => order(a) - order(b))
    .map((g) => lineChart(g.title, g.series, { subtitle: g.subtitle })).join("");
}

// --- routes ---------------------------------------------------------------------------------------
// Every view has its own URL, so it can be shared, bookmarked and reloaded:
//   #/runs  ·  #/runs?run=ID (a run's page)  ·  #/compare?ids=A,B  ·  #/playground?run=ID
const VIEWS = ["runs", "compare", "playground"];
function parseRoute() {
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  return { view: VIEWS.includes(path) ? path : "runs", params: new URLSearchParams(query) };
}
function routeUrl(view, params = {}) {
  const query = Object.entries(params).filter(([, v]) => v != null && v !== "" && !(Array.isArray(v) && !v.length))
    .map(([k, v]) => `${k}=${(Array.isArray(v) ? v : [v]).map(encodeURIComponent).join(",")}`).join("&");
  return `#/${view}${query ? `?${query}` : ""}`;
}
function go(view, params) {  // navigate: a new history entry, then render() runs on hashchange
  const url = routeUrl(view, params);
  if (location.hash === url) render(); else location.hash = url;
}
function setRoute(view, params) { history.replaceState(null, "", routeUrl(view, params)); }  // same view, new state
function render() {
  const { view, params } = parseRoute();
  document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("active", b.dataset.tab === view));
  document.querySelectorAll(".view").forEach((v) => { v.hidden = v.id !== `view-${view}`; });
  if (view === "runs") {
    const id = params.get("run");
    if (id) showRun(id).catch(showError);
    else { state.detail = null; $("#run-detail").hidden = true; }
  }
  if (view === "compare") {
    const ids = (params.get("ids") || "").split(",").filter(Boolean);
    state.selected = new Set(ids);  // the Runs tab shows the compared runs ticked
    renderRuns();
    showCompare(ids).catch(showError);
  }
  if (view === "playground") loadModels(params.get("run")).catch(showError);
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
      <td class="strategy">${esc(r.strategy_text || "-")}</td><td>${fmtTime(r.started)}</td><td class="num duration">${esc(r.duration_text || "-")}</td>
      <td class="num">${m.key ? `${esc(metricText(r.metrics_text, m.key, m.value))} <span class="muted">${esc(m.key)}</span>` : "-"}</td></tr>`;
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
    <dt>strategy</dt><dd id="detail-strategy">${esc(run.strategy_text || "-")}</dd><dt>host / pid</dt><dd>${esc(run.host)} / ${esc(run.pid)}</dd>
    <dt>started · took</dt><dd>${fmtTime(run.started)} · <span id="detail-duration">${esc(run.duration_text || "-")}</span></dd>
    ${run.error ? `<dt>error</dt><dd class="error">${esc(run.error)}</dd>` : ""}
    ${run.parent ? `<dt>evaluates</dt><dd>${esc(run.parent)}</dd>` : ""}</dl>
    <p>${run.path && run.status === "finished" ? `<a id="open-report" href="report?id=${encodeURIComponent(run.id)}" target="_blank">Open report</a>` : ""}
    ${run.has_model ? ` · <a href="${routeUrl("playground", { run: run.id })}" id="try-model">Try this model</a>` : ""}</p>
    <div class="charts">${curveCharts([run])}</div>
    ${scalars.length ? `<h3>Final metrics</h3><table class="metrics"><tbody>${scalars.map(([k, v]) => `<tr><td>${esc(k)}</td><td class="num">${esc(metricText(run.final_metrics_text, k, v))}</td></tr>`).join("")}</tbody></table>` : ""}`;
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
async function showCompare(ids) {
  $("#compare-hint").hidden = ids.length >= 2;
  if (ids.length < 2) { $("#compare-charts").innerHTML = ""; $("#compare-table").innerHTML = ""; return; }
  const body = await api(`api/compare?ids=${ids.map(encodeURIComponent).join(",")}`);
  $("#compare-charts").innerHTML = curveCharts(body.runs);
  const keys = [...new Set(body.runs.flatMap((r) => Object.keys(r.metrics || {})))];
  const lowerBetter = new Set(["perplexity", "train_seconds", "peak_memory_mb", "wall_seconds"]);
  const notScores = new Set(["num_examples", "train_examples", "best_step", "steps", "epochs_completed", "num_entities", "num_predicted", "num_sentences"]);
  const rows = keys.map((k) => {
    const vals = body.runs.map((r) => (r.metrics || {})[k]);
    const finite = vals.filter((v) => v != null);
    const best = notScores.has(k) ? NaN : lowerBetter.has(k) ? Math.min(...finite) : Math.max(...finite);
    return `<tr><td>${esc(k)}</td>${body.runs.map((r, i) => {
      const v = vals[i], text = esc(v == null ? "-" : metricText(r.metrics_text, k, v)), isBest = v === best && finite.length > 1;
      return `<td class="num${isBest ? " best" : ""}">${isBest ? `<b>${text}</b>` : text}</td>`;
    }).join("")}</tr>`;
  });
  $("#compare-table").innerHTML = `<h3>Final metrics (best in bold)</h3><table id="compare-metrics"><thead><tr><th>metric</th>${body.runs.map((r) => `<th>${esc(r.id)}</th>`).join("")}</tr></thead><tbody>
    <tr><td>status</td>${body.runs.map((r) => `<td><span class="status ${esc(r.status)}">${esc(r.status)}</span></td>`).join("")}</tr>
    <tr><td>model</td>${body.runs.map((r) => `<td>${esc((r.model || "-").split("/").pop())}</td>`).join("")}</tr>
    <tr><td>strategy</td>${body.runs.map((r) => `<td>${esc(r.strategy_text || "-")}</td>`).join("")}</tr>
    <tr><td>time</td>${body.runs.map((r) => `<td class="num">${esc(r.duration_text || "-")}</td>`).join("")}</tr>${rows.join("")}</tbody></table>`;
}

// --- playground -----------------------------------------------------------------------------------
const TEXTS_KEY = "fmkit.playground.texts";  // typed texts survive a reload of the tab (not put in the URL)
async function loadModels(preferred) {
  const body = await api("api/models");
  const sel = $("#model-select");
  sel.innerHTML = body.models.map((m) => {
    const h = headlineMetric(m);
    return `<option value="${esc(m.id)}">${esc(m.id)} (${esc(m.task || "?")}, ${esc(metricText(m.metrics_text, h.key, h.value))} ${esc(h.key || "")})${m.id === body.best ? " · best" : ""}</option>`;
  }).join("");
  const known = body.models.some((m) => m.id === preferred);
  $("#predict-status").textContent = !body.models.length ? "no finished run with a saved model yet"
    : preferred && !known ? `run '${preferred}' has no saved model here; showing the best run` : "";
  if (!body.models.length) return;
  sel.value = known ? preferred : body.best;
  setRoute("playground", { run: sel.value });
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
function showError(err) { $("#run-count").innerHTML = `<span class="error">${esc(err.message)}</span>`; }

document.querySelectorAll("#tabs button").forEach((b) => {
  b.onclick = () => {
    const view = b.dataset.tab;
    if (view === "compare") go("compare", { ids: [...state.selected] });
    else if (view === "playground") go("playground", { run: $("#model-select").value });
    else go("runs", { run: state.detail && state.detail.id });
  };
});
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
  go("runs", { run: id });
});
let filterTimer = null;
$("#filter").oninput = () => { clearTimeout(filterTimer); filterTimer = setTimeout(() => loadRuns().catch(showError), 200); };
$("#status-filter").onchange = () => loadRuns().catch(showError);
$("#task-filter").onchange = () => loadRuns().catch(showError);
$("#compare-selected").onclick = () => go("compare", { ids: [...state.selected] });
$("#model-select").onchange = () => setRoute("playground", { run: $("#model-select").value });
$("#texts").value = sessionStorage.getItem(TEXTS_KEY) || "";
$("#texts").oninput = () => sessionStorage.setItem(TEXTS_KEY, $("#texts").value);
$("#predict").onclick = () => predict();
window.addEventListener("hashchange", render);
loadRuns().catch(showError);
render();
