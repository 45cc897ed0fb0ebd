// seesaw-healthcheck status page: fetches ./status (the JSON contract of the control
// process) and shows it. Plain browser JavaScript, no libraries, no build step.
//
// Built for 50,000 checks: each refresh is O(n log n) (one pass to prepare the rows, a
// filter, a sort) and the table is virtual: only the rows in view (plus a margin) are in
// the DOM, between two spacer rows that keep the scroll height right. Filter, sort, the
// scroll position and the open detail survive refreshes; filter, sort and the refresh
// interval are also kept in the URL fragment (#q=..&state=..&type=..&sort=-failures&refresh=5).
//
// Check ids are uint64 and may exceed 2^53, so they are turned into strings in the
// response text before JSON.parse and are only ever handled as strings.
// Text from the server (messages come from the targets) only enters the DOM as text.
"use strict";

(() => {
  const OVERSCAN = 20; // rows rendered above and below the visible ones
  const STATE_RANK = { unhealthy: 0, unknown: 1, healthy: 2 };
  const TYPE_ORDER = ["tcp", "http", "dns", "udp", "ping", "radius", "unknown"];
  // Sort keys; numbers and times sort descending on the first click.
  const SORT_DESC_FIRST = new Set([
    "since", "last_check", "duration", "failures", "successes", "consecutive_failures",
  ]);
  const REFRESH_CHOICES = ["1", "2", "5", "10", "30", "60"];

  const $ = (id) => document.getElementById(id);
  const el = {
    version: $("server-version"), pid: $("server-pid"), config: $("server-config"),
    workers: $("server-workers"), started: $("server-started"),
    lastFetch: $("server-last-fetch"), lastNotification: $("server-last-notification"),
    pending: $("server-pending"), fetchError: $("fetch-error"), loadError: $("load-error"),
    totalChecks: $("total-checks"), totalHealthy: $("total-healthy"),
    totalUnhealthy: $("total-unhealthy"), totalUnknown: $("total-unknown"),
    stateTotals: $("state-totals"), byType: $("by-type-rows"),
    controls: $("controls"), text: $("filter-text"), state: $("filter-state"),
    type: $("filter-type"), auto: $("auto-refresh"), interval: $("refresh-interval"),
    refreshNow: $("refresh-now"), summary: $("summary"), table: $("checks"),
    rows: $("rows"), detail: $("detail"), detailTitle: $("detail-title"),
    detailLink: $("detail-link"), detailJson: $("detail-json"),
  };

  const ui = {
    data: null, // the last response, ids as strings
    rows: [], // prepared rows, one per check
    byId: new Map(),
    view: [], // rows after filter and sort
    generatedMs: 0,
    lastOkMs: 0, // client clock at the last good response
    filterText: "", filterState: "", filterType: "",
    sortKey: "id", sortDir: 1,
    auto: true, interval: 5, timer: 0, inFlight: false,
    rowHeight: 24, rendered: "", focusId: null, detailId: null,
  };

  // ---- parsing and preparing -------------------------------------------------------

  function parseStatus(text) {
    return JSON.parse(text.replace(/(?<!\\)("id"\s*:\s*)(\d+)/g, '$1"$2"'));
  }

  function parseTime(value) {
    if (value == null) return null;
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? null : ms;
  }

  function hostPort(ip, port) {
    if (!ip) return "";
    const host = ip.includes(":") ? `[${ip}]` : ip;
    return port ? `${host}:${port}` : ip;
  }

  function formatTarget(t) {
    if (!t) return "";
    let text = hostPort(t.ip, t.port);
    if (t.mode && t.mode !== "plain") {
      text += ` ${t.mode}`;
      if (t.host) text += ` via ${t.host}`;
    }
    return text;
  }

  function ipSortKey(ip) {
    if (!ip) return "9";
    if (!ip.includes(":")) {
      return "4" + ip.split(".").map((octet) => octet.padStart(3, "0")).join(".");
    }
    return "6" + ip;
  }

  function prepare(check) {
    const t = check.target || {};
    const target = formatTarget(t);
    const message = check.problem ? `config problem: ${check.problem}` : check.message || "";
    const description = check.description || "";
    const state = check.state || "unknown";
    return {
      check,
      id: String(check.id),
      type: check.type || "unknown",
      state,
      stateRank: STATE_RANK[state] ?? 3,
      target,
      targetKey: `${ipSortKey(t.ip)}:${String(t.port ?? 0).padStart(5, "0")}:${t.mode || ""}`,
      description,
      message,
      problem: Boolean(check.problem),
      since: parseTime(check.since),
      last_check: parseTime(check.last_check),
      duration: check.duration ?? null,
      failures: check.failures ?? 0,
      successes: check.successes ?? 0,
      consecutive_failures: check.consecutive_failures ?? 0,
      search: null, // the text the filter box searches, made on first use
    };
  }

  function searchText(r) {
    if (r.search === null) {
      const host = (r.check.target && r.check.target.host) || "";
      r.search = `${r.id} ${r.target} ${host} ${r.description} ${r.message}`.toLowerCase();
    }
    return r.search;
  }

  // ---- filter and sort -------------------------------------------------------------

  function compareIds(a, b) {
    // Decimal strings without leading zeros: shorter is smaller, else compare as text.
    return a.id.length - b.id.length || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  }

  function compareText(a, b) {
    return a < b ? -1 : a > b ? 1 : 0;
  }

  function compareNumbers(a, b) {
    const x = a ?? -Infinity;
    const y = b ?? -Infinity;
    return x < y ? -1 : x > y ? 1 : 0;
  }

  const COMPARE = {
    id: compareIds,
    type: (a, b) => TYPE_ORDER.indexOf(a.type) - TYPE_ORDER.indexOf(b.type) ||
      compareText(a.type, b.type),
    target: (a, b) => compareText(a.targetKey, b.targetKey),
    description: (a, b) => compareText(a.description, b.description),
    state: (a, b) => a.stateRank - b.stateRank,
    message: (a, b) => compareText(a.message, b.message),
  };
  for (const key of SORT_DESC_FIRST) {
    COMPARE[key] = (a, b) => compareNumbers(a[key], b[key]);
  }

  function rebuildView() {
    const terms = ui.filterText.toLowerCase().split(/\s+/).filter(Boolean);
    const { filterState, filterType } = ui;
    const view = ui.rows.filter((r) =>
      (!filterState || r.state === filterState) &&
      (!filterType || r.type === filterType) &&
      (terms.length === 0 || terms.every((term) => searchText(r).includes(term))));
    const compare = COMPARE[ui.sortKey] || compareIds;
    const dir = ui.sortDir;
    view.sort((a, b) => dir * compare(a, b) || compareIds(a, b));
    ui.view = view;
    ui.rendered = "";
  }

  // ---- formatting ------------------------------------------------------------------

  const pad2 = (n) => String(n).padStart(2, "0");

  function formatClock(ms) {
    if (ms == null) return "never";
    const d = new Date(ms);
    const clock = `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}`;
    const g = new Date(ui.generatedMs || Date.now());
    const sameDay = d.getUTCFullYear() === g.getUTCFullYear() &&
      d.getUTCMonth() === g.getUTCMonth() && d.getUTCDate() === g.getUTCDate();
    if (sameDay) return `${clock} UTC`;
    return `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ` +
      `${clock} UTC`;
  }

  function formatAge(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
    if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor(s % 3600 / 60)}m`;
    return `${Math.floor(s / 86400)}d ${Math.floor(s % 86400 / 3600)}h`;
  }

  // "07:24:38 UTC (12s ago)", ages against the server's clock ("generated").
  function formatWhen(ms) {
    if (ms == null) return "never";
    return `${formatClock(ms)} (${formatAge((ui.generatedMs - ms) / 1000)} ago)`;
  }

  function formatSeconds(s) {
    if (s == null) return "–";
    if (s < 0.001) return `${Math.round(s * 1e6)} µs`;
    if (s < 1) return `${(s * 1e3).toPrecision(3)} ms`;
    return `${s.toPrecision(3)} s`;
  }

  const formatInt = (n) => (n ?? 0).toLocaleString("en-US");

  function checkJson(check) {
    return JSON.stringify(check, null, 2).replace(/^( {2}"id": )"(\d+)"/m, "$1$2");
  }

  // ---- rendering -------------------------------------------------------------------

  function cell(tr, text, className, title) {
    const td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    if (title) td.title = title;
    tr.appendChild(td);
    return td;
  }

  function spacer(height) {
    const tr = document.createElement("tr");
    tr.className = "spacer";
    tr.setAttribute("aria-hidden", "true");
    const td = document.createElement("td");
    td.colSpan = 12;
    td.style.height = `${height}px`;
    tr.appendChild(td);
    return tr;
  }

  function renderRow(r, index) {
    const tr = document.createElement("tr");
    tr.className = r.state;
    tr.dataset.id = r.id;
    tr.tabIndex = -1;
    tr.setAttribute("aria-rowindex", String(index + 2));
    const idCell = cell(tr, "", "id");
    const link = document.createElement("a");
    link.href = `status/${r.id}`;
    link.textContent = r.id;
    link.tabIndex = -1;
    idCell.appendChild(link);
    cell(tr, r.type, "type");
    const t = r.check.target || {};
    cell(tr, r.target, "target", [r.target, t.proto, t.mark ? `mark ${t.mark}` : ""]
      .filter(Boolean).join(" "));
    cell(tr, r.description, "desc", r.description);
    cell(tr, r.state, "state");
    const g = ui.generatedMs;
    cell(tr, r.since == null ? "–" : formatAge((g - r.since) / 1000), "age",
      r.check.since || "no change yet");
    cell(tr, r.last_check == null ? "–" : `${formatAge((g - r.last_check) / 1000)} ago`, "age",
      r.check.last_check || "not run yet");
    cell(tr, r.last_check == null ? "–" : formatSeconds(r.duration), "num");
    cell(tr, formatInt(r.failures), "num");
    cell(tr, formatInt(r.successes), "num");
    cell(tr, formatInt(r.consecutive_failures), "num");
    cell(tr, r.message, r.problem ? "msg problem" : "msg", r.message);
    return tr;
  }

  function visibleRange() {
    const n = ui.view.length;
    const top = el.rows.getBoundingClientRect().top; // viewport y of the first row
    const h = ui.rowHeight;
    let first = Math.max(0, Math.floor(-top / h) - OVERSCAN);
    let last = Math.min(n, Math.ceil((window.innerHeight - top) / h) + OVERSCAN);
    if (first >= last) {
      // Scrolled past the end (the list just got shorter): render its end; the browser
      // then clamps the scroll position and the next render is exact.
      last = n;
      first = Math.max(0, n - Math.ceil(window.innerHeight / h) - 2 * OVERSCAN);
    }
    return [first, last];
  }

  function renderRows(force) {
    const [first, last] = visibleRange();
    const key = `${first}:${last}`;
    if (!force && key === ui.rendered) return;
    ui.rendered = key;
    const frag = document.createDocumentFragment();
    if (first > 0) frag.appendChild(spacer(first * ui.rowHeight));
    for (let i = first; i < last; i++) frag.appendChild(renderRow(ui.view[i], i));
    const rest = ui.view.length - last;
    if (rest > 0) frag.appendChild(spacer(rest * ui.rowHeight));
    const hadFocus = el.rows.contains(document.activeElement);
    el.rows.replaceChildren(frag);
    el.table.setAttribute("aria-rowcount", String(ui.view.length + 1));
    // The row height is fixed by CSS; measure it once the first row is there, in case
    // the browser rounds it differently.
    const sample = el.rows.querySelector("tr:not(.spacer)");
    if (sample && Math.abs(sample.offsetHeight - ui.rowHeight) >= 1) {
      ui.rowHeight = sample.offsetHeight;
      renderRows(true);
      return;
    }
    // One row is in the tab order (a roving tabindex): the focused one, else the first.
    const focused = ui.focusId != null && el.rows.querySelector(`tr[data-id="${ui.focusId}"]`);
    const tabStop = focused || sample;
    if (tabStop) tabStop.tabIndex = 0;
    if (hadFocus && focused) focused.focus({ preventScroll: true });
  }

  let framePending = false;
  function scheduleRender() {
    if (framePending) return;
    framePending = true;
    requestAnimationFrame(() => {
      framePending = false;
      renderRows(false);
    });
  }

  function renderServer(data) {
    const s = data.server || {};
    el.version.textContent = s.version ? `v${s.version}` : "";
    el.pid.textContent = s.pid ?? "–";
    el.config.textContent = s.config_source ?? "–";
    el.workers.textContent = s.workers ?? "–";
    el.started.textContent = formatWhen(parseTime(s.started));
    el.lastFetch.textContent = formatWhen(parseTime(s.last_fetch)) +
      (s.fetch_interval ? `, every ${s.fetch_interval}s` : "");
    el.lastNotification.textContent = formatWhen(parseTime(s.last_notification));
    el.pending.textContent = formatInt(s.pending_notifications);
    el.fetchError.hidden = !s.last_fetch_error;
    el.fetchError.textContent = s.last_fetch_error
      ? `The last fetch from the engine failed: ${s.last_fetch_error}` : "";
  }

  function renderTotals(data) {
    const t = data.totals || {};
    el.totalChecks.textContent = formatInt(t.checks);
    el.totalHealthy.textContent = formatInt(t.healthy);
    el.totalUnhealthy.textContent = formatInt(t.unhealthy);
    el.totalUnknown.textContent = formatInt(t.unknown);
    const byType = t.by_type || {};
    const types = Object.keys(byType).sort((a, b) =>
      (TYPE_ORDER.indexOf(a) + 1 || 99) - (TYPE_ORDER.indexOf(b) + 1 || 99) ||
      compareText(a, b));
    const frag = document.createDocumentFragment();
    for (const type of types) {
      const c = byType[type] || {};
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.scope = "row";
      const button = document.createElement("button");
      button.type = "button";
      button.className = "total-type";
      button.dataset.type = type;
      button.textContent = type;
      button.setAttribute("aria-pressed", String(ui.filterType === type));
      th.appendChild(button);
      tr.appendChild(th);
      const all = (c.healthy || 0) + (c.unhealthy || 0) + (c.unknown || 0);
      cell(tr, formatInt(all));
      cell(tr, formatInt(c.healthy));
      cell(tr, formatInt(c.unhealthy), c.unhealthy ? "bad" : "");
      cell(tr, formatInt(c.unknown));
      frag.appendChild(tr);
    }
    el.byType.replaceChildren(frag);
  }

  function renderSummary() {
    const shown = ui.view.length;
    const total = ui.rows.length;
    let text = shown === total
      ? `${formatInt(total)} checks`
      : `Showing ${formatInt(shown)} of ${formatInt(total)} checks`;
    if (ui.data) text += ` · generated ${formatClock(ui.generatedMs)}`;
    el.summary.textContent = text;
    el.summary.dataset.shown = String(shown);
  }

  function renderControls() {
    el.text.value = ui.filterText;
    el.state.value = ui.filterState;
    el.type.value = ui.filterType;
    el.auto.checked = ui.auto;
    el.interval.value = String(ui.interval);
    for (const button of el.stateTotals.querySelectorAll("button")) {
      button.setAttribute("aria-pressed", String(button.dataset.state === ui.filterState &&
        button.dataset.state !== ""));
    }
    for (const button of el.byType.querySelectorAll("button")) {
      button.setAttribute("aria-pressed", String(button.dataset.type === ui.filterType));
    }
    for (const th of el.table.tHead.rows[0].cells) {
      th.setAttribute("aria-sort", th.dataset.key !== ui.sortKey ? "none"
        : ui.sortDir > 0 ? "ascending" : "descending");
    }
  }

  function renderDetail() {
    if (ui.detailId == null || !el.detail.open) return;
    const row = ui.byId.get(ui.detailId);
    el.detailTitle.textContent = `Check ${ui.detailId}`;
    el.detailLink.href = `status/${ui.detailId}`;
    el.detailJson.textContent = row
      ? checkJson(row.check) : "This check is no longer in the configuration.";
  }

  function applyView() {
    rebuildView();
    renderSummary();
    renderControls();
    renderRows(true);
  }

  // ---- data ------------------------------------------------------------------------

  function apply(data) {
    ui.data = data;
    ui.generatedMs = parseTime(data.generated) ?? Date.now();
    const checks = Array.isArray(data.checks) ? data.checks : [];
    ui.rows = checks.map(prepare);
    ui.byId = new Map(ui.rows.map((r) => [r.id, r]));
    renderServer(data);
    renderTotals(data);
    applyView();
    renderDetail();
  }

  function errorReason(text) {
    try {
      const body = JSON.parse(text);
      if (body && typeof body.error === "string") return body.error;
    } catch (_) { /* not JSON: fall through */ }
    return text.slice(0, 200);
  }

  function showLoadError(error) {
    const stale = error != null;
    el.loadError.hidden = !stale;
    el.table.classList.toggle("stale", stale && ui.data != null);
    el.summary.classList.toggle("stale", stale && ui.data != null);
    if (!stale) return;
    let text = `Cannot load the status: ${error.message || error}.`;
    if (ui.data) {
      text += ` Showing the status generated at ${formatClock(ui.generatedMs)}, ` +
        `${formatAge((Date.now() - ui.lastOkMs) / 1000)} old.`;
    }
    el.loadError.textContent = text;
  }

  async function refresh() {
    clearTimeout(ui.timer);
    ui.timer = 0;
    if (ui.inFlight) return;
    ui.inFlight = true;
    const abort = new AbortController();
    const guard = setTimeout(() => abort.abort(), Math.max(10, 2 * ui.interval) * 1000);
    try {
      const response = await fetch("status", {
        cache: "no-store", headers: { Accept: "application/json" }, signal: abort.signal,
      });
      const text = await response.text();
      if (!response.ok) throw new Error(`HTTP ${response.status}: ${errorReason(text)}`);
      const data = parseStatus(text);
      ui.lastOkMs = Date.now();
      apply(data);
      showLoadError(null);
    } catch (error) {
      showLoadError(error.name === "AbortError" ? new Error("no answer in time") : error);
    } finally {
      clearTimeout(guard);
      ui.inFlight = false;
      scheduleRefresh();
    }
  }

  function scheduleRefresh() {
    clearTimeout(ui.timer);
    ui.timer = 0;
    if (ui.auto && !ui.inFlight) ui.timer = setTimeout(refresh, ui.interval * 1000);
  }

  // ---- URL fragment ----------------------------------------------------------------

  function readHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    ui.filterText = p.get("q") || "";
    ui.filterState = STATE_RANK[p.get("state")] !== undefined ? p.get("state") : "";
    ui.filterType = TYPE_ORDER.includes(p.get("type")) ? p.get("type") : "";
    const sort = p.get("sort") || "id";
    const key = sort.replace(/^-/, "");
    if (COMPARE[key]) {
      ui.sortKey = key;
      ui.sortDir = sort.startsWith("-") ? -1 : 1;
    }
    const refresh = p.get("refresh");
    if (refresh === "off") ui.auto = false;
    else if (REFRESH_CHOICES.includes(refresh)) ui.interval = Number(refresh);
  }

  function writeHash() {
    const p = new URLSearchParams();
    if (ui.filterText) p.set("q", ui.filterText);
    if (ui.filterState) p.set("state", ui.filterState);
    if (ui.filterType) p.set("type", ui.filterType);
    if (ui.sortKey !== "id" || ui.sortDir !== 1) {
      p.set("sort", (ui.sortDir < 0 ? "-" : "") + ui.sortKey);
    }
    if (!ui.auto) p.set("refresh", "off");
    else if (ui.interval !== 5) p.set("refresh", String(ui.interval));
    const hash = p.toString();
    history.replaceState(null, "", hash ? `#${hash}` : location.pathname + location.search);
  }

  // ---- interaction -----------------------------------------------------------------

  // A new filter or sort starts at the top of the table.
  function changed() {
    writeHash();
    const tableTop = el.table.getBoundingClientRect().top;
    if (tableTop < 0) window.scrollBy(0, tableTop);
    applyView();
  }

  function setSort(key) {
    if (ui.sortKey === key) ui.sortDir = -ui.sortDir;
    else {
      ui.sortKey = key;
      ui.sortDir = SORT_DESC_FIRST.has(key) ? -1 : 1;
    }
    changed();
  }

  function openDetail(id) {
    ui.detailId = id;
    if (!el.detail.open) el.detail.showModal();
    renderDetail();
  }

  function focusRow(id, scroll) {
    const index = ui.view.findIndex((r) => r.id === id);
    if (index < 0) return;
    ui.focusId = id;
    if (scroll) {
      const top = el.rows.getBoundingClientRect().top + index * ui.rowHeight;
      const headerHeight = el.table.tHead.getBoundingClientRect().height;
      if (top < headerHeight) window.scrollBy(0, top - headerHeight);
      else if (top + ui.rowHeight > window.innerHeight) {
        window.scrollBy(0, top + ui.rowHeight - window.innerHeight);
      }
      renderRows(false);
    }
    const tr = el.rows.querySelector(`tr[data-id="${id}"]`);
    if (tr) {
      for (const other of el.rows.querySelectorAll('tr[tabindex="0"]')) other.tabIndex = -1;
      tr.tabIndex = 0;
      tr.focus({ preventScroll: true });
    }
  }

  function rowOf(target) {
    const tr = target.closest("tr");
    return tr && tr.dataset.id ? tr : null;
  }

  function wire() {
    el.controls.addEventListener("submit", (event) => event.preventDefault());
    let typing = 0;
    el.text.addEventListener("input", () => {
      clearTimeout(typing);
      typing = setTimeout(() => {
        ui.filterText = el.text.value.trim();
        changed();
      }, 150);
    });
    el.state.addEventListener("change", () => {
      ui.filterState = el.state.value;
      changed();
    });
    el.type.addEventListener("change", () => {
      ui.filterType = el.type.value;
      changed();
    });
    el.stateTotals.addEventListener("click", (event) => {
      const button = event.target.closest("button");
      if (!button) return;
      const state = button.dataset.state;
      ui.filterState = state && ui.filterState !== state ? state : "";
      changed();
    });
    el.byType.addEventListener("click", (event) => {
      const button = event.target.closest("button");
      if (!button) return;
      ui.filterType = ui.filterType === button.dataset.type ? "" : button.dataset.type;
      changed();
    });
    el.auto.addEventListener("change", () => {
      ui.auto = el.auto.checked;
      writeHash();
      scheduleRefresh();
    });
    el.interval.addEventListener("change", () => {
      ui.interval = Number(el.interval.value);
      writeHash();
      scheduleRefresh();
    });
    el.refreshNow.addEventListener("click", () => refresh());
    for (const th of el.table.tHead.rows[0].cells) {
      th.querySelector("button").addEventListener("click", () => setSort(th.dataset.key));
    }
    el.rows.addEventListener("click", (event) => {
      if (event.target.closest("a")) return; // the id's link opens the raw JSON
      const tr = rowOf(event.target);
      if (tr) {
        focusRow(tr.dataset.id, false);
        openDetail(tr.dataset.id);
      }
    });
    el.rows.addEventListener("keydown", (event) => {
      const tr = rowOf(event.target);
      if (!tr) return;
      const index = ui.view.findIndex((r) => r.id === tr.dataset.id);
      const move = { ArrowDown: 1, ArrowUp: -1, PageDown: 20, PageUp: -20 }[event.key];
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        openDetail(tr.dataset.id);
      } else if (move && index >= 0) {
        event.preventDefault();
        const next = ui.view[Math.min(ui.view.length - 1, Math.max(0, index + move))];
        focusRow(next.id, true);
      }
    });
    el.rows.addEventListener("focusin", (event) => {
      const tr = rowOf(event.target);
      if (tr) ui.focusId = tr.dataset.id;
    });
    // Tab into the table lands on the focused (or first) row; arrows move from there.
    el.table.addEventListener("keydown", (event) => {
      if (event.key === "ArrowDown" && event.target.closest("thead") && ui.view.length) {
        event.preventDefault();
        focusRow(ui.view[0].id, true);
      }
    });
    el.detail.addEventListener("close", () => {
      ui.detailId = null;
      if (ui.focusId != null) focusRow(ui.focusId, true);
    });
    window.addEventListener("scroll", scheduleRender, { passive: true });
    window.addEventListener("resize", scheduleRender);
    window.addEventListener("hashchange", () => {
      readHash();
      applyView();
      scheduleRefresh();
    });
  }

  readHash();
  wire();
  renderControls();
  refresh();
})();
