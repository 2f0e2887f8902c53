// The plugin's acceptance suite: the REAL OpenCode binary with our plugin loaded from
// file://<repo>/npm/index.js, the scripted model server, and the contract sync server
// (crates/server, as a child process). After each scenario, what the server stored is
// compared with OpenCode's own opencode.db, field by field, by the rules of
// crates/core/src/map.rs.
//
// Needs: `scripts/build` (npm/wasm/), `cargo build -p opencode-sync-server` (or
// OPENCODE_SYNC_SERVER_BIN), `bash scripts/setup-e2e`. Run: cd tests/e2e && npm test
// (or `node --test plugin-opencode.test.mjs`). E2E_KEEP=1 keeps every environment under
// tests/e2e/.work/ (a failed one is always kept): it holds OpenCode's store, the recorder
// plugin's hook log (recording-*.jsonl) and the sync server's dump (server-dump.json).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { startModelServer } from "./lib/model-server.mjs";
import {
  E2E_DIR,
  createEnv,
  writeConfig,
  runOpencode,
  describeRun,
  readStore,
  readRecording,
  recordedEvents,
  RECORDER_PLUGIN_URL,
} from "./lib/opencode.mjs";

const REPO = path.resolve(E2E_DIR, "..", "..");
// OPENCODE_SYNC_PLUGIN_ENTRY tests another build of the plugin (e.g. an unpacked tarball).
const PLUGIN_ENTRY = path.resolve(process.env.OPENCODE_SYNC_PLUGIN_ENTRY || path.join(REPO, "npm", "index.js"));
const PLUGIN_URL = pathToFileURL(PLUGIN_ENTRY).href;
const SERVER_BIN = process.env.OPENCODE_SYNC_SERVER_BIN || path.join(REPO, "target", "debug", "opencode-sync-server");

const TITLE = "Plugin acceptance session";
/** The plugin's default `maxToolOutputBytes` (crates/core/src/config.rs). */
const MAX_TOOL_OUTPUT_BYTES = 16_384;
/** What the plugin may add to `opencode run`'s wall time. */
const MAX_PLUGIN_OVERHEAD_MS = 3000;

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/** Random alphanumerics: fake secrets are made at run time, never written in a file. */
function randomAlnum(n) {
  const bytes = crypto.randomBytes(n);
  return Array.from(bytes, (b) => ALNUM[b % ALNUM.length]).join("");
}

const API_KEY = `osk_${randomAlnum(32)}`;

let model;
let sync;

// ---------------------------------------------------------------------------------------
// The contract sync server as a child process
// ---------------------------------------------------------------------------------------

/** Starts `opencode-sync-server --control`; resolves with {url, controlUrl, child, stop}. */
async function startSyncServer() {
  if (!fs.existsSync(SERVER_BIN)) {
    throw new Error(`${SERVER_BIN} is missing: run \`cargo build -p opencode-sync-server\` (or set OPENCODE_SYNC_SERVER_BIN)`);
  }
  // stdin stays a pipe: the server also stops if this process dies without cleaning up.
  const child = spawn(SERVER_BIN, ["--host", "127.0.0.1", "--port", "0", "--api-key", API_KEY, "--control"], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  const info = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`sync server did not start in 15 s: ${stderr}`)), 15_000);
    child.stdout.setEncoding("utf8").on("data", (d) => {
      out += d;
      const nl = out.indexOf("\n");
      if (nl >= 0) {
        clearTimeout(timer);
        try {
          resolve(JSON.parse(out.slice(0, nl)));
        } catch (err) {
          reject(new Error(`sync server printed ${JSON.stringify(out)}: ${err}`));
        }
      }
    });
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`sync server exited (${code ?? signal}) before starting: ${stderr}`));
    });
  });
  assert.match(info.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.match(info.controlUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const killer = setTimeout(() => child.kill("SIGKILL"), 3000);
    await exited;
    clearTimeout(killer);
  };
  return { ...info, child, stop, stderr: () => stderr };
}

async function control(method, route) {
  const res = await fetch(`${sync.controlUrl}${route}`, { method });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${route}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const dumpServer = () => control("GET", "/control/dump");
const clearRequestLog = () => control("DELETE", "/control/requests");

// ---------------------------------------------------------------------------------------
// Setup
// ---------------------------------------------------------------------------------------

before(async () => {
  assert.ok(
    fs.existsSync(PLUGIN_ENTRY) && fs.existsSync(path.join(path.dirname(PLUGIN_ENTRY), "wasm")),
    `${PLUGIN_ENTRY} or the wasm/ next to it is missing: run scripts/build first`,
  );
  model = await startModelServer({ title: TITLE });
  sync = await startSyncServer();
  // Warm the page cache with the 185 MB binary, so the first timed run is not penalised.
  const warm = createEnv({ name: "warm-up", git: false });
  try {
    await new Promise((resolve) => {
      const c = spawn(path.join(E2E_DIR, "node_modules", "opencode-ai", "bin", "opencode.exe"), ["--version"], {
        env: warm.env,
        cwd: warm.project,
        stdio: "ignore",
      });
      const t = setTimeout(() => c.kill("SIGKILL"), 20_000);
      c.on("close", () => {
        clearTimeout(t);
        resolve();
      });
      c.on("error", () => resolve());
    });
  } finally {
    warm.cleanup();
  }
});

after(async () => {
  await sync?.stop();
  await model?.close();
});

/** Run fn with a fresh environment; remove it afterwards unless fn failed or E2E_KEEP. */
async function withEnv(t, opts, fn) {
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

/** The plugin's credentials file in the isolated env ($XDG_CONFIG_HOME/opencode-sync/config.json, 0600). */
function writeSyncCredentials(e, extra = {}) {
  const dir = path.join(e.configHome, "opencode-sync");
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, "config.json");
  fs.writeFileSync(file, JSON.stringify({ convexUrl: sync.url, apiKey: API_KEY, ...extra }, null, 2) + "\n", { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  return file;
}

/** OpenCode config with the recorder (evidence of what hooks arrived) and, optionally, our plugin. */
function configure(e, { plugin = true } = {}) {
  writeSyncCredentials(e);
  writeConfig(e, { baseURL: model.baseURL, plugins: plugin ? [RECORDER_PLUGIN_URL, PLUGIN_URL] : [RECORDER_PLUGIN_URL] });
}

async function run(t, e, prompt, { label, session } = {}) {
  const recFile = path.join(e.root, `recording-${label}.jsonl`);
  const r = await runOpencode(e, prompt, { session, env: { OPENCODE_RECORDER_FILE: recFile } });
  t.diagnostic(`${label}: opencode run ${r.wallMs} ms`);
  assert.equal(r.timedOut, false, `opencode timed out\n${describeRun(r)}`);
  assert.equal(r.code, 0, `opencode failed\n${describeRun(r)}`);
  return { ...r, recFile };
}

function assertScriptConsumed() {
  assert.deepEqual(model.problems, [], "model server saw unexpected requests");
  assert.equal(model.remaining(), 0, "not every scripted step was requested");
}

/** Fetches the dump and keeps a copy in the environment (for a failed run's post-mortem). */
async function dumpFor(e) {
  const dump = await dumpServer();
  fs.writeFileSync(path.join(e.root, "server-dump.json"), JSON.stringify(dump, null, 2));
  return dump;
}

// ---------------------------------------------------------------------------------------
// The comparison: what the server stored vs opencode.db
// ---------------------------------------------------------------------------------------

const bytes = (s) => Buffer.byteLength(s, "utf8");

/**
 * Compares a stored value with the db's: equal, except that a string containing one of
 * `secrets` must be stored without any of them and with the redaction mask.
 */
function assertLike(actual, expected, secrets, label) {
  if (typeof expected === "string" && secrets.some((s) => expected.includes(s))) {
    assert.equal(typeof actual, "string", `${label}: a string`);
    for (const s of secrets) assert.ok(!actual.includes(s), `${label}: secret leaked: ${actual}`);
    assert.ok(actual.includes("[REDACTED]"), `${label}: redaction mask missing: ${actual}`);
    return;
  }
  if (expected && typeof expected === "object" && JSON.stringify(expected).match(new RegExp(secrets.map(escapeRe).join("|") || "(?!)"))) {
    assert.equal(typeof actual, "object", `${label}: an object`);
    assert.deepEqual(Object.keys(actual ?? {}).sort(), Object.keys(expected).sort(), `${label}: keys`);
    for (const k of Object.keys(expected)) assertLike(actual[k], expected[k], secrets, `${label}.${k}`);
    return;
  }
  assert.deepEqual(actual, expected, label);
}

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The stored tool-result output for a db output: as is, or cut at the limit and marked. */
function assertToolOutput(stored, result, dbOutput, secrets, label) {
  if (bytes(dbOutput) <= MAX_TOOL_OUTPUT_BYTES || secrets.some((s) => dbOutput.includes(s))) {
    assertLike(stored, dbOutput, secrets, label);
    assert.equal(result.truncated, undefined, `${label}: not marked truncated`);
    return;
  }
  const m = stored.match(/\n… \[truncated: showing (\d+) of (\d+) bytes\]$/);
  assert.ok(m, `${label}: long output carries the truncation marker; ends with ${JSON.stringify(stored.slice(-120))}`);
  assert.equal(Number(m[2]), bytes(dbOutput), `${label}: marker names the full size`);
  assert.ok(Number(m[1]) <= MAX_TOOL_OUTPUT_BYTES, `${label}: cut at the limit`);
  const kept = stored.slice(0, m.index);
  assert.equal(bytes(kept), Number(m[1]), `${label}: marker names the kept size`);
  assert.ok(dbOutput.startsWith(kept), `${label}: the kept text is the output's beginning`);
  assert.equal(result.truncated, true, `${label}: marked truncated`);
}

/** The part types the plugin sends for one db message, in order (map.rs). */
function expectedPartKinds(dbParts) {
  const kinds = [];
  for (const p of dbParts) {
    const d = p.data;
    if (d.type === "text" && d.synthetic !== true && d.text) kinds.push("text");
    else if (d.type === "tool") {
      kinds.push("tool-call");
      if (d.state?.status === "completed" || d.state?.status === "error") kinds.push("tool-result");
    }
  }
  return kinds;
}

/**
 * Asserts that the server holds the session exactly as opencode.db does. Returns
 * {store, stored} for scenario-specific checks.
 */
function assertSessionSynced(e, dump, sessionID, { secrets = [] } = {}) {
  const store = readStore(e, { sessionID });
  assert.equal(store.sessions.length, 1, "opencode.db has the session");
  const row = store.sessions[0];

  const matches = dump.users.flatMap((u) => u.sessions.filter((s) => s.externalId === sessionID));
  assert.equal(
    matches.length,
    1,
    `the server has session ${sessionID} once; it has [${dump.users.flatMap((u) => u.sessions.map((s) => s.externalId))}]; ` +
      `the plugin logged:\n${pluginLog(e)}`,
  );
  const s = matches[0];

  // --- the session ---
  assert.doesNotMatch(row.title, /^New session - /, "OpenCode generated a title");
  assert.equal(row.title, TITLE);
  assert.equal(s.title, row.title, "title");
  assert.equal(s.projectPath, row.directory, "projectPath = session.directory");
  assert.equal(s.projectName, path.basename(row.directory), "projectName = last path segment");
  const lastAssistant = store.messages.filter((m) => m.data.role === "assistant").at(-1);
  const modelID = row.model?.id ?? lastAssistant?.data.modelID;
  const providerID = row.model?.id ? row.model.providerID : lastAssistant?.data.providerID;
  assert.equal(s.model, modelID, "model");
  assert.equal(s.provider, providerID, "provider");
  assert.equal(s.source, "opencode");
  const prompt = row.tokens_input + row.tokens_cache_read + row.tokens_cache_write;
  const completion = row.tokens_output + row.tokens_reasoning;
  assert.ok(prompt > 0 && completion > 0, "OpenCode counted tokens");
  assert.equal(s.promptTokens, prompt, `promptTokens = input ${row.tokens_input} + cache read ${row.tokens_cache_read} + cache write ${row.tokens_cache_write}`);
  assert.equal(s.completionTokens, completion, `completionTokens = output ${row.tokens_output} + reasoning ${row.tokens_reasoning}`);
  assert.ok(row.cost > 0, "OpenCode computed a cost");
  assert.ok(Math.abs(s.cost - row.cost) < 1e-9, `cost: stored ${s.cost}, db ${row.cost}`);
  assert.equal(s.createdAt, row.time_created, "session createdAt = db time_created");
  assert.equal(s.messageCount, store.messages.length, "messageCount = db messages");

  // --- every message, once ---
  const storedIds = s.messages.map((m) => m.externalId);
  assert.equal(new Set(storedIds).size, storedIds.length, `no message stored twice: ${storedIds}`);
  assert.deepEqual([...storedIds].sort(), store.messages.map((m) => m.id).sort(), "the stored messages are the db's");

  for (const m of store.messages) {
    const label = `message ${m.id} (${m.data.role})`;
    const sm = s.messages.find((x) => x.externalId === m.id);
    const dbParts = store.parts.filter((p) => p.message_id === m.id); // id order = creation order
    assert.equal(sm.role, m.data.role, `${label}: role`);
    const texts = dbParts.filter((p) => p.data.type === "text" && p.data.synthetic !== true && p.data.text).map((p) => p.data.text);
    assertLike(sm.textContent, texts.length ? texts.join("\n\n") : undefined, secrets, `${label}: textContent`);
    assert.ok(Math.abs(sm.createdAt - m.time_created) <= 1000, `${label}: createdAt ${sm.createdAt} vs db ${m.time_created}`);
    if (m.data.role === "assistant") {
      assert.equal(sm.model, m.data.modelID, `${label}: model`);
      const t = m.data.tokens;
      const mp = t.input + (t.cache?.read ?? 0) + (t.cache?.write ?? 0);
      const mc = t.output + (t.reasoning ?? 0);
      assert.equal(sm.promptTokens, mp > 0 ? mp : undefined, `${label}: promptTokens (tokens ${JSON.stringify(t)})`);
      assert.equal(sm.completionTokens, mc > 0 ? mc : undefined, `${label}: completionTokens (tokens ${JSON.stringify(t)})`);
    } else {
      assert.equal(sm.model, m.data.model?.modelID, `${label}: model`);
    }

    // Parts: text parts and tool calls/results, in the db's order.
    assert.deepEqual(
      sm.parts.map((p) => p.type),
      expectedPartKinds(dbParts),
      `${label}: stored part types (db parts: ${dbParts.map((p) => p.data.type)})`,
    );
    const storedTexts = sm.parts.filter((p) => p.type === "text").map((p) => p.content);
    assert.equal(storedTexts.length, texts.length);
    texts.forEach((text, i) => assertLike(storedTexts[i], text, secrets, `${label}: text part ${i}`));

    for (const p of dbParts.filter((x) => x.data.type === "tool")) {
      const d = p.data;
      const tl = `${label}: ${d.tool} ${d.callID}`;
      const i = sm.parts.findIndex((x) => x.type === "tool-call" && x.content?.callID === d.callID);
      assert.ok(i >= 0, `${tl}: a tool-call part`);
      const call = sm.parts[i].content;
      assert.equal(call.toolName, d.tool, `${tl}: toolName`);
      assert.equal(call.status, d.state.status, `${tl}: status`);
      assertLike(call.args, d.state.input, secrets, `${tl}: args`);
      if (d.state.title !== undefined) assertLike(call.title, d.state.title, secrets, `${tl}: title`);
      if (d.state.status !== "completed" && d.state.status !== "error") continue;
      const next = sm.parts[i + 1];
      assert.equal(next?.type, "tool-result", `${tl}: the tool-result follows its call`);
      const result = next.content;
      if (d.state.status === "completed") {
        assertToolOutput(result.output, result, d.state.output ?? "", secrets, `${tl}: output`);
      } else {
        assertLike(result.error, d.state.error, secrets, `${tl}: error`);
      }
      const exit = d.state.metadata?.exit;
      if (typeof exit === "number") assert.equal(result.exit, exit, `${tl}: exit code`);
      else assert.equal(result.exit, undefined, `${tl}: no exit code`);
    }
  }
  return { store, stored: s };
}

/** Every request the plugin made was accepted (2xx, no batch errors, none dropped from the log). */
function assertNoRejections(dump, { messages }) {
  assert.equal(dump.requestsDropped, 0, "request log complete");
  const bad = dump.requests.filter((r) => r.status < 200 || r.status >= 300 || r.rejected);
  assert.deepEqual(bad, [], "rejected requests");
  const messagePosts = dump.requests.filter((r) => r.method === "POST" && r.path === "/sync/message").length;
  assert.equal(messagePosts, messages, `each message sent once (${messagePosts} POST /sync/message for ${messages} messages)`);
  assert.equal(dump.requests.filter((r) => r.path === "/sync/batch").length, 0, "no /sync/batch (it drops createdAt)");
  return dump.requests;
}

function sessionIdOf(e) {
  const id = readStore(e).sessions[0]?.id;
  assert.match(id ?? "", /^ses_/, "opencode.db has a session");
  return id;
}

/** The plugin's lines in OpenCode's log (it logs through client.app.log), for failure messages. */
function pluginLog(e) {
  const dir = path.join(e.dataDir, "log");
  if (!fs.existsSync(dir)) return "(no OpenCode log)";
  const lines = fs
    .readdirSync(dir)
    .flatMap((f) => fs.readFileSync(path.join(dir, f), "utf8").split("\n"))
    .filter((l) => l.includes("opencode-sync"));
  return lines.length ? lines.join("\n") : "(nothing)";
}

/** Evidence for a report: event types the recorder saw for a run. */
function eventSummary(recFile) {
  const counts = {};
  for (const ev of recordedEvents(readRecording(recFile))) counts[ev.type] = (counts[ev.type] ?? 0) + 1;
  return JSON.stringify(counts);
}

// ---------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------

const ONE_TURN = () => [
  [
    {
      text: "Running it.",
      toolCalls: [{ name: "bash", args: { command: "echo hello-plugin", description: "Say hello" } }],
      usage: { prompt: 1200, completion: 40, cached: 300 },
    },
    { text: "All done.", usage: { prompt: 1400, completion: 20, cached: 1000 } },
  ],
];

/** One timed run of ONE_TURN in a fresh environment, with or without our plugin. */
async function timedRun(t, { plugin, label }) {
  model.setScript(ONE_TURN());
  let wallMs;
  await withEnv(t, { name: label }, async (e) => {
    configure(e, { plugin });
    const r = await run(t, e, ["say", "hello"], { label });
    assertScriptConsumed();
    wallMs = r.wallMs;
  });
  return wallMs;
}

test("one turn with a shell tool call is synced as stored, and the plugin costs < 3 s", async (t) => {
  // The same scripted turn without our plugin (the recorder is loaded in both), for the
  // wall time. Nothing is sent then.
  await clearRequestLog();
  const baselineMs = [await timedRun(t, { plugin: false, label: "baseline" })];
  assert.deepEqual((await dumpServer()).requests, [], "nothing is sent without the plugin");

  const pluginMs = [];
  model.setScript(ONE_TURN());
  await withEnv(t, { name: "one-turn" }, async (e) => {
    configure(e);
    await clearRequestLog();
    const r = await run(t, e, ["say", "hello"], { label: "plugin" });
    pluginMs.push(r.wallMs);
    assertScriptConsumed();
    assert.match(r.stdout, /All done\./);
    t.diagnostic(`events: ${eventSummary(r.recFile)}`);

    const sessionID = sessionIdOf(e);
    const dump = await dumpFor(e);
    const { store, stored } = assertSessionSynced(e, dump, sessionID);
    assert.equal(store.messages.length, 3, "user, assistant (tool-calls), assistant (stop)");
    const assistants = stored.messages.filter((m) => m.role === "assistant");
    assert.deepEqual(assistants.map((m) => m.textContent), ["Running it.", "All done."]);
    const user = stored.messages.find((m) => m.role === "user");
    assert.equal(user.textContent, "say hello");
    const result = assistants[0].parts.find((p) => p.type === "tool-result").content;
    assert.equal(result.output, "hello-plugin\n");
    assert.equal(result.exit, 0);
    // Cached tokens are counted in the prompt (OpenCode stores them as cache reads).
    assert.ok(store.sessions[0].tokens_cache_read > 0, "the scripted cached tokens reached opencode.db");
    assertNoRejections(dump, { messages: store.messages.length });
  });

  // Wall time: one OpenCode run varies by seconds on a busy 2-core machine, so when the
  // first pair differs by the limit or more, both are measured once more and the
  // fastest of each compared (a plugin that really costs 3 s fails both times).
  const overhead = () => Math.min(...pluginMs) - Math.min(...baselineMs);
  if (overhead() >= MAX_PLUGIN_OVERHEAD_MS) {
    t.diagnostic(`first pair: without plugin ${baselineMs[0]} ms, with plugin ${pluginMs[0]} ms: measuring again`);
    baselineMs.push(await timedRun(t, { plugin: false, label: "baseline-2" }));
    pluginMs.push(await timedRun(t, { plugin: true, label: "plugin-2" }));
  }
  t.diagnostic(`wall time: without plugin ${baselineMs.join(", ")} ms; with plugin ${pluginMs.join(", ")} ms; overhead ${overhead()} ms`);
  assert.ok(
    overhead() < MAX_PLUGIN_OVERHEAD_MS,
    `the plugin added ${overhead()} ms to opencode run (without: ${baselineMs} ms, with: ${pluginMs} ms)`,
  );
});

test("two turns via --session: read, a failing command, a missing file, a long output", async (t) => {
  const longCommand = "seq -f 'line %06g of a long tool output' 1 1200";
  model.setScript([
    [
      {
        text: "Reading and running.",
        toolCalls: [
          { name: "read", args: { filePath: "notes.txt" } },
          { name: "bash", args: { command: "echo failing && exit 3", description: "Fails on purpose" } },
          { name: "read", args: { filePath: "missing-file.txt" } },
        ],
        usage: { prompt: 2000, completion: 90, cached: 500, reasoning: 30 },
      },
      { text: "Read the notes; one command failed and one file is missing." },
    ],
    [
      { toolCalls: [{ name: "bash", args: { command: longCommand, description: "Long output" } }] },
      { text: "Second turn done." },
    ],
  ]);
  await withEnv(t, { name: "two-turns" }, async (e) => {
    configure(e);
    await clearRequestLog();
    const r1 = await run(t, e, ["read", "notes", "and", "run", "commands"], { label: "turn-1" });
    const sessionID = sessionIdOf(e);
    const r2 = await run(t, e, ["now", "the", "long", "one"], { label: "turn-2", session: sessionID });
    assertScriptConsumed();
    assert.match(r2.stdout, /Second turn done\./);
    t.diagnostic(`turn 1 events: ${eventSummary(r1.recFile)}`);
    t.diagnostic(`turn 2 events: ${eventSummary(r2.recFile)}`);

    const dump = await dumpFor(e);
    const { store, stored } = assertSessionSynced(e, dump, sessionID);
    assert.equal(readStore(e).sessions.length, 1, "--session continued the same session");
    assert.deepEqual(
      stored.messages.filter((m) => m.role === "user").map((m) => m.textContent),
      ["read notes and run commands", "now the long one"],
    );

    // The scenario really exercised what it is about (checked in the db, compared above).
    const tools = store.parts.filter((p) => p.data.type === "tool").map((p) => p.data);
    assert.equal(tools.length, 4);
    const failing = tools.find((d) => d.state.input.command === "echo failing && exit 3");
    assert.equal(failing.state.status, "completed");
    assert.equal(failing.state.metadata.exit, 3);
    const missing = tools.find((d) => d.tool === "read" && d.state.input.filePath === "missing-file.txt");
    assert.equal(missing.state.status, "error", "reading a missing file is a tool error");
    const long = tools.find((d) => d.state.input.command === longCommand);
    assert.ok(bytes(long.state.output) > MAX_TOOL_OUTPUT_BYTES, `the long output (${bytes(long.state.output)} B) exceeds the plugin's limit`);

    const allParts = stored.messages.flatMap((m) => m.parts);
    const resultOf = (callID) => {
      const i = allParts.findIndex((p) => p.type === "tool-call" && p.content.callID === callID);
      return allParts[i + 1].content;
    };
    assert.equal(resultOf(failing.callID).exit, 3, "the failing command's exit code is carried");
    assert.equal(resultOf(failing.callID).output, "failing\n");
    assert.match(resultOf(missing.callID).error, /missing-file\.txt/);
    const longResult = resultOf(long.callID);
    assert.equal(longResult.truncated, true);
    assert.match(longResult.output, /\[truncated: showing \d+ of \d+ bytes\]$/);
    assert.ok(store.sessions[0].tokens_cache_read > 0 || store.sessions[0].tokens_reasoning > 0);
    assertNoRejections(dump, { messages: store.messages.length });
  });
});

test("secrets in tool output, tool args, a read file and the answer never reach the server", async (t) => {
  const gh = `ghp_${randomAlnum(36)}`;
  const osk = `osk_${randomAlnum(32)}`;
  const pgPassword = `Pw${randomAlnum(18)}`;
  const pgUrl = `postgres://app:${pgPassword}@db.internal:5432/app`;
  const awsSecret = randomAlnum(40);
  const secrets = [gh, osk, pgPassword, awsSecret];
  // The pieces that must not appear either (a prefix-only leak still leaks).
  const fragments = [gh.slice(4), osk.slice(4), pgPassword, awsSecret];
  model.setScript([
    [
      {
        text: "Checking the environment.",
        toolCalls: [
          { name: "bash", args: { command: `echo ${gh} && echo ${osk} && echo ${pgUrl}`, description: "Print credentials" } },
          { name: "read", args: { filePath: "deploy.conf" } },
        ],
      },
      { text: `Found the GitHub token ${gh} and the database at ${pgUrl}.` },
    ],
  ]);
  const files = {
    "notes.txt": "hello from notes\n",
    "deploy.conf": `DATABASE_URL=${pgUrl}\nAWS_SECRET_ACCESS_KEY=${awsSecret}\nOPENSYNC_API_KEY=${osk}\n`,
  };
  await withEnv(t, { name: "secrets", files }, async (e) => {
    configure(e);
    await clearRequestLog();
    const r = await run(t, e, ["check", "the", "deploy", "settings"], { label: "secrets" });
    assertScriptConsumed();
    t.diagnostic(`events: ${eventSummary(r.recFile)}`);

    const sessionID = sessionIdOf(e);
    const dump = await dumpFor(e);
    // The session's own data did carry the secrets (so the check below means something).
    const store = readStore(e, { sessionID });
    const dbText = JSON.stringify(store);
    for (const s of secrets) assert.ok(dbText.includes(s), "the secret is in opencode.db");

    // Nothing stored anywhere on the server holds a secret or a piece of one. The dump
    // shows the user's own API key (users[].apiKey): it must not appear anywhere else.
    const everything = JSON.stringify(dump);
    for (const f of fragments) assert.ok(!everything.includes(f), `secret fragment ${f.slice(0, 6)}… found in the server's dump`);
    const withoutKeys = JSON.stringify({ ...dump, users: dump.users.map(({ apiKey, ...u }) => u) });
    assert.ok(!withoutKeys.includes(API_KEY.slice(4)), "the plugin's own API key is not stored as data");

    const { stored } = assertSessionSynced(e, dump, sessionID, { secrets });
    const masked = JSON.stringify(stored.messages);
    assert.ok(masked.includes("[REDACTED]"), "secrets are replaced by the mask");
    assert.ok(masked.includes("db.internal"), "the URL minus its password is kept");
    assertNoRejections(dump, { messages: store.messages.length });
  });
});
