// The pystatefun web console: polls the admin port's JSON API (/api/...) and draws what it
// answers. No framework, nothing loaded from elsewhere. Rates and percentiles are computed
// here from the cumulative counters and histogram buckets of successive polls.
"use strict";

const POLL_MS = 1000;
const KEEP_MS = 5 * 60 * 1000; // the charts' span
const RATE_MS = 5000; // rates over the last 5 s
const WINDOW_MS = 60 * 1000; // percentiles over the last minute
const TOKEN_KEY = "pystatefun-admin-token";

const $ = (id) => document.getElementById(id);
const samples = []; // {t, overview, functions}, oldest first
let pollTimer = null;
let deadLettersShown = false;

// --- small DOM and number helpers ------------------------------------------------------------

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (key === "className") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function setRows(table, rows) {
  const body = table.tBodies[0];
  body.replaceChildren(...rows);
}

const integer = (n) => (n === null || n === undefined ? "–" : Math.round(n).toLocaleString("en-US"));

function rate(n) {
  if (n === null || n === undefined || !isFinite(n)) return "–";
  if (n === 0) return "0";
  return n < 10 ? n.toFixed(1) : Math.round(n).toLocaleString("en-US");
}

function seconds(s) {
  if (s === null || s === undefined || !isFinite(s)) return "–";
  const ms = s * 1000;
  if (ms < 1) return ms.toFixed(2) + " ms";
  if (ms < 100) return ms.toFixed(1) + " ms";
  if (ms < 1000) return Math.round(ms) + " ms";
  return s.toFixed(2) + " s";
}

function when(ms) {
  if (ms === null || ms === undefined) return "never";
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

function fromNow(ms) {
  let left = Math.round((ms - Date.now()) / 1000);
  const past = left < 0;
  left = Math.abs(left);
  const h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
  const text = (h ? h + "h " : "") + (h || m ? m + "m " : "") + s + "s";
  return past ? text + " ago" : "in " + text;
}

// --- the API ---------------------------------------------------------------------------------

class Unauthorized extends Error {}

async function api(path, body) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers["Authorization"] = "Bearer " + token;
  const init = { headers, cache: "no-store" };
  if (body !== undefined) {
    init.method = "POST";
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401) throw new Unauthorized();
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || "HTTP " + response.status);
  return answer;
}

// --- histograms ------------------------------------------------------------------------------

function bucketsBetween(older, newer) {
  // newer minus older (older may be null: since the start)
  const counts = newer.counts.map((c, i) => c - (older ? older.counts[i] : 0));
  return { bounds: newer.bounds, counts, count: newer.count - (older ? older.count : 0) };
}

function quantile(q, h) {
  // As Prometheus's histogram_quantile: linear within the bucket the rank falls in.
  if (!h || h.count <= 0) return null;
  const rank = q * h.count;
  let seen = 0;
  for (let i = 0; i < h.counts.length; i++) {
    const before = seen;
    seen += h.counts[i];
    if (seen >= rank && h.counts[i] > 0) {
      if (i >= h.bounds.length) return h.bounds[h.bounds.length - 1]; // the unbounded bucket
      const lower = i === 0 ? 0 : h.bounds[i - 1];
      return lower + (h.bounds[i] - lower) * ((rank - before) / h.counts[i]);
    }
  }
  return h.bounds[h.bounds.length - 1];
}

function sampleBefore(ms) {
  // The newest sample at least `ms` old, or null when the page is younger than that.
  const edge = samples[samples.length - 1].t - ms;
  for (let i = samples.length - 1; i >= 0; i--) if (samples[i].t <= edge) return samples[i];
  return null;
}

function windowed(pick) {
  // The histogram `pick` selects over the last minute; since the start while the page is
  // younger, or when nothing happened in the last minute (then `since` is true).
  const latest = pick(samples[samples.length - 1]);
  if (!latest) return { h: null, since: true };
  const base = sampleBefore(WINDOW_MS);
  const recent = base && pick(base) ? bucketsBetween(pick(base), latest) : null;
  if (recent && recent.count > 0) return { h: recent, since: false };
  return { h: bucketsBetween(null, latest), since: true };
}

function perSecond(pick) {
  const latest = samples[samples.length - 1];
  let base = sampleBefore(RATE_MS) || samples[0];
  if (base === latest) return null;
  const older = pick(base), newer = pick(latest);
  if (older === undefined || newer === undefined || older === null || newer === null) return null;
  return Math.max(0, (newer - older) / ((latest.t - base.t) / 1000));
}

// --- overview --------------------------------------------------------------------------------

function showOverview() {
  const o = samples[samples.length - 1].overview;
  $("rate-in").textContent = rate(perSecond((s) => s.overview.messages_in));
  $("total-in").textContent = integer(o.messages_in) + " total";
  $("rate-out").textContent = rate(perSecond((s) => s.overview.messages_out + s.overview.egress_out));
  $("total-out").textContent = integer(o.messages_out) + " sent · " + integer(o.egress_out) + " egress";
  const latency = windowed((s) => s.overview.latency);
  const has = latency.h && latency.h.count;
  const p50 = has ? seconds(quantile(0.5, latency.h)) : "–", p99 = has ? seconds(quantile(0.99, latency.h)) : "";
  const shared = p50.endsWith(" ms") && p99.endsWith(" ms"); // "0.7 · 3.2 ms": one unit, once
  $("latency").replaceChildren(shared ? p50.slice(0, -3) : p50, el("span", { className: "second" }, has ? " · " + p99 : ""));
  $("latency-sub").textContent = latency.h && latency.h.count
    ? integer(latency.h.count) + " calls " + (latency.since ? "since start" : "last minute") : "no remote calls yet";
  $("backlog").textContent = integer(o.backlog);
  $("backlog-sub").textContent = integer(o.blocked) + " blocked · " + integer(o.in_flight) + " running";
  $("rate-commits").textContent = rate(perSecond((s) => s.overview.commits));
  $("total-commits").textContent = integer(o.commits) + " steps total";
  const commit = windowed((s) => s.overview.step_commit);
  $("commit-p99").textContent = commit.h && commit.h.count ? seconds(quantile(0.99, commit.h)) : "–";
  $("commit-sub").textContent = commit.h && commit.h.count ? "p50 " + seconds(quantile(0.5, commit.h)) : "";
  $("dead-letters").textContent = integer(o.dead_letters);
  $("dead-sub").textContent = integer(o.dead_lettered) + " since start";
  $("dead-card").classList.toggle("alert", (o.dead_letters || 0) > 0);
  const badge = $("dead-badge");
  badge.hidden = !o.dead_letters;
  badge.textContent = integer(o.dead_letters);
  $("delayed").textContent = integer(o.delayed_pending);
  const status = $("status");
  status.dataset.state = o.ready ? "serving" : o.phase.startsWith("failed") ? "failed" : "starting";
  status.textContent = o.phase;
}

function functionsRow(f) {
  const latency = windowed((s) => (s.functions.find((g) => g.type === f.type) || {}).latency);
  const inRate = perSecond((s) => (s.functions.find((g) => g.type === f.type) || { messages_in: 0 }).messages_in);
  const has = latency.h && latency.h.count;
  const num = (text) => el("td", { className: "num" }, text);
  return el("tr", { dataset: { type: f.type }, title: "look up an address of " + f.type,
                    onclick: () => { $("address-type").value = f.type; selectTab("address"); $("address-id").focus(); } },
    el("td", {}, f.type), num(integer(f.messages_in)), num(rate(inRate)), num(integer(f.messages_out)),
    num(integer(f.egress_out)), num(integer(f.backlog)), num(integer(f.blocked)), num(integer(f.in_flight)),
    num(integer(f.remote_failures)), num(has ? seconds(quantile(0.5, latency.h)) : "–"),
    num(has ? seconds(quantile(0.99, latency.h)) : "–"));
}

function showFunctions() {
  const rows = samples[samples.length - 1].functions;
  setRows($("functions"), rows.map(functionsRow));
  $("functions-empty").hidden = rows.length > 0;
  const known = $("known-types");
  known.replaceChildren(...rows.map((f) => el("option", { value: f.type })));
}

// --- charts on <canvas> ----------------------------------------------------------------------

function series(pickValue) {
  // One point per poll after the first: pickValue(older, newer, seconds between them).
  const points = [];
  for (let i = 1; i < samples.length; i++) {
    const dt = (samples[i].t - samples[i - 1].t) / 1000;
    const value = pickValue(samples[i - 1], samples[i], dt);
    if (value !== null && value !== undefined && isFinite(value)) points.push([samples[i].t, value]);
  }
  return points;
}

function latencySeries(q) {
  // Over 10 s windows, so a quiet second does not draw a gap.
  return series((older, newer) => {
    const base = samples.find((s) => s.t >= newer.t - 10000) || older;
    return base === newer ? null : quantile(q, bucketsBetween(base.overview.latency, newer.overview.latency));
  });
}

function niceCeiling(value) {
  if (value <= 0) return 1;
  const power = Math.pow(10, Math.floor(Math.log10(value)));
  for (const step of [1, 2, 2.5, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}

function drawChart(canvas, lines, format) {
  const style = getComputedStyle(document.documentElement);
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  if (!width || !height) return;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  g.clearRect(0, 0, width, height);
  const left = 44, right = 6, top = 6, bottom = 16;
  const now = samples.length ? samples[samples.length - 1].t : Date.now();
  // The last five minutes; less while the page is younger (at least one), so it fills at once.
  const span = Math.min(KEEP_MS, Math.max(60000, samples.length ? now - samples[0].t : 0));
  const from = now - span;
  const max = niceCeiling(Math.max(0, ...lines.flatMap((l) => l.points.map((p) => p[1]))));
  const x = (t) => left + ((t - from) / span) * (width - left - right);
  const y = (v) => top + (1 - v / max) * (height - top - bottom);
  g.font = "11px system-ui, sans-serif";
  g.fillStyle = style.getPropertyValue("--muted");
  g.strokeStyle = style.getPropertyValue("--line");
  g.lineWidth = 1;
  for (const part of [0, 0.5, 1]) {
    const v = max * part;
    g.beginPath();
    g.moveTo(left, Math.round(y(v)) + 0.5);
    g.lineTo(width - right, Math.round(y(v)) + 0.5);
    g.stroke();
    g.textAlign = "right";
    g.fillText(format(v), left - 4, y(v) + 4);
  }
  g.textAlign = "left";
  g.fillText(span >= 120000 ? "−" + Math.round(span / 60000) + " min" : "−" + Math.round(span / 1000) + " s", left, height - 3);
  g.textAlign = "right";
  g.fillText("now", width - right, height - 3);
  for (const line of lines) {
    g.strokeStyle = style.getPropertyValue(line.color);
    g.lineWidth = 1.6;
    g.beginPath();
    line.points.forEach(([t, v], i) => (i ? g.lineTo(x(t), y(v)) : g.moveTo(x(t), y(v))));
    g.stroke();
  }
  canvas.dataset.points = String(Math.max(0, ...lines.map((l) => l.points.length)));
}

function legend(id, lines) {
  $(id).replaceChildren(...lines.map((l) => {
    const swatch = el("i");
    swatch.style.background = getComputedStyle(document.documentElement).getPropertyValue(l.color);
    return el("span", {}, swatch, l.label);
  }));
}

function drawCharts() {
  if ($("tab-overview").hidden) return;
  const perSec = (pick) => series((a, b, dt) => Math.max(0, (pick(b) - pick(a)) / dt));
  const charts = [
    ["messages", "", [
      { label: "in", color: "--series-1", points: perSec((s) => s.overview.messages_in) },
      { label: "out", color: "--series-2", points: perSec((s) => s.overview.messages_out + s.overview.egress_out) }]],
    ["latency", "s", [
      { label: "p50", color: "--series-3", points: latencySeries(0.5) },
      { label: "p99", color: "--series-4", points: latencySeries(0.99) }]],
    ["backlog", "", [
      { label: "waiting", color: "--series-1", points: samples.map((s) => [s.t, s.overview.backlog]) },
      { label: "blocked", color: "--series-2", points: samples.map((s) => [s.t, s.overview.blocked]) }]],
    ["commits", "", [
      { label: "steps /s", color: "--series-3", points: perSec((s) => s.overview.commits) }]],
  ];
  const count = (v) => (Number.isInteger(v) ? v.toLocaleString("en-US") : String(+v.toFixed(v < 1 ? 2 : 1)));
  for (const [name, unit, lines] of charts) {
    legend("legend-" + name, lines);
    drawChart($("chart-" + name), lines, unit === "s" ? (v) => (v ? seconds(v) : "0") : count);
  }
}

// --- polling ---------------------------------------------------------------------------------

async function poll() {
  clearTimeout(pollTimer);
  try {
    const [overview, functions] = await Promise.all([api("/api/overview"), api("/api/functions")]);
    samples.push({ t: overview.at_ms, overview, functions: functions.functions });
    while (samples.length > 2 && samples[0].t < overview.at_ms - KEEP_MS) samples.shift();
    showOverview();
    showFunctions();
    drawCharts();
    if (deadLettersShown) await loadDeadLetters();
  } catch (error) {
    if (error instanceof Unauthorized) return askForToken("The token was refused; give it again.");
    const status = $("status");
    status.dataset.state = "lost";
    status.textContent = "connection lost; retrying";
  }
  pollTimer = setTimeout(poll, POLL_MS);
}

// --- address lookup --------------------------------------------------------------------------

function valueCell(value) {
  const text = value.kind === "hex" ? el("span", { className: "hex" }, value.text) : value.text;
  return el("td", { className: "value" }, el("span", { className: "kind" }, value.kind), " ", text);
}

async function lookUp(event) {
  if (event) event.preventDefault();
  const type = $("address-type").value.trim(), id = $("address-id").value;
  $("address-error").textContent = "";
  try {
    const found = await api("/api/address?type=" + encodeURIComponent(type) + "&id=" + encodeURIComponent(id));
    showAddress(found);
    history.replaceState(null, "", "#address/" + encodeURIComponent(type) + "/" + encodeURIComponent(id));
  } catch (error) {
    if (error instanceof Unauthorized) return askForToken("The token was refused; give it again.");
    $("address-result").hidden = true;
    $("address-error").textContent = error.message;
  }
}

function showAddress(found) {
  $("address-result").hidden = false;
  $("address-title").textContent = found.address;
  $("address-where").textContent = found.served_here ? ""
    : "Another worker serves this address: what it holds is in that worker's console.";
  setRows($("address-state"), found.state.length ? found.state.map((s) => el("tr", {},
    el("td", {}, s.name), el("td", {}, s.value.kind), valueCell(s.value), el("td", { className: "mono" }, s.value.typename),
    el("td", {}, s.expires_at_ms === null ? "never" : (s.expired ? "expired " : "") + when(s.expires_at_ms))))
    : [el("tr", {}, el("td", { colspan: "5", className: "hint" }, "no state"))]);
  $("mailbox-count").textContent = "(" + found.mailbox.length + (found.mailbox_more ? "+, the oldest shown" : "") + ")";
  setRows($("address-mailbox"), found.mailbox.length ? found.mailbox.map((m) => el("tr", {},
    el("td", { className: "num" }, m.seq), el("td", {}, m.caller || "an ingress"),
    el("td", { className: "mono" }, m.value.typename), valueCell(m.value)))
    : [el("tr", {}, el("td", { colspan: "4", className: "hint" }, "empty"))]);
  $("timers-count").textContent = "(" + found.timers.length + ")";
  setRows($("address-timers"), found.timers.length ? found.timers.map((t) => el("tr", {},
    el("td", { title: when(t.fire_at_ms) }, fromNow(t.fire_at_ms)), el("td", {}, t.sender), el("td", {}, t.target),
    el("td", { className: "mono" }, t.token || ""), el("td", { className: "mono" }, t.value.typename), valueCell(t.value)))
    : [el("tr", {}, el("td", { colspan: "6", className: "hint" }, "none pending"))]);
}

// --- dead letters ----------------------------------------------------------------------------

async function loadDeadLetters() {
  const listed = await api("/api/dead-letters");
  const rows = listed.dead_letters.map((d) => {
    const first = d.messages[0];
    const messages = (first ? first.value.text.slice(0, 60) : "") + (d.message_count > 1 ? " (+" + (d.message_count - 1) + " more)" : "");
    const del = el("button", { type: "button", className: "small danger", dataset: { action: "delete" } }, "Delete");
    del.addEventListener("click", () => {
      if (!del.classList.contains("armed")) {
        del.classList.add("armed");
        del.textContent = "Delete for good?";
        setTimeout(() => { del.classList.remove("armed"); del.textContent = "Delete"; }, 4000);
        return;
      }
      act("delete", d.id);
    });
    return el("tr", { dataset: { id: String(d.id) } },
      el("td", { className: "num" }, d.id), el("td", {}, d.address), el("td", { className: "error-text" }, d.error),
      el("td", { className: "num" }, d.attempts), el("td", {}, when(d.failed_at_ms)), el("td", { className: "value" }, messages),
      el("td", {}, el("div", { className: "actions" },
        el("button", { type: "button", className: "small", dataset: { action: "redrive" }, onclick: () => act("redrive", d.id) }, "Re-drive"),
        del)));
  });
  const armed = document.querySelector("#dead-table button.armed");
  if (armed) return; // do not redraw under a pending confirmation
  setRows($("dead-table"), rows);
  $("dead-table").hidden = rows.length === 0;
  $("dead-empty").hidden = rows.length > 0;
  $("dead-more").textContent = listed.total > rows.length
    ? "The oldest " + rows.length + " of " + integer(listed.total) + " shown; `pystatefun dead-letters list` has them all." : "";
}

async function act(action, id) {
  try {
    const done = await api("/api/dead-letters/" + action, { ids: [id] });
    $("dead-flash").textContent = action === "redrive"
      ? "Re-drove dead letter " + id + ": " + done.redriven_messages + " message(s) back in their mailbox."
      : "Deleted dead letter " + id + ".";
    await loadDeadLetters();
  } catch (error) {
    if (error instanceof Unauthorized) return askForToken("The token was refused; give it again.");
    $("dead-flash").textContent = "";
    alertIn("dead-flash", error.message);
  }
}

function alertIn(id, text) {
  $(id).textContent = text;
}

// --- SQL -------------------------------------------------------------------------------------

function sqlCell(value) {
  if (value === null) return el("td", { className: "hint" }, "NULL");
  if (typeof value === "object") return el("td", { className: "value hex" }, value.hex);
  return el("td", { className: typeof value === "number" ? "num" : "value" }, value);
}

async function runSql() {
  const button = $("sql-run");
  button.disabled = true;
  $("sql-error").textContent = "";
  try {
    const result = await api("/api/sql", { query: $("sql-query").value });
    const table = $("sql-result");
    table.tHead.replaceChildren(el("tr", {}, ...result.columns.map((c) => el("th", {}, c))));
    setRows(table, result.rows.map((row) => el("tr", {}, ...row.map(sqlCell))));
    $("sql-info").textContent = result.rows.length + " row(s)" + (result.truncated ? " (the first " + result.rows.length + "; there are more)" : "")
      + " in " + result.elapsed_ms + " ms";
  } catch (error) {
    if (error instanceof Unauthorized) return askForToken("The token was refused; give it again.");
    $("sql-info").textContent = "";
    $("sql-error").textContent = error.message;
  } finally {
    button.disabled = false;
  }
}

// --- savepoints ------------------------------------------------------------------------------

async function takeSavepoint() {
  const button = $("savepoint-take");
  button.disabled = true;
  $("savepoint-error").textContent = "";
  button.textContent = "Writing…";
  try {
    const written = await api("/api/savepoints", {});
    $("savepoint-result").hidden = false;
    $("savepoint-path").textContent = written.path;
    $("savepoint-size").textContent = integer(written.bytes) + " bytes in " + written.elapsed_ms + " ms";
    setRows($("savepoint-counts"), Object.entries(written.counts).map(([kind, n]) =>
      el("tr", {}, el("td", {}, kind), el("td", { className: "num" }, integer(n)))));
  } catch (error) {
    if (error instanceof Unauthorized) return askForToken("The token was refused; give it again.");
    $("savepoint-error").textContent = error.message;
  } finally {
    button.disabled = false;
    button.textContent = "Take a savepoint";
  }
}

// --- tabs, token, start ----------------------------------------------------------------------

function selectTab(name) {
  for (const tab of document.querySelectorAll(".tab")) tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
  for (const panel of document.querySelectorAll(".panel")) panel.hidden = panel.id !== "tab-" + name;
  deadLettersShown = name === "dead-letters";
  if (deadLettersShown) loadDeadLetters().catch((error) => alertIn("dead-flash", error.message));
  if (name === "overview") drawCharts();
  if (!location.hash.startsWith("#" + name)) history.replaceState(null, "", "#" + name);
}

function askForToken(why) {
  clearTimeout(pollTimer);
  sessionStorage.removeItem(TOKEN_KEY);
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = why || "";
  $("status").dataset.state = "starting";
  $("status").textContent = "needs the admin token";
  $("token").focus();
}

async function start() {
  let info;
  try {
    info = await api("/api/info");
  } catch (error) {
    if (error instanceof Unauthorized) return askForToken(sessionStorage.getItem(TOKEN_KEY) ? "The token was refused." : "");
    $("status").dataset.state = "lost";
    $("status").textContent = "cannot reach the admin port; retrying";
    pollTimer = setTimeout(start, POLL_MS);
    return;
  }
  $("login").hidden = true;
  $("app").hidden = false;
  $("sign-out").hidden = !sessionStorage.getItem(TOKEN_KEY);
  $("where").textContent = info.where;
  $("savepoint-dir").textContent = info.savepoint_dir || "nowhere: start `pystatefun run` with --savepoint-dir";
  $("savepoint-take").disabled = !info.savepoint_dir;
  if (!info.sql) $("sql-info").textContent = "SQL is not available on a cluster worker; use `pystatefun sql --savepoint`.";
  const parts = location.hash.slice(1).split("/"), tab = parts[0];
  if (tab === "address" && parts.length >= 3) { // #address/<type>/<id>, each URI-encoded
    $("address-type").value = decodeURIComponent(parts[1]);
    $("address-id").value = decodeURIComponent(parts.slice(2).join("/"));
    selectTab("address");
    lookUp();
  } else {
    selectTab(["overview", "address", "dead-letters", "sql", "savepoint"].includes(tab) ? tab : "overview");
  }
  poll();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => selectTab(tab.dataset.tab));
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    start();
  });
  $("sign-out").addEventListener("click", () => askForToken(""));
  $("address-form").addEventListener("submit", lookUp);
  $("sql-run").addEventListener("click", runSql);
  $("sql-views").addEventListener("click", () => {
    $("sql-query").value = "SELECT name FROM temp.sqlite_master WHERE type = 'view' ORDER BY name";
    runSql();
  });
  $("sql-query").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) runSql();
  });
  $("savepoint-take").addEventListener("click", takeSavepoint);
  window.addEventListener("resize", drawCharts);
  start();
});
