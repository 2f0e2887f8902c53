// A stand-in for the OpenCode 2 background service as a plugin host, for tests. No OpenCode 2
// binary can be had here (shared/opencode-host-v2.md, "No V2 binary here"), so the V2
// side of a plugin is run inside this host, in-process, under Node 20 or Bun 1.4.
//
// It follows these sections of opencode-host-v2.md (the [S]/[T] sources named there):
// - "Architecture that changes everything": one service process, everything keyed by a
//   location {directory, workspaceID?}, ONE plugin instance per location; eviction closes a
//   location's plugins after interrupting its running executions with reason "inactivity".
// - "Loading": `plugins` entries (npm name[@spec], `./rel` / `../rel` against the config
//   file's directory, `/abs/dir`, `file:///abs/dir`, `{package, options}`); a configured
//   path that is a FILE is dropped with "configured plugin path must be a directory";
//   directory entrypoint `server.*` then `index.*` (package.json main/exports ignored; the
//   file must stay inside the directory); package entrypoint: the `./server` export, else
//   `.`. "What V2 does with an old `plugin` key": `plugins = [...legacy plugin entries
//   (string as is, [spec, options] -> {package, options}), ...plugins]`.
// - "One package for V1 and V2": `mod.default` is decoded as {id: string, effect: function}
//   | {id: string, setup: function}, extra keys (`server`) tolerated, `effect` wins, anything
//   else is `PluginModule.LoadError: Plugin must export a default definition with an id and
//   an effect or setup function.`; a duplicate id in a location fails, the first wins.
// - "The plugin definition and its context": `setup(ctx)` awaited, plugins of a location
//   activated sequentially (a throw marks that plugin failed, the others keep loading); ctx
//   = {app, location, options, event, session, storage, vcs} and the other documented keys as
//   stubs that throw "... is not in the test host"; the returned cleanup runs on unload,
//   eviction and shutdown. Storage is scoped by plugin id only, shared by every location.
// - "Events API": `ctx.event.subscribe({signal})` is an async iterable of `{id: "evt_…",
//   created, type, data, location?, metadata?, durable?}`, NOT filtered by location (every
//   instance sees every location's events), no replay of events published before the
//   iterator starts, unbounded (no drops), closed when the plugin unloads.
// - "Shutdown and flushing": shutdown interrupts running executions with reason "shutdown"
//   (published to the live subscriptions) and then closes every plugin.
//
// Deliberately NOT modelled: installing npm packages (packages resolve from `packagesDir`,
// a directory laid out like node_modules), config files and their precedence, auto-
// discovery of `.opencode/plugins/`, hot reload, disabling by id (`-id`, `*`), git specs,
// `effect` plugins (decoded and recorded as loaded but never run: that needs Effect),
// hooks (`ctx.session.hook`, `ctx.tool.hook`, ...), every ctx domain other than the ones
// above, the 60-minute inactivity timer (tests call `evict`), the service's process model
// (cwd/env; a second "process" is a second Node/Bun process running its own host), and the
// service log file (host messages go to `host.logs`).
//
// Assumptions where the facts are silent (each is named where it is coded): a subscription
// starts when its iterator is first read (a `for await` reads it at once); aborting the
// signal ends the iteration without an error; `storage.scan` answers `{entries: [{key,
// value}], next?}`; `session.get` of an unknown id rejects with a NotFoundError; the
// project of a location is its git root commit (V1's rule) unless the test names one.

import { AsyncLocalStorage } from "node:async_hooks";
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** V2's warning for a configured local path that is a file, not a directory. */
export const FILE_PATH_WARNING = "configured plugin path must be a directory";
/** V2's LoadError message for a default export that is neither `{id, effect}` nor `{id, setup}`. */
export const LOAD_ERROR_MESSAGE = "Plugin must export a default definition with an id and an effect or setup function.";

/** Extensions tried for `server.*` / `index.*` (V2 runs under Bun, which imports all of them). */
const ENTRY_EXTENSIONS = [".ts", ".tsx", ".mts", ".js", ".mjs", ".cjs", ".jsx"];
/** Export conditions a Bun process matches, in the order they are tried. */
const EXPORT_CONDITIONS = ["bun", "import", "node", "module", "default"];
/** The ctx keys of V2's Promise API (2.0.22) that this host does not implement. */
const STUB_DOMAINS = [
  "agent", "aisdk", "command", "experimental", "integration", "mcp", "model", "generate", "permission",
  "plugin", "provider", "reference", "rpc", "shell", "skill", "tool", "websearch", "worktree",
];
/** Events that end a busy period of a session (ground truth Q3). */
const EXECUTION_END = new Set(["session.execution.succeeded", "session.execution.failed", "session.execution.interrupted"]);

/** The error V2 records for a module whose default export does not decode. */
export class PluginLoadError extends Error {
  constructor(cause) {
    super(`${LOAD_ERROR_MESSAGE} (cause: SchemaError(${cause}))`);
    this.name = "PluginModule.LoadError";
  }
}

/** A V2-shaped ascending id: prefix, 12 hex digits of time and a counter, 14 random base62. */
export function v2Id(prefix, time = Date.now()) {
  v2Id.counter = ((v2Id.counter ?? 0) + 1) & 0xfff;
  const hex = (BigInt(time) * 4096n + BigInt(v2Id.counter)).toString(16).slice(-12).padStart(12, "0");
  const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  const tail = Array.from(crypto.randomBytes(14), (b) => alphabet[b % 62]).join("");
  return `${prefix}_${hex}${tail}`;
}

/**
 * V2's normalisation of a config: the legacy `plugin` entries (a string as is, a
 * `[spec, options]` tuple as `{package, options}`) followed by the `plugins` entries.
 */
export function normalizePluginEntries(config) {
  const legacy = (config.plugin ?? []).map((e) => (Array.isArray(e) ? { package: e[0], options: e[1] } : e));
  return [...legacy, ...(config.plugins ?? [])];
}

const isFile = (p) => fs.statSync(p, { throwIfNoEntry: false })?.isFile() ?? false;
const isDir = (p) => fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;

function firstEntry(dir, base) {
  for (const ext of ENTRY_EXTENSIONS) {
    const f = path.join(dir, base + ext);
    if (isFile(f)) return f;
  }
  return undefined;
}

/** `server.*` then `index.*` of a plugin directory, which must stay inside it. */
function directoryEntrypoint(dir) {
  const file = firstEntry(dir, "server") ?? firstEntry(dir, "index");
  if (!file) throw new Error(`plugin directory ${dir} has no server.* or index.* file`);
  const real = fs.realpathSync(file);
  const root = fs.realpathSync(dir);
  if (!real.startsWith(root + path.sep)) throw new Error(`plugin entrypoint ${file} is outside ${dir}`);
  return real;
}

/** The target of one `exports` value under the conditions a Bun process matches. */
function exportTarget(value) {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) {
    for (const v of value) {
      const t = exportTarget(v);
      if (t) return t;
    }
    return undefined;
  }
  if (value && typeof value === "object") {
    for (const c of EXPORT_CONDITIONS) if (c in value) return exportTarget(value[c]);
  }
  return undefined;
}

/** A package's entrypoint: its `./server` export, else `.` (or, without exports, main/index). */
function packageEntrypoint(pkgDir, name) {
  const manifest = path.join(pkgDir, "package.json");
  if (!isFile(manifest)) throw new Error(`package ${name} is not installed (no ${manifest})`);
  const pkg = JSON.parse(fs.readFileSync(manifest, "utf8"));
  let target;
  const exp = pkg.exports;
  if (exp !== undefined) {
    const map = typeof exp === "object" && !Array.isArray(exp) && Object.keys(exp).some((k) => k.startsWith(".")) ? exp : { ".": exp };
    target = exportTarget(map["./server"]) ?? exportTarget(map["."]);
    if (!target) throw new Error(`package ${name} exports neither ./server nor .`);
  } else {
    target = firstEntry(pkgDir, "server") ? path.relative(pkgDir, firstEntry(pkgDir, "server")) : (pkg.main ?? "index.js");
  }
  const file = path.resolve(pkgDir, target);
  if (!isFile(file)) throw new Error(`package ${name}: entrypoint ${file} does not exist`);
  return file;
}

/** Split `name@spec` / `@scope/name@spec` into the name. */
function packageName(spec) {
  const at = spec.indexOf("@", spec.startsWith("@") ? 1 : 0);
  return at > 0 ? spec.slice(0, at) : spec;
}

/**
 * Resolve one `plugins` entry as V2 does. Returns `{spec, options, file}` for a module to
 * import, or `{spec, options, dropped: warning}` for a configured file path.
 * @param {string|{package: string, options?: object}} entry
 * @param {{configDir?: string, packagesDir?: string}} where
 */
export function resolvePluginEntry(entry, { configDir = process.cwd(), packagesDir } = {}) {
  const spec = typeof entry === "string" ? entry : entry?.package;
  if (typeof spec !== "string" || !spec) throw new Error(`invalid plugin entry ${JSON.stringify(entry)}`);
  const options = (typeof entry === "object" && entry.options) || {};
  let local;
  if (spec.startsWith("file://")) local = fileURLToPath(spec);
  else if (path.isAbsolute(spec)) local = spec;
  else if (spec.startsWith("./") || spec.startsWith("../")) local = path.resolve(configDir, spec);
  if (local !== undefined) {
    if (isFile(local)) return { spec, options, dropped: FILE_PATH_WARNING };
    if (!isDir(local)) throw new Error(`plugin path ${local} does not exist`);
    return { spec, options, file: directoryEntrypoint(local) };
  }
  if (!packagesDir) throw new Error(`package plugin ${spec}: the test host was given no packagesDir`);
  const name = packageName(spec);
  return { spec, options, file: packageEntrypoint(path.join(packagesDir, name), name) };
}

/**
 * Decode a module's default export as V2's loader does.
 * @returns {{id: string, kind: "effect"|"setup", definition: object}}
 */
export function decodePluginModule(mod) {
  const d = mod?.default;
  if (d === null || typeof d !== "object") throw new PluginLoadError(`Expected an object, got ${d === null ? "null" : typeof d}`);
  if (typeof d.id !== "string") throw new PluginLoadError(`["id"] Expected string, got ${typeof d.id}`);
  if (typeof d.effect === "function") return { id: d.id, kind: "effect", definition: d };
  if (typeof d.setup === "function") return { id: d.id, kind: "setup", definition: d };
  throw new PluginLoadError(`Expected {id, effect: function} | {id, setup: function}, got keys [${Object.keys(d).join(", ")}]`);
}

const locationKey = (l) => `${l.workspaceID ?? ""}\u0000${l.directory}`;

/** The project of a directory: its git root commit (V1's rule), else "global". */
function projectOf(directory) {
  try {
    const top = execFileSync("git", ["-C", directory, "rev-parse", "--show-toplevel"], { encoding: "utf8", timeout: 5000, stdio: ["ignore", "pipe", "ignore"] }).trim();
    const root = execFileSync("git", ["-C", directory, "rev-list", "--max-parents=0", "HEAD"], { encoding: "utf8", timeout: 5000, stdio: ["ignore", "pipe", "ignore"] }).trim().split("\n")[0];
    return { id: root || "global", directory: top, canonical: top };
  } catch {
    return { id: "global", directory, canonical: directory };
  }
}

/** The current branch from a directory's `.git/HEAD` (undefined when detached or not a repo). */
function branchOf(directory) {
  try {
    const head = fs.readFileSync(path.join(directory, ".git", "HEAD"), "utf8").trim();
    return head.startsWith("ref: refs/heads/") ? head.slice("ref: refs/heads/".length) : undefined;
  } catch {
    return undefined;
  }
}

/** An object whose every method throws "<name>.<method> is not in the test host". */
function stubDomain(name, implemented = {}) {
  return new Proxy(implemented, {
    get(target, prop) {
      if (prop in target) return target[prop];
      if (typeof prop === "symbol" || prop === "then" || prop === "toJSON") return undefined;
      return () => {
        throw new Error(`ctx.${name}.${String(prop)} is not in the test host`);
      };
    },
  });
}

/**
 * One `event.subscribe()` stream. It starts receiving when its iterator is first read
 * (assumption: Effect streams run lazily; a `for await` reads at once), queues without
 * bound, and ends on close() or when its signal aborts.
 */
class Subscription {
  constructor(signal, onEnd) {
    this.queue = [];
    this.waiter = undefined;
    this.started = false;
    this.closed = false;
    this.onEnd = onEnd;
    if (signal?.aborted) this.close();
    else signal?.addEventListener("abort", () => this.close(), { once: true });
  }
  push(event) {
    if (!this.started || this.closed) return false;
    const copy = structuredClone(event); // each instance decodes its own copy
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w({ value: copy, done: false });
    } else this.queue.push(copy);
    return true;
  }
  close() {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    this.onEnd(this);
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w({ value: undefined, done: true });
    }
  }
  /** Nothing queued and the reader is waiting (or gone). */
  get drained() {
    return this.closed || !this.started || (this.queue.length === 0 && this.waiter !== undefined);
  }
  [Symbol.asyncIterator]() {
    return {
      next: () => {
        this.started = true;
        if (this.queue.length) return Promise.resolve({ value: this.queue.shift(), done: false });
        if (this.closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => (this.waiter = resolve));
      },
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/**
 * Plugin storage: durable JSON by key, scoped by plugin id, shared by every location. With
 * `file`, it is kept in that JSON file (so a second host process sees it, as V2's `kv`
 * table in opencode.db is shared); otherwise in memory.
 */
class PluginStorage {
  constructor(file) {
    this.file = file;
    this.data = file && isFile(file) ? JSON.parse(fs.readFileSync(file, "utf8")) : {};
  }
  save() {
    if (this.file) fs.writeFileSync(this.file, JSON.stringify(this.data));
  }
  forPlugin(id) {
    const scope = `plugin:${Buffer.from(id).toString("hex")}:`;
    const check = (key) => {
      if (typeof key !== "string") throw new TypeError("storage keys are strings");
      return scope + key;
    };
    return {
      get: async (key) => structuredClone(this.data[check(key)]),
      set: async (key, value) => {
        this.data[check(key)] = JSON.parse(JSON.stringify(value));
        this.save();
      },
      remove: async (key) => {
        delete this.data[check(key)];
        this.save();
      },
      scan: async ({ prefix = "", after, limit = 100 } = {}) => {
        const keys = Object.keys(this.data)
          .filter((k) => k.startsWith(scope + prefix))
          .map((k) => k.slice(scope.length))
          .filter((k) => after === undefined || k > after)
          .sort();
        const page = keys.slice(0, limit);
        const entries = page.map((key) => ({ key, value: structuredClone(this.data[scope + key]) }));
        return keys.length > limit ? { entries, next: page.at(-1) } : { entries };
      },
    };
  }
}

/**
 * Start a V2 service stand-in in this process.
 * @param {object} [o]
 * @param {{name: string, version: string, channel: string}} [o.app]  `ctx.app`
 * @param {string} [o.packagesDir]  where package entries resolve (laid out like node_modules)
 * @param {string} [o.storageFile]  keep plugin storage in this JSON file (shared across hosts)
 * @param {number} [o.setupTimeoutMs]  a setup that has not returned by then is recorded failed
 *   (V2 would hold prompt admission: a plugin must not await a long loop in setup)
 * @param {number} [o.cleanupTimeoutMs]  a cleanup that has not finished by then is abandoned, logged
 * @param {boolean} [o.echo]  also print the plugins' console output
 */
export function createV2Host({
  app = { name: "opencode", version: "2.0.26", channel: "latest" },
  packagesDir,
  storageFile,
  setupTimeoutMs = 5000,
  cleanupTimeoutMs = 10_000,
  echo = false,
} = {}) {
  const locations = new Map(); // key -> {location, plugins: [{id, kind, status, cleanup, subscriptions}], chain}
  const subscriptions = new Set();
  const sessions = new Map();
  const running = new Set(); // sessionIDs with an execution started and not ended
  const branches = new Map(); // location key -> branch from vcs.branch.updated
  const storage = new PluginStorage(storageFile);
  const logs = [];
  const warnings = [];
  const pluginContext = new AsyncLocalStorage();
  let stopped = false;

  const original = {};
  for (const level of ["log", "info", "warn", "error", "debug"]) {
    original[level] = console[level];
    console[level] = (...args) => {
      const who = pluginContext.getStore();
      if (!who || stopped) return original[level].apply(console, args);
      const text = args.map((a) => (typeof a === "string" ? a : a instanceof Error ? (a.stack ?? String(a)) : safeJson(a))).join(" ");
      logs.push({ source: "plugin", level, pluginID: who.id, directory: who.directory, text, time: Date.now() });
      if (echo) original[level].apply(console, args);
    };
  }
  const hostLog = (level, text, extra = {}) => logs.push({ source: "host", level, text, time: Date.now(), ...extra });

  function slot(location) {
    if (!location || typeof location.directory !== "string") throw new TypeError("a location is {directory, workspaceID?, project?}");
    const key = locationKey(location);
    let s = locations.get(key);
    if (!s) {
      const info = {
        directory: location.directory,
        ...(location.workspaceID ? { workspaceID: location.workspaceID } : {}),
        project: location.project ?? projectOf(location.directory),
      };
      s = { key, location: info, plugins: [], chain: Promise.resolve() };
      locations.set(key, s);
    }
    return s;
  }

  function makeContext(s, plugin, options) {
    const owned = plugin.subscriptions;
    return {
      app: structuredClone(app),
      location: structuredClone(s.location),
      options: structuredClone(options),
      event: {
        subscribe: ({ signal } = {}) => {
          if (plugin.status === "closed") throw new Error("the plugin is unloaded");
          const sub = new Subscription(signal, (x) => {
            subscriptions.delete(x);
            owned.delete(x);
          });
          if (!sub.closed) {
            subscriptions.add(sub);
            owned.add(sub);
          }
          return sub;
        },
      },
      session: stubDomain("session", {
        get: async ({ sessionID } = {}) => {
          const info = sessions.get(sessionID);
          if (!info) {
            const err = new Error(`Session not found: ${sessionID}`);
            err.name = "NotFoundError";
            throw err;
          }
          return structuredClone(info);
        },
      }),
      storage: storage.forPlugin(plugin.id),
      vcs: stubDomain("vcs", {
        get: async () => {
          const current = branches.get(s.key) ?? branchOf(s.location.project.directory);
          return { branch: { current, default: undefined } };
        },
      }),
      ...Object.fromEntries(STUB_DOMAINS.map((d) => [d, stubDomain(d)])),
    };
  }

  async function withTimeout(promise, ms, what) {
    let timer;
    const timeout = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms)));
    try {
      return await Promise.race([promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async function activate(s, entry, configDir) {
    const record = { entry, id: undefined, kind: undefined, status: "failed", error: undefined, cleanup: undefined, subscriptions: new Set() };
    try {
      const resolved = resolvePluginEntry(entry, { configDir, packagesDir });
      if (resolved.dropped) {
        warnings.push({ entry, message: resolved.dropped });
        hostLog("warn", `${resolved.dropped}: ${resolved.spec}`, { entry });
        return { ...record, status: "dropped", warning: resolved.dropped };
      }
      record.file = resolved.file;
      const decoded = decodePluginModule(await import(pathToFileURL(resolved.file).href));
      record.id = decoded.id;
      record.kind = decoded.kind;
      if (s.plugins.some((p) => p.id === decoded.id && p.status !== "closed")) throw new Error(`Duplicate plugin ID: ${decoded.id}`);
      if (decoded.kind === "effect") {
        record.status = "effect-not-run";
        hostLog("warn", `plugin ${decoded.id} is an effect plugin; the test host does not run effects`);
        s.plugins.push(record);
        return record;
      }
      const ctx = makeContext(s, record, resolved.options);
      const who = { id: decoded.id, directory: s.location.directory };
      const cleanup = await withTimeout(
        pluginContext.run(who, () => Promise.resolve().then(() => decoded.definition.setup(ctx))),
        setupTimeoutMs,
        `setup of ${decoded.id}`,
      );
      record.cleanup = typeof cleanup === "function" ? () => pluginContext.run(who, cleanup) : undefined;
      record.status = "active";
      s.plugins.push(record);
      return record;
    } catch (err) {
      record.error = err;
      hostLog("error", `failed to load plugin`, { entry, cause: `${err.name}: ${err.message}` });
      for (const sub of record.subscriptions) sub.close();
      if (record.id) s.plugins.push(record);
      return record;
    }
  }

  async function close(s, record) {
    if (record.status !== "active") return;
    record.status = "closed";
    try {
      if (record.cleanup) await withTimeout(Promise.resolve().then(record.cleanup), cleanupTimeoutMs, `cleanup of ${record.id}`);
    } catch (err) {
      hostLog("error", `plugin cleanup failed`, { pluginID: record.id, cause: `${err.name}: ${err.message}` });
    }
    for (const sub of record.subscriptions) sub.close(); // open iterators close with the plugin
  }

  /** Publish one event to every live subscription; session.* events also update host state. */
  function publish(event) {
    if (stopped) throw new Error("the host is shut down");
    if (!event || typeof event.type !== "string") throw new TypeError("an event needs a type");
    const full = { id: event.id ?? v2Id("evt", event.created), created: event.created ?? Date.now(), ...event, data: event.data ?? {} };
    applyToState(full);
    let delivered = 0;
    for (const sub of subscriptions) if (sub.push(full)) delivered++;
    return delivered;
  }

  /** What the service's own state does with an event (what `session.get` and `vcs.get` then answer). */
  function applyToState({ type, data, location, created }) {
    const s = sessions.get(data.sessionID);
    if (type === "session.created") {
      sessions.set(data.sessionID, {
        id: data.sessionID,
        projectID: data.projectID,
        location: data.location ?? location,
        ...(data.parentID ? { parentID: data.parentID } : {}),
        slug: data.slug,
        ...(data.title ? { title: data.title } : {}),
        ...(data.agent ? { agent: data.agent } : {}),
        ...(data.model ? { model: data.model } : {}),
        version: data.version,
        cost: 0,
        tokens: { input: 0, output: 0, reasoning: 0, cache: { read: 0, write: 0 } },
        time: { created, updated: created },
      });
    } else if (s && type === "session.renamed") s.title = data.title;
    else if (s && type === "session.model.selected") s.model = data.model;
    else if (s && type === "session.agent.selected") s.agent = data.agent;
    else if (s && type === "session.moved") s.location = data.location;
    else if (s && type === "session.usage.updated") Object.assign(s, { cost: data.cost, tokens: data.tokens });
    else if (type === "session.deleted") sessions.delete(data.sessionID);
    else if (type === "session.execution.started") running.add(data.sessionID);
    else if (EXECUTION_END.has(type)) running.delete(data.sessionID);
    else if (type === "vcs.branch.updated" && location) branches.set(locationKey(location), data.branch);
    if (s && type.startsWith("session.")) s.time.updated = created;
  }

  function interruptRunning(reason, inLocation) {
    for (const sessionID of [...running]) {
      const loc = sessions.get(sessionID)?.location;
      if (inLocation && (!loc || locationKey(loc) !== inLocation)) continue;
      publish({ type: "session.execution.interrupted", data: { sessionID, reason } });
    }
  }

  const host = {
    app,
    logs,
    warnings,
    /** Session.Info by id: what `ctx.session.get` answers (kept from published events; tests may set entries). */
    sessions,
    /**
     * Load one `plugins` entry into a location (creating it), as its activation does:
     * sequential per location, `setup` awaited. Resolves to the plugin's record
     * `{id, kind, status: "active"|"failed"|"dropped"|"effect-not-run", error?, warning?}`.
     */
    load(location, entry, { configDir } = {}) {
      if (stopped) return Promise.reject(new Error("the host is shut down"));
      const s = slot(location);
      const run = s.chain.then(() => activate(s, entry, configDir ?? location.directory));
      s.chain = run.catch(() => {});
      return run;
    },
    /** Load a config's plugins (legacy `plugin` then `plugins`) into a location, in order. */
    async loadConfig(location, config, { configDir } = {}) {
      const out = [];
      for (const entry of normalizePluginEntries(config)) out.push(await host.load(location, entry, { configDir }));
      return out;
    },
    /** The loaded plugins of a location (records as `load` returns them). */
    plugins(location) {
      return locations.get(locationKey(location))?.plugins ?? [];
    },
    /** The location infos (ctx.location) loaded now. */
    get locations() {
      return [...locations.values()].map((s) => structuredClone(s.location));
    },
    publish,
    /** How many subscriptions are live (started, not closed). */
    get subscriberCount() {
      return [...subscriptions].filter((x) => x.started && !x.closed).length;
    },
    /** Wait until every live subscription has taken every event and waits for the next (bounded). */
    async drain({ timeoutMs = 10_000 } = {}) {
      const until = Date.now() + timeoutMs;
      while (![...subscriptions].every((x) => x.drained)) {
        if (Date.now() > until) throw new Error(`subscriptions not drained within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 1));
      }
    },
    /** Unload one plugin of a location (its cleanup runs, its iterators close). */
    async unload(location, id) {
      const s = locations.get(locationKey(location));
      for (const p of s?.plugins.filter((x) => x.id === id) ?? []) await close(s, p);
    },
    /** Evict a location as 60 minutes without durable events would: interrupt its executions ("inactivity"), close its plugins. */
    async evict(location) {
      const key = locationKey(location);
      const s = locations.get(key);
      if (!s) return;
      await s.chain;
      interruptRunning("inactivity", key);
      await host.drain().catch((err) => hostLog("warn", err.message));
      for (const p of [...s.plugins].reverse()) await close(s, p);
      locations.delete(key);
    },
    /** Stop the service: interrupt every running execution ("shutdown"), close every plugin, restore console. */
    async shutdown() {
      if (stopped) return;
      interruptRunning("shutdown");
      await host.drain().catch((err) => hostLog("warn", err.message));
      for (const s of [...locations.values()]) {
        await s.chain;
        for (const p of [...s.plugins].reverse()) await close(s, p);
      }
      locations.clear();
      for (const sub of [...subscriptions]) sub.close();
      stopped = true;
      for (const level of Object.keys(original)) console[level] = original[level];
    },
  };
  return host;
}

function safeJson(v) {
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}
