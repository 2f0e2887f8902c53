// opencode-sync dashboard: a hash-routed single page over /dashboard/api/*.
//   #/                  sessions (search, project and branch filters)
//   #/session/<id>      one session: messages, tool calls, tokens, export
//   #/usage             tokens and cost per day, per model, per project
// Every element is built with the DOM (text is never parsed as HTML) except the
// message markdown, which the server renders with raw HTML escaped.

const KEY_STORE = "opencode-sync.dashboard.apiKey";
const SVG_NS = "http://www.w3.org/2000/svg";
const app = document.getElementById("app");

// ---------------------------------------------------------------------------
// DOM helpers

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  return fill(el, attrs, children);
}

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  return fill(el, attrs, children);
}

function fill(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = String(v);
    else if (k === "value") el.value = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function mount(...nodes) {
  app.replaceChildren(...nodes);
}

// ---------------------------------------------------------------------------
// Formatting

const intFmt = new Intl.NumberFormat("en-US");
const dateTimeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const shortDateFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

const fmtInt = (n) => intFmt.format(Math.round(n || 0));

function fmtTokens(n) {
  n = n || 0;
  if (n < 1000) return String(Math.round(n));
  if (n < 1e6) return `${(n / 1e3).toFixed(n < 1e4 ? 1 : 0)}k`;
  if (n < 1e9) return `${(n / 1e6).toFixed(n < 1e7 ? 2 : 1)}M`;
  return `${(n / 1e9).toFixed(2)}B`;
}

function fmtCost(n) {
  n = n || 0;
  if (n === 0) return "$0";
  if (n < 1) return `$${n.toFixed(4)}`;
  if (n < 1000) return `$${n.toFixed(2)}`;
  return `$${intFmt.format(Math.round(n))}`;
}

function fmtDuration(ms) {
  if (ms === undefined || ms === null) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const sec = ms / 1000;
  if (sec < 60) return `${sec.toFixed(sec < 10 ? 1 : 0)} s`;
  const min = Math.floor(sec / 60);
  if (min < 60) return `${min} min ${Math.round(sec % 60)} s`;
  return `${Math.floor(min / 60)} h ${min % 60} min`;
}

function fmtAgo(ms) {
  if (!ms) return "";
  const diff = (Date.now() - ms) / 1000;
  if (diff < 45) return "just now";
  if (diff < 3600) return `${Math.round(diff / 60)} min ago`;
  if (diff < 86400) return `${Math.round(diff / 3600)} h ago`;
  if (diff < 7 * 86400) return `${Math.round(diff / 86400)} d ago`;
  return shortDateFmt.format(new Date(ms));
}

const fmtDate = (ms) => (ms ? dateTimeFmt.format(new Date(ms)) : "");

// ---------------------------------------------------------------------------
// Data

class AuthError extends Error {}

function storedKey() {
  try {
    return sessionStorage.getItem(KEY_STORE) || "";
  } catch {
    return "";
  }
}

async function api(path, params = {}) {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) qs.set(k, v);
  const url = `/dashboard/api/${path}${qs.toString() ? `?${qs}` : ""}`;
  const key = storedKey();
  const res = await fetch(url, {
    headers: key ? { Authorization: `Bearer ${key}` } : {},
    cache: "no-store",
    credentials: "omit",
  });
  const body = await res.json().catch(() => null);
  if (res.status === 401) throw new AuthError(body?.error || "API key required");
  if (!res.ok) throw new Error(body?.error || `${res.status} ${res.statusText}`);
  return body;
}

// Fetches an export with the key (a plain link could not send it) and saves
// it under the name the server gives in Content-Disposition.
async function download(path, params) {
  const qs = new URLSearchParams(params);
  const key = storedKey();
  const res = await fetch(`/dashboard/api/${path}?${qs}`, {
    headers: key ? { Authorization: `Bearer ${key}` } : {},
    cache: "no-store",
    credentials: "omit",
  });
  if (!res.ok) {
    const body = await res.json().catch(() => null);
    if (res.status === 401) throw new AuthError(body?.error || "API key required");
    throw new Error(body?.error || `${res.status} ${res.statusText}`);
  }
  const name = /filename="([^"]+)"/.exec(res.headers.get("content-disposition") || "")?.[1] || "session";
  const url = URL.createObjectURL(await res.blob());
  const a = h("a", { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// ---------------------------------------------------------------------------
// Router

let renderSeq = 0;
let lastListHash = "#/";

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const q = raw.indexOf("?");
  return {
    path: q < 0 ? raw : raw.slice(0, q),
    params: new URLSearchParams(q < 0 ? "" : raw.slice(q + 1)),
  };
}

function setNav(view) {
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.classList.toggle("active", a.dataset.nav === view);
  }
}

function renderKeyState() {
  const box = document.getElementById("keystate");
  if (!box) return;
  const key = storedKey();
  if (!key) {
    box.replaceChildren();
    return;
  }
  const masked = key.length > 12 ? `${key.slice(0, 8)}…${key.slice(-4)}` : "osk_…";
  box.replaceChildren(
    h("span", { class: "mono", title: "API key kept in this tab (sessionStorage)" }, `key ${masked}`),
    h("button", {
      class: "link",
      type: "button",
      text: "Forget",
      onclick: () => {
        sessionStorage.removeItem(KEY_STORE);
        route();
      },
    }),
  );
}

async function route() {
  const seq = ++renderSeq;
  const { path, params } = parseHash();
  renderKeyState();
  const current = () => seq === renderSeq;
  try {
    if (path.startsWith("/session/")) {
      setNav("sessions");
      await showSession(decodeURIComponent(path.slice("/session/".length)), current);
    } else if (path === "/usage") {
      setNav("usage");
      await showUsage(current);
    } else {
      setNav("sessions");
      await showSessions(params, current);
    }
  } catch (err) {
    if (!current()) return;
    if (err instanceof AuthError) showKeyPrompt(err.message);
    else showError(err);
  }
}

function showError(err) {
  mount(h("div", { class: "error-box", role: "alert" }, h("b", {}, "Could not load: "), String(err?.message || err)));
}

function showKeyPrompt(message) {
  document.title = "API key · opencode-sync";
  const input = h("input", {
    type: "password",
    id: "apikey",
    name: "apikey",
    placeholder: "osk_…",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
  });
  const form = h(
    "form",
    {
      onsubmit: (e) => {
        e.preventDefault();
        const key = input.value.trim();
        if (!key) return;
        sessionStorage.setItem(KEY_STORE, key);
        route();
      },
    },
    input,
    h("button", { class: "primary", type: "submit", text: "Open" }),
  );
  const hadKey = Boolean(storedKey());
  mount(
    h(
      "section",
      { class: "keyprompt", id: "keyprompt" },
      h("h2", { text: hadKey ? "API key rejected" : "API key required" }),
      h("p", { class: "muted", text: message }),
      h("p", {
        text: "Paste an API key this server accepts (osk_…). It is kept in this browser tab only (sessionStorage) and sent with each request.",
      }),
      form,
    ),
  );
  input.focus();
}

window.addEventListener("hashchange", route);
route();

// ---------------------------------------------------------------------------
// Sessions list

async function showSessions(params, current) {
  document.title = "Sessions · opencode-sync";
  const state = {
    q: params.get("q") || "",
    project: params.has("project") ? params.get("project") : null,
    branch: params.has("branch") ? params.get("branch") : null,
  };
  const search = h("input", {
    type: "search",
    id: "search",
    placeholder: "Search titles and messages…",
    autocomplete: "off",
    spellcheck: "false",
    "aria-label": "Search",
    value: state.q,
  });
  const select = h("select", { id: "project", "aria-label": "Project" });
  const branchSelect = h("select", { id: "branch", "aria-label": "Git branch" });
  const listParams = () => ({
    q: state.q || undefined,
    project: state.project ?? undefined,
    branch: state.branch ?? undefined,
  });
  const count = h("span", { class: "count muted", id: "count" });
  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "grid", id: "sessions" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { text: "Session" }),
        h("th", { text: "Project" }),
        h("th", { text: "Model", class: "hide-narrow" }),
        h("th", { text: "Msgs", class: "num hide-narrow" }),
        h("th", { text: "Tokens", class: "num" }),
        h("th", { text: "Cost", class: "num" }),
        h("th", { text: "Updated", class: "num" }),
      ),
    ),
    tbody,
  );
  const body = h("div", { class: "panel" }, table);

  let loadSeq = 0;
  const load = async () => {
    // A debounced search can fire after the page moved on: then it does nothing.
    if (!current()) return;
    const mySeq = ++loadSeq;
    state.q = search.value.trim();
    const chosen = select.value;
    if (select.options.length > 0) state.project = chosen === "*" ? null : chosen;
    if (branchSelect.options.length > 0) state.branch = branchSelect.value === "*" ? null : branchSelect.value;
    const qs = new URLSearchParams();
    if (state.q) qs.set("q", state.q);
    if (state.project !== null) qs.set("project", state.project);
    if (state.branch !== null) qs.set("branch", state.branch);
    lastListHash = `#/${qs.toString() ? `?${qs}` : ""}`;
    if (location.hash !== lastListHash && !(location.hash === "" && lastListHash === "#/")) {
      history.replaceState(null, "", lastListHash);
    }
    const data = await api("sessions", listParams());
    if (mySeq !== loadSeq || !current()) return;
    fillProjects(select, data.projects, state.project);
    fillBranches(branchSelect, data.branches, state.branch);
    fillRows(tbody, data.sessions, state);
    const shown = data.sessions.length;
    count.textContent =
      data.total === shown
        ? `${fmtInt(shown)} session${shown === 1 ? "" : "s"}`
        : `${fmtInt(shown)} of ${fmtInt(data.total)} sessions`;
    body.classList.toggle("is-empty", shown === 0);
    const empty = body.querySelector(".empty");
    if (empty) empty.remove();
    if (shown === 0) body.append(emptyState(state));
  };
  const reload = () => load().catch(handleLoadError);
  const handleLoadError = (err) => {
    if (!current()) return;
    if (err instanceof AuthError) showKeyPrompt(err.message);
    else showError(err);
  };
  let timer;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(reload, 180);
  });
  search.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      clearTimeout(timer);
      reload();
    }
  });
  select.addEventListener("change", reload);
  branchSelect.addEventListener("change", reload);

  const data = await api("sessions", listParams());
  if (!current()) return;
  mount(h("section", { class: "view-sessions" }, h("div", { class: "toolbar" }, search, select, branchSelect, count), body));
  fillProjects(select, data.projects, state.project);
  select.value = state.project === null ? "*" : state.project;
  fillBranches(branchSelect, data.branches, state.branch);
  // Render what was fetched, then keep the hash in step with the controls.
  fillRows(tbody, data.sessions, state);
  const shown = data.sessions.length;
  count.textContent =
    data.total === shown ? `${fmtInt(shown)} session${shown === 1 ? "" : "s"}` : `${fmtInt(shown)} of ${fmtInt(data.total)} sessions`;
  if (shown === 0) body.append(emptyState(state));
  lastListHash = location.hash || "#/";
}

function fillProjects(select, projects, chosen) {
  const opts = [h("option", { value: "*", text: "All projects" })];
  let found = chosen === null;
  for (const p of projects) {
    if (p.key === chosen) found = true;
    opts.push(h("option", { value: p.key, title: p.key, text: `${p.label} (${p.sessions})` }));
  }
  if (!found) opts.push(h("option", { value: chosen, text: chosen || "(no project)" }));
  select.replaceChildren(...opts);
  select.value = chosen === null ? "*" : chosen;
}

function fillBranches(select, branches, chosen) {
  const opts = [h("option", { value: "*", text: "All branches" })];
  let found = chosen === null;
  for (const b of branches || []) {
    if (b.key === chosen) found = true;
    opts.push(h("option", { value: b.key, text: `${b.label} (${b.sessions})` }));
  }
  if (!found) opts.push(h("option", { value: chosen, text: chosen || "(no branch)" }));
  select.replaceChildren(...opts);
  select.value = chosen === null ? "*" : chosen;
}

function emptyState(state) {
  if (state.q || state.project !== null || state.branch !== null) {
    return h("div", { class: "empty" }, "No session matches. ", h("a", { href: "#/", text: "Show all" }));
  }
  return h(
    "div",
    { class: "empty" },
    h("p", { text: "No sessions yet." }),
    h("p", {}, "Point OpenCode's sync plugin at this server: ", h("code", { text: `opencode-sync login --url ${location.origin}` })),
  );
}

function fillRows(tbody, sessions, state) {
  const rows = sessions.map((s) => {
    const href = `#/session/${encodeURIComponent(s.id)}`;
    const title = s.title || "(untitled)";
    const tr = h(
      "tr",
      { "data-id": s.id, "data-external-id": s.externalId },
      h(
        "td",
        { class: "title-cell" },
        h("a", { href, class: "session-link", text: title }),
        state.q && s.snippet ? h("div", { class: "snippet", text: s.snippet }) : null,
        h("div", { class: "sub", text: s.externalId }),
      ),
      h(
        "td",
        { class: "project-cell", title: s.projectPath || "" },
        s.project,
        s.gitBranch ? h("div", { class: "sub branch", title: "git branch", text: s.gitBranch }) : null,
      ),
      h("td", { class: "model-cell hide-narrow", title: s.provider ? `${s.provider}/${s.model || ""}` : "", text: s.model || "—" }),
      h("td", { class: "num hide-narrow", text: fmtInt(s.messageCount) }),
      h("td", {
        class: "num",
        title: `${fmtInt(s.promptTokens)} prompt + ${fmtInt(s.completionTokens)} completion`,
        text: fmtTokens(s.totalTokens),
      }),
      h("td", { class: "num", title: `$${s.cost}`, text: fmtCost(s.cost) }),
      h("td", { class: "num", title: fmtDate(s.updatedAt), text: fmtAgo(s.updatedAt) }),
    );
    tr.addEventListener("click", (e) => {
      if (e.target.closest("a")) return;
      location.hash = href;
    });
    return tr;
  });
  tbody.replaceChildren(...rows);
}

// ---------------------------------------------------------------------------
// One session

async function showSession(id, current) {
  const data = await api("session", { id });
  if (!current()) return;
  const s = data.session;
  document.title = `${s.title || "(untitled)"} · opencode-sync`;
  const meta = h(
    "div",
    { class: "meta" },
    h("span", { title: s.projectPath || "" }, "Project ", h("b", { text: s.project })),
    s.gitBranch ? h("span", { id: "session-branch" }, "Branch ", h("b", { class: "mono", text: s.gitBranch })) : null,
    s.model ? h("span", {}, "Model ", h("b", { class: "mono", text: s.provider ? `${s.provider}/${s.model}` : s.model })) : null,
    h(
      "span",
      { title: `${fmtInt(s.promptTokens)} prompt + ${fmtInt(s.completionTokens)} completion` },
      "Tokens ",
      h("b", { text: fmtInt(s.totalTokens) }),
      ` (${fmtTokens(s.promptTokens)} in · ${fmtTokens(s.completionTokens)} out)`,
    ),
    h("span", {}, "Cost ", h("b", { text: fmtCost(s.cost) })),
    h("span", {}, "Messages ", h("b", { text: fmtInt(s.messageCount) })),
    s.durationMs ? h("span", {}, "Duration ", h("b", { text: fmtDuration(s.durationMs) })) : null,
    h("span", {}, "Started ", h("b", { text: fmtDate(s.createdAt) })),
    h("span", { class: "mono", title: "externalId" }, s.externalId),
  );
  const messages = data.messages.map(renderMessage);
  const exportStatus = h("span", { class: "muted", role: "status" });
  const exportButton = (format, label) =>
    h("button", {
      type: "button",
      id: `export-${format}`,
      text: label,
      onclick: () => {
        exportStatus.textContent = "";
        download("export", { id: s.id, format }).catch((err) => {
          if (err instanceof AuthError) showKeyPrompt(err.message);
          else exportStatus.textContent = `Export failed: ${err.message}`;
        });
      },
    });
  const actions = h(
    "div",
    { class: "actions" },
    exportButton("markdown", "Export Markdown"),
    exportButton("json", "Export JSON"),
    exportStatus,
  );
  mount(
    h(
      "section",
      { class: "view-session" },
      h("a", { class: "back", href: lastListHash, text: "← Sessions" }),
      h("div", { class: "session-head" }, h("h1", { id: "session-title", text: s.title || "(untitled)" }), meta, actions),
      h(
        "div",
        { class: "messages", id: "messages" },
        messages.length ? messages : h("div", { class: "panel empty", text: "No messages synced for this session yet." }),
      ),
    ),
  );
  window.scrollTo(0, 0);
}

function renderMessage(m) {
  const tokens = [];
  if (m.promptTokens) tokens.push(`${fmtInt(m.promptTokens)} in`);
  if (m.completionTokens) tokens.push(`${fmtInt(m.completionTokens)} out`);
  const head = h(
    "div",
    { class: "msg-head" },
    h("span", { class: `pill ${m.role}`, text: m.role }),
    m.model ? h("span", { class: "model", text: m.model }) : null,
    h("span", { title: fmtDate(m.createdAt), text: m.createdAt ? timeFmt.format(new Date(m.createdAt)) : "" }),
    m.durationMs ? h("span", { text: fmtDuration(m.durationMs) }) : null,
    h("span", { class: "tokens", title: "prompt / completion tokens of this message", text: tokens.join(" · ") }),
  );
  const blocks = (m.blocks || []).map(renderBlock);
  return h(
    "article",
    { class: `msg role-${m.role}`, "data-id": m.externalId },
    head,
    h("div", { class: "msg-body" }, blocks.length ? blocks : h("span", { class: "muted", text: "(empty)" })),
  );
}

function markdown(html) {
  const div = h("div", { class: "md" });
  // Rendered by the server from markdown with raw HTML escaped and unsafe links dropped.
  div.innerHTML = html;
  for (const a of div.querySelectorAll("a[href]")) {
    a.target = "_blank";
    a.rel = "noopener noreferrer";
  }
  return div;
}

function renderBlock(b) {
  switch (b.kind) {
    case "text":
      return markdown(b.html);
    case "reasoning":
      return h("details", { class: "reasoning" }, h("summary", { text: "Reasoning" }), markdown(b.html));
    case "tool":
      return renderTool(b);
    default:
      return h(
        "details",
        { class: "part" },
        h("summary", { text: `${b.type} part` }),
        h("pre", { class: "block", text: b.content }),
      );
  }
}

function renderTool(t) {
  const status = t.status || "pending";
  const facts = h(
    "span",
    { class: "facts" },
    t.exit !== undefined ? h("span", { class: "mono", text: `exit ${t.exit}` }) : null,
    t.durationMs !== undefined ? h("span", { text: fmtDuration(t.durationMs) }) : null,
    h("span", { class: `pill ${status === "completed" ? "ok" : status}`, text: status }),
  );
  const body = h("div", { class: "tool-body" });
  if (t.args !== undefined) {
    body.append(h("div", { class: "label", text: "Arguments" }), h("pre", { class: "block args mono", text: JSON.stringify(t.args, null, 2) }));
  }
  if (t.output !== undefined && t.output !== t.error) {
    const lines = t.output.split("\n").length;
    body.append(
      h(
        "details",
        { class: "output", open: lines <= 20 },
        h("summary", {}, h("span", { class: "label", text: "Output" }), ` · ${fmtInt(lines)} line${lines === 1 ? "" : "s"}`, t.truncated ? " · truncated" : ""),
        h("pre", { class: "block output-text mono", text: t.output }),
      ),
    );
  }
  if (t.error !== undefined) {
    body.append(h("div", { class: "label", text: "Error" }), h("pre", { class: "block error mono", text: t.error }));
  }
  return h(
    "div",
    { class: `tool status-${status}`, "data-tool": t.name, "data-call-id": t.callId },
    h(
      "div",
      { class: "tool-head" },
      h("span", { class: "tool-name", text: t.name }),
      t.title ? h("span", { class: "tool-title", title: t.title, text: t.title }) : h("span", { class: "grow" }),
      facts,
    ),
    body,
  );
}

// ---------------------------------------------------------------------------
// Usage

async function showUsage(current) {
  document.title = "Usage · opencode-sync";
  const data = await api("usage", { tz: new Date().getTimezoneOffset() });
  if (!current()) return;
  const t = data.totals;
  const card = (k, v, sub) => h("div", { class: "card" }, h("div", { class: "k", text: k }), h("div", { class: "v", text: v }), sub ? h("div", { class: "s", text: sub }) : null);
  const days = dayRange(data.byDay);
  mount(
    h(
      "section",
      { class: "view-usage" },
      h(
        "div",
        { class: "cards" },
        card("Sessions", fmtInt(t.sessions)),
        card("Messages", fmtInt(t.messages)),
        card("Tokens", fmtTokens(t.totalTokens), `${fmtTokens(t.promptTokens)} in · ${fmtTokens(t.completionTokens)} out`),
        card("Cost", fmtCost(t.cost)),
      ),
      h(
        "div",
        { class: "charts" },
        chartBox(
          "Tokens per day",
          "chart-tokens-day",
          columnChart(days, [
            { key: "promptTokens", cls: "", label: "prompt" },
            { key: "completionTokens", cls: "s2", label: "completion" },
          ], fmtTokens, axisTokens),
          h("span", { class: "legend" }, h("span", {}, h("span", { class: "swatch s1" }), "prompt"), h("span", {}, h("span", { class: "swatch s2" }), "completion")),
        ),
        chartBox("Cost per day", "chart-cost-day", columnChart(days, [{ key: "cost", cls: "cost", label: "cost" }], fmtCost, axisCost)),
        chartBox("Tokens by model", "chart-tokens-model", barChart(data.byModel, "totalTokens", fmtTokens, "")),
        chartBox("Cost by model", "chart-cost-model", barChart(data.byModel, "cost", fmtCost, "cost")),
        chartBox("Tokens by project", "chart-tokens-project", barChart(data.byProject, "totalTokens", fmtTokens, "")),
        chartBox("Cost by project", "chart-cost-project", barChart(data.byProject, "cost", fmtCost, "cost")),
      ),
      h("p", { class: "muted", text: "Per day: sessions by the day they started (your time zone), with their final totals." }),
    ),
  );
}

function chartBox(title, id, svg, legend) {
  return h("div", { class: "chart", id }, h("h3", {}, title, legend || null), svg);
}

const DAY_MS = 86400000;

function localDay(ms) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

/** Every day from the first with data (at most 90 days back, at least 14) to today. */
function dayRange(byDay) {
  const map = new Map(byDay.filter((d) => d.day).map((d) => [d.day, d]));
  const known = [...map.keys()].sort();
  const today = localDay(Date.now());
  const last = known.length && known[known.length - 1] > today ? known[known.length - 1] : today;
  const lastMs = new Date(`${last}T12:00:00`).getTime();
  let firstMs = known.length ? new Date(`${known[0]}T12:00:00`).getTime() : lastMs;
  firstMs = Math.max(firstMs, lastMs - 89 * DAY_MS);
  firstMs = Math.min(firstMs, lastMs - 13 * DAY_MS);
  const out = [];
  for (let ms = firstMs; ms <= lastMs + 1; ms += DAY_MS) {
    const day = localDay(ms);
    out.push(map.get(day) || { day, promptTokens: 0, completionTokens: 0, totalTokens: 0, cost: 0, sessions: 0 });
  }
  return out;
}

/** Axis scale for values up to `v`: a round step (1, 2 or 5 x 10^k) and at most 5 ticks. */
function niceScale(v) {
  if (!(v > 0)) return { max: 1, step: 0.25 };
  const raw = v / 4;
  const exp = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * exp).find((st) => st >= raw);
  return { max: Math.ceil(v / step - 1e-9) * step, step };
}

/** Short axis labels: 12k, 1.5M, $0.2. */
function axisTokens(n) {
  return fmtTokens(n);
}

function axisCost(n) {
  return n === 0 ? "$0" : `$${Number(n.toPrecision(3))}`;
}

/** Columns per day, stacked when several series are given. */
function columnChart(days, series, fmt, axisFmt) {
  const W = 560;
  const H = 180;
  const left = 48;
  const bottom = 20;
  const top = 6;
  const plotW = W - left - 4;
  const plotH = H - top - bottom;
  const totals = days.map((d) => series.reduce((sum, se) => sum + (d[se.key] || 0), 0));
  const { max, step: tick } = niceScale(Math.max(0, ...totals));
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": series.map((x) => x.label).join(" and ") + " per day" });
  for (let v = 0; v <= max + tick / 2; v += tick) {
    const y = top + plotH - (plotH * v) / max;
    svg.append(s("line", { class: "gridline", x1: left, x2: W - 4, y1: y, y2: y }));
    svg.append(s("text", { x: left - 6, y: y + 3, "text-anchor": "end" }, axisFmt(v)));
  }
  const step = plotW / days.length;
  const barW = Math.max(1, Math.min(28, step * 0.72));
  const labelEvery = Math.max(1, Math.ceil(days.length / 8));
  days.forEach((d, i) => {
    const x = left + i * step + (step - barW) / 2;
    let y = top + plotH;
    for (const se of series) {
      const v = d[se.key] || 0;
      if (v <= 0) continue;
      const bh = Math.max(1, (plotH * v) / max);
      y -= bh;
      svg.append(
        s("rect", { class: `bar ${se.cls}`.trim(), x: x.toFixed(1), y: y.toFixed(1), width: barW.toFixed(1), height: bh.toFixed(1), rx: 1.5, "data-day": d.day }, s("title", {}, `${d.day} · ${se.label}: ${fmt(v)} (${d.sessions} session${d.sessions === 1 ? "" : "s"})`)),
      );
    }
    const last = i === days.length - 1 && i % labelEvery >= labelEvery / 2;
    if (i % labelEvery === 0 || last) {
      const [, mo, da] = d.day.split("-");
      svg.append(s("text", { x: (left + i * step + step / 2).toFixed(1), y: H - 5, "text-anchor": "middle" }, `${Number(mo)}/${Number(da)}`));
    }
  });
  svg.append(s("line", { class: "axis", x1: left, x2: W - 4, y1: top + plotH, y2: top + plotH }));
  return svg;
}

/** Horizontal bars, one row per key (the 10 largest, the rest summed as "other"). */
function barChart(rows, key, fmt, cls) {
  const sorted = [...rows].sort((a, b) => (b[key] || 0) - (a[key] || 0));
  let shown = sorted.slice(0, 10);
  if (sorted.length > 10) {
    const rest = sorted.slice(10);
    shown.push({ label: `${rest.length} more`, key: "", [key]: rest.reduce((sum, r) => sum + (r[key] || 0), 0), sessions: rest.reduce((sum, r) => sum + r.sessions, 0) });
  }
  if (shown.length === 0) shown = [{ label: "(no data)", key: "", [key]: 0, sessions: 0 }];
  const W = 560;
  const rowH = 22;
  const labelW = 150;
  const valueW = 64;
  const H = shown.length * rowH + 4;
  const max = Math.max(0, ...shown.map((r) => r[key] || 0)) || 1;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
  shown.forEach((r, i) => {
    const y = 2 + i * rowH;
    const label = r.label.length > 24 ? `${r.label.slice(0, 23)}…` : r.label;
    svg.append(s("text", { x: 0, y: y + 14 }, s("title", {}, r.key || r.label), label));
    const v = r[key] || 0;
    const w = ((W - labelW - valueW) * v) / max;
    if (v > 0) {
      svg.append(
        s("rect", { class: `bar ${cls}`.trim(), x: labelW, y: y + 4, width: Math.max(1, w).toFixed(1), height: rowH - 8, rx: 2 }, s("title", {}, `${r.label}: ${fmt(v)} in ${r.sessions} session${r.sessions === 1 ? "" : "s"}`)),
      );
    }
    svg.append(s("text", { class: "value", x: labelW + Math.max(1, w) + 6, y: y + 14 }, fmt(v)));
  });
  return svg;
}
