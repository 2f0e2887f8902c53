// The delivery suites' shared kit: scripts for the scripted model, a scenario runner that
// gives each test its own contract sync server and environments (kept on failure), and
// helpers to run OpenCode and the CLI and to look into the outbox. Used by
// delivery.test.mjs and delivery-status.test.mjs.

import { before } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { startModelServer } from "./model-server.mjs";
import { createEnv, writeConfig, runOpencode, describeRun, readStore, RECORDER_PLUGIN_URL } from "./opencode.mjs";
import { assertStoredAsInDb } from "./compare.mjs";
import { REPO, PLUGIN_URL, assertPluginBuilt, startSyncServer, writeSyncCredentials, pluginLog } from "./sync-server.mjs";

export const CLI_BIN = process.env.OPENCODE_SYNC_CLI_BIN || path.join(REPO, "target", "debug", "opencode-sync");
export const API_KEY = `osk_${crypto.randomBytes(24).toString("hex")}`;
export const TITLE = "Delivery session";
/** What the plugin may add to `opencode run`'s wall time, even against a hanging server. */
export const MAX_PLUGIN_OVERHEAD_MS = 3000;
/** `sync --flush --timeout` used here; the process is killed 30 s after it at the latest. */
export const FLUSH_TIMEOUT_S = 60;

// ---------------------------------------------------------------------------------------
// Scripts
// ---------------------------------------------------------------------------------------

/** Two turns (continued with --session): read + a failing command, then one more command. */
export const TWO_TURNS = () => [
  [
    {
      text: "Reading and running.",
      toolCalls: [
        { name: "read", args: { filePath: "notes.txt" } },
        { name: "bash", args: { command: "echo failing && exit 2", description: "Fails on purpose" } },
      ],
      usage: { prompt: 1500, completion: 60, cached: 200 },
    },
    { text: "Turn one done." },
  ],
  [{ toolCalls: [{ name: "bash", args: { command: "echo turn-two", description: "Second" } }] }, { text: "Turn two done." }],
];

export const ONE_TURN = () => [
  [
    {
      text: "Running it.",
      toolCalls: [{ name: "bash", args: { command: "echo hello-delivery", description: "Say hello" } }],
      usage: { prompt: 1200, completion: 40, cached: 300 },
    },
    { text: "All done." },
  ],
];

export const SHORT = () => [[{ text: "Short answer." }]];

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

export const children = new Set();
process.on("exit", () => {
  for (const c of children) {
    try {
      c.kill("SIGKILL");
    } catch {
      // gone
    }
  }
});

before(() => {
  assertPluginBuilt();
  assert.ok(fs.existsSync(CLI_BIN), `${CLI_BIN} is missing: run \`cargo build -p opencode-sync-cli\` (or set OPENCODE_SYNC_CLI_BIN)`);
});

/**
 * Runs fn({sync, model(), env(), note}) with a sync server of its own; stops every
 * server it started and removes its environments (kept when fn failed or E2E_KEEP).
 */
export async function scenario(t, fn) {
  const models = [];
  const envs = [];
  const sync = await startSyncServer({ apiKey: API_KEY });
  const ctx = {
    sync,
    async model() {
      const m = await startModelServer({ title: TITLE });
      models.push(m);
      return m;
    },
    env(opts) {
      const e = createEnv(opts);
      envs.push(e);
      return e;
    },
  };
  let ok = false;
  try {
    await fn(ctx);
    ok = true;
  } finally {
    if (!ok) {
      for (const e of envs) {
        try {
          fs.writeFileSync(path.join(e.root, "server-dump-final.json"), JSON.stringify(await sync.dump(), null, 2));
        } catch {
          // evidence only
        }
      }
    }
    await sync.stop();
    for (const m of models) await m.close();
    for (const e of envs) {
      if (ok && !process.env.E2E_KEEP) e.cleanup();
      else t.diagnostic(`environment kept at ${e.root}`);
    }
  }
}

/** Credentials for `sync` and an OpenCode config with the recorder and (optionally) our plugin. */
export function configure(e, sync, model, { plugin = true, location = "global", project } = {}) {
  writeSyncCredentials(e, { url: sync.url, apiKey: API_KEY });
  const target = project ? { ...e, project } : e;
  writeConfig(target, { baseURL: model.baseURL, location, plugins: plugin ? [RECORDER_PLUGIN_URL, PLUGIN_URL] : [RECORDER_PLUGIN_URL] });
}

/** A second git project inside an environment (same HOME, XDG dirs and outbox). */
export function addProject(e, name) {
  const dir = path.join(e.root, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "notes.txt"), `notes of ${name}\n`);
  const git = (...args) =>
    execFileSync("git", ["-c", "user.name=e2e", "-c", "user.email=e2e@example.invalid", "-c", "commit.gpgsign=false", ...args], {
      cwd: dir,
      stdio: "pipe",
      env: { PATH: process.env.PATH, HOME: e.home, GIT_CONFIG_NOSYSTEM: "1" },
    });
  git("init", "-q", "-b", "main");
  git("add", "-A");
  git("commit", "-q", "-m", `initial ${name}`);
  return dir;
}

/** `opencode run`, which must exit 0 in time. */
export async function run(t, e, prompt, { label, session, project, ...opts } = {}) {
  const recFile = path.join(e.root, `recording-${label}.jsonl`);
  const r = await runOpencode(project ? { ...e, project } : e, prompt, { session, env: { OPENCODE_RECORDER_FILE: recFile }, ...opts });
  t.diagnostic(`${label}: opencode run ${r.wallMs} ms`);
  assert.equal(r.timedOut, false, `${label}: opencode timed out\n${describeRun(r)}`);
  assert.equal(r.code, 0, `${label}: opencode failed\n${describeRun(r)}`);
  return r;
}

export function assertScriptConsumed(model, label) {
  assert.deepEqual(model.problems, [], `${label}: the model server saw unexpected requests`);
  assert.equal(model.remaining(), 0, `${label}: not every scripted step was requested`);
}

/** `opencode-sync sync --flush --json` in the environment; resolves with its result. */
export async function syncFlush(t, e, { label, timeoutS = FLUSH_TIMEOUT_S } = {}) {
  const started = Date.now();
  const child = spawn(CLI_BIN, ["sync", "--flush", "--json", "--timeout", String(timeoutS)], {
    env: e.env,
    cwd: e.root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
  const killer = setTimeout(() => child.kill("SIGKILL"), (timeoutS + 30) * 1000);
  const [code, signal] = await new Promise((resolve) => {
    child.on("error", (err) => {
      stderr += `\nspawn error: ${err}`;
      resolve([null, null]);
    });
    child.on("close", (c, s) => resolve([c, s]));
  });
  clearTimeout(killer);
  children.delete(child);
  let json = null;
  try {
    json = JSON.parse(stdout);
  } catch {
    // reported below
  }
  const wallMs = Date.now() - started;
  const result = { code, signal, stdout, stderr, json, wallMs };
  if (label) {
    fs.writeFileSync(path.join(e.root, `flush-${label}.json`), JSON.stringify(result, null, 2));
    t.diagnostic(`${label}: sync --flush ${wallMs} ms, exit ${code}: ${JSON.stringify(json?.report ?? stdout)}`);
  }
  return result;
}

export async function flushOk(t, e, label) {
  const f = await syncFlush(t, e, { label });
  assert.equal(f.code, 0, `${label}: sync --flush exit ${f.code} ${f.signal ?? ""}\n${f.stdout}\n${f.stderr}\n${evidence(e)}`);
  assert.equal(f.json?.ok, true);
  return f;
}

export const outboxDir = (e) => path.join(e.stateHome, "opencode-sync", "outbox");

/** What is in the outbox: queued records, claims, others (temporary files), quarantine. */
export function outbox(e) {
  const dir = outboxDir(e);
  const files = fs.existsSync(dir) ? fs.readdirSync(dir, { withFileTypes: true }).filter((d) => d.isFile()).map((d) => d.name) : [];
  const qdir = path.join(dir, "quarantine");
  return {
    records: files.filter((f) => f.endsWith(".json")),
    claims: files.filter((f) => f.includes(".claim-")),
    other: files.filter((f) => !f.endsWith(".json") && !f.includes(".claim-")),
    quarantine: fs.existsSync(qdir) ? fs.readdirSync(qdir) : [],
  };
}

/** Evidence for a failure: the outbox, the plugin's log lines. */
export function evidence(e) {
  return `outbox: ${JSON.stringify(outbox(e))}\nthe plugin logged:\n${pluginLog(e)}`;
}

export function sessionIds(e) {
  return readStore(e).sessions.map((s) => s.id);
}

export async function dumpFor(e, sync, label) {
  const dump = await sync.dump();
  fs.writeFileSync(path.join(e.root, `server-dump-${label}.json`), JSON.stringify(dump, null, 2));
  return dump;
}

/**
 * Everything OpenCode stored in this environment is on the server exactly once, nothing
 * was refused, and the outbox is empty.
 */
export async function assertComplete(e, sync, label, { sessions } = {}) {
  const dump = await dumpFor(e, sync, label);
  const db = readStore(e);
  const ids = sessions ?? db.sessions.map((s) => s.id);
  assert.ok(ids.length > 0, "opencode.db has sessions");
  for (const id of ids) {
    assertStoredAsInDb(db, dump, id, { context: () => evidence(e) });
  }
  const box = outbox(e);
  assert.deepEqual({ ...box, other: [] }, { records: [], claims: [], other: [], quarantine: [] }, `${label}: the outbox is empty\n${evidence(e)}`);
  assert.equal(dump.requestsDropped, 0, "request log complete");
  const refused = dump.requests.filter((r) => r.rejected);
  assert.deepEqual(refused, [], `${label}: requests the server refused (not injected faults)`);
  const posted = dump.requests.filter((r) => r.method === "POST" && r.path === "/sync/message" && r.status >= 200 && r.status < 300).length;
  const messages = db.messages.filter((m) => ids.includes(m.session_id)).length;
  assert.ok(posted >= messages, `${label}: ${posted} successful POST /sync/message for ${messages} messages`);
  assert.equal(dump.requests.filter((r) => r.path === "/sync/batch").length, 0, "no /sync/batch");
  return { dump, db };
}

/** Requests the server log holds, summarised for a diagnostic. */
export function requestSummary(requests) {
  const counts = {};
  for (const r of requests) {
    const k = `${r.method} ${r.path} ${r.status}${r.injected ? " (injected)" : ""}`;
    counts[k] = (counts[k] ?? 0) + 1;
  }
  return JSON.stringify(counts);
}

/** An HTTP server on 127.0.0.1 (port 0); resolves with {server, url, port}. */
export async function listen(handler) {
  const http = await import("node:http");
  const server = http.createServer(handler);
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return { server, port, url: `http://127.0.0.1:${port}` };
}

/** `opencode-sync ARGS` in the environment, with a kill timer; resolves with its result. */
export async function cli(e, args, { killAfterMs = 90_000 } = {}) {
  const started = Date.now();
  const child = spawn(CLI_BIN, args, { env: e.env, cwd: e.root, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (d) => (out += d));
  child.stderr.setEncoding("utf8").on("data", (d) => (out += d));
  const killer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
  const code = await new Promise((resolve) => {
    child.on("error", () => resolve(null));
    child.on("close", (c) => resolve(c));
  });
  clearTimeout(killer);
  children.delete(child);
  return { code, out, wallMs: Date.now() - started };
}

