// What the plugin replays (bench/plugin-replay.mjs for OpenCode 1.x hooks,
// bench/plugin-replay-v2.mjs for OpenCode 2's event stream) share: a scratch home logged in
// to the contract server, the in-process stand-in for `fetch` behind the "own work"
// figure, the wait for delivery to stop, and how figures are read and named.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const KEY = "osk_BenchKeyAbCdEfGhIjKlMnOpQrSt0001";

/** The value at quantile `q` of an ascending array. */
export function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** "node v20.x" or "bun 1.x": the runtime this process is. */
export function runtimeName() {
  return typeof Bun === "undefined" ? `node ${process.version}` : `bun ${Bun.version}`;
}

/** CPU (user + system, µs) since `since` (a `process.cpuUsage()`), with its parts. */
export function cpuSince(since) {
  const cpu = process.cpuUsage(since);
  return { us: cpu.user + cpu.system, user: cpu.user, system: cpu.system };
}

/**
 * A scratch home (under TMPDIR) whose opencode-sync config points at `url` with `KEY`,
 * made this process's HOME and XDG directories, as a user's would be. Returns its path.
 */
export function scratchHome(url) {
  const home = mkdtempSync(join(tmpdir(), "ocs-bench-"));
  mkdirSync(join(home, ".config/opencode-sync"), { recursive: true });
  writeFileSync(join(home, ".config/opencode-sync/config.json"), JSON.stringify({ convexUrl: url, apiKey: KEY }), { mode: 0o600 });
  process.env.HOME = home;
  process.env.XDG_CONFIG_HOME = join(home, ".config");
  process.env.XDG_STATE_HOME = join(home, ".local/state");
  process.env.XDG_DATA_HOME = join(home, ".local/share");
  delete process.env.OPENCODE_SYNC_URL;
  delete process.env.OPENCODE_SYNC_API_KEY;
  return home;
}

/**
 * A stand-in for the global `fetch` that answers every request at once in this process
 * (no network): what is left of a run is the plugin's own work. With `record`, each
 * request's URL and body are kept in `requests` (a push each), to check what was sent.
 */
export function inProcessFetch({ record = false } = {}) {
  const answer = JSON.stringify({ ok: true, messageId: "m" });
  const requests = [];
  const fetch = async (url, init) => {
    if (record) requests.push([String(url), init?.body]);
    return new Response(answer, { status: 200, headers: { "content-type": "application/json" } });
  };
  return { fetch, requests };
}

/**
 * Waits until `count()` (requests seen so far) stops growing: the same five times in a
 * row, 100 ms apart (at most a minute).
 */
export async function untilQuiet(count) {
  let last = -1;
  let stable = 0;
  for (let i = 0; i < 600 && stable < 5; i++) {
    const now = await count();
    stable = now === last ? stable + 1 : 0;
    last = now;
    await new Promise((r) => setTimeout(r, 100));
  }
}
