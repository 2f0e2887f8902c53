// Helpers to drive the real OpenCode binary (npm package opencode-ai, pinned in
// tests/e2e/package.json) in an isolated, offline, deterministic environment:
//   createEnv()       temp HOME + XDG dirs + a git project on a named branch
//   writeConfig()     opencode.json with the scripted model provider and a plugin list
//   runOpencode()     `opencode run` with a timeout; stdout/stderr/wall time captured
//   readStore()       OpenCode's own SQLite store (opencode.db), read-only, parsed
//   readRecording()   the JSON lines written by fixtures/recorder-plugin.mjs
// See tests/e2e/README.md for the OpenCode facts these rely on.

import { spawn, spawnSync, execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const E2E_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const WORK_DIR = path.join(E2E_DIR, ".work");
export const OPENCODE_BIN = path.join(E2E_DIR, "node_modules", "opencode-ai", "bin", "opencode.exe");
export const BUN_BIN = path.join(E2E_DIR, "node_modules", "bun", "bin", "bun.exe");
export const OPENCODE_VERSION = "1.18.33";
/** Where `scripts/setup-e2e compat` installs the older releases, ripgrep and the provider package. */
export const COMPAT_DIR = path.resolve(process.env.OPENCODE_COMPAT_DIR || path.join(E2E_DIR, "..", "..", ".tools", "opencode-compat"));
/** The releases the compatibility suite runs (the pinned one comes from node_modules). */
export const COMPAT_VERSIONS = Object.freeze(["1.0.61", "1.2.27", "1.14.41", "1.15.13", OPENCODE_VERSION]);
export const RECORDER_PLUGIN = path.join(E2E_DIR, "fixtures", "recorder-plugin.mjs");
export const RECORDER_PLUGIN_URL = pathToFileURL(RECORDER_PLUGIN).href;

/** Environment variables that keep OpenCode offline and quiet (see README). */
export const OFFLINE_ENV = Object.freeze({
  OPENCODE_DISABLE_MODELS_FETCH: "1", // no models catalogue download; models come from our config
  OPENCODE_DISABLE_AUTOUPDATE: "1",
  OPENCODE_DISABLE_LSP_DOWNLOAD: "1",
  OPENCODE_DISABLE_SHARE: "1",
  OPENCODE_DISABLE_CLAUDE_CODE: "1", // do not read ~/.claude prompts/skills
  OPENCODE_DISABLE_EXTERNAL_SKILLS: "1",
  OPENCODE_DISABLE_TERMINAL_TITLE: "1",
});

const GIT_ID = ["-c", "user.name=e2e", "-c", "user.email=e2e@example.invalid", "-c", "commit.gpgsign=false"];

function assertInstalled() {
  for (const bin of [OPENCODE_BIN, BUN_BIN]) {
    if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run scripts/setup-e2e first`);
  }
}

/** The binary of OpenCode `version` (the pinned one, or one installed by `scripts/setup-e2e compat`). */
export function opencodeBinFor(version = OPENCODE_VERSION) {
  if (version === OPENCODE_VERSION) return OPENCODE_BIN;
  const bin = path.join(COMPAT_DIR, "bin", `opencode-${version}`);
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run scripts/setup-e2e compat first`);
  return bin;
}

/** Where an OpenCode release keeps its sessions: "sqlite" (opencode.db, 1.2 on) or "json" (storage/, before). */
export function storeKindOf(version = OPENCODE_VERSION) {
  const [major, minor] = version.split(".").map(Number);
  return major > 1 || (major === 1 && minor >= 2) ? "sqlite" : "json";
}

/**
 * What an older release fetches from the internet on first use, made local: ripgrep on
 * PATH (1.0.x downloads it otherwise), the provider package in its cache (1.0.x installs
 * `@ai-sdk/openai-compatible@latest` there; later releases bundle it), and no default
 * auth plugins (installed from the registry at every start).
 */
function prepareOlderRelease(e, version) {
  const rg = path.join(COMPAT_DIR, "bin", "rg");
  if (!fs.existsSync(rg)) throw new Error(`${rg} is missing: run scripts/setup-e2e compat first`);
  e.env.PATH = `${path.join(COMPAT_DIR, "bin")}${path.delimiter}${e.env.PATH}`;
  e.env.OPENCODE_DISABLE_DEFAULT_PLUGINS = "1";
  if (!version.startsWith("1.0.")) return;
  const cache = path.join(e.cacheHome, "opencode");
  const provided = path.join(COMPAT_DIR, "cache-node_modules", "node_modules");
  if (!fs.existsSync(path.join(provided, "@ai-sdk", "openai-compatible"))) {
    throw new Error(`${provided}/@ai-sdk/openai-compatible is missing: run scripts/setup-e2e compat first`);
  }
  fs.mkdirSync(cache, { recursive: true });
  fs.cpSync(provided, path.join(cache, "node_modules"), { recursive: true });
  // 1.0.x empties its cache when `version` does not hold its CACHE_VERSION ("9" in 1.0.61), and
  // reinstalls a package whose version in package.json is not the one it asks for.
  fs.writeFileSync(path.join(cache, "version"), "9");
  fs.writeFileSync(path.join(cache, "package.json"), JSON.stringify({ dependencies: { "@ai-sdk/openai-compatible": "latest" } }, null, 2) + "\n");
}

/**
 * OpenCode runs `npm install @opencode-ai/plugin@<version>` (from the registry, in the
 * background, ~7 s) in every config directory it reads (the global one and any
 * `.opencode/`), unless the directory already has `node_modules/` and a package-lock.json
 * whose root lists every dependency of its package.json. It then waits for that install
 * before loading plugins. Writing these stubs makes it skip the install: no network, and
 * runs are several seconds faster. A file:// plugin resolves its own imports from where
 * it lives, so it needs nothing here.
 */
export function stubConfigDirDeps(dir, version = OPENCODE_VERSION) {
  const deps = { "@opencode-ai/plugin": version };
  fs.mkdirSync(path.join(dir, "node_modules"), { recursive: true });
  const pkgFile = path.join(dir, "package.json");
  const pkg = fs.existsSync(pkgFile) ? JSON.parse(fs.readFileSync(pkgFile, "utf8")) : {};
  pkg.dependencies = { ...deps, ...(pkg.dependencies ?? {}) };
  fs.writeFileSync(pkgFile, JSON.stringify(pkg, null, 2) + "\n");
  const lock = { name: "opencode", lockfileVersion: 3, requires: true, packages: { "": { dependencies: pkg.dependencies } } };
  fs.writeFileSync(path.join(dir, "package-lock.json"), JSON.stringify(lock, null, 2) + "\n");
}

/**
 * Create an isolated environment under tests/e2e/.work/: HOME and the XDG dirs, and a
 * project directory that is a git repo on `branch` with one commit (OpenCode's project
 * id is the repo's root commit; without a commit the project is "global").
 * @param {object} [o]
 * @param {string} [o.name]     prefix of the temp dir
 * @param {string} [o.branch]   branch to create ("main")
 * @param {Record<string,string>} [o.files]  files committed in the project
 * @param {boolean} [o.git]     false for a plain directory
 * @param {string} [o.opencode] the OpenCode release to run (default: the pinned one); an
 *   older one needs `scripts/setup-e2e compat`
 */
/** Run fn with a fresh environment; remove it afterwards unless fn failed or E2E_KEEP. */
export async function withEnv(t, opts, fn) {
  const e = createEnv(opts);
  let ok = false;
  try {
    await fn(e);
    ok = true;
  } finally {
    if (ok && !process.env.E2E_KEEP) e.cleanup();
    else t.diagnostic(`environment kept at ${e.root}`);
  }
}

export function createEnv({ name = "env", branch = "main", files = { "notes.txt": "hello from notes\n" }, git = true, opencode = OPENCODE_VERSION } = {}) {
  assertInstalled();
  const opencodeBin = opencodeBinFor(opencode);
  fs.mkdirSync(WORK_DIR, { recursive: true });
  const root = fs.mkdtempSync(path.join(WORK_DIR, `${name}-`));
  const home = path.join(root, "home");
  const configHome = path.join(root, "xdg", "config");
  const dataHome = path.join(root, "xdg", "data");
  const stateHome = path.join(root, "xdg", "state");
  const cacheHome = path.join(root, "xdg", "cache");
  const project = path.join(root, "project");
  const opencodeConfigDir = path.join(configHome, "opencode");
  for (const d of [home, configHome, dataHome, stateHome, cacheHome, project, opencodeConfigDir]) {
    fs.mkdirSync(d, { recursive: true });
  }
  stubConfigDirDeps(opencodeConfigDir, opencode);
  for (const [rel, content] of Object.entries(files)) {
    const f = path.join(project, rel);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, content);
  }
  if (git) {
    const g = (...args) => execFileSync("git", [...GIT_ID, ...args], { cwd: project, stdio: "pipe", env: gitEnv(home) });
    g("init", "-q", "-b", branch);
    g("add", "-A");
    g("commit", "-q", "--allow-empty", "-m", "initial");
  }
  const env = {
    // a minimal, explicit environment: nothing from the developer's own setup leaks in
    PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
    LANG: "C.UTF-8",
    TZ: "UTC",
    TERM: "dumb",
    NO_COLOR: "1",
    HOME: home,
    XDG_CONFIG_HOME: configHome,
    XDG_DATA_HOME: dataHome,
    XDG_STATE_HOME: stateHome,
    XDG_CACHE_HOME: cacheHome,
    ...OFFLINE_ENV,
  };
  const e = {
    opencodeVersion: opencode,
    opencodeBin,
    storeKind: storeKindOf(opencode),
    root,
    home,
    configHome,
    dataHome,
    stateHome,
    cacheHome,
    project,
    branch,
    opencodeConfigDir,
    dataDir: path.join(dataHome, "opencode"),
    dbPath: path.join(dataHome, "opencode", "opencode.db"),
    env,
    /** Remove the whole environment (use after the run's processes have ended). */
    cleanup: () => fs.rmSync(root, { recursive: true, force: true }),
  };
  if (opencode !== OPENCODE_VERSION) prepareOlderRelease(e, opencode);
  return e;
}

function gitEnv(home) {
  return { PATH: process.env.PATH, HOME: home, GIT_CONFIG_NOSYSTEM: "1", LANG: "C.UTF-8" };
}

/**
 * Write opencode.json. Default location is the global config dir
 * ($XDG_CONFIG_HOME/opencode/opencode.json), which keeps the project tree clean;
 * `location: "project"` writes <project>/opencode.json instead.
 * @param {object} e  from createEnv()
 * @param {object} o
 * @param {string} o.baseURL          model server base URL ending in /v1
 * @param {Array}  [o.plugins]        plugin entries: "file:///abs.js", "name@1.0.0", or [spec, options]
 * @param {string} [o.providerID]     "mock"
 * @param {string} [o.modelID]        "mock-1"
 * @param {{input:number, output:number, cache_read?:number, cache_write?:number}} [o.cost]  USD per 1M tokens
 * @param {object} [o.extra]          merged into the top level of the config
 * @returns {{file: string, config: object}}
 */
export function writeConfig(e, { baseURL, plugins = [], providerID = "mock", modelID = "mock-1", cost = { input: 3, output: 15 }, extra = {}, location = "global" }) {
  if (!baseURL) throw new Error("writeConfig: baseURL is required");
  const config = {
    model: `${providerID}/${modelID}`,
    small_model: `${providerID}/${modelID}`,
    autoupdate: false,
    share: "disabled",
    provider: {
      [providerID]: {
        npm: "@ai-sdk/openai-compatible",
        name: "Scripted e2e model",
        options: { baseURL, apiKey: "e2e-not-a-secret" },
        models: {
          [modelID]: {
            name: `Scripted ${modelID}`,
            tool_call: true,
            reasoning: false,
            temperature: false,
            cost,
            limit: { context: 200000, output: 4096 },
          },
        },
      },
    },
    plugin: plugins,
    ...extra,
  };
  const file = location === "project" ? path.join(e.project, "opencode.json") : path.join(e.opencodeConfigDir, "opencode.json");
  fs.writeFileSync(file, JSON.stringify(config, null, 2) + "\n");
  return { file, config };
}

const live = new Set();
function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    // group already gone
  }
}
process.on("exit", () => {
  for (const pid of live) killGroup(pid, "SIGKILL");
});

/**
 * Run `opencode run <prompt>` in the project directory.
 * The prompt is passed as one argv element, as a user typing `opencode run "..."` does;
 * OpenCode then stores the text wrapped in double quotes when it contains a space (it
 * quotes each argv element that has a space). Pass an array to give several argv words.
 * @param {object} e  from createEnv()
 * @param {string|string[]} prompt
 * @param {object} [o]
 * @param {string} [o.session]      continue this session id (--session)
 * @param {boolean} [o.continue]    continue the most recent session (--continue)
 * @param {"default"|"json"} [o.format]  "json" prints one JSON event per line on stdout
 * @param {string[]} [o.args]       extra CLI args
 * @param {object} [o.env]          extra environment variables
 * @param {number} [o.timeoutMs]    hard limit; the process group is killed after it (60 s)
 * @param {boolean} [o.printLogs]   --print-logs --log-level (INFO by default) to stderr (true)
 * @param {string} [o.bin]  the OpenCode binary (default: the environment's `opencodeBin`, else the pinned one)
 * @param {(child: import("node:child_process").ChildProcess) => void} [o.onSpawn]  called with
 *   the child once started (its pid is also its process group's id), e.g. to kill it mid-run
 * @returns {Promise<{code:number|null, signal:string|null, timedOut:boolean, stdout:string,
 *   stderr:string, wallMs:number, args:string[], events:object[]|null}>}
 */
export async function runOpencode(e, prompt, { session, continue: cont = false, format, args = [], env = {}, timeoutMs = 60_000, printLogs = true, logLevel = "INFO", onSpawn, bin = e.opencodeBin ?? OPENCODE_BIN } = {}) {
  const argv = ["run"];
  if (printLogs) argv.push("--print-logs", "--log-level", logLevel);
  if (session) argv.push("--session", session);
  if (cont) argv.push("--continue");
  if (format) argv.push("--format", format);
  argv.push(...args);
  // 1.0.x's argument parser takes no `--` before the message ("You must provide a message").
  if (!e.opencodeVersion?.startsWith("1.0.")) argv.push("--");
  argv.push(...(Array.isArray(prompt) ? prompt : [prompt]));
  const started = Date.now();
  const child = spawn(bin, argv, {
    cwd: e.project,
    env: { ...e.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // own process group, so the tools it spawns are ended with it
  });
  live.add(child.pid);
  if (onSpawn && child.pid) onSpawn(child);
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(child.pid, "SIGTERM");
    setTimeout(() => killGroup(child.pid, "SIGKILL"), 3000).unref();
  }, timeoutMs);
  const [code, signal] = await new Promise((resolve) => {
    child.on("error", (err) => {
      stderr += `\nspawn error: ${err}`;
      resolve([null, null]);
    });
    child.on("close", (c, s) => resolve([c, s]));
  });
  clearTimeout(timer);
  killGroup(child.pid, "SIGKILL"); // anything left in its group (none expected)
  live.delete(child.pid);
  let events = null;
  if (format === "json") {
    events = stdout
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => {
        try {
          return JSON.parse(l);
        } catch {
          return { unparsed: l };
        }
      });
  }
  return { code, signal, timedOut, stdout, stderr, wallMs: Date.now() - started, args: argv, events };
}

/** Short, readable description of a run for assertion messages. */
export function describeRun(r) {
  const tail = (s, n = 4000) => (s.length > n ? "…" + s.slice(-n) : s);
  return `opencode ${r.args.join(" ")}\nexit=${r.code} signal=${r.signal} timedOut=${r.timedOut} wall=${r.wallMs}ms\n--- stdout ---\n${tail(r.stdout)}\n--- stderr ---\n${tail(r.stderr)}`;
}

const READ_DB = `
import { Database } from "bun:sqlite";
const db = new Database(process.env.OPENCODE_DB_PATH, { readonly: true });
const all = (sql) => db.query(sql).all();
const out = {
  projects: all("SELECT * FROM project ORDER BY time_created, id"),
  sessions: all("SELECT * FROM session ORDER BY time_created, id"),
  messages: all("SELECT * FROM message ORDER BY time_created, id"),
  parts: all("SELECT * FROM part ORDER BY message_id, id"),
};
db.close();
process.stdout.write(JSON.stringify(out));
`;

function parseJSONField(v) {
  if (typeof v !== "string") return v;
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}

/**
 * Read OpenCode's SQLite store read-only (WAL mode; safe while OpenCode runs) with the
 * pinned Bun's bun:sqlite (Node 20 has no node:sqlite). JSON columns are parsed:
 * message.data / part.data become `data` objects, and for convenience each message and
 * part also gets the full OpenCode shape in `info` ({id, sessionID, ...data} /
 * {id, messageID, sessionID, ...data}), as the plugin events carry it.
 * @param {object|string} e  from createEnv(), or a path to opencode.db
 * @param {{sessionID?: string}} [o]  restrict to one session
 */
export function readStore(e, { sessionID } = {}) {
  if (typeof e !== "string" && e.storeKind === "json") return withReplyTotals(readJsonStore(e.dataDir, { sessionID }));
  const dbPath = typeof e === "string" ? e : e.dbPath;
  if (!fs.existsSync(dbPath)) throw new Error(`no OpenCode store at ${dbPath}`);
  const r = spawnSync(BUN_BIN, ["-e", READ_DB], {
    encoding: "utf8",
    timeout: 30_000,
    maxBuffer: 256 * 1024 * 1024,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0", OPENCODE_DB_PATH: dbPath },
  });
  if (r.status !== 0) throw new Error(`reading ${dbPath} failed (${r.status} ${r.signal ?? ""}): ${r.stderr}${r.error ?? ""}`);
  const raw = JSON.parse(r.stdout);
  const sessions = raw.sessions
    .filter((s) => !sessionID || s.id === sessionID)
    .map((s) => ({ ...s, model: parseJSONField(s.model), permission: parseJSONField(s.permission), revert: parseJSONField(s.revert), summary_diffs: parseJSONField(s.summary_diffs), metadata: parseJSONField(s.metadata) }));
  const messages = raw.messages
    .filter((m) => !sessionID || m.session_id === sessionID)
    .map((m) => {
      const data = JSON.parse(m.data);
      return { ...m, data, info: { id: m.id, sessionID: m.session_id, ...data } };
    });
  const parts = raw.parts
    .filter((p) => !sessionID || p.session_id === sessionID)
    .map((p) => {
      const data = JSON.parse(p.data);
      return { ...p, data, info: { id: p.id, messageID: p.message_id, sessionID: p.session_id, ...data } };
    });
  const projects = raw.projects.map((p) => ({ ...p, sandboxes: parseJSONField(p.sandboxes), commands: parseJSONField(p.commands) }));
  return withReplyTotals({ projects, sessions, messages, parts });
}

/**
 * Releases before 1.15 keep no totals on the session (no `cost` / `tokens_*` columns, no
 * fields in the JSON tree): there they are the sums over the session's assistant messages,
 * as OpenCode 1.15+ computes them, and the row says `totals_from_replies: true`.
 */
function withReplyTotals(store) {
  for (const row of store.sessions) {
    if (row.tokens_input !== undefined || row.cost !== undefined) continue;
    const sum = { tokens_input: 0, tokens_output: 0, tokens_reasoning: 0, tokens_cache_read: 0, tokens_cache_write: 0, cost: 0 };
    for (const m of store.messages) {
      if (m.session_id !== row.id || m.data.role !== "assistant") continue;
      const t = m.data.tokens ?? {};
      sum.tokens_input += t.input ?? 0;
      sum.tokens_output += t.output ?? 0;
      sum.tokens_reasoning += t.reasoning ?? 0;
      sum.tokens_cache_read += t.cache?.read ?? 0;
      sum.tokens_cache_write += t.cache?.write ?? 0;
      if (Number.isFinite(m.data.cost)) sum.cost += m.data.cost;
    }
    Object.assign(row, sum, { totals_from_replies: true });
  }
  return store;
}

function readJsonDir(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")));
}

/**
 * The JSON tree of releases before 1.2 (`<data>/storage/{project,session/<projectID>,
 * message/<sessionID>,part/<messageID>}/*.json`), in readStore()'s shape: rows named as
 * opencode.db's columns, `data` without the ids, `info` with them.
 */
export function readJsonStore(dataDir, { sessionID } = {}) {
  const storage = path.join(dataDir, "storage");
  if (!fs.existsSync(storage)) throw new Error(`no OpenCode store at ${storage}`);
  const projects = readJsonDir(path.join(storage, "project"));
  const sessions = [];
  const messages = [];
  const parts = [];
  const sessionRoot = path.join(storage, "session");
  for (const projectDir of fs.existsSync(sessionRoot) ? fs.readdirSync(sessionRoot) : []) {
    for (const info of readJsonDir(path.join(sessionRoot, projectDir))) {
      if (sessionID && info.id !== sessionID) continue;
      sessions.push({
        id: info.id,
        project_id: info.projectID,
        parent_id: info.parentID ?? null,
        directory: info.directory,
        title: info.title,
        version: info.version,
        time_created: info.time?.created,
        time_updated: info.time?.updated,
        info,
      });
    }
  }
  sessions.sort((a, b) => a.time_created - b.time_created || a.id.localeCompare(b.id));
  for (const s of sessions) {
    for (const info of readJsonDir(path.join(storage, "message", s.id))) {
      const { id, sessionID: sid, ...data } = info;
      messages.push({ id, session_id: sid, time_created: info.time?.created, data, info });
      for (const p of readJsonDir(path.join(storage, "part", id))) {
        const { id: pid, messageID, sessionID: psid, ...pdata } = p;
        parts.push({ id: pid, message_id: messageID, session_id: psid, data: pdata, info: p });
      }
    }
  }
  messages.sort((a, b) => a.time_created - b.time_created || a.id.localeCompare(b.id));
  parts.sort((a, b) => a.message_id.localeCompare(b.message_id) || a.id.localeCompare(b.id));
  return { projects, sessions, messages, parts };
}

/** Parse the recorder plugin's JSON-lines file ([] when it does not exist). */
export function readRecording(file) {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

/**
 * The last state of each session, message and part seen in a recording's events (they
 * are re-sent whole as they change), keyed by id: what a plugin ends up knowing.
 * @returns {{sessions: Map<string, object>, messages: Map<string, object>, parts: Map<string, object>}}
 */
export function finalStates(recording) {
  const sessions = new Map();
  const messages = new Map();
  const parts = new Map();
  for (const ev of recordedEvents(recording)) {
    const p = ev.properties ?? {};
    if (ev.type === "session.created" || ev.type === "session.updated") sessions.set(p.info.id, p.info);
    else if (ev.type === "message.updated") messages.set(p.info.id, p.info);
    else if (ev.type === "message.part.updated") parts.set(p.part.id, p.part);
  }
  return { sessions, messages, parts };
}

/**
 * Make an npm-name plugin loadable offline: copy the package directory `from` to where
 * OpenCode looks for `<name>@<version>` ($XDG_CACHE_HOME/opencode/packages/<name>@<version>/
 * node_modules/<name>). OpenCode uses a package found there as is; otherwise it installs
 * it from the registry with its embedded npm. Returns the spec for the `plugin` list.
 * Pin the version: an unversioned name is looked up as `<name>@latest` and resolved
 * against the registry.
 */
export function preinstallNpmPlugin(e, { name, version, from }) {
  const spec = `${name}@${version}`;
  const dest = path.join(e.cacheHome, "opencode", "packages", spec, "node_modules", name);
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.cpSync(from, dest, { recursive: true });
  return spec;
}

/** The `event` lines of a recording, as events ({id, type, properties}). */
export function recordedEvents(recording, type) {
  return recording.filter((l) => l.hook === "event" && (!type || l.input?.type === type)).map((l) => l.input);
}
