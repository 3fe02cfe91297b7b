// The console page: plain JavaScript over the /api/ endpoints, live updates from /api/events.
// Everything shown is inserted as text (never as HTML), so alert contents cannot inject markup.
"use strict";

const state = {
  session: null, view: "alerts", offset: 0, limit: 50, selected: null, stale: new Set(),
  stores: [], releases: [], events: null, refreshTimer: null,
};
const $ = (id) => document.getElementById(id);
const LEVELS = ["purple", "red", "orange", "yellow", "green"];

// --- small helpers ---------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "className") element.className = value;
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else element.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    element.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

const pct = (v, digits = 1) => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(digits)}%`);
const pts = (v) => (v === null || v === undefined ? "–" : `${v >= 0 ? "+" : ""}${(v * 100).toFixed(1)} pts`);
const money = (v) => (v === null || v === undefined ? "–"
  : v.toLocaleString("en", { minimumFractionDigits: 2, maximumFractionDigits: 2 }));
const when = (iso) => (iso ? iso.slice(0, 16).replace("T", " ") : "–");
const interval = (low, high, fmt = pct) => (low === null || low === undefined ? "" : ` [${fmt(low)}, ${fmt(high)}]`);
const storeKey = (s) => `${s.chain}/${s.store_id}`;
const badge = (level) => el("span", { className: `level ${level}` }, level);

function toast(text, error = false) {
  const box = $("toast");
  box.textContent = text;
  box.className = error ? "error" : "";
  box.hidden = false;
  clearTimeout(box.timer);
  box.timer = setTimeout(() => { box.hidden = true; }, 4000);
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json" };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (options.method && options.method !== "GET" && state.session) headers["X-CSRF-Token"] = state.session.csrf_token;
  const response = await fetch(path, {
    method: options.method || "GET", headers, credentials: "same-origin",
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  if (response.status === 204) return null;
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof payload.detail === "string" ? payload.detail
      : Array.isArray(payload.detail) ? payload.detail.map((d) => d.msg).join("; ") : response.statusText;
    if (response.status === 401 && path !== "/api/login") showLogin();
    throw new ApiError(response.status, detail);
  }
  return payload;
}

function guarded(action) {
  return async (event) => {
    if (event) event.preventDefault();
    try { await action(event); } catch (error) { if (error.status !== 401) toast(error.message, true); }
  };
}

// --- session ---------------------------------------------------------------------------------

function showLogin() {
  state.session = null;
  if (state.events) { state.events.close(); state.events = null; }
  $("tabs").hidden = true;
  $("account").hidden = true;
  document.querySelectorAll(".view").forEach((v) => { v.hidden = v.id !== "login-view"; });
  $("password").value = "";
  $("username").focus();
}

function startSession(session) {
  state.session = session;
  $("who").textContent = `${session.username} (${session.role}${session.stores.length ? ": " + session.stores.join(", ") : ""})`;
  $("tabs").hidden = false;
  $("account").hidden = false;
  document.querySelector("[data-admin]").hidden = session.role !== "admin";
  document.body.dataset.role = session.role;
  connectEvents();
  loadStores().then(fillStoreSelects).catch(() => {});
  loadActions().catch(() => {});
  show(state.view === "users" && session.role !== "admin" ? "alerts" : state.view);
}

async function login() {
  $("login-error").textContent = "";
  try {
    const session = await api("/api/login", { method: "POST",
      body: { username: $("username").value, password: $("password").value } });
    startSession(session);
  } catch (error) {
    $("login-error").textContent = error.message;
  }
}

async function logout() {
  try { await api("/api/logout", { method: "POST" }); } finally { showLogin(); }
}

// --- live updates ----------------------------------------------------------------------------

function connectEvents() {
  if (state.events) state.events.close();
  const source = new EventSource("/api/events");
  state.events = source;
  const live = $("live");
  source.onopen = () => { live.className = "live on"; };
  source.onerror = () => {
    live.className = "live off";
    if (source.readyState === EventSource.CLOSED) api("/api/session").then(() => setTimeout(connectEvents, 3000)).catch(() => {});
  };
  const touch = (...views) => { views.forEach((v) => state.stale.add(v)); scheduleRefresh(); };
  source.addEventListener("alert", (e) => {
    const alert = JSON.parse(e.data);
    toast(`New ${alert.level} alert at ${alert.chain}/${alert.store_id} (score ${alert.risk_score})`);
    touch("alerts", "stores");
  });
  source.addEventListener("work", () => touch("alerts", "results"));
  source.addEventListener("store", () => touch("stores", "footfall", "quality"));
  source.addEventListener("rounds", () => touch("rounds"));
  source.addEventListener("logout", () => showLogin());
}

function scheduleRefresh() {
  // a burst of events (a store's daily alerts, hundreds of status updates) makes one reload,
  // and the open view reloads at most every 2 s
  if (state.refreshTimer) return;  // one is due already; it will see this event's view as stale too
  const wait = Math.max(300, (state.lastRefresh || 0) + 2000 - Date.now());
  state.refreshTimer = setTimeout(() => {
    state.refreshTimer = null;
    if (!state.stale.has(state.view)) return;
    state.stale.delete(state.view);
    state.lastRefresh = Date.now();
    load(state.view);
  }, wait);
}

// --- views -----------------------------------------------------------------------------------

const loaders = {
  alerts: () => loadAlerts(), stores: () => loadStores().then(renderStores), footfall: () => loadFootfall(),
  quality: () => loadQuality(),
  results: () => loadResults(), rounds: () => loadRounds(), users: () => loadUsers(),
};

function load(view) {
  return loaders[view]().catch((error) => { if (error.status !== 401) toast(error.message, true); });
}

function show(view) {
  state.view = view;
  state.stale.delete(view);
  document.querySelectorAll(".view").forEach((v) => { v.hidden = v.id !== `${view}-view`; });
  document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("active", b.dataset.view === view));
  return load(view);
}

// alerts

function alertQuery() {
  const params = new URLSearchParams();
  const store = $("f-store").value;
  if (store) { const [chain, storeId] = store.split("/"); params.set("chain", chain); params.set("store_id", storeId); }
  for (const [id, name] of [["f-kind", "kind"], ["f-level", "level"], ["f-action", "action"], ["f-control", "control"],
                            ["f-state", "state"], ["f-age", "max_age_days"]]) {
    if ($(id).value) params.set(name, $(id).value);
  }
  if ($("f-mine").checked) params.set("assignee", "me");
  params.set("limit", state.limit);
  params.set("offset", state.offset);
  return params.toString();
}

async function loadAlerts() {
  const request = (state.alertRequest = (state.alertRequest || 0) + 1);
  const table = $("alert-table");
  table.setAttribute("aria-busy", "true");
  const page = await api(`/api/alerts?${alertQuery()}`).finally(() => {
    if (request === state.alertRequest) table.setAttribute("aria-busy", "false");
  });
  if (request !== state.alertRequest) return;  // a later filter change already asked again
  const body = table.tBodies[0];
  body.replaceChildren(...page.alerts.map((a) => el("tr", {
    dataset: { alertId: a.alert_id, alertKey: alertPath(a) }, className: alertPath(a) === state.selected ? "selected" : null,
    onclick: () => selectAlert(alertPath(a)),
  },
  el("td", {}, badge(a.level), a.kind === "win_back" ? el("span", { className: "tag" }, " win-back") : ""),
  el("td", { className: "num" }, a.risk_score), el("td", {}, `${a.chain}/${a.store_id}`),
  el("td", {}, a.customer_ref), el("td", {}, a.control ? el("em", {}, "control") : (a.action_label || a.action || "–")),
  el("td", { className: "reasons" }, (a.reasons[0] || {}).text || ""),
  el("td", {}, el("span", { className: `state ${a.state}` }, a.result || a.state)),
  el("td", {}, a.assignee || ""), el("td", {}, when(a.received_at)))));
  const last = Math.min(page.offset + page.alerts.length, page.total);
  $("alert-count").textContent = page.total ? `${page.offset + 1}–${last} of ${page.total} alerts` : "No alerts match.";
  $("prev-page").disabled = page.offset === 0;
  $("next-page").disabled = last >= page.total;
  if (state.selected) await selectAlert(state.selected, false);
}

// An alert id is unique within its store only: an alert is addressed as chain/store/alert id.
function alertPath(a) {
  return [a.chain, a.store_id, a.alert_id].map(encodeURIComponent).join("/");
}

async function selectAlert(key, highlight = true) {
  state.selected = key;
  if (highlight) {
    document.querySelectorAll("#alert-table tbody tr").forEach((r) => r.classList.toggle("selected", r.dataset.alertKey === key));
  }
  try {
    renderDetail(await api(`/api/alerts/${key}`));
  } catch (error) {
    if (error.status === 404) { state.selected = null; $("alert-detail").hidden = true; } else throw error;
  }
}

function renderDetail(a) {
  const box = $("alert-detail");
  const canAct = state.session && state.session.role !== "viewer";
  const act = (path, body, message) => guarded(async () => {
    renderDetail(await api(`/api/alerts/${alertPath(a)}/${path}`, { method: "POST", body }));
    toast(message);
    state.stale.add("results");
    await loadAlerts();
  });
  const facts = [
    ["Store", `${a.chain}/${a.store_id}`], ["Customer", a.customer_ref], ["As of", a.as_of],
    ["Action", a.control ? "none: control group" : (a.action_label || a.action || "none")],
    ["CLV estimate", money(a.clv_estimate)], ["Cost cap", money(a.action_cost_cap)],
    ["State", a.state], ["Assignee", a.assignee || "–"], ["Contacted", when(a.contacted_at)],
    ["Offer", a.offer || "–"], ["Result", a.result || "–"], ["Cost recorded", money(a.cost)],
    ["Model", a.model_version],
    ["List", a.kind === "win_back" ? "win-back (lapsed by their own rhythm)" : "early warning (still buying, drifting away)"],
  ];
  const children = [
    el("h2", {}, badge(a.level), ` ${a.risk_score} · ${a.customer_ref}`),
    el("dl", {}, facts.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
    el("div", { className: "why" },
      el("div", {}, el("h3", {}, "Why"),
        el("ol", { className: "reasons" }, a.reasons.map((r) => el("li", {}, r.text || JSON.stringify(r))))),
      el("div", {}, el("h3", {}, "Recent events"),
        a.recent_events.length
          ? el("ul", { className: "recent-events" }, a.recent_events.map((e) => el("li", { dataset: { kind: e.kind } }, e.text)))
          : el("p", { className: "muted recent-events" }, "none reported in the last 90 days"))),
  ];
  if (a.control) {
    children.push(el("p", { className: "note" }, "Held out from action (control group): record only whether the customer stayed or churned."));
  }
  if (canAct) {
    const controls = el("div", { className: "actions" });
    if (!a.control) {
      const assignee = el("input", { id: "assignee", placeholder: "username", value: a.assignee || "" });
      controls.append(
        el("div", { className: "row" }, assignee,
          el("button", { type: "button", id: "assign", onclick: (e) => act("assign", { assignee: assignee.value || null }, "Assigned")(e) }, "Assign"),
          el("button", { type: "button", id: "assign-me", onclick: act("assign", { assignee: state.session.username }, "Assigned to you") }, "Assign to me")),
        el("div", { className: "row" },
          el("button", { type: "button", id: "contacted", onclick: act("contacted", {}, "Marked contacted") }, "Mark contacted")));
    }
    const kinds = a.control ? ["stayed", "churned"] : ["offer_accepted", "offer_declined", "stayed", "churned"];
    const kind = el("select", { id: "outcome-kind" }, kinds.map((k) => el("option", { value: k }, k.replace("_", " "))));
    const cost = el("input", { id: "outcome-cost", type: "number", min: "0", step: "0.01", placeholder: "cost", title: "actual cost of the action (optional)" });
    const note = el("input", { id: "outcome-note", placeholder: "note (optional)", maxlength: "500" });
    controls.append(el("div", { className: "row" }, kind, a.control ? null : cost, note,
      el("button", { type: "button", id: "record-outcome", onclick: (e) => act("outcome", {
        outcome: kind.value, cost: !a.control && cost.value !== "" ? Number(cost.value) : null, note: note.value || null,
      }, "Outcome recorded")(e) }, "Record outcome")));
    children.push(controls);
  }
  if (a.outcomes.length) {
    children.push(el("h3", {}, "History"), el("ul", { className: "history" }, a.outcomes.map((o) =>
      el("li", {}, `${when(o.recorded_at)} ${o.outcome.replace("_", " ")} by ${o.recorded_by}`
        + (o.cost !== null ? ` (cost ${money(o.cost)})` : "") + (o.note ? `: ${o.note}` : "")))));
  }
  box.replaceChildren(...children);
  box.dataset.alertId = a.alert_id;
  box.hidden = false;
}

async function loadActions() {
  const actions = await api("/api/actions");
  const select = $("f-action");
  select.replaceChildren(el("option", { value: "" }, "all actions"), ...actions.map((a) => el("option", { value: a }, a)));
}

// stores

async function loadStores() {
  state.stores = await api("/api/stores");
  return state.stores;
}

function fillStoreSelects() {
  for (const id of ["f-store", "r-store", "ff-store", "dq-store"]) {
    const select = $(id), current = select.value;
    const options = state.stores.map((s) => el("option", { value: storeKey(s) }, storeKey(s)));
    if (id !== "ff-store" && id !== "dq-store") options.unshift(el("option", { value: "" }, "all stores"));
    select.replaceChildren(...options);
    if ([...select.options].some((o) => o.value === current)) select.value = current;
  }
}

function renderStores() {
  fillStoreSelects();
  $("store-table").tBodies[0].replaceChildren(...state.stores.map((s) => {
    const shown = s.silent ? "silent" : s.state;
    const alarms = Object.entries(s.alarms || {}).map(([k, v]) => `${k}: ${v}`).join("; ");
    return el("tr", { dataset: { store: storeKey(s) } },
      el("td", {}, storeKey(s)),
      el("td", {}, el("span", { className: `health ${shown}`, title: s.reason || "" }, shown)),
      el("td", {}, when(s.last_seen)),
      el("td", { className: "num" }, s.outbox_unacked ?? "–"),
      el("td", {}, s.model_version || "–"),
      el("td", {}, el("span", { className: `health cam-${s.camera_state}` },
        s.cameras.length ? s.cameras.map((c) => `${c.source}: ${c.state}`).join(", ") : "none")),
      el("td", { className: alarms ? "alarm" : "" }, alarms || "–"),
      el("td", { className: "num" }, s.missing_alerts ? `${s.missing_alerts} (${s.open_gaps} gaps)` : "0"),
      el("td", { className: "num" }, s.alerts));
  }));
}

// footfall

async function loadFootfall() {
  if (!state.stores.length) { await loadStores(); fillStoreSelects(); }
  const store = $("ff-store").value;
  if (!store) { Charts.line($("ff-chart"), { labels: [], series: [] }); Charts.line($("conv-chart"), { labels: [], series: [] }); return; }
  const [chain, storeId] = store.split("/");
  const data = await api(`/api/stores/${encodeURIComponent(chain)}/${encodeURIComponent(storeId)}/footfall?days=${$("ff-days").value}&bucket=${$("ff-bucket").value}`);
  const labels = data.points.map((p) => (data.bucket === "day" ? p.period.slice(5) : p.period.slice(5).replace("T", " ")));
  Charts.line($("ff-chart"), { title: "footfall", labels, min: 0, empty: "No footfall reported yet.", series: [
    { name: "entries", values: data.points.map((p) => p.entries), className: "s-entries" },
    { name: "transactions", values: data.points.map((p) => p.transactions), className: "s-transactions" },
  ] });
  Charts.line($("conv-chart"), { title: "conversion", labels, min: 0, format: (v) => pct(v, 0), empty: "No footfall reported yet.",
    series: [{ name: "conversion", values: data.points.map((p) => p.conversion), className: "s-conversion" }] });
}

// data quality

async function loadQuality() {
  if (!state.stores.length) { await loadStores(); fillStoreSelects(); }
  const store = $("dq-store").value;
  if (!store) { $("dq-summary").textContent = "No store has reported yet."; return; }
  const [chain, storeId] = store.split("/");
  const board = await api(`/api/stores/${encodeURIComponent(chain)}/${encodeURIComponent(storeId)}/data-quality?days=${$("dq-days").value}`);
  renderQuality(board);
}

function renderQuality(board) {
  const alarms = Object.entries(board.alarms);
  $("dq-alarms").replaceChildren(...alarms.map(([name, text]) => el("div", { className: "signal retrain", dataset: { alarm: name } }, text)));
  $("dq-summary").textContent = board.today === null
    ? "This store reports no data quality (its box predates it)."
    : `Store date ${board.today}; rows accepted and newly quarantined per store-local day.`
      + (alarms.length ? "" : " No data-quality alarm.");
  const labels = [...new Set(board.inputs.flatMap((i) => i.days.map((d) => d.day)))].sort();
  Charts.line($("dq-chart"), { title: "quarantined share", labels: labels.map((d) => d.slice(5)), min: 0,
    format: (v) => pct(v, 1), empty: "No ingest reported in this period.",
    series: board.inputs.filter((i) => i.days.length).map((i) => {
      const byDay = Object.fromEntries(i.days.map((d) => [d.day, d.rate]));
      return { name: i.label, values: labels.map((d) => (d in byDay ? byDay[d] : null)), className: `s-${i.input}` };
    }) });
  $("dq-inputs").replaceChildren(...board.inputs.map((i) => el("section", { className: "dq-input", dataset: { input: i.input } },
    el("h2", {}, i.label),
    el("p", { className: "muted dq-facts" }, `last export ${when(i.last_export_at)} UTC · today ${pct(i.today_rate)} quarantined`
      + ` · usually ${pct(i.trailing_rate)}`),
    el("table", { className: "data" },
      el("thead", {}, el("tr", {}, ["Day", "Files", "Failed", "Accepted", "Quarantined", "Share", "Reasons"].map((h) => el("th", {}, h)))),
      el("tbody", {}, i.days.length ? i.days.slice().reverse().map((d) => el("tr", { dataset: { day: d.day } },
        el("td", {}, d.day), el("td", { className: "num" }, d.runs), el("td", { className: "num" }, d.failed),
        el("td", { className: "num" }, d.accepted), el("td", { className: "num" }, d.quarantined),
        el("td", { className: "num" }, pct(d.rate)),
        el("td", { className: "reasons" }, Object.entries(d.reasons).map(([r, n]) => `${r}: ${n}`).join(", ") || "–")))
        : el("tr", {}, el("td", { colspan: "7", className: "muted" }, "No export in this period.")))))));
  $("dq-gaps").replaceChildren(
    el("thead", {}, el("tr", {}, ["Day", "Camera", "Gaps", "Without frames"].map((h) => el("th", {}, h)))),
    el("tbody", {}, board.camera_gaps.length ? board.camera_gaps.slice().reverse().map((g) => el("tr", {},
      el("td", {}, g.day), el("td", {}, g.source), el("td", { className: "num" }, g.gaps),
      el("td", { className: "num" }, g.seconds >= 3600 ? `${(g.seconds / 3600).toFixed(1)} h` : `${Math.round(g.seconds / 60)} min`)))
      : el("tr", {}, el("td", { colspan: "4", className: "muted" }, "No camera gap in this period."))));
}

// uplift and decay

function rateCell(rate) {
  return `${pct(rate.rate)}${interval(rate.low, rate.high)}`;
}

function upliftTable(table, rows, keyName) {
  const head = el("thead", {}, el("tr", {}, [keyName, "Treated n", "Retention treated", "Control n", "Retention control",
    "Uplift [95% CI]", "Cost", "Recovered value [95% CI]", "Net", "ROI"].map((h) => el("th", {}, h))));
  const body = el("tbody", {}, rows.map((r) => el("tr", { dataset: { key: r.key } },
    el("td", {}, LEVELS.includes(r.key) ? badge(r.key) : r.key),
    el("td", { className: "num t-n" }, r.treated.n), el("td", { className: "t-rate" }, rateCell(r.treated)),
    el("td", { className: "num c-n" }, r.control.n), el("td", { className: "c-rate" }, rateCell(r.control)),
    el("td", { className: "uplift" }, r.uplift === null ? "needs both groups" : `${pts(r.uplift)}${interval(r.uplift_low, r.uplift_high, pts)}`),
    el("td", { className: "num cost" }, money(r.cost)),
    el("td", { className: "recovered" }, r.recovered === null ? "–" : `${money(r.recovered)}${interval(r.recovered_low, r.recovered_high, money)}`),
    el("td", { className: `num net ${r.net !== null && r.net < 0 ? "negative" : ""}` }, money(r.net)),
    el("td", { className: "num roi" }, r.roi === null ? "–" : pct(r.roi, 0)))));
  if (!rows.length) body.appendChild(el("tr", {}, el("td", { colspan: "10", className: "muted" }, "No outcomes recorded yet.")));
  table.replaceChildren(head, body);
}

async function loadResults() {
  const params = new URLSearchParams();
  const store = $("r-store").value;
  if (store) { const [chain, storeId] = store.split("/"); params.set("chain", chain); params.set("store_id", storeId); }
  const [uplift, decay] = await Promise.all([api(`/api/uplift?${params}`), api(`/api/decay?${params}`)]);
  upliftTable($("uplift-level"), uplift.by_level, "Level");
  upliftTable($("uplift-action"), uplift.by_action, "Action");
  const t = uplift.total;
  $("roi-total").textContent = t.levels.length
    ? `Measured levels (${t.levels.join(", ")}): cost ${money(t.cost)}, recovered ${money(t.recovered)} `
      + `[${money(t.recovered_low)}, ${money(t.recovered_high)}], net ${money(t.net)}, ROI ${t.roi === null ? "–" : pct(t.roi, 0)}.`
      + (t.unmeasured.length ? ` Not measurable yet: ${t.unmeasured.join(", ")}.` : "")
    : "No level has outcomes in both the action and the control group yet.";
  const signal = decay.signal;
  const banner = $("retrain");
  banner.className = `signal ${signal.retrain ? "retrain" : "ok"}`;
  banner.textContent = signal.retrain ? `Retrain suggested: ${signal.reason}` : `Model precision: ${signal.reason}`;
  Charts.line($("decay-chart"), {
    title: "live precision", labels: decay.periods.map((p) => p.period), min: 0, max: 1, threshold: signal.threshold,
    format: (v) => pct(v, 0), empty: "No control-group outcomes yet.",
    series: [
      { name: "precision", values: decay.periods.map((p) => p.precision), band: decay.periods.map((p) => (p.low === null ? null : [p.low, p.high])), className: "s-precision" },
      { name: "expected", values: decay.periods.map((p) => p.expected), className: "s-expected" },
    ],
  });
  $("decay-table").replaceChildren(
    el("thead", {}, el("tr", {}, ["Month", "Control outcomes", "Churned", "Precision [95% CI]", "Expected"].map((h) => el("th", {}, h)))),
    el("tbody", {}, decay.periods.map((p) => el("tr", {}, el("td", {}, p.period), el("td", { className: "num" }, p.outcomes),
      el("td", { className: "num" }, p.churned), el("td", {}, `${pct(p.precision)}${interval(p.low, p.high)}`),
      el("td", {}, pct(p.expected))))));
}

// model rounds

const seconds = (value) => (value === null || value === undefined ? "–" : value.toFixed(1));

async function loadRounds() {
  state.releases = await api("/api/rounds");
  const select = $("release"), current = select.value;
  select.replaceChildren(...state.releases.map((r) => el("option", { value: r.version }, `${r.version} (${r.chain})`)));
  if (current && state.releases.some((r) => r.version === current)) select.value = current;
  renderRelease();
}

function renderRelease() {
  const release = state.releases.find((r) => r.version === $("release").value) || state.releases[0];
  if (!release) {
    $("release-summary").textContent = "No federated release recorded yet (churn-server federate --central-db, or churn-server record-rounds).";
    Charts.line($("auc-chart"), { labels: [], series: [] });
    $("round-table").replaceChildren();
    return;
  }
  const privacy = release.privacy ? `differential privacy ε = ${release.epsilon.toFixed(2)}, δ = ${release.privacy.delta}` : "no differential privacy";
  $("release-summary").textContent = `${release.version}: as of ${release.as_of}, ${release.strategy}, ${release.rounds.length} rounds, `
    + `${release.stores.length} stores, pooled held-out AUC ${release.auc === null ? "–" : release.auc.toFixed(3)}, ${privacy}; finished ${when(release.finished_at)}.`;
  Charts.line($("auc-chart"), { title: "AUC per round", labels: release.rounds.map((r) => `round ${r.round}`),
    format: (v) => v.toFixed(3), series: [{ name: "held-out AUC", values: release.rounds.map((r) => r.auc), className: "s-auc" }] });
  $("round-table").replaceChildren(
    el("thead", {}, el("tr", {}, ["Round", "AUC", "Loss", "Train loss", "Stores trained", "Failures", "ε spent",
      "Wall s", "Training s", "Overhead s", "Note"].map((h) => el("th", {}, h)))),
    el("tbody", {}, release.rounds.map((r) => el("tr", { dataset: { round: r.round } },
      el("td", { className: "num" }, r.round), el("td", { className: "num" }, r.auc === null ? "–" : r.auc.toFixed(3)),
      el("td", { className: "num" }, r.loss === null ? "–" : r.loss.toFixed(3)),
      el("td", { className: "num" }, r.train_loss === null ? "–" : r.train_loss.toFixed(3)),
      el("td", { title: r.trained.join(", ") }, `${r.trained.length}: ${r.trained.join(", ")}`),
      el("td", { className: "num" }, r.failures), el("td", { className: "num" }, r.epsilon === null ? "–" : r.epsilon.toFixed(2)),
      el("td", { className: "num wall", title: "the round's wall time at the server" }, seconds(r.wall_seconds)),
      el("td", { className: "num train", title: "the slowest store's local training" }, seconds(r.train_seconds)),
      el("td", { className: "num overhead", title: "wall time minus that training: delivery, start-up, data, evaluation" }, seconds(r.overhead_seconds)),
      el("td", {}, r.skipped)))));
}

// users

async function loadUsers() {
  const users = await api("/api/users");
  $("user-table").replaceChildren(
    el("thead", {}, el("tr", {}, ["User", "Role", "Stores", "State", ""].map((h) => el("th", {}, h)))),
    el("tbody", {}, users.map((u) => el("tr", { dataset: { user: u.username } }, el("td", {}, u.username), el("td", {}, u.role),
      el("td", {}, u.stores.join(", ") || "all"), el("td", {}, u.disabled ? "disabled" : "active"),
      el("td", {}, u.disabled || u.username === state.session.username ? "" : el("button", { type: "button",
        onclick: guarded(async () => { await api(`/api/users/${encodeURIComponent(u.username)}/disable`, { method: "POST" }); await loadUsers(); }) }, "Disable"))))));
}

async function createUser() {
  $("user-error").textContent = "";
  const stores = $("new-stores").value.split(",").map((s) => s.trim()).filter(Boolean);
  try {
    await api("/api/users", { method: "POST", body: { username: $("new-username").value, password: $("new-password").value,
      role: $("new-role").value, stores } });
    $("user-form").reset();
    toast("Account created");
    await loadUsers();
  } catch (error) {
    $("user-error").textContent = error.message;
  }
}

// --- wiring ----------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (e) => { e.preventDefault(); login(); });
  $("logout").addEventListener("click", logout);
  $("tabs").addEventListener("click", (e) => { if (e.target.dataset.view) show(e.target.dataset.view); });
  $("alert-filters").addEventListener("change", () => { state.offset = 0; load("alerts"); });
  $("alert-filters").addEventListener("submit", (e) => e.preventDefault());
  $("prev-page").addEventListener("click", () => { state.offset = Math.max(0, state.offset - state.limit); load("alerts"); });
  $("next-page").addEventListener("click", () => { state.offset += state.limit; load("alerts"); });
  for (const id of ["ff-store", "ff-days", "ff-bucket"]) $(id).addEventListener("change", () => load("footfall"));
  for (const id of ["dq-store", "dq-days"]) $(id).addEventListener("change", () => load("quality"));
  $("r-store").addEventListener("change", () => load("results"));
  $("release").addEventListener("change", renderRelease);
  $("user-form").addEventListener("submit", (e) => { e.preventDefault(); createUser(); });
  document.querySelectorAll("form.filters").forEach((f) => f.addEventListener("submit", (e) => e.preventDefault()));
  api("/api/session").then(startSession).catch(() => showLogin());
});
