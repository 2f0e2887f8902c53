// The npm package (npm/index.js + the wasm built by scripts/build) loaded by Node and by
// the pinned Bun (OpenCode's runtime), fed the recorded hook stream of a real OpenCode
// 1.18.33 session, delivering to the contract server (target/debug/opencode-sync-server)
// on loopback. Each recorded OpenCode process is replayed in its own child process that
// exits right after `dispose()`, as `opencode run` does.
//
// Needs: scripts/build (npm/wasm/), `cargo build -p opencode-sync-server`, and
// scripts/setup-e2e (Bun). scripts/test does all three first.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const E2E_DIR = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(E2E_DIR, "..", "..");
const SERVER_BIN = path.join(REPO, "target", "debug", "opencode-sync-server");
const PLUGIN_URL = pathToFileURL(path.join(REPO, "npm", "index.js")).href;
const REPLAY = path.join(E2E_DIR, "fixtures", "replay-plugin.mjs");
const RECORDING = path.join(REPO, "tests", "fixtures", "opencode-1.18.33-two-turns-three-tools.jsonl");
const BUN = path.join(E2E_DIR, "node_modules", ".bin", "bun");

const RUNTIMES = [
  { name: "Node", bin: process.execPath },
  { name: "Bun", bin: BUN },
];
const SESSION_ID = "ses_deff965d2ffeduqkQGf3GHnCPe";
const ALL_HOOKS = ["event", "chat.message", "tool.execute.before", "tool.execute.after", "dispose"];
const KEY_A = "osk_e2eNodeBunPluginKeyAAAAAAAAAAAA";
const KEY_B = "osk_e2eNodeBunPluginKeyBBBBBBBBBBBB";

// Everything started here is stopped at the end, whatever happened.
const cleanups = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

for (const file of [SERVER_BIN, path.join(REPO, "npm", "wasm", "sync_bg.wasm"), BUN]) {
  if (!fs.existsSync(file)) {
    throw new Error(`${file} is missing: run scripts/build, cargo build -p opencode-sync-server and scripts/setup-e2e`);
  }
}

/** What the recording says the dashboard should end up with. */
function expectations() {
  const lines = fs
    .readFileSync(RECORDING, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
  const messages = new Map();
  let session = null;
  for (const { hook, input } of lines) {
    if (hook !== "event") continue;
    if (input.type === "message.updated") messages.set(input.properties.info.id, input.properties.info);
    if (input.type === "session.updated" || input.type === "session.created") session = input.properties.info;
  }
  const complete = [...messages.values()].filter((m) => m.role === "user" || m.time.completed);
  return { session, messages: complete, processes: lines.filter((l) => l.hook === "init").length };
}
const EXPECTED = expectations();

/** Starts the contract server with these keys and its control listener. */
async function startServer(keys) {
  const args = ["--port", "0", "--control", "--ignore-stdin", ...keys.flatMap((k) => ["--api-key", k])];
  const child = spawn(SERVER_BIN, args, { stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const first = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`server did not start in 10 s: ${stderr}`)), 10_000);
    child.stdout.on("data", (d) => {
      out += d;
      const nl = out.indexOf("\n");
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(out.slice(0, nl));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited ${code}: ${stderr}`));
    });
  });
  const { url, controlUrl } = JSON.parse(first);
  const control = async (method, route, body) => {
    const res = await fetch(controlUrl + route, {
      method,
      headers: body ? { "content-type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(res.status, 200, `${method} ${route}: ${await res.clone().text()}`);
    return res.json();
  };
  return { url, dump: () => control("GET", "/control/dump"), control };
}

/** A temp HOME, with ~/.config/opencode-sync/config.json when `config` is given. */
function makeHome(config) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "ocs-plugin-"));
  cleanups.push(() => fs.rmSync(home, { recursive: true, force: true }));
  if (config) {
    const dir = path.join(home, ".config", "opencode-sync");
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(config), { mode: 0o600 });
  }
  return home;
}

/** Replays recorded process `index` through the plugin in a child of `runtime`. */
function replay(runtime, home, index) {
  return new Promise((resolve, reject) => {
    const child = spawn(runtime.bin, [REPLAY, PLUGIN_URL, RECORDING, String(index)], {
      cwd: home,
      // Nothing from this process's environment leaks in (no OPENCODE_SYNC_* overrides).
      env: { PATH: process.env.PATH, HOME: home, LANG: "C.UTF-8", TZ: "UTC" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      const what = `${runtime.name} replay of process ${index} exited ${code ?? signal}\nstdout: ${stdout}\nstderr: ${stderr}`;
      if (code !== 0) return reject(new Error(what));
      try {
        resolve({ ...JSON.parse(stdout.trim().split("\n").at(-1)), stderr });
      } catch {
        reject(new Error(`no result line: ${what}`));
      }
    });
  });
}

/** The stored session of the recording, for the user with `key`. */
function storedSession(dump, key) {
  const session = userOf(dump, key).sessions.find((s) => s.externalId === SESSION_ID);
  assert.ok(session, "the recorded session is stored");
  return session;
}

function userOf(dump, key) {
  const user = dump.users.find((u) => u.apiKey === key);
  assert.ok(user, `no user with the test key in the dump`);
  return user;
}

for (const runtime of RUNTIMES) {
  test(`${runtime.name}: the recorded two-turn session arrives whole, nothing rejected`, async (t) => {
    const server = await startServer([KEY_A]);
    const home = makeHome({ convexUrl: server.url, apiKey: KEY_A });

    const runs = [];
    for (let i = 0; i < EXPECTED.processes; i += 1) runs.push(await replay(runtime, home, i));

    for (const r of runs) {
      assert.deepEqual(r.hooks, ALL_HOOKS);
      assert.deepEqual(r.toasts, []);
      assert.equal(r.stderr, "", "nothing printed on stderr");
      assert.ok(r.calls > 50, `replayed ${r.calls} hook calls`);
      // The hooks only queue: a warm call takes well under a microsecond (bench/). These
      // are a cold process's first ~60 calls on shared CI cores, hence the loose bound.
      assert.ok(r.medianHookMicros < 100, `median hook call ${r.medianHookMicros} µs`);
    }
    t.diagnostic(
      `${runtime.name}: hook call median ${runs.map((r) => r.medianHookMicros.toFixed(2)).join(" / ")} µs, ` +
        `max ${runs.map((r) => r.maxHookMicros.toFixed(1)).join(" / ")} µs`,
    );

    const dump = await server.dump();
    assert.ok(dump.requests.length > 0, "the plugin made requests");
    const bad = dump.requests.filter((r) => r.status !== 200 || r.rejected);
    assert.deepEqual(bad, [], "every request was accepted");

    const user = userOf(dump, KEY_A);
    assert.equal(user.sessions.length, 1);
    const session = user.sessions[0];
    assert.equal(session.externalId, SESSION_ID);
    assert.equal(session.title, "Notes review ✓");
    assert.equal(session.source, "opencode");
    assert.equal(session.model, "mock-1");
    assert.equal(session.projectPath, EXPECTED.session.directory);
    assert.equal(session.promptTokens, EXPECTED.session.tokens.input);
    assert.equal(session.completionTokens, EXPECTED.session.tokens.output);
    assert.ok(Math.abs(session.cost - EXPECTED.session.cost) < 1e-12, `cost ${session.cost}`);
    assert.equal(session.messageCount, EXPECTED.messages.length);

    const stored = new Map(session.messages.map((m) => [m.externalId, m]));
    assert.deepEqual(
      [...stored.keys()].sort(),
      EXPECTED.messages.map((m) => m.id).sort(),
      "exactly the recording's user and completed assistant messages",
    );
    for (const m of EXPECTED.messages) {
      const s = stored.get(m.id);
      assert.equal(s.role, m.role, m.id);
      assert.equal(s.createdAt, m.time.created, `${m.id} keeps its source time`);
      assert.ok(s.parts.length > 0 || s.textContent, `${m.id} has content`);
    }
    const prompts = EXPECTED.messages.filter((m) => m.role === "user").map((m) => stored.get(m.id).textContent);
    assert.deepEqual(prompts, ['"read notes and run two commands"', '"now summarise in detail ✓ 日本語"']);
    const toolCalls = session.messages.flatMap((m) => m.parts).filter((p) => p.type === "tool-call");
    assert.ok(toolCalls.length >= 3, `${toolCalls.length} tool calls stored`);
  });
}

for (const runtime of RUNTIMES) {
  test(`${runtime.name}: without credentials the plugin registers no hooks and sends nothing`, async () => {
    const server = await startServer([KEY_A]);
    const home = makeHome(null);
    const r = await replay(runtime, home, 0);
    assert.deepEqual(r.hooks, []);
    assert.deepEqual(r.toasts, []);
    assert.equal(r.stderr, "");
    assert.equal(r.logs.length, 1, "one line says why");
    assert.match(r.logs[0].message, /not logged in: run `opencode-sync login`/);
    const dump = await server.dump();
    assert.deepEqual(dump.requests, []);
  });
}

for (const runtime of RUNTIMES) {
  test(`${runtime.name}: a FIFO where the config file should be does not block the plugin`, async () => {
    const home = makeHome(null);
    const dir = path.join(home, ".config", "opencode-sync");
    fs.mkdirSync(dir, { recursive: true });
    // Nobody ever writes to it: reading it the plain way blocks forever.
    const made = spawnSync("mkfifo", [path.join(dir, "config.json")]);
    assert.equal(made.status, 0, String(made.stderr));
    const r = await replay(runtime, home, 0);
    assert.deepEqual(r.hooks, [], "no readable config: not logged in");
    assert.equal(r.stderr, "");
  });
}

for (const runtime of RUNTIMES) {
  test(`${runtime.name}: a revoked key gives exactly one toast, then the requests stop`, async () => {
    const server = await startServer([KEY_B]);
    const home = makeHome({ convexUrl: server.url, apiKey: KEY_B });

    const first = await replay(runtime, home, 0);
    assert.deepEqual(first.toasts, []);
    const before = (await server.dump()).requests.length;
    assert.ok(before > 0);

    await server.control("DELETE", "/control/keys", { apiKey: KEY_B });
    const second = await replay(runtime, home, 1);
    const host = new URL(server.url).hostname;
    assert.deepEqual(second.toasts, [
      {
        message: `OpenSync rejected the API key for ${host}. Run \`opencode-sync login\` with a new key from Settings.`,
        variant: "error",
      },
    ]);
    const dump = await server.dump();
    const later = dump.requests.slice(before);
    assert.equal(later.length, 1, `one request after the revocation: ${JSON.stringify(later)}`);
    assert.equal(later[0].status, 401);
    const shown = JSON.stringify([second.toasts, second.logs, second.stderr]);
    assert.ok(!shown.includes(KEY_B.slice(4)), "the key is never shown");
  });
}

for (const runtime of RUNTIMES) {
  test(`${runtime.name}: transient server errors are retried until everything arrives`, async () => {
    const server = await startServer([KEY_A]);
    // Two isolated failures: a 503 with Retry-After and a 500 that is not the payload's fault.
    await server.control("POST", "/control/faults", [
      { kind: "status", status: 503, every: 3, limit: 1, retryAfter: 0 },
      { kind: "status", status: 500, every: 5, limit: 1 },
    ]);
    const home = makeHome({ convexUrl: server.url, apiKey: KEY_A });
    for (let i = 0; i < EXPECTED.processes; i += 1) {
      const r = await replay(runtime, home, i);
      assert.deepEqual(r.toasts, []);
    }
    const dump = await server.dump();
    const injected = dump.requests.filter((r) => r.injected);
    assert.equal(injected.length, 2, JSON.stringify(injected));
    assert.deepEqual(dump.requests.filter((r) => r.rejected), []);
    const session = storedSession(dump, KEY_A);
    assert.equal(session.title, "Notes review ✓");
    assert.deepEqual(
      session.messages.map((m) => m.externalId).sort(),
      EXPECTED.messages.map((m) => m.id).sort(),
    );
  });
}

for (const runtime of RUNTIMES) {
  test(`${runtime.name}: a server that never answers holds dispose() for about 2 s, not longer`, async () => {
    const server = await startServer([KEY_A]);
    await server.control("POST", "/control/faults", [{ kind: "hang", maxMs: 60_000 }]);
    const home = makeHome({ convexUrl: server.url, apiKey: KEY_A });
    const started = Date.now();
    const r = await replay(runtime, home, 0);
    const wallMs = Date.now() - started;
    assert.ok(r.disposeMs >= 1500 && r.disposeMs < 4000, `dispose() took ${r.disposeMs} ms`);
    assert.ok(wallMs < 15_000, `the process exited ${wallMs} ms after it started`);
    assert.deepEqual(r.toasts, []);
    await server.control("DELETE", "/control/faults");
  });
}
