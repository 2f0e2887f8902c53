// The compatibility suite: the plugin under every OpenCode 1.x release users run. Each
// release (1.0.61, 1.2.27, 1.14.41, 1.15.13 and the pinned 1.18.33) runs a two-turn session with
// tool calls under `opencode run`, with the built plugin loaded from file://<repo>/npm/
// index.js (1.0, 1.2) or the directory form file://<repo>/npm (1.14, 1.18) and the contract
// sync server. Then:
//   - every fact of OpenCode's own store arrived (lib/compare.mjs), totals included: where
//     the store keeps none (before 1.15) they are the sums over the replies (1.15's last
//     session update comes after exit: the plugin must not send the stale one);
//   - exactly one engine per process (one "syncing sessions to" line per `opencode run`:
//     1.0.x calls every export of the module, the plugin must start once);
//   - zero duplicates: each message POSTed once, no rejected request;
//   - backfill of the same store (`opencode-sync sync --force`) delivers every fact too.
// 1.2 to 1.14 exit a few ms after the turn ends and never call `dispose`: what the plugin
// wrote to its outbox at exit is delivered by the next start or by `sync --flush`, which
// the suite runs after the last turn, as a user's next OpenCode start would.
// 1.2.27 and 1.14.41 run three times each: the exit races the plugin.
//
// Needs: `scripts/build`, `cargo build -p opencode-sync-cli -p opencode-sync-server`,
// `bash scripts/setup-e2e` and `bash scripts/setup-e2e compat` (the older releases, their
// provider package and ripgrep, see README.md). Run: cd tests/e2e && node --test compat.test.mjs
// (COMPAT_VERSIONS=1.2.27,1.14.41 to pick releases; COMPAT_RUNS=1 for one run each).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { startModelServer } from "./lib/model-server.mjs";
import { COMPAT_VERSIONS, createEnv, writeConfig, runOpencode, describeRun, readStore, RECORDER_PLUGIN_URL } from "./lib/opencode.mjs";
import { assertStoredAsInDb } from "./lib/compare.mjs";
import { REPO, PLUGIN_ENTRY, PLUGIN_URL, assertPluginBuilt, startSyncServer, writeSyncCredentials, pluginLog } from "./lib/sync-server.mjs";

const CLI_BIN = process.env.OPENCODE_SYNC_BIN || path.join(REPO, "target", "debug", "opencode-sync");
const TITLE = "Compatibility session";
const API_KEY = `osk_${crypto.randomBytes(24).toString("hex")}`;
/** Releases whose `opencode run` races the plugin at exit: run several times. */
const RACY = new Set(["1.2.27", "1.14.41"]);
const versions = (process.env.COMPAT_VERSIONS?.split(",") ?? COMPAT_VERSIONS).filter(Boolean);
const runsOf = (v) => Number(process.env.COMPAT_RUNS ?? (RACY.has(v) ? 3 : 1));

let model;
let sync;
/** A second server, for backfill: what it holds came from the store alone. */
let backfillSync;
/** A third, for backfill of the store rewritten into 0.5's layout. */
let legacySync;

before(async () => {
  assertPluginBuilt();
  assert.ok(fs.existsSync(CLI_BIN), `${CLI_BIN} is missing: cargo build -p opencode-sync-cli`);
  model = await startModelServer({ title: TITLE });
  sync = await startSyncServer({ apiKey: API_KEY });
  backfillSync = await startSyncServer({ apiKey: API_KEY });
  legacySync = await startSyncServer({ apiKey: API_KEY });
});

after(async () => {
  await sync?.stop();
  await backfillSync?.stop();
  await legacySync?.stop();
  await model?.close();
});

const TWO_TURNS = () => [
  [
    {
      text: "Reading and running.",
      toolCalls: [
        { name: "read", args: { filePath: "notes.txt" } },
        { name: "bash", args: { command: "echo compat-one && exit 3", description: "Fails on purpose" } },
      ],
      usage: { prompt: 2000, completion: 90, cached: 500 },
    },
    { text: "First turn done.", usage: { prompt: 2300, completion: 30, cached: 1500 } },
  ],
  [
    {
      toolCalls: [{ name: "bash", args: { command: "echo compat-two", description: "Second command" } }],
      usage: { prompt: 2600, completion: 40 },
    },
    { text: "Second turn done.", usage: { prompt: 2700, completion: 20, cached: 2000 } },
  ],
];

/**
 * The plugin entry: `file://<repo>/npm/index.js` as `setup` and `scripts/start` write it, and
 * from 1.14 the directory form `file://<repo>/npm` that OpenCode 2 needs too (1.14+ load its
 * `./server` export, npm/server.js; 1.18 then also calls `setup`, which must do nothing).
 */
function pluginEntryFor(version) {
  const [, minor] = version.split(".").map(Number);
  return minor >= 14 ? pathToFileURL(path.dirname(PLUGIN_ENTRY)).href : PLUGIN_URL;
}

function cli(e, args) {
  const r = spawnSync(CLI_BIN, args, { env: e.env, cwd: e.root, encoding: "utf8", timeout: 120_000 });
  assert.equal(r.status, 0, `opencode-sync ${args.join(" ")} failed (${r.status} ${r.signal ?? ""}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

async function turn(t, e, prompt, { label, session }) {
  const r = await runOpencode(e, prompt, { session, timeoutMs: 90_000 });
  t.diagnostic(`${e.opencodeVersion} ${label}: opencode run ${r.wallMs} ms`);
  assert.equal(r.timedOut, false, `opencode timed out\n${describeRun(r)}`);
  assert.equal(r.code, 0, `opencode failed\n${describeRun(r)}`);
  // One engine per process: the plugin says where it syncs to once when it starts.
  const starts = r.stderr.split("\n").filter((l) => l.includes("syncing sessions to")).length;
  assert.equal(starts, 1, `${label}: one engine in the process (it started ${starts} times)\n${describeRun(r)}`);
  return { ...r, interrupted: interruptedMessageSends(e) };
}

/**
 * Message records the exited process had claimed, i.e. was sending when OpenCode exited
 * (1.2-1.14 exit a few ms after the turn ends): the answer never reached it, so the next
 * sender delivers them again (at least once). The only repeats the suite allows.
 */
function interruptedMessageSends(e) {
  const dir = path.join(e.stateHome, "opencode-sync", "outbox");
  if (!fs.existsSync(dir)) return 0;
  return fs.readdirSync(dir).filter((f) => /\.message\..*\.claim-/.test(f)).length;
}

/**
 * Rewrites a JSON `storage/` tree (1.0.x) into OpenCode 0.5's layout under `dataDir`:
 * `project/<slug>/storage/session/{info,message/<session>,part/<session>/<message>}/`,
 * sessions without `directory` or `projectID` (0.5 keeps the directory on the replies).
 */
function writeAs05(storage, dataDir, slug) {
  const tree = path.join(dataDir, "project", slug, "storage", "session");
  const copy = (from, to, edit = (x) => x) => {
    fs.mkdirSync(path.dirname(to), { recursive: true });
    fs.writeFileSync(to, JSON.stringify(edit(JSON.parse(fs.readFileSync(from, "utf8")))));
  };
  const jsons = (dir) => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith(".json")) : []);
  for (const project of fs.readdirSync(path.join(storage, "session"))) {
    for (const f of jsons(path.join(storage, "session", project))) {
      copy(path.join(storage, "session", project, f), path.join(tree, "info", f), ({ directory: _d, projectID: _p, ...rest }) => rest);
      const sessionID = f.slice(0, -5);
      for (const m of jsons(path.join(storage, "message", sessionID))) {
        copy(path.join(storage, "message", sessionID, m), path.join(tree, "message", sessionID, m));
        const messageID = m.slice(0, -5);
        for (const p of jsons(path.join(storage, "part", messageID))) {
          copy(path.join(storage, "part", messageID, p), path.join(tree, "part", sessionID, messageID, p));
        }
      }
    }
  }
}

/** The session as OpenCode stored it, and as the server holds it: the same facts. */
async function assertDelivered(server, e, sessionID, what) {
  const store = readStore(e, { sessionID });
  assert.equal(store.sessions.length, 1, `${what}: the store has the session`);
  assert.equal(store.sessions[0].title, TITLE, `${what}: OpenCode generated the title`);
  const dump = await server.dump();
  fs.writeFileSync(path.join(e.root, `server-dump-${what}.json`), JSON.stringify(dump, null, 2));
  assertStoredAsInDb(store, dump, sessionID, { context: () => `${what}; the plugin logged:\n${pluginLog(e)}` });
  return { store, dump };
}

for (const version of versions) {
  for (let run = 1; run <= runsOf(version); run++) {
    test(`OpenCode ${version} run ${run}: a two-turn session arrives whole, once, from one engine; backfill agrees`, async (t) => {
      model.setScript(TWO_TURNS());
      const e = createEnv({ name: `compat-${version}`, opencode: version });
      let ok = false;
      try {
        writeSyncCredentials(e, { url: sync.url, apiKey: API_KEY });
        writeConfig(e, { baseURL: model.baseURL, plugins: [RECORDER_PLUGIN_URL, pluginEntryFor(version)] });
        await sync.clearRequestLog();

        const r1 = await turn(t, e, ["read", "notes", "and", "run", "a", "command"], { label: "turn 1" });
        const sessionID = readStore(e).sessions[0]?.id;
        assert.match(sessionID ?? "", /^ses_/, "the store has a session");
        const r2 = await turn(t, e, ["one", "more", "command"], { label: "turn 2", session: sessionID });
        assert.deepEqual(model.problems, [], "the model server saw only scripted requests");
        assert.equal(model.remaining(), 0, "every scripted step was requested");

        // What the plugin left in its outbox when OpenCode exited, as the next start would.
        cli(e, ["sync", "--flush"]);
        const { store, dump } = await assertDelivered(sync, e, sessionID, "live");
        const bad = dump.requests.filter((r) => r.status < 200 || r.status >= 300 || r.rejected);
        assert.deepEqual(bad, [], "no rejected request");
        const posts = dump.requests.filter((r) => r.method === "POST" && r.path === "/sync/message").length;
        const interrupted = r1.interrupted + r2.interrupted;
        assert.ok(
          posts >= store.messages.length && posts <= store.messages.length + interrupted,
          `each message sent once, but for ${interrupted} send(s) the exit interrupted: ${posts} POSTs for ${store.messages.length} messages`,
        );
        const row = store.sessions[0];
        t.diagnostic(
          `${version}: ${store.messages.length} messages, ${store.parts.length} parts, ${posts} message POSTs (${interrupted} interrupted by the exit), totals ${row.totals_from_replies ? "from the replies" : "from the session"}`,
        );

        // Backfill of the same store to a server that has nothing of it: the same facts.
        writeSyncCredentials(e, { url: backfillSync.url, apiKey: API_KEY });
        cli(e, ["sync", "--force", "--session", sessionID, "--data-dir", e.dataDir]);
        await assertDelivered(backfillSync, e, sessionID, "backfill");

        if (e.storeKind === "json") {
          // The same history in OpenCode 0.5's layout, found from its data directory.
          const legacyData = path.join(e.root, "legacy-0.5-data");
          writeAs05(path.join(e.dataDir, "storage"), legacyData, "work-project");
          writeSyncCredentials(e, { url: legacySync.url, apiKey: API_KEY });
          cli(e, ["sync", "--force", "--data-dir", legacyData]);
          await assertDelivered(legacySync, e, sessionID, "backfill of the 0.5 layout");
        }
        ok = true;
      } finally {
        if (ok && !process.env.E2E_KEEP) e.cleanup();
        else t.diagnostic(`environment kept at ${e.root}`);
      }
    });
  }
}
