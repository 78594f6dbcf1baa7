// The offloader console: one page, hash-routed (#/jobs, #/jobs/<id>, ...), that shows and
// changes the leader only through its documented JSON API (/api/openapi.json). No framework
// and no build step: the leader embeds this file as it is.
//
// How a page works: `mount` draws the parts that stay (filters, buttons) once; `refresh` reads
// the API and redraws the data parts, and runs again every 2 s while Live is on. A data part is
// only replaced when its HTML changed, and the focused control is found again by its
// data-key, so polling neither flickers nor steals the keyboard focus.
"use strict";

const TOKEN_KEY = "offloader.token";
const POLL_MS = 2000;
const STATES = ["NEW", "QUEUED", "ACTIVE", "SUCCEEDED", "FAILED", "GIVEN_UP", "ERROR", "STOPPED"];
const FINAL = ["SUCCEEDED", "GIVEN_UP", "ERROR", "STOPPED"];
const RETRYABLE = ["GIVEN_UP", "ERROR", "STOPPED"];
const PAGE_SIZE = 25;

const $ = (sel, root) => (root || document).querySelector(sel);
const view = () => $("#view");

// ---------------------------------------------------------------------------------------------
// Text and formatting
// ---------------------------------------------------------------------------------------------

function esc(v) {
  return String(v === undefined || v === null ? "" : v)
    .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

function time(t) {
  if (!t) return "—";
  const d = new Date(t);
  if (isNaN(d)) return esc(t);
  return `<time datetime="${esc(t)}" title="${esc(t)}">${esc(d.toLocaleString())}</time>`;
}

function ago(ms) {
  if (ms === undefined || ms === null) return "—";
  if (ms < 1000) return `${ms} ms ago`;
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s ago`;
  return `${Math.round(s / 60)} min ago`;
}

function duration(from, to) {
  if (!from || !to) return "—";
  const ms = new Date(to) - new Date(from);
  if (isNaN(ms)) return "—";
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function bytes(n) {
  if (n === undefined || n === null) return "—";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function badge(state) {
  return state ? `<span class="badge s-${esc(String(state).toLowerCase())}">${esc(state)}</span>` : "—";
}

function json(v) {
  return `<pre class="json">${esc(JSON.stringify(v, null, 2))}</pre>`;
}

function shortId(id) {
  return String(id).slice(-12);
}

// Sling's topic patterns: `*` is one segment, `**` any number of trailing ones.
function topicMatches(pattern, topic) {
  const p = pattern.split("/"), t = topic.split("/");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === "**") return t.length > i;
    if (i >= t.length) return false;
    if (p[i] !== "*" && p[i] !== t[i]) return false;
  }
  return p.length === t.length;
}

// ---------------------------------------------------------------------------------------------
// The API, with the bearer token
// ---------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (token()) h["Authorization"] = "Bearer " + token();
  return h;
}

// One request; a 401 asks for the token once and tries again with it.
async function request(method, path, body, asked) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const resp = await fetch(path, init);
  if (resp.status === 401 && !asked) {
    if (await askToken()) return request(method, path, body, true);
  }
  return resp;
}

async function api(method, path, body) {
  const resp = await request(method, path, body);
  let doc = null;
  const text = await resp.text();
  try {
    doc = text ? JSON.parse(text) : null;
  } catch (e) {
    throw new ApiError(resp.status, `${method} ${path}: the answer is not JSON`);
  }
  if (!resp.ok) throw new ApiError(resp.status, (doc && doc.error) || `${method} ${path}: ${resp.status}`);
  return doc;
}

const get = (path) => api("GET", path);

// Bytes that need the token (renditions, blobs): fetched, then shown from an object URL. The
// URLs are kept by content hash, so polling does not download an image again.
const objectUrls = new Map();

async function objectUrl(path, key) {
  if (objectUrls.has(key)) return objectUrls.get(key);
  const resp = await request("GET", path);
  if (!resp.ok) throw new ApiError(resp.status, `GET ${path}: ${resp.status}`);
  const url = URL.createObjectURL(await resp.blob());
  objectUrls.set(key, url);
  return url;
}

function blobPath(blob, mime) {
  const type = mime ? `&type=${encodeURIComponent(mime)}` : "";
  return `/api/blobs/${encodeURIComponent(blob.sha256)}?size=${blob.size}${type}`;
}

async function download(path, key, name) {
  const url = await objectUrl(path, key);
  const a = document.createElement("a");
  a.href = url;
  a.download = name || "download";
  document.body.appendChild(a);
  a.click();
  a.remove();
}

// ---------------------------------------------------------------------------------------------
// Dialogs and messages
// ---------------------------------------------------------------------------------------------

function flash(message, kind) {
  const el = $("#flash");
  el.className = kind || "info";
  el.textContent = message;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => { el.textContent = ""; el.className = ""; }, kind === "error" ? 10000 : 5000);
}

function dialogAnswer(dialog) {
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true });
    dialog.showModal();
  });
}

async function confirmAction(text) {
  const dialog = $("#confirm-dialog");
  $("#confirm-text").textContent = text;
  dialog.returnValue = "cancel";
  const answer = dialogAnswer(dialog);
  $("#confirm-ok").focus();
  return (await answer) === "ok";
}

let tokenAsking = null;

// Asks for the token (once at a time); true when the user gave one.
function askToken() {
  if (tokenAsking) return tokenAsking;
  const dialog = $("#token-dialog");
  $("#token-input").value = token();
  dialog.returnValue = "cancel";
  tokenAsking = dialogAnswer(dialog).then((answer) => {
    tokenAsking = null;
    if (answer === "ok" && $("#token-input").value) {
      sessionStorage.setItem(TOKEN_KEY, $("#token-input").value);
      objectUrls.clear();
      return true;
    }
    if (answer === "clear") sessionStorage.removeItem(TOKEN_KEY);
    return false;
  });
  $("#token-input").focus();
  return tokenAsking;
}

// Runs a change the user asked for, after confirming; says what happened. True when it was
// done.
// While it runs, the page does not refresh: a read of the dead-letter queue holds its
// messages for a moment (AMQP reads by taking), and would hide them from the action.
let acting = 0;

async function act(question, fn, done) {
  if (question && !(await confirmAction(question))) return false;
  acting++;
  try {
    if (refreshing) await refreshing.catch(() => {});
    const result = await fn();
    if (done) flash(typeof done === "function" ? done(result) : done, "ok");
  } catch (e) {
    flash(e.message, "error");
    return false;
  } finally {
    acting--;
  }
  await refreshNow();
  return true;
}

// ---------------------------------------------------------------------------------------------
// Drawing without losing focus
// ---------------------------------------------------------------------------------------------

const drawn = new WeakMap();

function draw(el, html) {
  if (!el || drawn.get(el) === html) return;
  const focused = document.activeElement;
  const key = focused && el.contains(focused) ? focused.getAttribute("data-key") : null;
  el.innerHTML = html;
  drawn.set(el, html);
  if (key) {
    const again = el.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (again) again.focus();
  }
}

// ---------------------------------------------------------------------------------------------
// Pages
// ---------------------------------------------------------------------------------------------

const pages = {};

pages.overview = {
  nav: "overview",
  mount() {
    return `<h1>Overview</h1><div id="ov-cards" class="cards"></div>
      <section><h2>Last 15 minutes</h2><div id="ov-chart" class="charts"></div></section>
      <section><h2>Jobs per state</h2><div id="ov-states"></div></section>
      <section><h2>Queues</h2><div id="ov-queues"></div></section>`;
  },
  async refresh() {
    const [topology, jobs, topics, dead, series] = await Promise.all([
      get("/api/topology"), get("/api/jobs?limit=1"), get("/api/topics"), get("/api/dead-letters?limit=10000"),
      seriesEvery("/api/stats/series?minutes=15&step=30"),
    ]);
    draw($("#ov-chart"), seriesCharts(series));
    const instances = topology.clusters.flatMap((c) => c.instances);
    const workers = instances.filter((i) => i.role === "worker").length;
    const total = Object.values(jobs.counts).reduce((a, b) => a + b, 0);
    const waiting = topics.topics.reduce((a, q) => a + (q.messages || 0), 0);
    const card = (id, label, value, href, note) =>
      `<a class="card" id="${id}" href="${href}"><span class="value">${esc(value)}</span>
        <span class="label">${esc(label)}</span><span class="note">${esc(note || "")}</span></a>`;
    draw($("#ov-cards"), [
      card("card-instances", "instances up", instances.length, "#/topology",
        `${instances.length - workers} leader(s), ${workers} worker(s)`),
      card("card-jobs", "jobs", total, "#/jobs", `${jobs.counts.ACTIVE || 0} active, ${jobs.counts.QUEUED || 0} queued`),
      card("card-queued", "messages waiting", waiting, "#/offloading", `in ${topics.topics.length} topic queue(s)`),
      card("card-dead", "dead letters", dead.dead_letters.length, "#/failures", "messages nobody could act on"),
    ].join(""));
    draw($("#ov-states"), `<div class="chips">${STATES.map((s) =>
      `<a class="chip" href="#/jobs?state=${s}" data-state="${s}">${badge(s)} <b>${jobs.counts[s] || 0}</b></a>`).join("")}</div>`);
    draw($("#ov-queues"), queueTable(topics.topics));
  },
};

// A time series, read again at most every 10 s: it reads every job finished in its window, a
// cost the 2 s polling need not pay each time for a chart of 30 s buckets.
const seriesCache = new Map();

async function seriesEvery(path) {
  const hit = seriesCache.get(path);
  if (hit && Date.now() - hit.at < 10000) return hit.doc;
  const doc = await get(path);
  seriesCache.set(path, { at: Date.now(), doc });
  return doc;
}

// Throughput and latency of GET /api/stats/series as two small inline SVG charts (drawn here:
// nothing is fetched but the figures). Bars: jobs finished per bucket, the failed part red;
// lines: mean and p95 latency, created to finished.
function seriesCharts(s) {
  const W = 320, H = 130, L = 40, B = 18, T = 8, R = 6;
  const n = s.buckets.length || 1;
  const x = (i) => L + ((W - L - R) * i) / n;
  const bw = Math.max(1, (W - L - R) / n - 1);
  const nice = (v) => {
    if (v <= 0) return 1;
    const e = Math.pow(10, Math.floor(Math.log10(v)));
    return [1, 2, 5, 10].map((m) => m * e).find((m) => m >= v);
  };
  const axis = (max, fmt, title) => `<text x="${L - 4}" y="${T + 4}" class="tick" text-anchor="end">${esc(fmt(max))}</text>
    <text x="${L - 4}" y="${H - B}" class="tick" text-anchor="end">0</text>
    <line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" class="axis"/>
    <text x="${L}" y="${H - 4}" class="tick">−${esc(Math.round((n * s.step_seconds) / 60))} min</text>
    <text x="${W - R}" y="${H - 4}" class="tick" text-anchor="end">now</text><title>${esc(title)}</title>`;
  const y = (v, max) => H - B - ((H - B - T) * v) / max;
  const maxN = nice(Math.max(0, ...s.buckets.map((b) => b.finished)));
  const total = s.buckets.reduce((a, b) => a + b.finished, 0);
  const failed = s.buckets.reduce((a, b) => a + b.failed, 0);
  const bars = s.buckets.map((b, i) => b.finished ? `<rect class="ok" x="${x(i).toFixed(1)}" y="${y(b.finished, maxN).toFixed(1)}"
      width="${bw.toFixed(1)}" height="${(H - B - y(b.finished, maxN)).toFixed(1)}"><title>${esc(b.finished)} finished${b.failed ? `, ${esc(b.failed)} failed` : ""} from ${esc(new Date(b.start).toLocaleTimeString())}</title></rect>
    ${b.failed ? `<rect class="bad" x="${x(i).toFixed(1)}" y="${y(b.failed, maxN).toFixed(1)}" width="${bw.toFixed(1)}"
      height="${(H - B - y(b.failed, maxN)).toFixed(1)}"/>` : ""}` : "").join("");
  const maxL = nice(Math.max(0, ...s.buckets.map((b) => b.p95_ms || 0)));
  const ms = (v) => (v >= 1000 ? `${(v / 1000).toFixed(v >= 10000 ? 0 : 1)} s` : `${Math.round(v)} ms`);
  const line = (key, cls) => {
    const pts = s.buckets.map((b, i) => (b[key] === null || b[key] === undefined ? null
      : `${(x(i) + bw / 2).toFixed(1)},${y(b[key], maxL).toFixed(1)}`)).filter(Boolean);
    return pts.length ? `<polyline class="${cls}" points="${pts.join(" ")}"/>${pts.length === 1
      ? `<circle class="${cls}" cx="${pts[0].split(",")[0]}" cy="${pts[0].split(",")[1]}" r="2.5"/>` : ""}` : "";
  };
  const withLatency = s.buckets.filter((b) => b.mean_ms !== null && b.mean_ms !== undefined);
  const meanAll = withLatency.length
    ? withLatency.reduce((a, b) => a + b.mean_ms * b.finished, 0) / withLatency.reduce((a, b) => a + b.finished, 0) : null;
  const rate = total / Math.max(1, (n * s.step_seconds) / 60);
  return `<figure class="chart" id="chart-throughput"><figcaption>Throughput <b>${esc(rate.toFixed(rate < 10 ? 1 : 0))}</b>/min
      <span class="muted">· ${esc(total)} finished${failed ? `, ${esc(failed)} failed` : ""}</span></figcaption>
    <svg viewBox="0 0 ${W} ${H}" role="img" aria-label="Jobs finished per ${esc(s.step_seconds)} s over the last ${esc(Math.round((n * s.step_seconds) / 60))} minutes: ${esc(total)} in all">
      ${axis(maxN, String, "jobs finished per bucket")}${bars}</svg></figure>
    <figure class="chart" id="chart-latency"><figcaption>Latency <span class="legend mean">mean</span> <span class="legend p95">p95</span>
      <span class="muted">· ${meanAll === null ? "no job finished" : `mean ${esc(ms(meanAll))}`}</span></figcaption>
    <svg viewBox="0 0 ${W} ${H}" role="img" aria-label="Mean and 95th percentile latency, created to finished">
      ${axis(maxL, ms, "latency, created to finished")}${line("p95_ms", "p95")}${line("mean_ms", "mean")}</svg></figure>`;
}

function queueTable(queues) {
  if (!queues.length) return `<p class="muted">No topic queue yet.</p>`;
  return `<div class="scroll"><table><thead><tr><th>Topic</th><th>Queue</th><th class="num">Depth</th>
    <th class="num">Consumers</th></tr></thead><tbody>${queues.map((q) => `<tr data-queue="${esc(q.topic)}">
      <td><a href="#/jobs?topic=${encodeURIComponent(q.topic)}">${esc(q.topic)}</a></td><td class="mono">${esc(q.queue)}</td>
      <td class="num">${q.messages === null || q.messages === undefined ? "missing" : q.messages}</td>
      <td class="num">${q.consumers === null || q.consumers === undefined ? "—" : q.consumers}</td></tr>`).join("")}
    </tbody></table></div>`;
}

pages.topology = {
  nav: "topology",
  mount() {
    return `<h1>Topology</h1><div id="topo-head"></div><div id="topo-clusters"></div>
      <section><h2>History</h2><div id="topo-history"></div></section><div id="topo-refused"></div>`;
  },
  async refresh() {
    const t = await get("/api/topology");
    draw($("#topo-head"), `<p>State ${badge(t.state)} · version ${esc(t.version)} · changed ${time(t.changed_at)}
      · answered by <span class="mono">${esc(t.current)}</span>
      ${t.allow.length ? ` · allow list: ${t.allow.map(esc).join(", ")}` : ""}</p>`);
    draw($("#topo-clusters"), t.clusters.map((c) => `<section class="cluster" data-cluster="${esc(c.name)}">
      <h2>Cluster ${esc(c.name)}</h2>
      <ol class="instances">${c.instances.map((i) => instanceCard(i, c.leader)).join("")}</ol></section>`).join(""));
    draw($("#topo-history"), t.history.length ? `<ol class="history" reversed>${t.history.slice().reverse().map((e) =>
      `<li>${time(e.at)} <b>${esc(e.kind)}</b> ${esc(e.name || "")} ${e.cluster ? `(${esc(e.cluster)})` : ""}
        ${e.detail ? `— ${esc(e.detail)}` : ""}</li>`).join("")}</ol>` : `<p class="muted">No change yet.</p>`);
    draw($("#topo-refused"), t.refused.length ? `<section><h2>Refused by the allow list</h2><div class="scroll"><table>
      <thead><tr><th>Name</th><th>Role</th><th>Cluster</th><th>Host</th><th>Last seen</th><th class="num">Announcements</th></tr></thead>
      <tbody>${t.refused.map((r) => `<tr><td>${esc(r.name)}</td><td>${esc(r.role)}</td><td>${esc(r.cluster)}</td>
        <td>${esc(r.host)}</td><td>${time(r.last_seen)}</td><td class="num">${esc(r.announcements)}</td></tr>`).join("")}
      </tbody></table></div></section>` : "");
  },
};

function enablementText(e) {
  if (e.exclusive) return `exclusive: ${esc(e.exclusive)}`;
  return `allow ${e.allow.map(esc).join(", ") || "—"}${e.deny.length ? `; deny ${e.deny.map(esc).join(", ")}` : ""}`;
}

function instanceCard(i, leaderId) {
  const marks = [
    i.id === leaderId || i.leader ? `<span class="mark leader" title="holds the cluster's duties">elected</span>` : "",
    i.current ? `<span class="mark current">current</span>` : "",
    i.draining ? `<span class="mark draining">draining</span>` : "",
  ].join(" ");
  return `<li class="instance" data-instance="${esc(i.name)}"><h3>${esc(i.name)} <small>${esc(i.role)}</small> ${marks}</h3>
    <dl class="props">
      <dt>Id</dt><dd class="mono">${esc(i.id)}</dd>
      <dt>Host</dt><dd>${esc(i.host)} (pid ${esc(i.pid)})</dd>
      <dt>Version</dt><dd>${esc(i.version)}</dd>
      <dt>Endpoints</dt><dd>${i.endpoints.length ? i.endpoints.map((e) => `<span class="mono">${esc(e)}</span>`).join("<br>") : "—"}</dd>
      <dt>Topics</dt><dd>${i.consuming.length ? i.consuming.map(esc).join(", ") : "—"}</dd>
      <dt>Consumers</dt><dd>${i.consumers.length ? i.consumers.map((c) => `${esc(c.topic)} ${badge(c.state)}`).join(" ") : "—"}</dd>
      <dt>Enablement</dt><dd>${enablementText(i.enablement)}</dd>
      <dt>Joined</dt><dd>${time(i.joined_at)}</dd>
      <dt>Last heartbeat</dt><dd>${time(i.last_heartbeat)} (${ago(i.last_seen_ms)}, every ${esc(i.interval_ms)} ms)</dd>
      ${i.ledger ? `<dt>Ledger</dt><dd class="mono">${esc(i.ledger)}</dd>` : ""}
    </dl></li>`;
}

// Cells whose change was sent and not confirmed yet, by "topic\ninstance id".
const pendingCells = new Map();

pages.offloading = {
  nav: "offloading",
  mount() {
    return `<h1>Offloading Browser</h1>
      <p class="muted">Each cell is one consumer topic on one instance. A click changes it live; the cell shows the
        new state once the instance's announcement confirms it.</p>
      <div id="off-matrix"></div><section><h2>Topic queues</h2><div id="off-queues"></div></section>`;
  },
  async refresh() {
    const [report, series] = await Promise.all([get("/api/topics"), seriesEvery("/api/stats/series?minutes=5&step=60")]);
    this.report = report;
    const instances = report.instances.filter((i) => i.consumers.length > 0);
    const patterns = [...new Set(instances.flatMap((i) => i.consumers.map((c) => c.topic)))].sort();
    if (!instances.length) {
      draw($("#off-matrix"), `<p class="muted">No instance with consumers is up.</p>`);
    } else {
      const states = ["enabled", "disabled", "exclusive"];
      const cell = (pattern, inst) => {
        const c = inst.consumers.find((x) => x.topic === pattern);
        if (!c) return `<td class="na" data-topic="${esc(pattern)}" data-instance="${esc(inst.name)}">—</td>`;
        const pending = pendingCells.get(pattern + "\n" + inst.id);
        const buttons = states.map((s) => `<button type="button" class="seg" data-action="topic-state"
          data-key="cell ${esc(pattern)} ${esc(inst.id)} ${s}" data-topic="${esc(pattern)}" data-instance="${esc(inst.id)}"
          data-set="${s}" aria-pressed="${c.state === s}" ${pending ? `aria-disabled="true"` : ""}
          title="${s === "enabled" ? "Enable" : s === "disabled" ? "Disable" : "Make exclusive"} ${esc(pattern)} on ${esc(inst.name)}"
          >${s[0].toUpperCase() + s.slice(1)}</button>`).join("");
        return `<td class="cell st-${esc(c.state)}" data-topic="${esc(pattern)}" data-instance="${esc(inst.name)}"
          data-state="${esc(c.state)}" data-pending="${pending ? esc(pending) : ""}">
          <div class="segs" role="group" aria-label="${esc(pattern)} on ${esc(inst.name)}">${buttons}</div>
          ${pending ? `<span class="pending">${esc(pending)}…</span>` : ""}</td>`;
      };
      const queueOf = (pattern) => {
        const qs = report.topics.filter((q) => topicMatches(pattern, q.topic));
        if (!qs.length) return "—";
        const depth = qs.reduce((a, q) => a + (q.messages || 0), 0);
        const consumers = qs.reduce((a, q) => a + (q.consumers || 0), 0);
        return `${depth} waiting · ${consumers} consumer(s)`;
      };
      // Jobs of the topics a pattern covers finished per minute over the last 5 minutes.
      const rateOf = (pattern) => {
        const per = Object.entries(series.topics).filter(([t]) => topicMatches(pattern, t))
          .reduce((a, [, r]) => a + r.per_minute, 0);
        return `<span class="rate" data-rate="${per}">${esc(per.toFixed(per && per < 10 ? 1 : 0))}/min</span>`;
      };
      draw($("#off-matrix"), `<div class="scroll"><table class="matrix"><thead><tr><th>Topic</th><th>Queue</th>
        <th class="num" title="Jobs finished per minute over the last 5 minutes">Rate</th>
        ${instances.map((i) => `<th>${esc(i.name)}<br><small>${esc(i.role)}${i.draining ? ", draining" : ""}</small></th>`).join("")}
        </tr></thead><tbody>${patterns.map((p) => `<tr data-topic="${esc(p)}"><th scope="row" class="mono">${esc(p)}</th>
        <td class="queue">${queueOf(p)}</td><td class="num">${rateOf(p)}</td>${instances.map((i) => cell(p, i)).join("")}</tr>`).join("")}
        </tbody></table></div>`);
    }
    draw($("#off-queues"), queueTable(report.topics));
  },
};

async function changeTopic(topic, instance, state) {
  const action = { enabled: "enable", disabled: "disable", exclusive: "exclusive" }[state];
  const key = topic + "\n" + instance;
  pendingCells.set(key, `${action} sent, waiting for the instance`);
  await refreshNow();
  try {
    // The leader answers once the instance's announcement shows the change.
    const inst = await api("POST", `/api/topics/${action}`, { topic, instance });
    const now = inst.consumers.find((c) => c.topic === topic);
    flash(`${topic} on ${inst.name}: ${now ? now.state : state} (confirmed by the instance)`, "ok");
  } catch (e) {
    flash(e.message, "error");
  } finally {
    pendingCells.delete(key);
    await refreshNow();
  }
}

// The Jobs list pages along the API's cursor (newest first; ids are creation-ordered), never
// an offset, so page 400 of 100 000 jobs costs what page 1 costs. The cursors of the pages
// seen are kept per filter, so "Newer" goes back without the API needing a reverse walk.
const FILTER_KEYS = ["state", "topic", "after", "before", "where"];
const cursorTrail = { key: null, cursors: [""] };

// A datetime-local value (the user's local time) as RFC 3339, or null.
function isoTime(v) {
  const d = v ? new Date(v) : null;
  return d && !isNaN(d) ? d.toISOString() : null;
}

pages.jobs = {
  nav: "jobs",
  mount(q) {
    this.q = q;
    this.cursor = q.get("cursor") || "";
    const key = this.filters().toString();
    if (cursorTrail.key !== key || !this.cursor) {
      cursorTrail.key = key;
      cursorTrail.cursors = [""];
    }
    let at = cursorTrail.cursors.indexOf(this.cursor);
    if (at < 0) {
      cursorTrail.cursors.push(this.cursor);
      at = cursorTrail.cursors.length - 1;
    } else {
      cursorTrail.cursors = cursorTrail.cursors.slice(0, at + 1);
    }
    this.pageNo = at + 1;
    this.newer = at > 0 ? cursorTrail.cursors[at - 1] : null;
    const v = (k) => esc(q.get(k) || "");
    return `<h1>Jobs</h1>
      <form id="job-filter" class="filters" role="search" aria-label="Filter jobs">
        <label>State <select name="state" id="filter-state"><option value="">any</option>
          ${STATES.map((s) => `<option ${q.get("state") === s ? "selected" : ""}>${s}</option>`).join("")}</select></label>
        <label>Topic <input name="topic" id="filter-topic" placeholder="a/b/*, a/**" value="${v("topic")}"></label>
        <label>Created after <input type="datetime-local" step="1" name="after" id="filter-after" value="${v("after")}"></label>
        <label>Created before <input type="datetime-local" step="1" name="before" id="filter-before" value="${v("before")}"></label>
        <label class="grow">Properties <input name="where" id="filter-where" value="${v("where")}"
          placeholder="size>=100,color=red | priority=1" title="Conditions joined by commas all hold; | separates alternatives"></label>
        <div class="filter-buttons"><button type="submit" class="primary">Filter</button>
          <button type="button" data-action="filter-clear" id="filter-clear">Clear</button></div>
      </form>
      <div class="actions bulk">
        <button type="button" data-action="retry-matching" id="retry-matching"
          title="Retry every GIVEN_UP, ERROR or STOPPED job these filters select">Retry all matching…</button>
        <button type="button" data-action="remove-matching" id="remove-matching" class="danger"
          title="Remove every job these filters select from the ledger">Remove all matching…</button>
      </div>
      <div id="job-counts"></div><div id="job-list"></div><nav id="job-pager" class="pager" aria-label="Pages"></nav>`;
  },
  // The filters as they stand in the route (#/jobs?state=...).
  filters() {
    const p = new URLSearchParams();
    FILTER_KEYS.forEach((k) => { if (this.q.get(k)) p.set(k, this.q.get(k)); });
    return p;
  },
  // The filters as the API reads them (GET /api/jobs, /count, POST /retry, /remove).
  query(extra) {
    const q = this.q, p = new URLSearchParams();
    if (q.get("state")) p.set("state", q.get("state"));
    if (q.get("topic")) p.set("topic", q.get("topic"));
    if (isoTime(q.get("after"))) p.set("created_after", isoTime(q.get("after")));
    if (isoTime(q.get("before"))) p.set("created_before", isoTime(q.get("before")));
    (q.get("where") || "").split("|").map((t) => t.trim()).filter(Boolean).forEach((t) => p.append("where", t));
    Object.entries(extra || {}).forEach(([k, v]) => p.set(k, v));
    return p;
  },
  link(cursor) {
    const p = this.filters();
    if (cursor) p.set("cursor", cursor);
    return `#/jobs${p.toString() ? "?" + p : ""}`;
  },
  async refresh() {
    const extra = { limit: PAGE_SIZE };
    if (this.cursor) extra.cursor = this.cursor;
    let list;
    try {
      list = await get(`/api/jobs?${this.query(extra)}`);
    } catch (e) {
      if (e.status !== 400) throw e;
      // A filter the API refuses (a malformed property search, a bad topic): said where it was typed.
      draw($("#job-list"), `<p class="error" id="filter-error">${esc(e.message)}</p>`);
      draw($("#job-pager"), "");
      return;
    }
    this.list = list;
    draw($("#job-counts"), `<div class="chips">${STATES.map((s) => {
      const p = this.filters();
      p.set("state", s);
      return `<a class="chip" href="#/jobs?${p}" data-state="${s}" title="All ${s} jobs (in the whole ledger: ${list.counts[s] || 0})">${badge(s)} <b>${list.counts[s] || 0}</b></a>`;
    }).join("")}</div>`);
    const shown = list.jobs;
    draw($("#job-list"), shown.length ? `<div class="scroll"><table class="jobs"><thead><tr><th>Job</th><th>Topic</th>
      <th>State</th><th class="num">Attempt</th><th>Worker</th><th>Created</th><th>Took</th><th>Progress</th></tr></thead>
      <tbody>${shown.map((j) => `<tr data-job="${esc(j.id)}" data-state="${esc(j.state)}">
        <td><a class="mono" href="#/jobs/${esc(j.id)}" data-key="job ${esc(j.id)}" title="${esc(j.id)}">…${esc(shortId(j.id))}</a></td>
        <td class="mono">${esc(j.topic)}</td><td>${badge(j.state)}</td><td class="num">${esc(j.attempt)}/${esc(j.max_attempts)}</td>
        <td>${esc(j.worker ? j.worker.name : "—")}</td><td>${time(j.created_at)}</td>
        <td>${duration(j.started_at || j.queued_at, j.finished_at)}</td><td>${progressBar(j.progress, j.state)}</td></tr>`).join("")}
      </tbody></table></div>` : `<p class="muted" id="no-jobs">${list.next_cursor
        ? "No job matches in this window of jobs; older ones may: see the next page." : "No job matches."}</p>`);
    // When the first page's rows are in the document (the benchmark reads it).
    if (window.__jobListDrawnAt === undefined) window.__jobListDrawnAt = performance.now();
    const link = (cursor, label, id, enabled) => enabled
      ? `<a href="${this.link(cursor)}" id="${id}" data-key="${id}">${label}</a>` : `<span class="muted" id="${id}">${label}</span>`;
    draw($("#job-pager"), `${link("", "⇤ Newest", "page-newest", this.pageNo > 1)}
      ${link(this.newer, "← Newer", "page-newer", this.newer !== null)}
      <span id="page-number">Page ${this.pageNo}</span>
      ${link(list.next_cursor, "Older →", "page-older", !!list.next_cursor)}`);
  },
};

// "Retry all matching" and "Remove all matching": the count first (GET /api/jobs/count), in
// the confirmation; then the action along the cursor, a page of 500 at a time, until the
// filters' whole selection was walked.
async function bulk(page, verb) {
  const retry = verb === "retry";
  const base = page.query();
  if (retry && !base.get("state")) base.set("kind", "CANCELLED"); // GIVEN_UP, ERROR and STOPPED
  if (retry && base.get("state") && !RETRYABLE.includes(base.get("state"))) {
    flash(`${base.get("state")} jobs cannot be retried; only GIVEN_UP, ERROR and STOPPED.`, "error");
    return;
  }
  let count;
  try {
    count = (await get(`/api/jobs/count?${base}`)).count;
  } catch (e) {
    flash(e.message, "error");
    return;
  }
  if (!count) {
    flash(`No job matches: nothing to ${verb}.`, "info");
    return;
  }
  const described = describeFilters(page.q);
  const question = retry
    ? `Retry ${count} job(s)${described}? Each runs again under its own id.`
    : `Remove ${count} job(s)${described} from the ledger? Running ones are stopped first. This cannot be undone.`;
  await act(question, async () => {
    const p = new URLSearchParams(base);
    p.delete("kind");
    let done = 0;
    for (;;) {
      p.set("limit", "500");
      const r = await api("POST", `/api/jobs/${verb}?${p}`);
      done += r.jobs.length;
      if (!r.next_cursor) break;
      p.set("cursor", r.next_cursor);
      flash(`${done} of ${count} job(s) ${retry ? "retried" : "removed"}…`, "info");
    }
    return done;
  }, (n) => (retry ? `${n} job(s) queued again.` : `${n} job(s) removed.`));
}

function describeFilters(q) {
  const parts = [];
  if (q.get("state")) parts.push(q.get("state"));
  if (q.get("topic")) parts.push(`on ${q.get("topic")}`);
  if (q.get("after")) parts.push(`created after ${q.get("after").replace("T", " ")}`);
  if (q.get("before")) parts.push(`created before ${q.get("before").replace("T", " ")}`);
  if (q.get("where")) parts.push(`where ${q.get("where")}`);
  return parts.length ? ` (${parts.join(", ")})` : " (every job in the ledger)";
}

function progressBar(p, state) {
  if (!p) return FINAL.includes(state) ? "" : `<span class="muted">—</span>`;
  if (p.steps) {
    const pct = Math.min(100, Math.round((100 * p.done) / p.steps));
    return `<progress max="${p.steps}" value="${p.done}" title="${p.done}/${p.steps}">${pct}%</progress> ${pct}%`;
  }
  return p.log.length ? `<span class="muted">${esc(p.log[p.log.length - 1])}</span>` : "";
}

function payloadTable(entries, what) {
  if (!entries.length) return `<p class="muted">No ${what}.</p>`;
  return `<div class="scroll"><table><thead><tr><th>Path</th><th>Type</th><th class="num">Size</th><th>sha256</th><th></th></tr></thead>
    <tbody>${entries.map((e) => `<tr><td class="mono">${esc(e.path)}</td><td>${esc(e.mime_type || "—")}</td>
      <td class="num">${bytes(e.blob.size)}</td><td class="mono" title="${esc(e.blob.sha256)}">${esc(e.blob.sha256.slice(0, 12))}…</td>
      <td><a href="${esc(blobPath(e.blob, e.mime_type))}" data-action="download" data-key="dl ${esc(e.path)}"
        data-path="${esc(blobPath(e.blob, e.mime_type))}" data-sha="${esc(e.blob.sha256)}"
        data-name="${esc(e.path.split("/").pop())}">Download</a></td></tr>`).join("")}</tbody></table></div>`;
}

pages.job = {
  nav: "jobs",
  mount(q, id) {
    this.id = id;
    return `<p><a href="#/jobs">← Jobs</a></p><h1>Job <span class="mono">${esc(id)}</span></h1>
      <div class="actions" id="job-actions"></div><div id="job-detail"></div>`;
  },
  async refresh() {
    const j = await get(`/api/jobs/${encodeURIComponent(this.id)}`);
    this.job = j;
    const final = FINAL.includes(j.state);
    draw($("#job-actions"), `
      <button type="button" data-action="job-stop" id="job-stop" ${final ? "disabled" : ""}>Stop</button>
      <button type="button" data-action="job-retry" id="job-retry" ${RETRYABLE.includes(j.state) ? "" : "disabled"}>Retry</button>
      <button type="button" data-action="job-remove" id="job-remove" class="danger">Remove</button>`);
    const result = j.result ? `${badge(j.result.status)} ${esc(j.result.reason || "")}
      ${j.state === "FAILED" && j.next_attempt_at ? "(will be retried)" : ""}` : "—";
    const p = j.progress;
    draw($("#job-detail"), `<section><dl class="props wide" id="job-props" data-state="${esc(j.state)}" data-attempt="${esc(j.attempt)}">
        <dt>State</dt><dd id="job-state">${badge(j.state)}</dd>
        <dt>Topic</dt><dd class="mono">${esc(j.topic)}</dd>
        <dt>Attempt</dt><dd id="job-attempt">${esc(j.attempt)} of ${esc(j.max_attempts)}${j.declines ? `, ${esc(j.declines)} declined` : ""}${j.retries ? `, retried ${esc(j.retries)} time(s)` : ""}${j.redeliveries ? `, ${esc(j.redeliveries)} redelivery(ies)` : ""}${j.detached ? ", detached from its message" : ""}</dd>
        <dt>Worker</dt><dd>${j.worker ? `${esc(j.worker.name)} <span class="mono muted">${esc(j.worker.id)}</span>` : "—"}</dd>
        <dt>Result</dt><dd id="job-result">${result}</dd>
        <dt>Created</dt><dd>${time(j.created_at)}</dd>
        <dt>Queued</dt><dd>${time(j.queued_at)}</dd>
        <dt>Started</dt><dd>${time(j.started_at)}</dd>
        <dt>Finished</dt><dd>${time(j.finished_at)} (${duration(j.started_at, j.finished_at)} running)</dd>
        ${j.next_attempt_at ? `<dt>Next attempt</dt><dd>${time(j.next_attempt_at)}</dd>` : ""}
        ${j.timeout_ms ? `<dt>Timeout</dt><dd>${esc(j.timeout_ms)} ms</dd>` : ""}
        ${j.trace ? `<dt>Trace</dt><dd class="mono">${esc(typeof j.trace === "string" ? j.trace : JSON.stringify(j.trace))}</dd>` : ""}
      </dl></section>
      <section><h2>Progress</h2>${p ? `<p>${progressBar(p, j.state) || "—"} ${p.eta ? `· ETA ${time(p.eta)}` : ""} · reported ${time(p.updated_at)}</p>
        ${p.log.length ? `<pre class="log">${esc(p.log.join("\n"))}</pre>` : ""}` : `<p class="muted">No progress reported.</p>`}</section>
      <section><h2>Inputs</h2>${payloadTable(j.inputs, "inputs")}</section>
      <section><h2>Outputs</h2>${payloadTable(j.outputs, "outputs")}</section>
      <section><h2>Properties</h2>${json(j.properties)}</section>
      ${Object.keys(j.output_properties || {}).length ? `<section><h2>Output properties</h2>${json(j.output_properties)}</section>` : ""}`);
  },
};

pages.failures = {
  nav: "failures",
  mount() {
    return `<h1>Failures</h1><p class="muted">Dead letters: messages a worker or RabbitMQ could not act on. Replay sends one
      again where it was going; discard drops it.</p>
      <div class="actions"><button type="button" data-action="dead-replay-all" id="dead-replay-all" disabled>Replay all…</button></div>
      <div id="dead-list"></div>
      <section><h2>Jobs that ended badly</h2><div id="dead-jobs"></div></section>`;
  },
  async refresh() {
    const [dead, given, errors] = await Promise.all([
      get("/api/dead-letters?limit=1000"), get("/api/jobs?state=GIVEN_UP&limit=10"), get("/api/jobs?state=ERROR&limit=10"),
    ]);
    const list = dead.dead_letters;
    this.dead = list;
    this.deadMore = list.length >= 1000;
    $("#dead-replay-all").disabled = !list.length;
    draw($("#dead-list"), list.length ? `<div class="scroll"><table class="dead"><thead><tr><th>Dead since</th><th>Reason</th>
      <th>Origin</th><th>Worker</th><th class="num">Size</th><th>Preview</th><th></th></tr></thead><tbody>${list.map((d) =>
      `<tr data-dead="${esc(d.id)}" data-message="${esc(d.message_id || "")}"><td>${time(d.dead_at)}</td><td>${esc(d.reason)}</td>
        <td>${d.topic ? `topic <span class="mono">${esc(d.topic)}</span>` : `<span class="mono">${esc(d.exchange || "?")} / ${esc(d.routing_key)}</span>`}
          ${d.message_id ? `<br><small class="mono">${esc(d.message_id)}</small>` : ""}</td>
        <td class="mono">${esc(d.worker || "—")}</td><td class="num">${bytes(d.size)}</td>
        <td><code class="preview">${esc(d.preview.slice(0, 80))}${d.preview.length > 80 ? "…" : ""}</code></td>
        <td class="row-actions"><a href="#/failures/${encodeURIComponent(d.id)}" data-key="show ${esc(d.id)}">Show</a>
          <button type="button" data-action="dead-replay" data-id="${esc(d.id)}" data-key="replay ${esc(d.id)}">Replay</button>
          <button type="button" data-action="dead-discard" data-id="${esc(d.id)}" data-key="discard ${esc(d.id)}" class="danger">Discard</button></td>
      </tr>`).join("")}</tbody></table></div>` : `<p class="muted" id="no-dead">No dead letters.</p>`);
    const bad = given.jobs.concat(errors.jobs).sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
    draw($("#dead-jobs"), bad.length ? `<ul>${bad.map((j) => `<li>${badge(j.state)} <a class="mono" href="#/jobs/${esc(j.id)}">…${esc(shortId(j.id))}</a>
      ${esc(j.topic)} — ${esc(j.result && j.result.reason || "")}</li>`).join("")}</ul>
      <p><a href="#/jobs?state=GIVEN_UP">All given up</a> · <a href="#/jobs?state=ERROR">All in error</a></p>` : `<p class="muted">None.</p>`);
  },
};

pages.deadLetter = {
  nav: "failures",
  mount(q, id) {
    this.id = id;
    return `<p><a href="#/failures">← Failures</a></p><h1>Dead letter</h1><div id="dead-one"></div>`;
  },
  async refresh() {
    let d;
    try {
      d = await get(`/api/dead-letters/${encodeURIComponent(this.id)}`);
    } catch (e) {
      if (e.status !== 404) throw e;
      draw($("#dead-one"), `<p class="muted">It is no longer in the dead-letter queue (replayed or discarded).</p>`);
      return;
    }
    draw($("#dead-one"), `<div class="actions">
        <button type="button" data-action="dead-replay" data-id="${esc(d.id)}">Replay</button>
        <button type="button" data-action="dead-discard" data-id="${esc(d.id)}" class="danger">Discard</button></div>
      <dl class="props wide"><dt>Reason</dt><dd>${esc(d.reason)}</dd><dt>Dead since</dt><dd>${time(d.dead_at)}</dd>
        <dt>Exchange</dt><dd class="mono">${esc(d.exchange || "—")}</dd><dt>Routing key</dt><dd class="mono">${esc(d.routing_key)}</dd>
        <dt>Topic</dt><dd class="mono">${esc(d.topic || "—")}</dd><dt>Type</dt><dd class="mono">${esc(d.kind || "—")}</dd>
        <dt>Message id</dt><dd class="mono">${d.message_id ? `${esc(d.message_id)}` : "—"}</dd>
        <dt>Worker</dt><dd class="mono">${esc(d.worker || "—")}</dd><dt>Deliveries</dt><dd>${esc(d.delivery_count)}</dd>
        <dt>Size</dt><dd>${bytes(d.size)}</dd><dt>Id</dt><dd class="mono">${esc(d.id)}</dd></dl>
      <h2>Preview</h2><pre class="preview">${esc(d.preview)}</pre>`);
  },
};

pages.assets = {
  nav: "assets",
  mount(q) {
    this.folder = q.get("folder") || "/content/dam";
    const parts = this.folder.split("/").filter(Boolean);
    const crumbs = [`<a href="#/assets?folder=/">/</a>`].concat(parts.map((p, n) => {
      const path = "/" + parts.slice(0, n + 1).join("/");
      return `<a href="#/assets?folder=${encodeURIComponent(path)}">${esc(p)}</a>`;
    }));
    return `<h1>Assets</h1><nav class="crumbs" aria-label="Folder">${crumbs.join(" / ")}</nav>
      <div id="asset-folder"></div>`;
  },
  async refresh() {
    const f = await get(`/api/assets?folder=${encodeURIComponent(this.folder)}`);
    const folders = f.folders.map((d) => `<tr class="folder"><td>📁 <a href="#/assets?folder=${encodeURIComponent(d.path)}"
      data-key="folder ${esc(d.path)}">${esc(d.name)}/</a></td><td>folder</td><td class="num">${esc(d.assets)} asset(s)</td><td></td><td></td></tr>`);
    const assets = f.assets.map((a) => `<tr data-asset="${esc(a.path)}"><td><a href="#/asset${esc(encodeURI(a.path))}"
      data-key="asset ${esc(a.path)}">${esc(a.name)}</a></td><td>${esc(a.mime_type)}</td><td class="num">${bytes(a.size)}</td>
      <td>${esc(a.renditions)} rendition(s) ${badge(a.state)}</td><td>${time(a.modified_at)}</td></tr>`);
    draw($("#asset-folder"), folders.length + assets.length ? `<div class="scroll"><table><thead><tr><th>Name</th><th>Type</th>
      <th class="num">Size</th><th>Workflow</th><th>Modified</th></tr></thead><tbody>${folders.concat(assets).join("")}</tbody></table></div>
      ${f.truncated ? `<p class="muted">This folder holds more than one listing reads; not everything is shown.</p>` : ""}`
      : `<p class="muted">Nothing in ${esc(f.path)}. Upload with <code>curl -T a.jpg http://leader/api/assets/content/dam/a.jpg</code>.</p>`);
  },
};

// Scalar metadata as a two-column table (what a user scans); nested values as JSON.
function metadataTable(m) {
  if (!m || typeof m !== "object" || !Object.keys(m).length) return `<p class="muted">None yet.</p>`;
  return `<dl class="props wide meta">${Object.keys(m).sort().map((k) => `<dt>${esc(k)}</dt><dd>${
    m[k] !== null && typeof m[k] === "object" ? `<code>${esc(JSON.stringify(m[k]))}</code>` : esc(m[k])}</dd>`).join("")}</dl>`;
}

pages.asset = {
  nav: "assets",
  mount(q, path) {
    this.path = path;
    const folder = path.split("/").slice(0, -1).join("/") || "/";
    return `<p><a href="#/assets?folder=${encodeURIComponent(folder)}">← ${esc(folder)}</a></p>
      <h1 class="mono">${esc(path)}</h1>
      <div class="actions"><button type="button" data-action="reprocess" id="asset-reprocess">Reprocess</button></div>
      <section><h2>Renditions</h2><div id="asset-renditions" class="renditions"></div></section><div id="asset-detail"></div>`;
  },
  async refresh() {
    const a = await get(`/api/assets${encodeURI(this.path)}`);
    const base = `/api/assets${encodeURI(this.path)}/renditions/`;
    const job = a.job;
    draw($("#asset-detail"), `<dl class="props wide">
      <dt>Type</dt><dd>${esc(a.mime_type)}</dd><dt>Original</dt><dd>${bytes(a.original.size)}
        <span class="mono muted">${esc(a.original.sha256.slice(0, 12))}…</span>
        <a href="${esc(base)}original" data-action="download" data-path="${esc(base)}original" data-sha="${esc(a.original.sha256)}"
          data-name="${esc(a.path.split("/").pop())}">Download</a></dd>
      <dt>Workflow</dt><dd id="asset-job">${job ? `${esc(job.workflow)} ${job.id ? `<a class="mono" href="#/jobs/${esc(job.id)}">…${esc(shortId(job.id))}</a>` : ""}
        ${badge(job.state)} ${job.error ? esc(job.error) : ""} ${job.model ? `model ${esc(job.model)} v${esc(job.model_version)}` : ""}` : "—"}</dd>
      <dt>Created</dt><dd>${time(a.created_at)}</dd><dt>Modified</dt><dd>${time(a.modified_at)}</dd>
      <dt>Processed</dt><dd>${time(a.processed_at)}</dd></dl>
      <section><h2>Metadata</h2>${metadataTable(a.metadata)}</section>
      ${a.other_outputs.length ? `<section><h2>Other outputs</h2>${payloadTable(a.other_outputs, "outputs")}</section>` : ""}`);
    const rends = a.renditions.map((r) => ({ name: r.name, blob: r.blob, mime: r.mime_type, w: r.width, h: r.height }));
    if (a.mime_type.startsWith("image/")) rends.unshift({ name: "original", blob: a.original, mime: a.mime_type });
    draw($("#asset-renditions"), rends.length ? rends.map((r) => `<figure data-rendition="${esc(r.name)}">
      ${r.mime.startsWith("image/") ? `<img alt="${esc(r.name)}" data-src="${esc(base + encodeURIComponent(r.name))}" data-sha="${esc(r.blob.sha256)}">`
        : `<div class="file">${esc(r.mime)}</div>`}
      <figcaption><a href="${esc(base + encodeURIComponent(r.name))}" data-action="download" data-path="${esc(base + encodeURIComponent(r.name))}"
        data-sha="${esc(r.blob.sha256)}" data-name="${esc(r.name)}">${esc(r.name)}</a><br>
        <small>${r.w ? `${esc(r.w)}×${esc(r.h)} · ` : ""}${esc(r.mime)} · ${bytes(r.blob.size)}</small></figcaption></figure>`).join("")
      : `<p class="muted">No renditions yet.</p>`);
    // Images come through fetch, so the token goes along when one is needed.
    for (const img of document.querySelectorAll("#asset-renditions img[data-src]:not([src])")) {
      objectUrl(img.dataset.src, img.dataset.sha).then((url) => { img.src = url; })
        .catch((e) => { img.alt = `${img.alt}: ${e.message}`; });
    }
  },
};

// ---------------------------------------------------------------------------------------------
// Routing, polling, actions
// ---------------------------------------------------------------------------------------------

function parseRoute() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  const q = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  if (parts.length === 0) return { page: "overview", q };
  if (parts[0] === "jobs" && parts[1]) return { page: "job", q, arg: decodeURIComponent(parts[1]) };
  if (parts[0] === "failures" && parts[1]) return { page: "deadLetter", q, arg: decodeURIComponent(parts[1]) };
  if (parts[0] === "asset") return { page: "asset", q, arg: decodeURI("/" + parts.slice(1).join("/")) };
  if (pages[parts[0]]) return { page: parts[0], q };
  return { page: null, q };
}

let current = null;
let refreshing = null;
let live = true;

async function route() {
  const r = parseRoute();
  const v = view();
  document.querySelectorAll("[data-nav]").forEach((a) => {
    if (r.page && a.dataset.nav === pages[r.page].nav) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  if (!r.page) {
    current = null;
    v.innerHTML = `<h1>Not found</h1><p>No page at ${esc(location.hash)}. <a href="#/">Overview</a></p>`;
    return;
  }
  // A message stays with the page it is about, unless the action that gave it navigates
  // (a removed job goes back to the list).
  if (flash.keep) {
    flash.keep = false;
  } else if (!current || current.name !== r.page) {
    $("#flash").textContent = "";
    $("#flash").className = "";
  }
  current = Object.create(pages[r.page]);
  current.name = r.page;
  current.hash = location.hash;
  v.dataset.page = r.page;
  delete v.dataset.loaded;
  v.innerHTML = current.mount(r.q, r.arg) + `<p class="updated muted" id="updated"></p>`;
  document.title = `${v.querySelector("h1") ? v.querySelector("h1").textContent : "offloader"} · offloader`;
  await refreshNow();
}

let generation = 0;

async function refreshNow() {
  const page = current;
  if (!page) return;
  if (refreshing) await refreshing.catch(() => {});
  const mine = ++generation;
  refreshing = (async () => {
    try {
      await page.refresh();
      if (page !== current) return;
      view().dataset.loaded = String(mine);
      // Which route the drawn page is of (a new route of the same page keeps `loaded` set).
      view().dataset.route = page.hash || "";
      draw($("#updated"), `Updated ${esc(new Date().toLocaleTimeString())}${live ? " · live" : " · paused"}`);
      $("#view").classList.remove("stale");
    } catch (e) {
      if (page !== current) return;
      $("#view").classList.add("stale");
      draw($("#updated"), `<span class="error">Could not refresh: ${esc(e.message)}</span>`);
    }
  })();
  return refreshing;
}

function anyDialogOpen() {
  return !!document.querySelector("dialog[open]");
}

setInterval(() => {
  if (live && current && !anyDialogOpen() && !acting && !document.hidden) refreshNow();
}, POLL_MS);

document.addEventListener("click", (ev) => {
  const el = ev.target.closest("[data-action]");
  if (!el) return;
  ev.preventDefault();
  const page = current;
  const d = el.dataset;
  switch (d.action) {
    case "topic-state":
      // aria-disabled rather than disabled while a change is pending: the button keeps focus.
      if (el.getAttribute("aria-pressed") !== "true" && el.getAttribute("aria-disabled") !== "true") {
        changeTopic(d.topic, d.instance, d.set);
      }
      break;
    case "job-stop":
      act(`Stop job ${page.id}? It ends STOPPED and is not retried.`,
        () => api("POST", `/api/jobs/${encodeURIComponent(page.id)}/stop`), "Job stopped.");
      break;
    case "job-retry":
      act(`Retry job ${page.id}? It runs again under the same id.`,
        () => api("POST", `/api/jobs/${encodeURIComponent(page.id)}/retry`), (j) => `Job queued again, attempt ${j.attempt}.`);
      break;
    case "job-remove":
      act(`Remove job ${page.id} from the ledger? This cannot be undone.`,
        () => api("DELETE", `/api/jobs/${encodeURIComponent(page.id)}`), "Job removed.")
        .then((removed) => {
          if (removed && current === page) {
            flash.keep = true;
            location.hash = "#/jobs";
          }
        });
      break;
    case "retry-matching":
      bulk(page, "retry");
      break;
    case "remove-matching":
      bulk(page, "remove");
      break;
    case "filter-clear":
      location.hash = "#/jobs";
      break;
    case "dead-replay-all": {
      const n = page.dead ? page.dead.length : 0;
      act(`Replay all ${n}${page.deadMore ? "+" : ""} dead letter(s)? Each is published again where it was going.`,
        () => api("POST", "/api/dead-letters/replay"),
        (r) => `${r.replayed.length} replayed${r.failed.length ? `, ${r.failed.length} not (no queue takes them): they stay dead` : ""}.`);
      break;
    }
    case "dead-replay":
      act("Replay this dead letter? It is published again where it was going.",
        () => api("POST", `/api/dead-letters/${encodeURIComponent(d.id)}/replay`), "Replayed.");
      break;
    case "dead-discard":
      act("Discard this dead letter for good?",
        () => api("DELETE", `/api/dead-letters/${encodeURIComponent(d.id)}`), "Discarded.");
      break;
    case "reprocess":
      act(`Reprocess ${page.path}? Its workflow runs again on the current original.`,
        () => api("POST", `/api/reprocess${encodeURI(page.path)}`),
        (o) => (o.job ? `Workflow started: job ${o.job.id}.` : `No job started${o.workflow_error ? ": " + o.workflow_error : "."}`));
      break;
    case "skip":
      // The hash is the route, so the skip link moves the focus instead of going to #view.
      view().focus();
      break;
    case "download":
      download(d.path, d.sha, d.name).catch((e) => flash(e.message, "error"));
      break;
  }
});

document.addEventListener("submit", (ev) => {
  if (ev.target.id !== "job-filter") return;
  ev.preventDefault();
  const p = new URLSearchParams();
  const values = {
    state: $("#filter-state").value, topic: $("#filter-topic").value.trim(), after: $("#filter-after").value,
    before: $("#filter-before").value, where: $("#filter-where").value.trim(),
  };
  FILTER_KEYS.forEach((k) => { if (values[k]) p.set(k, values[k]); });
  location.hash = `#/jobs${p.toString() ? "?" + p : ""}`;
});

function setLive(on) {
  live = on;
  const b = $("#live-toggle");
  b.setAttribute("aria-pressed", String(on));
  b.textContent = on ? "Live" : "Paused";
  b.title = on ? "Refreshing every 2 seconds; click to pause" : "Paused; click to refresh every 2 seconds again";
  if (on) refreshNow();
}

// Job changes pushed by the leader (GET /api/events): the pages about jobs redraw at once
// instead of on the next poll. Polling stays, for everything else and for when the stream is
// down (EventSource reconnects by itself).
const JOB_PAGES = ["overview", "jobs", "job", "failures", "asset"];
let pushed = null;

let source = null;

function listenForJobs() {
  if (!window.EventSource || source) return;
  source = new EventSource("/api/events");
  source.addEventListener("job", () => {
    window.__jobEvents = (window.__jobEvents || 0) + 1;
    if (!live || !current || !JOB_PAGES.includes(current.name) || anyDialogOpen() || acting) return;
    clearTimeout(pushed);
    pushed = setTimeout(refreshNow, 150);
  });
}

// A page the browser keeps after the user leaves it (the back-forward cache) would keep its
// stream open, and a browser gives one host six connections: a few visits would leave the
// next page waiting for one. The stream closes when the page is hidden and opens again when
// it is shown.
window.addEventListener("pagehide", () => {
  if (source) source.close();
  source = null;
});
window.addEventListener("pageshow", (e) => {
  if (e.persisted) listenForJobs();
});

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", () => {
  $("#live-toggle").addEventListener("click", () => setLive(!live));
  $("#token-button").addEventListener("click", () => askToken().then(() => refreshNow()));
  setLive(true);
  listenForJobs();
  route();
});
