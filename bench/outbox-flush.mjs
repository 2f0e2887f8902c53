// Benchmark: `opencode-sync sync --flush` (release build) draining an outbox of 10,000
// records written with the core's naming and format (target/release/examples/outbox-fill)
// into the release contract server on loopback. Prints one JSON object of figures (and a
// line on stderr).
//
//   node bench/outbox-flush.mjs [--sessions 200] [--per-session 50]
//
// Figures:
//   records        records queued (sessions x per-session: one session record, the rest messages)
//   wallMs         wall time of the draining `sync --flush` process
//   recordsPerSec  records / wall time
//   maxRssKiB      peak resident memory of the draining process (GNU time's %M, else
//                  the last VmHWM read from /proc while it ran)
//   stored         sessions and messages the server holds afterwards (must equal the queue)
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import { startServer } from "./server.mjs";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) || dflt : dflt;
};
const sessions = arg("--sessions", 200);
const perSession = arg("--per-session", 50);
const KEY = "osk_BenchKeyOutboxFlush0000000000001";
const bin = (p) => process.env[p[0]] || join(repo, p[1]);
const serverBin = bin(["OPENCODE_SYNC_SERVER_BIN", "target/release/opencode-sync-server"]);
const cliBin = bin(["OPENCODE_SYNC_CLI_RELEASE_BIN", "target/release/opencode-sync"]);
const fillBin = join(repo, "target/release/examples/outbox-fill");
for (const b of [serverBin, cliBin, fillBin]) {
  if (!existsSync(b)) {
    console.error(`${b} is missing: run scripts/bench (it builds the release binaries)`);
    process.exit(1);
  }
}

const home = mkdtempSync(join(tmpdir(), "ocs-outbox-bench-"));
const env = {
  PATH: process.env.PATH,
  HOME: home,
  XDG_CONFIG_HOME: join(home, "config"),
  XDG_STATE_HOME: join(home, "state"),
  XDG_DATA_HOME: join(home, "data"),
  LANG: "C.UTF-8",
};
const outboxDir = join(env.XDG_STATE_HOME, "opencode-sync", "outbox");
let server;


/** Runs the drain; resolves with {code, stdout, wallMs, maxRssKiB}. */
function drain() {
  const gnuTime = spawnSync("/usr/bin/time", ["-f", "%M", "true"], { encoding: "utf8" });
  const useTime = gnuTime.status === 0 && /^\d+\s*$/.test(gnuTime.stderr.trim().split("\n").at(-1));
  const argv = ["sync", "--flush", "--json", "--timeout", "900"];
  const t0 = performance.now();
  const child = useTime
    ? spawn("/usr/bin/time", ["-f", "maxrss=%M", cliBin, ...argv], { env, stdio: ["ignore", "pipe", "pipe"] })
    : spawn(cliBin, argv, { env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
  let hwm = 0;
  const poll = useTime
    ? null
    : setInterval(() => {
        try {
          const m = readFileSync(`/proc/${child.pid}/status`, "utf8").match(/VmHWM:\s+(\d+) kB/);
          if (m) hwm = Math.max(hwm, Number(m[1]));
        } catch {
          // exited
        }
      }, 10);
  const killer = setTimeout(() => child.kill("SIGKILL"), 1_000_000);
  return new Promise((resolve) => {
    child.on("close", (code) => {
      const wallMs = performance.now() - t0;
      clearTimeout(killer);
      if (poll) clearInterval(poll);
      const m = stderr.match(/maxrss=(\d+)/);
      resolve({ code, stdout, stderr, wallMs, maxRssKiB: m ? Number(m[1]) : hwm, rssSource: m ? "GNU time %M" : "/proc VmHWM polled" });
    });
  });
}

try {
  const fill = spawnSync(fillBin, [outboxDir, String(sessions), String(perSession)], { encoding: "utf8" });
  if (fill.status !== 0) throw new Error(`outbox-fill failed: ${fill.stderr}`);
  const filled = JSON.parse(fill.stdout);
  const queued = readdirSync(outboxDir).length;

  server = await startServer(serverBin, KEY);
  mkdirSync(join(env.XDG_CONFIG_HOME, "opencode-sync"), { recursive: true, mode: 0o700 });
  const cfg = join(env.XDG_CONFIG_HOME, "opencode-sync", "config.json");
  writeFileSync(cfg, JSON.stringify({ convexUrl: server.url, apiKey: KEY }), { mode: 0o600 });
  chmodSync(cfg, 0o600);

  const r = await drain();
  if (r.code !== 0) throw new Error(`sync --flush exited ${r.code}: ${r.stdout} ${r.stderr}`);
  const report = JSON.parse(r.stdout).report;
  const dump = await (await fetch(`${server.controlUrl}/control/dump`)).json();
  const stored = dump.users.flatMap((u) => u.sessions);
  const figures = {
    records: queued,
    recordBytes: filled.bytes,
    sessions,
    perSession,
    delivered: report.delivered,
    wallMs: Math.round(r.wallMs),
    recordsPerSec: Math.round(queued / (r.wallMs / 1000)),
    maxRssKiB: r.maxRssKiB,
    rssSource: r.rssSource,
    requests: dump.requests.length,
    stored: { sessions: stored.length, messages: stored.reduce((n, s) => n + s.messages.length, 0) },
    leftInOutbox: readdirSync(outboxDir).filter((f) => f !== "quarantine").length,
  };
  if (figures.stored.sessions !== sessions || figures.stored.messages !== sessions * (perSession - 1) || figures.leftInOutbox !== 0) {
    throw new Error(`the drain was incomplete: ${JSON.stringify(figures)}`);
  }
  console.log(JSON.stringify(figures));
  console.error(
    `sync --flush drained ${queued} records (${(filled.bytes / 1e6).toFixed(1)} MB) in ${(r.wallMs / 1000).toFixed(2)} s: ` +
      `${figures.recordsPerSec} records/s, peak RSS ${(r.maxRssKiB / 1024).toFixed(1)} MiB`,
  );
} finally {
  server?.child.kill("SIGTERM");
  rmSync(home, { recursive: true, force: true });
}
