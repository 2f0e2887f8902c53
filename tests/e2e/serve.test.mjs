// `opencode-sync serve` end to end, the newcomer's path: the built CLI runs the local
// OpenSync server (its own data directory and key), `opencode-sync login --local` points
// the plugin at it, and the REAL OpenCode with our plugin (file://<repo>/npm/index.js)
// and the scripted model runs one turn with a shell tool call. The session must then be
// in the server's read API (`/api/sessions`, `/api/sessions/get`, read without a key as
// a browser on this machine would) with every fact the plugin suite compares against
// OpenCode's own opencode.db (lib/compare.mjs), and still be there, unchanged, after the
// server is stopped (SIGTERM) and started again.
//
// Needs: `scripts/build wasm` (npm/wasm/), `cargo build -p opencode-sync-cli` (done in
// `before` unless OPENCODE_SYNC_BIN points at a build), `bash scripts/setup-e2e`.
// Run: cd tests/e2e && node --test serve.test.mjs. E2E_KEEP=1 keeps the environment
// under tests/e2e/.work/ (a failed one is always kept), with the server's data directory.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { startModelServer } from "./lib/model-server.mjs";
import { E2E_DIR, writeConfig, runOpencode, describeRun, readStore, withEnv } from "./lib/opencode.mjs";
import { assertStoredAsInDb, dumpFromReadApi } from "./lib/compare.mjs";
import { PLUGIN_URL, assertPluginBuilt, pluginLog } from "./lib/sync-server.mjs";
import { collectOutput, waitForServeBanner } from "./lib/serve.mjs";

const REPO = path.resolve(E2E_DIR, "..", "..");
const CLI_BIN = process.env.OPENCODE_SYNC_BIN || path.join(REPO, "target", "debug", "opencode-sync");
const TITLE = "Served session";

let model;
const servers = new Set();

before(async () => {
  assertPluginBuilt();
  if (!process.env.OPENCODE_SYNC_BIN) {
    const b = spawnSync("cargo", ["build", "-q", "-p", "opencode-sync-cli"], { cwd: REPO, encoding: "utf8", timeout: 600_000 });
    assert.equal(b.status, 0, `cargo build failed:\n${b.stderr}`);
  }
  model = await startModelServer({ title: TITLE });
});

after(async () => {
  for (const s of servers) await s.stop();
  await model?.close();
});

process.on("exit", () => {
  for (const s of servers) s.child.kill("SIGKILL");
});

/** Runs the built CLI in the environment; the server's key must never show. */
function cli(e, args, { secrets = [] } = {}) {
  const r = spawnSync(CLI_BIN, args, { env: e.env, cwd: e.root, encoding: "utf8", timeout: 60_000 });
  const out = `${r.stdout}${r.stderr}`;
  for (const s of secrets) assert.ok(!out.includes(s), `opencode-sync ${args.join(" ")} printed the API key`);
  assert.ok(!out.includes("panicked"), `opencode-sync ${args.join(" ")} panicked:\n${out}`);
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, out };
}

/**
 * Starts `opencode-sync serve --port PORT --data DIR` in the environment and waits (15 s
 * at most) for its banner. Resolves with `{url, port, banner, child, stop()}`; `stop()`
 * sends SIGTERM and resolves with `{code, signal, stdout, stderr}`.
 */
async function startServe(e, { port = 0, data }) {
  const child = spawn(CLI_BIN, ["serve", "--port", String(port), "--data", data], {
    env: e.env,
    cwd: e.root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out = collectOutput(child);
  const { exited } = out;
  const server = { child };
  server.stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(killer);
    }
    servers.delete(server);
    const { code, signal } = await exited;
    return { code, signal, stdout: out.stdout, stderr: out.stderr };
  };
  servers.add(server);
  let started;
  try {
    started = await waitForServeBanner(child, out, { timeoutMs: 15_000, what: "serve" });
  } catch (err) {
    await server.stop();
    throw err;
  }
  return Object.assign(server, started, { banner: out.stdout });
}

const mode = (file) => fs.statSync(file).mode & 0o777;

test("serve + login --local + real OpenCode: the session is in /api/sessions as in opencode.db, and survives a restart", async (t) => {
  model.setScript([
    [
      {
        text: "Running it.",
        toolCalls: [{ name: "bash", args: { command: "echo hello-served", description: "Say hello" } }],
        usage: { prompt: 1200, completion: 40, cached: 300 },
      },
      { text: "All done.", usage: { prompt: 1400, completion: 20, cached: 1000 } },
    ],
  ]);
  await withEnv(t, { name: "serve" }, async (e) => {
    const data = path.join(e.root, "serve-data");
    const server = await startServe(e, { data });
    const keyFile = path.join(data, "server-key");
    const key = fs.readFileSync(keyFile, "utf8").trim();
    assert.match(key, /^osk_[A-Za-z0-9]{32,}$/);
    assert.equal(mode(keyFile), 0o600, "the key file is private");
    assert.equal(mode(data), 0o700, "the data directory is private");
    assert.ok(!server.banner.includes(key), "the banner shows the key masked only");
    assert.ok(server.banner.includes(`${key.slice(0, 8)}…${key.slice(-4)}`), server.banner);
    for (const line of server.banner.trim().split("\n")) t.diagnostic(line);

    // login --local: the plugin's credentials name this server and its key.
    const login = cli(e, ["login", "--local", "--port", String(server.port), "--data", data], { secrets: [key] });
    assert.equal(login.code, 0, login.out);
    assert.match(login.stdout, /The local server is up/);
    const credentials = path.join(e.configHome, "opencode-sync", "config.json");
    const cfg = JSON.parse(fs.readFileSync(credentials, "utf8"));
    assert.equal(cfg.convexUrl, server.url);
    assert.equal(cfg.apiKey, key);
    assert.equal(mode(credentials), 0o600);

    writeConfig(e, { baseURL: model.baseURL, plugins: [PLUGIN_URL] });
    const r = await runOpencode(e, ["say", "hello"]);
    t.diagnostic(`opencode run ${r.wallMs} ms`);
    assert.equal(r.timedOut, false, `opencode timed out\n${describeRun(r)}`);
    assert.equal(r.code, 0, `opencode failed\n${describeRun(r)}`);
    assert.deepEqual(model.problems, [], "model server saw unexpected requests");
    assert.equal(model.remaining(), 0, "every scripted step was requested");
    assert.match(r.stdout, /All done\./);

    const store = readStore(e);
    assert.equal(store.sessions.length, 1, "opencode.db has one session");
    const sessionID = store.sessions[0].id;
    assert.equal(store.sessions[0].title, TITLE, "OpenCode generated the scripted title");
    assert.equal(store.messages.length, 3, "user, assistant (tool-calls), assistant (stop)");

    // The read API, without a key (this machine), holds the session exactly as opencode.db.
    const first = await dumpFromReadApi(server.url);
    fs.writeFileSync(path.join(e.root, "read-api-dump.json"), JSON.stringify(first, null, 2));
    assert.equal(first.users[0].sessions.length, 1, "one session on the server");
    const { stored } = assertStoredAsInDb(store, first, sessionID, { readApi: true, context: () => `the plugin logged:\n${pluginLog(e)}` });
    const result = stored.messages.flatMap((m) => m.parts).find((p) => p.type === "tool-result").content;
    assert.equal(result.output, "hello-served\n");
    assert.equal(result.exit, 0);
    // With the key it reads the same; search and stats see it too.
    assert.deepEqual(await dumpFromReadApi(server.url, { apiKey: key }), first);
    const search = await (await fetch(`${server.url}/api/search?q=hello-served`)).json();
    assert.deepEqual(search.results.map((x) => x.externalId), [sessionID]);
    const stats = await (await fetch(`${server.url}/api/stats`)).json();
    assert.equal(stats.sessionCount, 1);
    assert.equal(stats.messageCount, 3);

    // Stop (SIGTERM), start again on the same port: everything is still there, unchanged.
    const stopped = await server.stop();
    assert.equal(stopped.code, 0, `serve did not stop cleanly: ${stopped.signal}\n${stopped.stderr}`);
    assert.ok(!`${stopped.stdout}${stopped.stderr}`.includes(key), "serve never printed the key");
    const again = await startServe(e, { port: server.port, data });
    assert.equal(again.url, server.url);
    assert.equal(fs.readFileSync(keyFile, "utf8").trim(), key, "the key is kept");
    const second = await dumpFromReadApi(again.url);
    assert.deepEqual(second, first, "the read API answers the same after the restart");
    assertStoredAsInDb(store, second, sessionID, { readApi: true });
    const status = cli(e, ["status"], { secrets: [key] });
    assert.equal(status.code, 0, `status after the restart:\n${status.out}`);
    const last = await again.stop();
    assert.equal(last.code, 0, last.stderr);
  });
});
