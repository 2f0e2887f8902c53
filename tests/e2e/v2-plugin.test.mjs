// The plugin under OpenCode 2, against the V2 test host (lib/v2-host.mjs: no OpenCode 2
// binary can be had here, so the host follows shared/opencode-host-v2.md): the built
// package, loaded as V2 loads a directory entry (`file:///<repo>/npm`), runs one instance
// per project location in one service process, and the shared V2 scenario
// (lib/v2-streams.mjs: two projects whose streams interleave, two turns with shell, read
// and a failing tool, a subagent child, a turn cut by a shutdown and resumed in a second
// host process) is published to every instance. What the contract sync server stored must
// be the scenario's facts: every session, message and tool call once, zero duplicates,
// zero rejected requests.
//
// Needs: `scripts/build` (npm/wasm/), `cargo build -p opencode-sync-contract-server`.

import { test, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { createV2Host } from "./lib/v2-host.mjs";
import { v2Scenario } from "./lib/v2-streams.mjs";
import { assertV2Stored } from "./lib/v2-compare.mjs";
import { REPO, assertPluginBuilt, startSyncServer } from "./lib/sync-server.mjs";

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const API_KEY = `osk_${Array.from(crypto.randomBytes(32), (b) => ALNUM[b % ALNUM.length]).join("")}`;
/** The package directory, as a V2 `plugins` entry names it. */
const PLUGIN_DIR = pathToFileURL(path.join(REPO, "npm")).href;

before(() => assertPluginBuilt());

/** A git project directory on `branch`. */
function project(root, name, branch) {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  execFileSync("git", ["init", "-q", "-b", branch], { cwd: dir });
  return dir;
}

/**
 * The service's environment for the plugin (it runs in this process, as in V2's one
 * service): config, state and home under `root`. Restored after the test.
 */
function serviceEnv(t, root, url) {
  const saved = {};
  const env = {
    HOME: root,
    XDG_CONFIG_HOME: path.join(root, "config"),
    XDG_STATE_HOME: path.join(root, "state"),
    XDG_DATA_HOME: path.join(root, "data"),
    XDG_CACHE_HOME: path.join(root, "cache"),
  };
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  for (const k of ["OPENCODE_SYNC_URL", "OPENCODE_SYNC_API_KEY"]) {
    saved[k] = process.env[k];
    delete process.env[k];
  }
  t.after(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  const config = path.join(env.XDG_CONFIG_HOME, "opencode-sync", "config.json");
  fs.mkdirSync(path.dirname(config), { recursive: true, mode: 0o700 });
  fs.writeFileSync(config, JSON.stringify({ convexUrl: url, apiKey: API_KEY }), { mode: 0o600 });
  return env;
}

test("OpenCode 2 (test host): two locations in one service, a turn resumed in a second process: every fact once, nothing rejected", async (t) => {
  const sync = await startSyncServer({ apiKey: API_KEY });
  t.after(() => sync.stop());
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "v2-plugin-"));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const env = serviceEnv(t, root, sync.url);
  const a = { directory: project(root, "proj-a", "feature/sync"), branch: "feature/sync" };
  const b = { directory: project(root, "proj-b", "main"), branch: "main" };
  const sc = v2Scenario({ a, b });
  await sync.clearRequestLog();

  for (const [index, events] of sc.processes.entries()) {
    const host = createV2Host({ storageFile: path.join(root, "kv.json") });
    try {
      // A second service process knows the sessions from its database.
      if (index > 0) for (const info of sc.sessionInfos) host.sessions.set(info.id, info);
      for (const location of [a, b]) {
        const loaded = await host.load({ directory: location.directory }, PLUGIN_DIR);
        assert.equal(loaded.status, "active", `the plugin loads in ${location.directory}: ${JSON.stringify(loaded)}`);
      }
      for (const e of events) host.publish(e);
      await host.drain();
      // Let the instances deliver before the service stops (the cleanup flushes too).
      await new Promise((r) => setTimeout(r, 1500));
    } finally {
      await host.shutdown();
    }
    const problems = host.logs.filter((l) => l.level === "error" || /stopped|could not/.test(l.text));
    assert.deepEqual(problems, [], `process ${index}: the plugin complained`);
  }

  // What could not go before a service stopped waits in the outbox: a flush is what the
  // next service start does.
  const outbox = path.join(env.XDG_STATE_HOME, "opencode-sync", "outbox");
  const left = fs.existsSync(outbox) ? fs.readdirSync(outbox).filter((f) => f.endsWith(".json")) : [];
  assert.deepEqual(left, [], "nothing left in the outbox");

  const dump = await sync.dump();
  const requests = dump.requests.filter((r) => r.path.startsWith("/sync/"));
  assert.deepEqual(requests.filter((r) => r.status !== 200 || r.rejected), [], "zero rejected requests");
  const facts = Object.values(sc.facts.sessions);
  // A step cut by the shutdown before it said anything is no message (as in backfill).
  const sent = (f) => f.messages.filter((m) => !(m.interrupted && !m.text && !m.tools?.length));
  assertV2Stored(dump, facts, sent);
  const posted = requests.filter((r) => r.path === "/sync/message").length;
  const messages = facts.flatMap(sent).length;
  assert.equal(posted, messages, `each message sent once (${posted} POST /sync/message for ${messages} messages)`);
});
