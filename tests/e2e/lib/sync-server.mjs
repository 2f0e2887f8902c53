// The contract sync server (crates/contract-server, `opencode-sync-server --control`) as a child
// process, and the plugin-side helpers the plugin suites share: credentials in an
// environment, the plugin's lines in OpenCode's log.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { E2E_DIR } from "./opencode.mjs";

export const REPO = path.resolve(E2E_DIR, "..", "..");
/** The plugin entry OpenCode loads (OPENCODE_SYNC_PLUGIN_ENTRY tests another build, e.g. an unpacked tarball). */
export const PLUGIN_ENTRY = path.resolve(process.env.OPENCODE_SYNC_PLUGIN_ENTRY || path.join(REPO, "npm", "index.js"));
export const PLUGIN_URL = pathToFileURL(PLUGIN_ENTRY).href;
export const SERVER_BIN = process.env.OPENCODE_SYNC_SERVER_BIN || path.join(REPO, "target", "debug", "opencode-sync-server");

/** Throws a readable error when `scripts/build` has not produced the plugin. */
export function assertPluginBuilt() {
  assert.ok(
    fs.existsSync(PLUGIN_ENTRY) && fs.existsSync(path.join(path.dirname(PLUGIN_ENTRY), "wasm")),
    `${PLUGIN_ENTRY} or the wasm/ next to it is missing: run scripts/build first`,
  );
}

/**
 * Starts `opencode-sync-server --control` on loopback with one API key. Resolves with
 * `{url, controlUrl, child, control(method, route, body?), dump(), setFaults(rules),
 * clearFaults(), clearRequestLog(), stop(), stderr()}`. Its stdin stays a pipe, so the
 * server also stops if this process dies without cleaning up.
 */
export async function startSyncServer({ apiKey, bin = SERVER_BIN, args = [] }) {
  if (!fs.existsSync(bin)) {
    throw new Error(`${bin} is missing: run \`cargo build -p opencode-sync-contract-server\` (or set OPENCODE_SYNC_SERVER_BIN)`);
  }
  const child = spawn(bin, ["--host", "127.0.0.1", "--port", "0", "--api-key", apiKey, "--control", ...args], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  let info;
  try {
    info = await new Promise((resolve, reject) => {
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
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  assert.match(info.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.match(info.controlUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const killer = setTimeout(() => child.kill("SIGKILL"), 3000);
    await exited;
    clearTimeout(killer);
  };
  const control = async (method, route, body) => {
    const res = await fetch(`${info.controlUrl}${route}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    assert.ok(res.ok, `${method} ${route}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  return {
    ...info,
    child,
    stop,
    stderr: () => stderr,
    control,
    dump: () => control("GET", "/control/dump"),
    setFaults: (rules) => control("POST", "/control/faults", rules),
    clearFaults: () => control("DELETE", "/control/faults"),
    clearRequestLog: () => control("DELETE", "/control/requests"),
  };
}

/** The plugin's credentials file in an isolated env ($XDG_CONFIG_HOME/opencode-sync/config.json, 0600). */
export function writeSyncCredentials(e, { url, apiKey, extra = {} }) {
  const dir = path.join(e.configHome, "opencode-sync");
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, "config.json");
  fs.writeFileSync(file, JSON.stringify({ convexUrl: url, apiKey, ...extra }, null, 2) + "\n", { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  return file;
}

/**
 * What the plugin logs (through client.app.log), for failure messages. OpenCode 1.18.33
 * writes those lines without the service name (`level=WARN run=<id> message="..."`),
 * so they are picked by the plugin's own wording.
 */
const PLUGIN_LINE = /opencode-sync|OpenSync|outbox|syncing sessions|record\(s\)|could not deliver|wasm module|sessions are not synced|API key/i;

/** The plugin's lines in OpenCode's log files, for failure messages. */
export function pluginLog(e) {
  const dir = path.join(e.dataDir, "log");
  if (!fs.existsSync(dir)) return "(no OpenCode log)";
  const lines = fs
    .readdirSync(dir)
    .flatMap((f) => fs.readFileSync(path.join(dir, f), "utf8").split("\n"))
    .filter((l) => PLUGIN_LINE.test(l));
  return lines.length ? lines.join("\n") : "(nothing)";
}
