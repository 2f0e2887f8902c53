// `scripts/start`, the README's first command, end to end as a newcomer meets it: in a
// sandboxed HOME and XDG directories, the real script installs/builds what is missing
// (scripts/setup --no-e2e and scripts/build, both no-ops once done), saves the local
// server's credentials (`opencode-sync login --local`), lists this checkout's plugin
// build's directory (file://<repo>/npm, the form OpenCode 1.x and 2 both load) in
// OpenCode's GLOBAL config (`opencode-sync setup --plugin`) and runs `opencode-sync serve`. Then the real OpenCode runs one turn with the
// scripted model in a project whose own config names the model but NOT the plugin: only
// the global config written by the script loads it. The session must appear in the
// server's `/api/sessions` with its title and message count, and the server must stop
// cleanly on SIGTERM. Second: credentials of another deployment already saved make the
// script refuse (exit 1, a clear message, nothing changed) until `--switch`, which keeps
// them aside; an older setup's `file://<repo>/npm/index.js` entry (which OpenCode 2
// drops) is pointed at the directory. Third: bad arguments exit 2.
//
// Needs: Rust and Node (the script builds with them; `before` runs scripts/build once so
// the script's own build finds nothing to do), `bash scripts/setup-e2e` (the pinned
// OpenCode). Run: cd tests/e2e && node --test start.test.mjs. E2E_KEEP=1 keeps the
// environments under tests/e2e/.work/ (a failed one is always kept).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { startModelServer } from "./lib/model-server.mjs";
import { E2E_DIR, writeConfig, runOpencode, describeRun, readStore, withEnv } from "./lib/opencode.mjs";
import { pluginLog } from "./lib/sync-server.mjs";
import { collectOutput, waitForServeBanner } from "./lib/serve.mjs";

const REPO = path.resolve(E2E_DIR, "..", "..");
const START = path.join(REPO, "scripts", "start");
/** What scripts/start lists: the build's directory, which OpenCode 1.x and 2 both load. */
const PLUGIN_URL = pathToFileURL(path.join(REPO, "npm")).href;
/** What it listed before OpenCode 2: the module, which OpenCode 2 drops. */
const OLD_PLUGIN_URL = pathToFileURL(path.join(REPO, "npm", "index.js")).href;
const TITLE = "Started session";
/** Bound on scripts/start reaching its banner: setup and build only check, here. */
const START_TIMEOUT_MS = 180_000;

let model;
const running = new Set();

/**
 * The Rust toolchain stays the developer's while HOME is the sandbox's (rustup and
 * cargo find theirs through HOME otherwise).
 */
function toolchainEnv() {
  const home = os.homedir();
  const env = {
    CARGO_HOME: process.env.CARGO_HOME || path.join(home, ".cargo"),
    RUSTUP_HOME: process.env.RUSTUP_HOME || path.join(home, ".rustup"),
  };
  for (const name of ["RUSTUP_TOOLCHAIN", "CARGO_TARGET_DIR"]) {
    if (process.env[name]) env[name] = process.env[name];
  }
  return env;
}

before(async () => {
  const b = spawnSync(path.join(REPO, "scripts", "build"), [], { cwd: REPO, encoding: "utf8", timeout: 1_200_000 });
  assert.equal(b.status, 0, `scripts/build failed (${b.status ?? b.signal}):\n${b.stdout}\n${b.stderr}`);
  model = await startModelServer({ title: TITLE });
});

after(async () => {
  for (const s of running) await s.stop();
  await model?.close();
});

process.on("exit", () => {
  for (const s of running) s.kill("SIGKILL");
});

/** A port free on 127.0.0.1 right now. */
async function freePort() {
  const server = net.createServer();
  await new Promise((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function scriptEnv(e) {
  return { ...e.env, ...toolchainEnv() };
}

/** `scripts/start ARGS` to completion (for the cases where it must not start a server). */
function runStart(e, args) {
  const r = spawnSync(START, args, { cwd: e.root, env: scriptEnv(e), encoding: "utf8", timeout: 60_000 });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, out: `${r.stdout}${r.stderr}` };
}

/**
 * Starts `scripts/start ARGS` in its own process group and waits (START_TIMEOUT_MS at
 * most) for the server's banner. Resolves with `{url, port, stdout(), stderr(), stop()}`;
 * `stop()` sends SIGTERM to the server (the script exec'd it) and resolves with
 * `{code, signal, stdout, stderr}`.
 */
async function startScript(e, args) {
  const child = spawn(START, args, { cwd: e.root, env: scriptEnv(e), stdio: ["ignore", "pipe", "pipe"], detached: true });
  const out = collectOutput(child);
  const { exited } = out;
  const group = (signal) => {
    try {
      process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  };
  const handle = { kill: group };
  handle.stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const killer = setTimeout(() => group("SIGKILL"), 15_000);
      await exited;
      clearTimeout(killer);
    }
    group("SIGKILL"); // anything the script left (nothing expected)
    running.delete(handle);
    const { code, signal } = await exited;
    return { code, signal, stdout: out.stdout, stderr: out.stderr };
  };
  running.add(handle);
  let started;
  try {
    started = await waitForServeBanner(child, out, { timeoutMs: START_TIMEOUT_MS, what: "scripts/start" });
  } catch (err) {
    await handle.stop();
    throw err;
  }
  return Object.assign(handle, started, { stdout: () => out.stdout, stderr: () => out.stderr });
}

const mode = (file) => fs.statSync(file).mode & 0o777;
const credentialsFile = (e) => path.join(e.configHome, "opencode-sync", "config.json");

/** The session with this id in /api/sessions (read without a key, from this machine). */
async function listedSession(url, sessionID) {
  const res = await fetch(`${url}/api/sessions?limit=100`, { signal: AbortSignal.timeout(10_000) });
  assert.equal(res.status, 200);
  const { sessions } = await res.json();
  return { sessions, session: sessions.find((s) => s.externalId === sessionID) };
}

test("scripts/start on a fresh HOME: builds, logs in locally, lists the plugin globally, serves; the next OpenCode session appears", async (t) => {
  model.setScript([[{ text: "Hello from the scripted model.", usage: { prompt: 900, completion: 12 } }]]);
  await withEnv(t, { name: "start" }, async (e) => {
    const port = await freePort();
    const started = Date.now();
    const server = await startScript(e, ["--port", String(port)]);
    t.diagnostic(`scripts/start reached the banner in ${Date.now() - started} ms`);
    for (const line of server.stdout().trim().split("\n")) t.diagnostic(line);
    assert.equal(server.url, `http://127.0.0.1:${port}`);
    for (const step of ["1/4", "2/4", "3/4", "4/4"]) assert.ok(server.stdout().includes(`[start] ${step}`), `step ${step} is announced:\n${server.stdout()}`);
    assert.ok(server.stdout().includes(`Next: use OpenCode as usual, in any project: each session shows up at ${server.url}/`), server.stdout());
    const health = await fetch(`${server.url}/health`, { signal: AbortSignal.timeout(5_000) });
    assert.equal(health.status, 200, "/health answers");

    // The server's key, generated in the sandbox's data directory, is what the plugin uses.
    const keyFile = path.join(e.dataHome, "opencode-sync", "server-key");
    const key = fs.readFileSync(keyFile, "utf8").trim();
    assert.match(key, /^osk_[A-Za-z0-9]{32,}$/);
    const credentials = JSON.parse(fs.readFileSync(credentialsFile(e), "utf8"));
    assert.equal(credentials.convexUrl, server.url);
    assert.equal(credentials.apiKey, key);
    assert.equal(mode(credentialsFile(e)), 0o600);

    // OpenCode's global config (created by setup) lists this checkout's build.
    const globalConfig = path.join(e.opencodeConfigDir, "opencode.json");
    assert.deepEqual(JSON.parse(fs.readFileSync(globalConfig, "utf8")).plugin, [PLUGIN_URL]);
    assert.ok(server.stdout().includes(`loading "${PLUGIN_URL}"`), server.stdout());

    // The project's config names the scripted model only: no plugin list at all.
    const { file: projectConfig } = writeConfig(e, { baseURL: model.baseURL, location: "project" });
    const project = JSON.parse(fs.readFileSync(projectConfig, "utf8"));
    delete project.plugin;
    fs.writeFileSync(projectConfig, JSON.stringify(project, null, 2) + "\n");

    const r = await runOpencode(e, ["say", "hello"]);
    t.diagnostic(`opencode run ${r.wallMs} ms`);
    assert.equal(r.timedOut, false, `opencode timed out\n${describeRun(r)}`);
    assert.equal(r.code, 0, `opencode failed\n${describeRun(r)}`);
    assert.deepEqual(model.problems, [], "model server saw unexpected requests");
    assert.equal(model.remaining(), 0, "every scripted step was requested");
    assert.match(r.stdout, /Hello from the scripted model\./);

    const store = readStore(e);
    assert.equal(store.sessions.length, 1, "opencode.db has one session");
    const sessionID = store.sessions[0].id;
    assert.equal(store.sessions[0].title, TITLE);
    assert.equal(store.messages.length, 2, "a user prompt and the answer");

    // On the server: the plugin sent it while OpenCode ran (allow a few seconds).
    let found;
    const deadline = Date.now() + 15_000;
    do {
      found = await listedSession(server.url, sessionID);
      if (found.session?.messageCount === store.messages.length) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    } while (Date.now() < deadline);
    assert.ok(found.session, `the session is in /api/sessions: ${JSON.stringify(found.sessions)}\nthe plugin logged:\n${pluginLog(e)}`);
    assert.equal(found.sessions.length, 1, "only that session");
    assert.equal(found.session.title, TITLE);
    assert.equal(found.session.messageCount, store.messages.length);

    const stopped = await server.stop();
    assert.equal(stopped.code, 0, `the server did not stop cleanly (${stopped.signal}):\n${stopped.stderr}`);
    assert.match(stopped.stdout, /opencode-sync serve: stopped\./);
    assert.ok(!`${stopped.stdout}${stopped.stderr}`.includes(key), "the API key is never printed in full");
  });
});

test("scripts/start refuses to replace another deployment's credentials, and --switch keeps them aside", async (t) => {
  await withEnv(t, { name: "start-switch" }, async (e) => {
    const dir = path.join(e.configHome, "opencode-sync");
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const key = `osk_${crypto.randomBytes(24).toString("base64url").replace(/[-_]/g, "x")}`;
    const text = JSON.stringify({ convexUrl: "https://example.convex.site", apiKey: key, syncReasoning: true }, null, 2) + "\n";
    fs.writeFileSync(credentialsFile(e), text, { mode: 0o600 });
    const port = await freePort();

    const refused = runStart(e, ["--port", String(port)]);
    assert.equal(refused.code, 1, `refused with exit 1:\n${refused.out}`);
    assert.ok(!refused.out.includes(key), "the API key is not printed in full");
    assert.match(refused.stderr, /another deployment:\n {2}https:\/\/example\.convex\.site \(API key osk_\S{4}…\S{4}\)/);
    assert.ok(refused.stderr.includes(`${key.slice(0, 8)}…${key.slice(-4)}`), refused.stderr);
    assert.ok(refused.stderr.includes("Nothing was changed"), refused.stderr);
    assert.ok(refused.stderr.includes(`scripts/start --port ${port} --switch`), refused.stderr);
    assert.ok(!refused.stdout.includes("[start] 1/4"), `nothing was built or started:\n${refused.stdout}`);
    assert.equal(fs.readFileSync(credentialsFile(e), "utf8"), text, "the credentials are unchanged");
    assert.equal(mode(credentialsFile(e)), 0o600);
    assert.ok(!fs.existsSync(path.join(e.dataHome, "opencode-sync")), "no server data was created");
    assert.ok(!fs.existsSync(path.join(e.opencodeConfigDir, "opencode.json")), "OpenCode's config was not touched");

    // An older scripts/start listed the module; this one points that entry at the directory.
    const globalConfig = path.join(e.opencodeConfigDir, "opencode.json");
    fs.mkdirSync(e.opencodeConfigDir, { recursive: true });
    fs.writeFileSync(globalConfig, `{\n  // mine\n  "plugin": ["${OLD_PLUGIN_URL}"],\n}\n`);

    // --switch: the old credentials go aside (same bytes, still private), the local ones in.
    const server = await startScript(e, ["--port", String(port), "--switch"]);
    assert.equal(fs.readFileSync(globalConfig, "utf8"), `{\n  // mine\n  "plugin": ["${PLUGIN_URL}"],\n}\n`);
    assert.ok(server.stdout().includes(`Pointed "${OLD_PLUGIN_URL}"`), server.stdout());
    const backup = `${credentialsFile(e)}.before-local`;
    assert.equal(fs.readFileSync(backup, "utf8"), text);
    assert.equal(mode(backup), 0o600);
    assert.ok(server.stdout().includes(`switching from https://example.convex.site (API key ${key.slice(0, 8)}…${key.slice(-4)})`), server.stdout());
    const now = JSON.parse(fs.readFileSync(credentialsFile(e), "utf8"));
    assert.equal(now.convexUrl, server.url);
    assert.equal(now.apiKey, fs.readFileSync(path.join(e.dataHome, "opencode-sync", "server-key"), "utf8").trim());
    assert.equal(now.syncReasoning, true, "options are kept");
    const stopped = await server.stop();
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.ok(!`${stopped.stdout}${stopped.stderr}`.includes(key), "the old API key is never printed in full");

    // Local credentials now: a second start goes through without --switch.
    const again = await startScript(e, ["--port", String(port)]);
    assert.ok(!again.stdout().includes("switching"), again.stdout());
    assert.ok(again.stdout().includes("nothing to change"), `setup sees the plugin listed:\n${again.stdout()}`);
    assert.equal((await again.stop()).code, 0);
  });
});

test("scripts/start: bad arguments exit 2 with the reason, --help exits 0", async (t) => {
  await withEnv(t, { name: "start-args", git: false }, async (e) => {
    for (const [args, why] of [
      [["--port", "http"], "--port needs a port number from 1 to 65535, not 'http'"],
      [["--port", "0"], "not '0'"],
      [["--port"], "--port needs a number"],
      [["--data", path.join(e.project, "missing", "..", "..", "project", "x"), "--frobnicate"], "unknown argument '--frobnicate'"],
    ]) {
      const r = runStart(e, args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.out}`);
      assert.ok(r.stderr.includes(why), `${args.join(" ")}: ${r.stderr}`);
      assert.equal(r.stdout, "");
    }
    const help = runStart(e, ["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^usage: scripts\/start \[--port N\] \[--data DIR\] \[--switch\]/);
    assert.ok(!fs.existsSync(credentialsFile(e)), "nothing was written");
  });
});
