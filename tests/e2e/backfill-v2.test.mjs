// Backfill of an OpenCode 2 store: the sessions of the shared V2 scenario
// (lib/v2-streams.mjs: two projects, two turns with shell/read/a failing tool, a subagent
// child, a turn cut by a shutdown and resumed) written as OpenCode 2 stores them
// (session_v2 + session_message, through Bun's sqlite), then the built `opencode-sync sync`
// sends them to the contract sync server, and what the server stored is compared with the
// scenario's expected facts: every session, message and tool call once. A second run
// sends nothing.
//
// Needs: `cargo build -p opencode-sync-cli -p opencode-sync-contract-server` (done in
// `before` unless OPENCODE_SYNC_BIN and OPENCODE_SYNC_SERVER_BIN point at builds), `bash
// scripts/setup-e2e` (Bun). Run: cd tests/e2e && node --test backfill-v2.test.mjs.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { REPO, startSyncServer } from "./lib/sync-server.mjs";
import { v2Scenario, writeV2Database } from "./lib/v2-streams.mjs";
import { assertV2Stored } from "./lib/v2-compare.mjs";

const CLI_BIN = path.resolve(process.env.OPENCODE_SYNC_BIN || path.join(REPO, "target", "debug", "opencode-sync"));
const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/** A fake key made at run time (never written in a file). */
const API_KEY = `osk_${Array.from(crypto.randomBytes(32), (b) => ALNUM[b % ALNUM.length]).join("")}`;

let sync;

before(async () => {
  if (!process.env.OPENCODE_SYNC_BIN || !process.env.OPENCODE_SYNC_SERVER_BIN) {
    const b = spawnSync("cargo", ["build", "-q", "-p", "opencode-sync-cli", "-p", "opencode-sync-contract-server"], {
      cwd: REPO,
      encoding: "utf8",
      timeout: 600_000,
    });
    assert.equal(b.status, 0, `cargo build failed:\n${b.stderr}`);
  }
  sync = await startSyncServer({ apiKey: API_KEY });
});

after(async () => {
  await sync?.stop();
});

/** An isolated home: config, state and OpenCode's data under it. */
function createHome(t) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "backfill-v2-"));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: root,
    XDG_CONFIG_HOME: path.join(root, "config"),
    XDG_STATE_HOME: path.join(root, "state"),
    XDG_DATA_HOME: path.join(root, "data"),
  };
  const db = path.join(env.XDG_DATA_HOME, "opencode", "opencode.db");
  fs.mkdirSync(path.dirname(db), { recursive: true });
  return { root, env, db };
}

/** Runs the built CLI; never lets the full key through. */
function cli(h, args, { input } = {}) {
  const r = spawnSync(CLI_BIN, args, { env: h.env, cwd: h.root, input, encoding: "utf8", timeout: 120_000 });
  const out = `${r.stdout}${r.stderr}`;
  assert.ok(!out.includes(API_KEY), `opencode-sync ${args.join(" ")} printed the API key`);
  assert.ok(!out.includes("panicked"), `opencode-sync ${args.join(" ")} panicked:\n${out}`);
  assert.equal(r.status, 0, `opencode-sync ${args.join(" ")} failed:\n${out}${r.error ?? ""}`);
  return r.stdout;
}

async function syncRequests() {
  const log = await sync.control("GET", "/control/requests");
  return (Array.isArray(log) ? log : (log.requests ?? [])).filter((r) => r.path.startsWith("/sync/"));
}

test("backfill of an OpenCode 2 store: every fact of the V2 scenario once, then nothing", async (t) => {
  const h = createHome(t);
  const sc = v2Scenario();
  writeV2Database(h.db, sc.rows);
  cli(h, ["login", "--url", sync.url, "--api-key-stdin"], { input: `${API_KEY}\n` });
  await sync.clearRequestLog();

  const summary = JSON.parse(cli(h, ["sync", "--json"]));
  const facts = Object.values(sc.facts.sessions);
  // A step cut by the shutdown before it said anything leaves an empty, unfinished row:
  // no message the plugin would ever send (the resumed turn's new step carries the reply).
  const sent = (f) => f.messages.filter((m) => !(m.interrupted && !m.text && !m.tools?.length));
  const messageFacts = facts.flatMap(sent);
  const toolFacts = messageFacts.flatMap((m) => m.tools ?? []);
  assert.equal(summary.sessions.sent, facts.length, JSON.stringify(summary));
  assert.equal(summary.messages.sent, messageFacts.length, JSON.stringify(summary));
  assert.equal(summary.toolCalls, toolFacts.length, JSON.stringify(summary));
  assert.deepEqual(summary.rows.notes, [], "no row was odd");

  const requests = await syncRequests();
  assert.ok(requests.every((r) => r.status === 200), JSON.stringify(requests));
  assert.equal(requests.filter((r) => r.path === "/sync/session").length, facts.length, "each session once");
  assert.equal(requests.filter((r) => r.path === "/sync/message").length, messageFacts.length, "each message once");

  const dump = await sync.control("GET", "/control/dump");
  assertV2Stored(dump, facts, sent);

  // A second run sends nothing.
  const before2 = (await syncRequests()).length;
  const again = JSON.parse(cli(h, ["sync", "--json"]));
  assert.equal(again.sessions.toSend, 0, JSON.stringify(again));
  assert.equal((await syncRequests()).length, before2, "the second run sends nothing");
});
