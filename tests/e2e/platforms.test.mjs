// Every platform package `scripts/pack --all` wrote to dist/, run where this Linux x64
// machine can run it, and checked by its headers where it cannot:
//   - linux-x64 and linux-x64-musl natively; linux-arm64 under qemu-aarch64 with the arm64
//     glibc (-L /usr/aarch64-linux-gnu), linux-arm64-musl (static) under qemu-aarch64;
//   - win32-x64 under wine64, in a wine prefix of its own (tests/e2e/.work/wineprefix),
//     with no XDG variables: the CLI must find its config, its outbox and OpenCode's
//     opencode.db under the Windows home (C:\users\<user>\.config, .local\state,
//     .local\share), where OpenCode (xdg-basedir on os.homedir()) and the plugin
//     (npm/index.js: os.homedir() on Windows) look too;
//   - macOS (x64, arm64) and win32-arm64: no runtime here, so their headers are checked:
//     Mach-O magic, CPU, LC_BUILD_VERSION's minimum macOS, an ad-hoc code signature, only
//     /usr/lib and /System/Library dylibs; PE32+ machine, console subsystem, only the
//     DLLs Windows ships.
// Each runnable binary is taken from its tarball and runs the smoke steps against
// a contract server on 127.0.0.1: --version, --help, config --json, login --no-verify
// --api-key-stdin, status (healthy, then with the key revoked), setup --dry-run, sync of a
// small opencode.db (compared with what the server stored), `sync --flush` of 200
// queued records by two flushes at once (each record delivered exactly once), and
// `sync --flush` telling dead outbox writers from live ones by pid (crate::process_env::
// pid_alive: kill(pid, 0) on Unix, OpenProcess on Windows): a dead writer's draft and
// claim go at once, a live writer's draft is held until that process ends.
//
// Needs: scripts/pack --all (dist/packages.json lists every platform), scripts/setup-cross
// (qemu-user, libc6-arm64-cross, wine64), `cargo build -p opencode-sync-server`, Bun from
// scripts/setup-e2e. Run: cd tests/e2e && node --test platforms.test.mjs.
// PLATFORMS=linux-arm64,win32-x64 runs only those packages (by suffix).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { WORK_DIR, readStore } from "./lib/opencode.mjs";
import { assertStoredAsInDb } from "./lib/compare.mjs";
import { REPO, startSyncServer } from "./lib/sync-server.mjs";
import { writeOpencodeDb } from "./lib/opencode-db.mjs";
import { machO, pe } from "./lib/binary-headers.mjs";
import { WINE, WINE_PREFIX, ensureWinePrefix } from "./lib/wine.mjs";
import { cargoVersion, targets } from "../../scripts/npm-packages.mjs";

const VERSION = cargoVersion();
const ARM64_SYSROOT = "/usr/aarch64-linux-gnu";
const WORK = path.join(WORK_DIR, "platforms");
const ONLY = process.env.PLATFORMS?.split(",").filter(Boolean);
const wanted = (pkg) => !ONLY || ONLY.some((suffix) => pkg.endsWith(`-${suffix}`));

/** How each runnable package runs here. `prefix` goes before the binary on the command line. */
const RUNNERS = {
  "linux-x64": { how: "natively", prefix: [] },
  "linux-x64-musl": { how: "natively (static musl)", prefix: [] },
  "linux-arm64": { how: `under qemu-aarch64 -L ${ARM64_SYSROOT}`, prefix: ["qemu-aarch64", "-L", ARM64_SYSROOT] },
  "linux-arm64-musl": { how: "under qemu-aarch64 (static musl)", prefix: ["qemu-aarch64"] },
  "win32-x64": { how: "under wine64", prefix: [WINE], windows: true },
};
/** Platforms with no runtime on this machine, and why: checked by their headers only. */
const NOT_RUNNABLE = {
  "darwin-x64": "no macOS runtime exists for Linux",
  "darwin-arm64": "no macOS runtime exists for Linux",
  "win32-arm64": "wine runs x86/x64 Windows programs only; no arm64 Windows runtime here",
};

let packed;
const children = new Set();
const suffixOf = (pkg) => pkg.replace(/^opencode-sync-plugin-/, "");

before(() => {
  const file = path.join(REPO, "dist", "packages.json");
  assert.ok(fs.existsSync(file), `${file} is missing: run scripts/pack --all`);
  packed = JSON.parse(fs.readFileSync(file, "utf8"));
  assert.ok(packed.platforms, "dist/packages.json lists only this machine's package: run scripts/pack --all");
  fs.rmSync(WORK, { recursive: true, force: true });
  fs.mkdirSync(WORK, { recursive: true });
});

after(() => {
  for (const c of children) c.kill("SIGKILL");
  if (fs.existsSync(WINE_PREFIX)) {
    try {
      execFileSync("wineserver", ["-k"], { env: { ...process.env, WINEPREFIX: WINE_PREFIX }, stdio: "ignore", timeout: 10_000 });
    } catch {
      // not running
    }
  }
});

/** Unpacks a platform tarball; returns the path of its binary. */
function unpack(pkg) {
  const entry = packed.platforms[pkg];
  assert.ok(entry, `scripts/pack --all packed no ${pkg}`);
  const dir = path.join(WORK, suffixOf(pkg), "package-root");
  fs.mkdirSync(dir, { recursive: true });
  execFileSync("tar", ["-xzf", entry.file, "-C", dir]);
  const t = targets().find((x) => x.package === pkg);
  const bin = path.join(dir, "package", "bin", t.binary);
  assert.ok(fs.existsSync(bin), `${entry.file} has bin/${t.binary}`);
  return bin;
}

/** Runs a command to completion (bounded), without blocking the event loop. */
function run(argv, { env, input, timeoutMs = 120_000, cwd = WORK } = {}) {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { env, cwd, stdio: ["pipe", "pipe", "pipe"] });
    children.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    child.stdin.on("error", () => {});
    child.stdin.end(input ?? "");
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (err) => (stderr += `\nspawn error: ${err}`));
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      // Windows programs print \r\n.
      resolve({ code, signal, stdout: stdout.replaceAll("\r\n", "\n"), stderr: stderr.replaceAll("\r\n", "\n") });
    });
  });
}
const show = (argv, r) => `${argv.join(" ")}\nexit=${r.code} signal=${r.signal}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

/** The shared wine prefix (lib/wine.mjs), its user's home emptied of our files. */
async function winePrefix() {
  const env = await ensureWinePrefix();
  const user = os.userInfo().username;
  const unixHome = path.join(WINE_PREFIX, "drive_c", "users", user);
  assert.ok(fs.existsSync(unixHome), `wine made no home for ${user} under ${WINE_PREFIX}/drive_c/users`);
  for (const d of [".config", ".local"]) fs.rmSync(path.join(unixHome, d), { recursive: true, force: true });
  return { env, unixHome, home: `C:\\users\\${user}` };
}

/**
 * The sandbox one platform's CLI runs in: `home` as the CLI sees it, `unixHome` where
 * that is on this machine, `join(...)` a path under home as the CLI writes it, and the
 * environment (no XDG variables: the defaults under home are what is tested).
 */
async function sandbox(suffix, runner) {
  if (runner.windows) {
    const w = await winePrefix();
    return { ...w, join: (...parts) => [w.home, ...parts].join("\\") };
  }
  const unixHome = path.join(WORK, suffix, "home");
  fs.mkdirSync(unixHome, { recursive: true });
  return { env: { PATH: process.env.PATH, HOME: unixHome }, unixHome, home: unixHome, join: (...parts) => path.join(unixHome, ...parts) };
}

/**
 * An outbox record's file name, as the core names it (crates/core/src/outbox/names.rs):
 * `<queuedAt:13>-<writer>-<counter:6>.<session id>.<kind>.<id>.json`, `kind` being
 * session, message or draft. A writer tag `<random:8 hex>p<pid>` names the process.
 */
const outboxName = ({ queuedAt, writer, counter, sessionId, kind, id }) =>
  `${String(queuedAt).padStart(13, "0")}-${writer}-${String(counter % 1_000_000).padStart(6, "0")}.${sessionId}.${kind}.${id}.json`;
/** A claim on record file `file` by `writer` at `at` ms, as the core names it. */
const claimName = (file, at, writer) => `${file}.claim-${String(at).padStart(13, "0")}-${writer}`;
/** A record file's text (a draft holds a message upsert). */
const recordText = (kind, queuedAt, payload) =>
  JSON.stringify({ v: 1, queuedAt, attempts: 0, notBefore: 0, upsert: { kind: kind === "draft" ? "message" : kind, payload } });

/** Writes `count` records (sessions of 1 session record + 19 messages) into the outbox. */
function queueRecords(outboxDir, sessions) {
  fs.mkdirSync(outboxDir, { recursive: true });
  let counter = 0;
  const at = 1_760_000_000_000;
  const write = (kind, sessionId, id, payload) => {
    const name = outboxName({ queuedAt: at + counter, writer: "testtest", counter, sessionId, kind, id });
    fs.writeFileSync(path.join(outboxDir, name), recordText(kind, at + counter, payload));
    counter++;
  };
  for (let s = 0; s < sessions; s++) {
    const sid = `ses_flush${String(s).padStart(4, "0")}`;
    write("session", sid, sid, { externalId: sid, title: `Queued ${s}`, source: "opencode", createdAt: at });
    for (let m = 0; m < 19; m++) {
      const mid = `msg_flush${String(s).padStart(4, "0")}_${String(m).padStart(3, "0")}`;
      write("message", sid, mid, { sessionExternalId: sid, externalId: mid, role: m % 2 ? "assistant" : "user", textContent: `message ${m} of session ${s}`, createdAt: at + m });
    }
  }
  return counter;
}

/**
 * A pid no process has: above any Linux pid_max (2^22), and never handed out by Windows
 * or wine, which number processes from the bottom up.
 */
const DEAD_PID = 0x7fff_fffc;

/**
 * A process that runs until `stop()`, as an outbox writer that is alive; `pid` is its pid
 * as the CLI sees pids. Under wine that is a Windows pid, which only a Windows process
 * knows: a small program (lib/wine-live-process.c, built with zig into the prefix) prints
 * its own. Elsewhere a `sleep` of this machine will do (qemu-user passes kill(2) through).
 */
async function liveProcess(runner, box) {
  let argv = ["sleep", "900"];
  if (runner.windows) {
    const exe = path.join(WINE_PREFIX, "drive_c", "opencode-sync-tests", "live-process.exe");
    const source = path.join(REPO, "tests", "e2e", "lib", "wine-live-process.c");
    if (!fs.existsSync(exe) || fs.statSync(exe).mtimeMs < fs.statSync(source).mtimeMs) {
      fs.mkdirSync(path.dirname(exe), { recursive: true });
      const python = path.join(REPO, ".tools", "cross", "bin", "python3");
      const r = await run([python, "-m", "ziglang", "cc", "-target", "x86_64-windows-gnu", "-O2", "-o", exe, source], { env: { PATH: process.env.PATH, HOME: process.env.HOME }, timeoutMs: 300_000 });
      assert.equal(r.code, 0, `building ${path.basename(exe)} failed (zig: scripts/setup-cross)\n${show(["zig cc"], r)}`);
    }
    argv = [...runner.prefix, exe];
  }
  const child = spawn(argv[0], argv.slice(1), { env: box.env, cwd: WORK, stdio: ["pipe", "pipe", "pipe"] });
  children.add(child);
  const exited = new Promise((resolve) => child.on("close", (code, signal) => resolve({ code, signal })));
  let pid = child.pid;
  if (runner.windows) {
    pid = await new Promise((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error(`${argv.join(" ")} printed no pid in 60 s: ${JSON.stringify(out)}`)), 60_000);
      child.stdout.setEncoding("utf8").on("data", (d) => {
        out += d;
        const line = out.match(/^(\d+)\r?\n/);
        if (line) {
          clearTimeout(timer);
          resolve(Number(line[1]));
        }
      });
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
      child.on("close", (code) => {
        clearTimeout(timer);
        reject(new Error(`${argv.join(" ")} ended (exit ${code}) before printing its pid: ${JSON.stringify(out)} ${stderr}`));
      });
      child.on("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }
  const stop = async () => {
    if (runner.windows) child.stdin.end();
    else child.kill("SIGKILL");
    const end = await exited;
    children.delete(child);
    return end;
  };
  return { pid, stop };
}

for (const t of targets().filter((x) => RUNNERS[suffixOf(x.package)] && wanted(x.package))) {
  const suffix = suffixOf(t.package);
  const runner = RUNNERS[suffix];
  test(`${t.package} (${t.rust}) runs ${runner.how}`, { timeout: 900_000 }, async (tt) => {
    const bin = unpack(t.package);
    const box = await sandbox(suffix, runner);
    const cli = (args, opts = {}) => {
      const argv = [...runner.prefix, bin, ...args];
      return run(argv, { env: box.env, ...opts }).then((r) => ({ ...r, argv }));
    };
    const ok = (r, what) => assert.equal(r.code, 0, `${what} failed\n${show(r.argv, r)}`);
    /** The `report` of `sync --flush --json`. */
    const flushReport = (r) => {
      try {
        return JSON.parse(r.stdout).report;
      } catch {
        assert.fail(`no JSON report\n${show(r.argv, r)}`);
      }
    };
    const apiKey = `osk_${crypto.randomBytes(24).toString("hex")}`;
    const server = await startSyncServer({ apiKey });
    tt.after(() => server.stop());

    await tt.test("--version", async () => {
      const r = await cli(["--version"]);
      ok(r, "--version");
      assert.equal(r.stdout.trim(), `opencode-sync ${VERSION}`);
    });

    await tt.test("--help", async () => {
      const r = await cli(["--help"]);
      ok(r, "--help");
      for (const command of ["login", "status", "setup", "sync", "serve"]) assert.match(r.stdout, new RegExp(`\\b${command}\\b`));
    });

    await tt.test("config --json: the config file under the home's .config", async () => {
      const r = await cli(["config", "--json"]);
      ok(r, "config --json");
      const config = JSON.parse(r.stdout);
      assert.equal(config.path, box.join(".config", "opencode-sync", "config.json"));
      assert.equal(config.exists, false);
    });

    await tt.test("login --no-verify --api-key-stdin", async () => {
      const r = await cli(["login", "--no-verify", "--url", server.url, "--api-key-stdin"], { input: `${apiKey}\n` });
      ok(r, "login");
      assert.ok(!`${r.stdout}${r.stderr}`.includes(apiKey), "the key is never printed whole");
      const file = path.join(box.unixHome, ".config", "opencode-sync", "config.json");
      const saved = JSON.parse(fs.readFileSync(file, "utf8"));
      assert.equal(saved.convexUrl, server.url);
      assert.equal(saved.apiKey, apiKey);
    });

    await tt.test("status: healthy, then the key revoked", async () => {
      const healthy = await cli(["status"]);
      ok(healthy, "status");
      assert.match(healthy.stdout, /Key:\s+accepted/);
      assert.match(healthy.stdout, /Status:\s+ok, sessions will sync/);
      await server.control("DELETE", "/control/keys", { apiKey });
      const revoked = await cli(["status"]);
      assert.equal(revoked.code, 1, `status with a revoked key exits 1\n${show(revoked.argv, revoked)}`);
      assert.match(revoked.stdout, /Key:\s+REJECTED/);
      assert.match(revoked.stdout, /Status:\s+NOT SYNCING/);
      await server.control("POST", "/control/keys", { apiKey });
    });

    await tt.test("setup --dry-run: OpenCode's global config under the home's .config", async () => {
      const r = await cli(["setup", "--dry-run"]);
      ok(r, "setup --dry-run");
      assert.ok(r.stdout.includes(box.join(".config", "opencode", "opencode.json")), `names OpenCode's config file\n${r.stdout}`);
      assert.match(r.stdout, /"plugin": \["opencode-sync-plugin"\]/);
      assert.match(r.stdout, /dry run: nothing was written/);
      assert.ok(!fs.existsSync(path.join(box.unixHome, ".config", "opencode")), "nothing written");
    });

    await tt.test("sync: opencode.db under the home's .local/share arrives as it is", async () => {
      const directory = box.join("src", "app");
      const { dbPath, sessionID } = writeOpencodeDb(path.join(box.unixHome, ".local", "share", "opencode"), { directory });
      const r = await cli(["sync", "--json"]);
      ok(r, "sync");
      const dump = await server.dump();
      const db = readStore(dbPath);
      if (runner.windows) {
        // The Windows CLI names the project by the Windows path's last segment; the
        // comparison (POSIX path.basename) reads it with forward slashes.
        const stored = dump.users.flatMap((u) => u.sessions).find((x) => x.externalId === sessionID);
        assert.equal(stored?.projectName, "app", "projectName is the last segment of the Windows path");
        const slashes = (p) => p.replaceAll("\\", "/");
        for (const row of db.sessions) row.directory = slashes(row.directory);
        for (const x of dump.users.flatMap((u) => u.sessions)) x.projectPath = slashes(x.projectPath);
      }
      assertStoredAsInDb(db, dump, sessionID, { context: () => show(r.argv, r) });
      assert.ok(fs.existsSync(path.join(box.unixHome, ".local", "state", "opencode-sync")), "the sync state is kept under the home's .local/state");
    });

    await tt.test("sync --flush: 200 queued records, two flushes at once, each delivered exactly once", async () => {
      const outbox = path.join(box.unixHome, ".local", "state", "opencode-sync", "outbox");
      const queued = queueRecords(outbox, 10);
      assert.equal(queued, 200);
      await server.clearRequestLog();
      const [a, b] = await Promise.all([cli(["sync", "--flush", "--json"]), cli(["sync", "--flush", "--json"])]);
      // A flush that ends while the other still holds a claim counts that record as
      // remaining and exits 1 (nothing failed: the other flush is delivering it).
      const reports = [a, b].map((r, i) => {
        let out;
        try {
          out = JSON.parse(r.stdout);
        } catch {
          assert.fail(`flush ${i + 1} printed no JSON\n${show(r.argv, r)}`);
        }
        const rep = out.report;
        assert.ok(r.code === 0 || (r.code === 1 && rep.remaining > 0), `flush ${i + 1} failed\n${show(r.argv, r)}`);
        assert.deepEqual([rep.quarantined, rep.corrupt, rep.authFailed, rep.lastError], [0, 0, null, null], `flush ${i + 1} met no failure\n${show(r.argv, r)}`);
        return rep;
      });
      const delivered = `${reports[0].delivered} + ${reports[1].delivered}`;
      assert.equal(reports[0].delivered + reports[1].delivered, 200, `the flushes delivered ${delivered} records`);
      const left = fs.readdirSync(outbox).filter((f) => f.endsWith(".json") || f.includes(".claim-"));
      assert.deepEqual(left, [], "the outbox is empty: no record, no claim left");
      const dump = await server.dump();
      assert.equal(dump.requestsDropped, 0, "request log complete");
      const posts = dump.requests.filter((r) => r.method === "POST" && r.status >= 200 && r.status < 300 && !r.rejected);
      const count = (p) => posts.filter((r) => r.path === p).length;
      assert.deepEqual(
        { sessions: count("/sync/session"), messages: count("/sync/message"), refused: dump.requests.filter((r) => r.rejected).length },
        { sessions: 10, messages: 190, refused: 0 },
        `each record went once (the flushes delivered ${delivered})\n${show(a.argv, a)}\n${show(b.argv, b)}`,
      );
      for (let s = 0; s < 10; s++) {
        const sid = `ses_flush${String(s).padStart(4, "0")}`;
        const stored = dump.users.flatMap((u) => u.sessions).find((x) => x.externalId === sid);
        assert.equal(stored?.messages?.length, 19, `${sid} has its 19 messages`);
      }
    });

    await tt.test("sync --flush: a dead writer's draft and claim go at once, a live writer's draft waits for it to end", async () => {
      const outbox = path.join(box.unixHome, ".local", "state", "opencode-sync", "outbox");
      fs.rmSync(outbox, { recursive: true, force: true });
      fs.mkdirSync(outbox, { recursive: true });
      const live = await liveProcess(runner, box);
      tt.diagnostic(`${t.package}: live writer pid ${live.pid}, dead writer pid ${DEAD_PID}`);
      try {
        const now = Date.now();
        const dead = `0dead000p${DEAD_PID}`;
        const alive = `0a11fe00p${live.pid}`;
        let counter = 0;
        const put = (writer, sessionId, kind, id, payload, claimedBy) => {
          const queuedAt = now - 1000 + counter;
          let file = outboxName({ queuedAt, writer, counter: counter++, sessionId, kind, id });
          if (claimedBy) file = claimName(file, now, claimedBy);
          fs.writeFileSync(path.join(outbox, file), recordText(kind, queuedAt, payload));
          return file;
        };
        const session = (sid) => ({ externalId: sid, title: sid, source: "opencode", createdAt: now });
        const message = (sid, mid) => ({ sessionExternalId: sid, externalId: mid, role: "assistant", textContent: `${mid}, cut off mid-turn`, createdAt: now });
        // Fresh (a second old): only a dead writer frees them before STALE_DRAFT_MS
        // (30 min) and STALE_CLAIM_MS (2 min).
        put("testtest", "ses_deaddraft", "session", "ses_deaddraft", session("ses_deaddraft"));
        put(dead, "ses_deaddraft", "draft", "msg_deaddraft", message("ses_deaddraft", "msg_deaddraft"));
        put("testtest", "ses_deadclaim", "session", "ses_deadclaim", session("ses_deadclaim"), dead);
        put("testtest", "ses_livedraft", "session", "ses_livedraft", session("ses_livedraft"));
        const liveDraft = put(alive, "ses_livedraft", "draft", "msg_livedraft", message("ses_livedraft", "msg_livedraft"));
        await server.clearRequestLog();

        const started = Date.now();
        const r = await cli(["sync", "--flush", "--json", "--timeout", "30"]);
        const seconds = ((Date.now() - started) / 1000).toFixed(1);
        const report = flushReport(r);
        // Without a pid check (every writer alive) the draft and the claim stay: delivered
        // 2 (the two free session records), remaining 1 (the claim), exit 1.
        assert.deepEqual(
          { delivered: report.delivered, remaining: report.remaining, quarantined: report.quarantined },
          { delivered: 4, remaining: 0, quarantined: 0 },
          `the three session records and the dead writer's draft went, in ${seconds} s\n${show(r.argv, r)}`,
        );
        ok(r, "sync --flush");
        assert.deepEqual(fs.readdirSync(outbox), [liveDraft], "only the live writer's draft is left, unclaimed");
        let dump = await server.dump();
        const ours = new Set(["ses_deaddraft", "ses_deadclaim", "ses_livedraft"]);
        const sessions = () =>
          Object.fromEntries(
            dump.users
              .flatMap((u) => u.sessions)
              .filter((x) => ours.has(x.externalId))
              .map((x) => [x.externalId, (x.messages ?? []).map((m) => m.externalId)]),
          );
        assert.deepEqual(
          sessions(),
          { ses_deaddraft: ["msg_deaddraft"], ses_deadclaim: [], ses_livedraft: [] },
          "the dead writer's draft and claimed record arrived; the live writer's draft did not",
        );

        const end = await live.stop();
        tt.diagnostic(`${t.package}: the live writer ended (${JSON.stringify(end)})`);
        const again = await cli(["sync", "--flush", "--json", "--timeout", "30"]);
        assert.equal(flushReport(again).delivered, 1, `its draft went once it ended\n${show(again.argv, again)}`);
        ok(again, "sync --flush after the writer ended");
        assert.deepEqual(fs.readdirSync(outbox), [], "the outbox is empty");
        dump = await server.dump();
        assert.deepEqual(sessions().ses_livedraft, ["msg_livedraft"]);
      } finally {
        await live.stop();
      }
    });
  });
}

for (const t of targets().filter((x) => NOT_RUNNABLE[suffixOf(x.package)] && wanted(x.package))) {
  const suffix = suffixOf(t.package);
  test(`${t.package} (${t.rust}): headers only (not run: ${NOT_RUNNABLE[suffix]})`, (tt) => {
    const bin = unpack(t.package);
    tt.diagnostic(`${t.package} is not run: ${NOT_RUNNABLE[suffix]}; its headers are checked instead`);
    if (t.os === "darwin") {
      const h = machO(bin);
      tt.diagnostic(`${t.package}: ${JSON.stringify(h)}`);
      assert.equal(h.cpu, t.cpu === "arm64" ? "arm64" : "x86_64");
      assert.ok(h.executable, "an executable (MH_EXECUTE)");
      assert.equal(h.platform, "macos");
      const [major, minor] = h.minos.split(".").map(Number);
      // scripts/pack --all sets MACOSX_DEPLOYMENT_TARGET=11.0 (zig's default is 13.0).
      assert.deepEqual([major, minor], [11, 0], `minimum macOS ${h.minos}: 11.0, as the README says`);
      if (t.cpu === "arm64") assert.ok(h.signed, "arm64 macOS runs only signed code: an ad-hoc signature is there");
      assert.ok(h.dylibs.length > 0, "links libSystem");
      for (const lib of h.dylibs) assert.match(lib, /^(\/usr\/lib\/|\/System\/Library\/)/, `only system libraries: ${lib}`);
    } else {
      const h = pe(bin);
      tt.diagnostic(`${t.package}: ${JSON.stringify(h)}`);
      assert.equal(h.machine, t.cpu);
      assert.equal(h.subsystem, "console");
      const system = /^(kernel32|ntdll|advapi32|bcrypt|bcryptprimitives|ws2_32|userenv|user32|shell32|ole32|oleaut32|secur32|crypt32|msvcrt|ucrtbase|synchronization|api-ms-win-[a-z0-9-]+)\.dll$/i;
      assert.ok(h.dlls.length > 0, "imports kernel32 at least");
      for (const dll of h.dlls) assert.match(dll, system, `only DLLs Windows ships: ${dll}`);
    }
  });
}
