// Backfill acceptance: real history made by the REAL OpenCode binary (scripted model, NO
// plugin loaded: three sessions over two projects, with tool calls), then the built
// `opencode-sync sync` sends it to the contract sync server (crates/server, as a child
// process), and what the server stored is compared with OpenCode's own opencode.db,
// field by field. A second run sends nothing; after one more OpenCode turn in one
// session, a third run sends only that session.
//
// Needs: `cargo build -p opencode-sync-cli -p opencode-sync-contract-server` (done in `before`
// unless OPENCODE_SYNC_BIN and OPENCODE_SYNC_SERVER_BIN point at builds), `bash
// scripts/setup-e2e`. Run: cd tests/e2e && node --test backfill.test.mjs. E2E_KEEP=1
// keeps the environment under tests/e2e/.work/ (a failed one is always kept).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync, execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { startModelServer } from "./lib/model-server.mjs";
import { E2E_DIR, createEnv, writeConfig, runOpencode, describeRun, readStore } from "./lib/opencode.mjs";
import { startSyncServer } from "./lib/sync-server.mjs";

const REPO = path.resolve(E2E_DIR, "..", "..");
const CLI_BIN = process.env.OPENCODE_SYNC_BIN || path.join(REPO, "target", "debug", "opencode-sync");
const TITLE = "Backfill e2e session";

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/** A fake key made at run time (never written in a file). */
const API_KEY = `osk_${Array.from(crypto.randomBytes(32), (b) => ALNUM[b % ALNUM.length]).join("")}`;

let model;
let sync;

async function control(method, route) {
  return sync.control(method, route);
}

/** `/sync/*` requests the server has logged. */
async function syncRequests() {
  const log = await control("GET", "/control/requests");
  const list = Array.isArray(log) ? log : (log.requests ?? []);
  return list.filter((r) => r.path.startsWith("/sync/"));
}

/** Runs the built CLI in the isolated environment; never lets the full key through. */
function cli(e, args, { input } = {}) {
  const r = spawnSync(CLI_BIN, args, { env: e.env, cwd: e.root, input, encoding: "utf8", timeout: 120_000 });
  const out = `${r.stdout}${r.stderr}`;
  assert.ok(!out.includes(API_KEY), `opencode-sync ${args.join(" ")} printed the API key`);
  assert.ok(!out.includes("panicked"), `opencode-sync ${args.join(" ")} panicked:\n${out}`);
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, out };
}

function syncJson(e, args = []) {
  const r = cli(e, ["sync", "--json", ...args]);
  assert.equal(r.code, 0, `opencode-sync sync failed:\n${r.out}`);
  return JSON.parse(r.stdout);
}

/** A second git project next to the env's own (its own root commit, so its own id). */
function createProject(e, name) {
  const dir = path.join(e.root, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "notes.txt"), `notes of ${name}\n`);
  const git = (...args) =>
    execFileSync("git", ["-c", "user.name=e2e", "-c", "user.email=e2e@example.invalid", "-c", "commit.gpgsign=false", ...args], {
      cwd: dir,
      stdio: "pipe",
      env: { PATH: process.env.PATH, HOME: e.home, GIT_CONFIG_NOSYSTEM: "1", LANG: "C.UTF-8" },
    });
  git("init", "-q", "-b", "main");
  git("add", "-A");
  git("commit", "-q", "-m", `initial ${name}`);
  return dir;
}

/** One `opencode run` turn; returns the session id. */
async function turn(t, e, project, script, words, session) {
  model.setScript([script]);
  const r = await runOpencode({ ...e, project }, words, { session, format: "json" });
  t.diagnostic(`opencode run (${path.basename(project)}): ${r.wallMs} ms`);
  assert.equal(r.timedOut, false, describeRun(r));
  assert.equal(r.code, 0, describeRun(r));
  assert.deepEqual(model.problems, [], "model server saw unexpected requests");
  assert.equal(model.remaining(), 0, "every scripted step was requested");
  const id = r.events.find((ev) => ev.sessionID)?.sessionID;
  assert.match(id ?? "", /^ses_/);
  return id;
}

/** What the server stored for the user, as {externalId: session}. */
async function storedSessions() {
  const dump = await control("GET", "/control/dump");
  assert.equal(dump.users.length, 1);
  return new Map(dump.users[0].sessions.map((s) => [s.externalId, s]));
}

/** Compares the server's sessions with opencode.db, by the rules of crates/core/src/map.rs. */
async function assertServerMatchesStore(e) {
  const store = readStore(e);
  const stored = await storedSessions();
  assert.deepEqual([...stored.keys()].sort(), store.sessions.map((s) => s.id).sort(), "same sessions");
  for (const s of store.sessions) {
    const got = stored.get(s.id);
    const where = `session ${s.id}`;
    assert.equal(got.title, s.title, `${where} title`);
    assert.equal(got.projectPath, s.directory, `${where} projectPath`);
    assert.equal(got.projectName, path.basename(s.directory), `${where} projectName`);
    assert.equal(got.model, s.model.id, `${where} model`);
    assert.equal(got.provider, s.model.providerID, `${where} provider`);
    assert.equal(got.source, "opencode");
    assert.equal(got.promptTokens, s.tokens_input + s.tokens_cache_read + s.tokens_cache_write, `${where} promptTokens`);
    assert.equal(got.completionTokens, s.tokens_output + s.tokens_reasoning, `${where} completionTokens`);
    assert.ok(Math.abs(got.cost - s.cost) < 1e-12, `${where} cost ${got.cost} vs ${s.cost}`);
    assert.equal(got.createdAt, s.time_created, `${where} createdAt`);
    assert.equal(got.durationMs, s.time_updated - s.time_created, `${where} durationMs`);
    const messages = store.messages.filter((m) => m.session_id === s.id);
    assert.equal(got.messageCount, messages.length, `${where} messageCount`);
    assert.equal(got.messages.length, messages.length, `${where} messages`);
    for (const m of messages) {
      const sm = got.messages.find((x) => x.externalId === m.id);
      const at = `message ${m.id}`;
      assert.ok(sm, `${at} stored`);
      const parts = store.parts.filter((p) => p.message_id === m.id).sort((a, b) => (a.id < b.id ? -1 : 1));
      assert.equal(sm.role, m.data.role, `${at} role`);
      const text = parts
        .filter((p) => p.data.type === "text" && p.data.synthetic !== true && p.data.text)
        .map((p) => p.data.text)
        .join("\n\n");
      assert.equal(sm.textContent, text || undefined, `${at} textContent`);
      assert.ok(Math.abs(sm.createdAt - m.data.time.created) <= 1000, `${at} createdAt ${sm.createdAt} vs ${m.data.time.created}`);
      const modelID = m.data.role === "user" ? m.data.model.modelID : m.data.modelID;
      assert.equal(sm.model, modelID, `${at} model`);
      if (m.data.role === "assistant") {
        const t = m.data.tokens;
        const prompt = t.input + t.cache.read + t.cache.write;
        const completion = t.output + t.reasoning;
        assert.equal(sm.promptTokens, prompt || undefined, `${at} promptTokens`);
        assert.equal(sm.completionTokens, completion || undefined, `${at} completionTokens`);
        assert.equal(sm.durationMs, m.data.time.completed - m.data.time.created, `${at} durationMs`);
      }
      const tools = parts.filter((p) => p.data.type === "tool").map((p) => [p.data.tool, p.data.callID, p.data.state.status]);
      const calls = sm.parts.filter((p) => p.type === "tool-call").map((p) => [p.content.toolName, p.content.callID, p.content.status]);
      assert.deepEqual(calls, tools, `${at} tool calls`);
      const results = sm.parts.filter((p) => p.type === "tool-result");
      assert.equal(results.length, tools.filter(([, , status]) => status === "completed" || status === "error").length, `${at} tool results`);
    }
  }
  return store;
}

before(async () => {
  if (!process.env.OPENCODE_SYNC_BIN || !process.env.OPENCODE_SYNC_SERVER_BIN) {
    const b = spawnSync("cargo", ["build", "-q", "-p", "opencode-sync-cli", "-p", "opencode-sync-contract-server"], {
      cwd: REPO,
      encoding: "utf8",
      timeout: 600_000,
    });
    assert.equal(b.status, 0, `cargo build failed:\n${b.stderr}`);
  }
  model = await startModelServer({ title: TITLE });
  sync = await startSyncServer({ apiKey: API_KEY });
});

after(async () => {
  await sync?.stop();
  await model?.close();
});

test("backfill of real OpenCode history: exact, then nothing, then only the changed session", async (t) => {
  const e = createEnv({ name: "backfill" });
  let ok = false;
  try {
    writeConfig(e, { baseURL: model.baseURL }); // no plugin: history is made without sync
    const other = createProject(e, "second-project");

    const s1 = await turn(t, e, e.project, [
      { text: "Running it.", toolCalls: [{ name: "bash", args: { command: "echo hello-backfill", description: "Say hello" } }] },
      { text: "All done." },
    ], ["say", "hello"]);
    const s2 = await turn(t, e, e.project, [
      {
        toolCalls: [
          { name: "read", args: { filePath: "notes.txt" } },
          { name: "bash", args: { command: "echo failing && exit 3", description: "Fails on purpose" } },
        ],
      },
      { text: "Read the notes; the command failed with 3.", usage: { prompt: 900, completion: 40, cached: 300, reasoning: 10 } },
    ], ["read", "the", "notes"]);
    const s3 = await turn(t, e, other, [
      { text: "Checking.", toolCalls: [{ name: "bash", args: { command: "ls", description: "List files" } }] },
      { text: "There is a notes file." },
    ], ["list", "files"]);
    assert.equal(new Set([s1, s2, s3]).size, 3);
    const before1 = readStore(e);
    assert.equal(new Set(before1.sessions.map((s) => s.project_id)).size, 2, "two projects");

    // Log in and backfill everything.
    const login = cli(e, ["login", "--url", sync.url, "--api-key-stdin"], { input: `${API_KEY}\n` });
    assert.equal(login.code, 0, login.out);
    await control("DELETE", "/control/requests");
    const first = syncJson(e);
    t.diagnostic(`first sync: ${JSON.stringify(first.sessions)} ${first.messages.sent} messages in ${first.elapsedMs} ms`);
    assert.equal(first.source.kind, "sqlite");
    assert.equal(first.sessions.sent, 3);
    const store = await assertServerMatchesStore(e);
    assert.equal(first.messages.sent, store.messages.length);
    assert.equal(first.toolCalls, store.parts.filter((p) => p.data.type === "tool").length);
    const firstRequests = await syncRequests();
    assert.ok(firstRequests.every((r) => r.status === 200 && r.path !== "/sync/batch"), JSON.stringify(firstRequests));

    // Second run: nothing goes out.
    await control("DELETE", "/control/requests");
    const second = syncJson(e);
    assert.equal(second.sessions.toSend, 0, JSON.stringify(second));
    assert.equal(second.sessions.skipped.unchanged, 3);
    assert.deepEqual(await syncRequests(), [], "the second run sent nothing");

    // One more turn in s2: the third run sends that session only.
    const untouched = await storedSessions();
    await turn(t, e, e.project, [
      { toolCalls: [{ name: "bash", args: { command: "cat notes.txt", description: "Show notes" } }] },
      { text: "The notes say hello." },
    ], ["show", "notes"], s2);
    await control("DELETE", "/control/requests");
    const third = syncJson(e);
    assert.equal(third.sessions.sent, 1, JSON.stringify(third));
    assert.equal(third.sessions.skipped.unchanged, 2);
    const thirdRequests = await syncRequests();
    assert.equal(thirdRequests.filter((r) => r.path === "/sync/session").length, 1, JSON.stringify(thirdRequests));
    assert.ok(third.messages.sent >= 3, "the new turn's messages");
    await assertServerMatchesStore(e);
    const after3 = await storedSessions();
    for (const id of [s1, s3]) assert.equal(after3.get(id).updatedAt, untouched.get(id).updatedAt, `${id} untouched`);
    ok = true;
  } finally {
    if (ok && !process.env.E2E_KEEP) e.cleanup();
    else t.diagnostic(`environment kept at ${e.root}`);
  }
});
