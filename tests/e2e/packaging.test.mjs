// The packaging acceptance suite: `npm install -g opencode-sync-plugin` gives the plugin
// and a native CLI. It runs scripts/pack --all (release wasm + every platform's CLI,
// tarballs in dist/), serves the tarballs from a tiny npm registry on loopback
// (lib/npm-registry.mjs: the published layout, so nothing comes from the network),
// installs into empty prefixes with `npm install -g --prefix`, and then uses what was
// installed:
//   - `<prefix>/bin/opencode-sync` (the launcher, then the native binary): version, help,
//     exit codes, and `setup` editing a JSONC config without losing its comments;
//   - the real OpenCode loading the installed plugin (by file:// path into the prefix,
//     and by the name `setup` writes, pre-placed in OpenCode's package cache) and the
//     session arriving at the contract sync server as opencode.db has it;
//   - the launcher's glue with stand-in binaries (OPENCODE_SYNC_BINARY): arguments,
//     stdio, exit codes, SIGINT/SIGTERM/SIGHUP, Ctrl-C in a terminal counted once;
//   - the missing-binary message (a global install whose platform package directory was
//     removed, a project installed with --omit=optional) and that the fixes it prints work;
//   - the tarballs installed together with no registry serving the platform packages
//     (a local build before publishing), and `npm uninstall -g`;
//   - a non-host install: `npm install -g --os=linux --cpu=arm64 --libc=glibc` fetches and
//     places the linux-arm64 package only, and the launcher runs its binary under qemu
//     (lib/emulate-arm64.cjs stands in for binfmt, which this machine does not register);
//     and `--os=win32 --cpu=x64`: the launcher finds bin/opencode-sync.exe and runs it
//     (lib/emulate-win32.cjs: Node reports win32, and the .exe runs under wine64).
// It runs `scripts/pack --all`, and the registry serves every platform tarball it wrote.
//
// Needs: what scripts/pack needs (scripts/setup), `cargo build -p opencode-sync-server`,
// `bash scripts/setup-e2e`. Run: cd tests/e2e && node --test packaging.test.mjs.
// PACKAGING_SKIP_PACK=1 uses dist/ as the last scripts/pack left it. E2E_KEEP=1 keeps
// the work dir under tests/e2e/.work/ (kept anyway when a test fails).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { startModelServer } from "./lib/model-server.mjs";
import { WORK_DIR, createEnv, writeConfig, runOpencode, describeRun, readStore, preinstallNpmPlugin } from "./lib/opencode.mjs";
import { assertStoredAsInDb } from "./lib/compare.mjs";
import { REPO, startSyncServer, writeSyncCredentials, pluginLog } from "./lib/sync-server.mjs";
import { startNpmRegistry, manifestOf } from "./lib/npm-registry.mjs";
import { targets, platformManifest, mainManifest, cargoVersion, GOALS } from "../../scripts/npm-packages.mjs";
import { ensureWinePrefix } from "./lib/wine.mjs";

const NAME = "opencode-sync-plugin";
const API_KEY = `osk_${crypto.randomBytes(24).toString("hex")}`;
const TITLE = "Packaging session";

let packed; // dist/packages.json
let work; // this file's scratch dir under .work/
let registry; // serves the plugin and this machine's CLI package
let prefix; // the main install: `npm install -g opencode-sync-plugin@VERSION` from `registry`
let failed = false;
const children = new Set();

/** Runs a command to completion without blocking the event loop (the registry answers in this process). */
function run(cmd, args, { env, cwd = work, input, timeoutMs = 120_000, onStdout } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, cwd, stdio: ["pipe", "pipe", "pipe"] });
    children.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d) => {
      stdout += d;
      onStdout?.(stdout, child);
    });
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    child.stdin.on("error", () => {});
    if (input !== undefined) child.stdin.end(input);
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (err) => (stderr += `\nspawn error: ${err}`));
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, stdout, stderr, out: `${stdout}${stderr}`, pid: child.pid });
    });
  });
}

const describe = (r) => `exit=${r.code} signal=${r.signal}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

/** npm with nothing from the developer's setup: its own HOME, cache and (empty) config files. */
function npmEnv(registryUrl) {
  const home = path.join(work, "npm-home");
  fs.mkdirSync(home, { recursive: true });
  return {
    PATH: process.env.PATH,
    HOME: home,
    LANG: "C.UTF-8",
    npm_config_registry: registryUrl,
    npm_config_cache: path.join(work, "npm-cache"),
    npm_config_userconfig: path.join(home, "npmrc"),
    npm_config_globalconfig: path.join(home, "global-npmrc"),
    npm_config_update_notifier: "false",
    npm_config_fund: "false",
    npm_config_audit: "false",
    npm_config_loglevel: "warn",
  };
}

async function npmInstallGlobal(dir, specs, { registryUrl = registry.url, args = [] } = {}) {
  const r = await run("npm", ["install", "-g", "--prefix", dir, ...args, ...specs], { env: npmEnv(registryUrl) });
  assert.equal(r.code, 0, `npm install -g ${specs.join(" ")} failed\n${describe(r)}`);
  return r;
}

const launcherOf = (dir) => path.join(dir, "bin", "opencode-sync");
const packageDirOf = (dir) => path.join(dir, "lib", "node_modules", NAME);

/** The installed `opencode-sync` in an isolated home (or an OpenCode env). */
function cli(dir, args, { env = {}, home = path.join(work, "cli-home"), cwd, input } = {}) {
  fs.mkdirSync(home, { recursive: true });
  return run(launcherOf(dir), args, {
    env: { PATH: process.env.PATH, HOME: home, LANG: "C.UTF-8", ...env },
    cwd: cwd ?? home,
    input,
  });
}

before(() =>
  guarded(async () => {
    fs.mkdirSync(WORK_DIR, { recursive: true });
    work = fs.mkdtempSync(path.join(WORK_DIR, "packaging-"));
    if (!process.env.PACKAGING_SKIP_PACK) {
      // Without the npm_* variables `npm test` sets, which would steer scripts/pack's `npm pack`.
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith("npm_")));
      const r = await run(path.join(REPO, "scripts", "pack"), ["--all"], { cwd: REPO, env, timeoutMs: 40 * 60_000 });
      assert.equal(r.code, 0, `scripts/pack failed\n${describe(r)}`);
      for (const line of r.stdout.split("\n").filter((l) => l.startsWith("[pack]"))) console.log(line);
    }
    packed = JSON.parse(fs.readFileSync(path.join(REPO, "dist", "packages.json"), "utf8"));
    const packages = [{ manifest: manifestOf(packed.main.file), tarball: packed.main.file }];
    // Every platform tarball scripts/pack --all wrote (npm downloads only the matching one).
    for (const t of targets()) {
      const file = t.package === packed.host ? packed.platform.file : packed.platforms?.[t.package]?.file;
      packages.push(file ? { manifest: manifestOf(file), tarball: file } : { manifest: platformManifest(t) });
    }
    registry = await startNpmRegistry({ packages });
    prefix = path.join(work, "prefix");
  }));

after(async () => {
  for (const child of children) child.kill("SIGKILL");
  await registry?.close();
  if (work && !failed && !process.env.E2E_KEEP) fs.rmSync(work, { recursive: true, force: true });
  else if (work) console.log(`work dir kept at ${work}`);
});

/** Marks the file failed (keeps the work dir) when fn throws. */
async function guarded(fn) {
  try {
    await fn();
  } catch (error) {
    failed = true;
    throw error;
  }
}

test("scripts/pack: one version everywhere, the right files, within the size goals", () =>
  guarded(() => {
    const version = cargoVersion();
    assert.equal(packed.version, version);
    const main = manifestOf(packed.main.file);
    assert.equal(main.version, version);
    assert.deepEqual(main.bin, { "opencode-sync": "bin/opencode-sync.js" });
    assert.equal(main.engines.node, ">=18");
    assert.deepEqual(main.exports, mainManifest().exports, "the plugin's ESM exports are packed as declared");
    assert.deepEqual(
      Object.entries(main.optionalDependencies).sort(),
      targets().map((t) => [t.package, version]).sort(),
      "one optional dependency per target, at the same version",
    );
    const listing = (file) =>
      spawnSync("tar", ["-tvzf", file], { encoding: "utf8" }).stdout.trim().split("\n").map((l) => {
        const parts = l.split(/\s+/);
        return { mode: parts[0], file: parts.at(-1) };
      });
    const mainFiles = listing(packed.main.file);
    for (const f of ["index.js", "index.d.ts", "bin/opencode-sync.js", "wasm/sync.js", "wasm/sync_bg.wasm", "package.json", "README.md", "LICENSE"]) {
      assert.ok(mainFiles.some((x) => x.file === `package/${f}`), `the plugin tarball has ${f}`);
    }
    assert.equal(mainFiles.find((x) => x.file === "package/bin/opencode-sync.js").mode, "-rwxr-xr-x");

    const host = manifestOf(packed.platform.file);
    const t = targets().find((x) => x.package === packed.host);
    assert.equal(host.name, t.package);
    assert.equal(host.version, version);
    assert.deepEqual([host.os, host.cpu, host.libc], [[t.os], [t.cpu], t.libc ? [t.libc] : undefined]);
    const binary = listing(packed.platform.file).find((x) => x.file === `package/bin/${t.binary}`);
    assert.ok(binary, "the CLI tarball has the binary");
    assert.ok(listing(packed.platform.file).some((x) => x.file === "package/LICENSE"), "the CLI tarball has the LICENSE");
    assert.equal(binary.mode, "-rwxr-xr-x");

    console.log(`plugin tarball ${packed.main.size} B, CLI binary ${packed.binary.size} B, CLI tarball ${packed.platform.size} B`);
    assert.ok(packed.main.size < GOALS.pluginTarball, `plugin tarball ${packed.main.size} B is over the goal`);
    assert.ok(packed.binary.size < GOALS.cliBinary, `CLI binary ${packed.binary.size} B is over the goal`);
    const file = spawnSync("file", ["-b", packed.binary.file], { encoding: "utf8" }).stdout;
    if (file) assert.match(file, /stripped/, "the binary is stripped");
    assert.doesNotMatch(file ?? "", /not stripped/);
  }));

test("npm install -g from a registry installs the plugin and only this machine's CLI package", () =>
  guarded(async () => {
    await npmInstallGlobal(prefix, [`${NAME}@${packed.version}`]);
    // npm read every platform package's manifest and downloaded only the one that fits
    // (os, cpu and libc: a glibc Linux skips the musl build).
    const manifestsRead = registry.requests.filter((r) => !r.path.startsWith("/-/")).map((r) => r.path.slice(1));
    for (const t of targets()) assert.ok(manifestsRead.includes(t.package), `npm looked at ${t.package}`);
    assert.deepEqual(registry.tarballRequests().sort(), [`${NAME}-${packed.version}.tgz`, `${packed.host}-${packed.version}.tgz`].sort());
    assert.ok(fs.existsSync(path.join(packageDirOf(prefix), "node_modules", packed.host, "package.json")), "the CLI package is nested in the plugin's");
    assert.equal(fs.readlinkSync(launcherOf(prefix)), `../lib/node_modules/${NAME}/bin/opencode-sync.js`);

    const version = await cli(prefix, ["--version"]);
    assert.equal(version.code, 0, describe(version));
    assert.equal(version.stdout.trim(), `opencode-sync ${packed.version}`);
    const help = await cli(prefix, ["--help"]);
    assert.equal(help.code, 0, describe(help));
    assert.match(help.stdout, /setup\s+Add the plugin to OpenCode's config/);
    const bad = await cli(prefix, ["frobnicate"]);
    assert.equal(bad.code, 2, "the CLI's exit code comes through");
    assert.match(bad.stderr, /unrecognized subcommand/);
    const status = await cli(prefix, ["status"]);
    assert.equal(status.code, 1, `not logged in: status exits 1\n${describe(status)}`);
  }));

test("the installed `opencode-sync setup` adds the plugin to a JSONC config and keeps its comments", () =>
  guarded(async () => {
    const home = path.join(work, "setup-home");
    const file = path.join(home, ".config", "opencode", "opencode.jsonc");
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const original = [
      "{",
      '  // the model I use',
      '  "model": "anthropic/claude-sonnet-4",',
      "  /* other plugins */",
      '  "plugin": [',
      '    "opencode-wakatime", // time tracking',
      "  ],",
      "}",
      "",
    ].join("\n");
    fs.writeFileSync(file, original);
    const dry = await cli(prefix, ["setup", "--dry-run"], { home });
    assert.equal(dry.code, 0, describe(dry));
    assert.match(dry.stdout, /\+ {5}"opencode-sync-plugin",/);
    assert.equal(fs.readFileSync(file, "utf8"), original, "--dry-run writes nothing");

    const r = await cli(prefix, ["setup"], { home });
    assert.equal(r.code, 0, describe(r));
    assert.match(r.stdout, /Added "opencode-sync-plugin"/);
    const edited = fs.readFileSync(file, "utf8");
    assert.equal(edited, original.replace('    "opencode-wakatime", // time tracking\n', '    "opencode-wakatime", // time tracking\n    "opencode-sync-plugin",\n'));
    for (const comment of ["// the model I use", "/* other plugins */", "// time tracking"]) assert.ok(edited.includes(comment), `kept ${comment}`);

    const again = await cli(prefix, ["setup"], { home });
    assert.equal(again.code, 0, describe(again));
    assert.match(again.stdout, /already loads the plugin/);
    assert.equal(fs.readFileSync(file, "utf8"), edited, "a second run changes nothing");
  }));

const ONE_TURN = () => [
  [
    {
      text: "Running it.",
      toolCalls: [{ name: "bash", args: { command: "echo hello-from-the-installed-plugin", description: "Say hello" } }],
      usage: { prompt: 1200, completion: 40, cached: 300 },
    },
    { text: "All done.", usage: { prompt: 1400, completion: 20 } },
  ],
];

test("the real OpenCode loads the installed plugin and the session syncs", () =>
  guarded(async () => {
    const model = await startModelServer({ title: TITLE });
    const sync = await startSyncServer({ apiKey: API_KEY });
    try {
      const installed = packageDirOf(prefix);
      const scenarios = [
        {
          name: "file-url",
          // By path into the prefix: what `npm install -g` put there, loaded as is.
          configure: async (e) => {
            writeConfig(e, { baseURL: model.baseURL, plugins: [pathToFileURL(path.join(installed, "index.js")).href] });
            const r = await cli(prefix, ["setup"], { env: e.env, home: e.home, cwd: e.project });
            assert.match(r.stdout, /already loads the plugin \("file:\/\//, describe(r));
          },
        },
        {
          name: "by-name",
          // The entry `opencode-sync setup` writes ("opencode-sync-plugin", which OpenCode
          // looks up as @latest), with the installed package pre-placed in OpenCode's
          // package cache (the name would resolve against the public registry).
          configure: async (e) => {
            writeConfig(e, { baseURL: model.baseURL, plugins: [] });
            const r = await cli(prefix, ["setup"], { env: e.env, home: e.home, cwd: e.project });
            assert.equal(r.code, 0, describe(r));
            const config = JSON.parse(fs.readFileSync(path.join(e.opencodeConfigDir, "opencode.json"), "utf8"));
            assert.deepEqual(config.plugin, [NAME]);
            preinstallNpmPlugin(e, { name: NAME, version: "latest", from: installed });
            // Evidence that OpenCode used this copy rather than fetching one.
            fs.writeFileSync(path.join(e.cacheHome, "opencode", "packages", `${NAME}@latest`, "node_modules", NAME, ".preplaced"), "");
          },
          after: (e) => {
            const marker = path.join(e.cacheHome, "opencode", "packages", `${NAME}@latest`, "node_modules", NAME, ".preplaced");
            assert.ok(fs.existsSync(marker), "OpenCode loaded the pre-placed copy (it did not install another)");
          },
        },
      ];
      for (const s of scenarios) {
        const e = createEnv({ name: `packaging-${s.name}` });
        let ok = false;
        try {
          writeSyncCredentials(e, { url: sync.url, apiKey: API_KEY });
          await s.configure(e);
          const verify = await cli(prefix, ["verify"], { env: e.env, home: e.home, cwd: e.project });
          assert.equal(verify.code, 0, `the installed CLI says the setup is ready\n${describe(verify)}`);

          model.setScript(ONE_TURN());
          const r = await runOpencode(e, ["say", "hello"]);
          console.log(`${s.name}: opencode run ${r.wallMs} ms`);
          assert.equal(r.timedOut, false, describeRun(r));
          assert.equal(r.code, 0, describeRun(r));
          assert.deepEqual(model.problems, []);
          assert.equal(model.remaining(), 0);
          assert.match(r.stdout, /All done\./);

          const store = readStore(e);
          assert.equal(store.sessions.length, 1);
          const sessionID = store.sessions[0].id;
          const dump = await sync.dump();
          fs.writeFileSync(path.join(e.root, "server-dump.json"), JSON.stringify(dump, null, 2));
          const { stored } = assertStoredAsInDb(readStore(e, { sessionID }), dump, sessionID, { context: () => `the plugin logged:\n${pluginLog(e)}` });
          assert.equal(stored.title, TITLE);
          const result = stored.messages.flatMap((m) => m.parts).find((p) => p.type === "tool-result");
          assert.equal(result.content.output, "hello-from-the-installed-plugin\n");
          s.after?.(e);
          ok = true;
        } finally {
          if (ok && !process.env.E2E_KEEP) e.cleanup();
          else console.log(`environment kept at ${e.root}`);
        }
      }
    } finally {
      await sync.stop();
      await model.close();
    }
  }));

// A stand-in for the native binary (OPENCODE_SYNC_BINARY), to watch what the launcher
// passes on. It prints its argv and pid, then, by FAKE_MODE:
//   echo     copies stdin to stdout and exits 7;
//   signals  exits 42 on SIGTERM, 40 + the number of SIGINTs 300 ms after the first,
//            dies of SIGHUP (no handler); gives up after 20 s.
const FAKE = `#!/usr/bin/env node
console.log(JSON.stringify({ argv: process.argv.slice(2), pid: process.pid }));
if (process.env.FAKE_MODE === "echo") {
  let input = "";
  process.stdin.setEncoding("utf8").on("data", (d) => (input += d)).on("end", () => {
    process.stdout.write("stdin:" + input);
    process.stderr.write("to stderr\\n");
    process.exitCode = 7;
  });
} else {
  let ints = 0;
  process.on("SIGTERM", () => { console.log("TERM"); process.exit(42); });
  process.on("SIGINT", () => {
    ints += 1;
    console.log("INT " + ints);
    if (ints === 1) setTimeout(() => process.exit(40 + ints), 300);
  });
  setTimeout(() => process.exit(99), 20000);
  console.log("ready");
}
`;

function fakeBinary() {
  const file = path.join(work, "fake-opencode-sync.mjs");
  if (!fs.existsSync(file)) fs.writeFileSync(file, FAKE, { mode: 0o755 });
  return file;
}

/** Runs the installed launcher over the fake, sends `signal` once the fake is ready. */
function signalRun(signal) {
  return run(launcherOf(prefix), ["serve", "--flag"], {
    env: { PATH: process.env.PATH, HOME: work, OPENCODE_SYNC_BINARY: fakeBinary(), FAKE_MODE: "signals" },
    timeoutMs: 30_000,
    onStdout: (out, child) => {
      if (out.includes("ready\n") && !child.sent) {
        child.sent = true;
        child.kill(signal);
      }
    },
  });
}

function assertGone(r) {
  const { pid } = JSON.parse(r.stdout.split("\n")[0]);
  assert.throws(() => process.kill(pid, 0), { code: "ESRCH" }, `the CLI process ${pid} is gone`);
}

test("the launcher passes arguments, stdio, exit codes and signals through", () =>
  guarded(async () => {
    const env = { PATH: process.env.PATH, HOME: work, OPENCODE_SYNC_BINARY: fakeBinary(), FAKE_MODE: "echo" };
    const args = ["sync", "--since", "2025-06-01", "two words", "", "ünïcödé", "--json"];
    const echo = await run(launcherOf(prefix), args, { env, input: "piped input\n" });
    assert.equal(echo.code, 7, describe(echo));
    assert.deepEqual(JSON.parse(echo.stdout.split("\n")[0]).argv, args);
    assert.match(echo.stdout, /stdin:piped input\n$/);
    assert.equal(echo.stderr, "to stderr\n");

    // Without a terminal, each signal reaches the CLI through the launcher, once.
    const term = await signalRun("SIGTERM");
    assert.equal(term.code, 42, describe(term));
    assert.match(term.stdout, /^TERM$/m);
    const int = await signalRun("SIGINT");
    assert.equal(int.code, 41, `one SIGINT, exit 40 + 1\n${describe(int)}`);
    assert.doesNotMatch(int.stdout, /INT 2/);
    // A CLI killed by a signal: the launcher dies of the same signal.
    const hup = await signalRun("SIGHUP");
    assert.equal(hup.signal, "SIGHUP", describe(hup));
    for (const r of [term, int, hup]) assertGone(r);
  }));

test("Ctrl-C in a terminal reaches the CLI once, not twice", { skip: spawnSync("script", ["--version"]).status !== 0 && "util-linux `script` is not installed" }, () =>
  guarded(async () => {
    // `script` gives the launcher a pseudo-terminal; ^C typed there sends SIGINT to the
    // terminal's whole foreground process group: the launcher and the CLI.
    const r = await run("script", ["-qec", `exec '${launcherOf(prefix)}' serve`, "/dev/null"], {
      env: { PATH: process.env.PATH, HOME: work, TERM: "dumb", OPENCODE_SYNC_BINARY: fakeBinary(), FAKE_MODE: "signals" },
      timeoutMs: 30_000,
      onStdout: (out, child) => {
        if (out.includes("ready") && !child.sent) {
          child.sent = true;
          child.stdin.write("\x03");
        }
      },
    });
    assert.match(r.stdout, /INT 1/, describe(r));
    assert.doesNotMatch(r.stdout, /INT 2/, "the launcher must not pass on a SIGINT the terminal already delivered");
    assert.equal(r.code, 41, describe(r));
  }));

test("a missing platform package: the launcher names it and says how to fix it", () =>
  guarded(async () => {
    const assertMissing = (r) => {
      assert.equal(r.code, 1, describe(r));
      assert.equal(r.stdout, "");
      assert.match(r.stderr, new RegExp(`the package ${packed.host} is not installed`));
      assert.match(r.stderr, /--omit=optional/);
      assert.match(r.stderr, /OPENCODE_SYNC_BINARY/);
    };
    const globalFix = `npm install -g ${NAME}@${packed.version} --include=optional`;

    // A global install whose platform package directory is gone.
    const broken = path.join(work, "prefix-broken");
    await npmInstallGlobal(broken, [`${NAME}@${packed.version}`]);
    fs.rmSync(path.join(packageDirOf(broken), "node_modules", packed.host), { recursive: true });
    const r = await cli(broken, ["--version"]);
    assertMissing(r);
    assert.ok(r.stderr.includes(`  ${globalFix}`), `the message gives the global fix\n${r.stderr}`);
    // The fix it prints works.
    await npmInstallGlobal(broken, globalFix.split(" ").slice(3));
    const fixed = await cli(broken, ["--version"]);
    assert.equal(fixed.code, 0, describe(fixed));
    assert.equal(fixed.stdout.trim(), `opencode-sync ${packed.version}`);

    // A project installed with --omit=optional (npm honours it for a project's
    // dependencies; for a global install's it does not, as of npm 11).
    const project = path.join(work, "project-omit-optional");
    fs.mkdirSync(project, { recursive: true });
    fs.writeFileSync(path.join(project, "package.json"), '{ "name": "app", "private": true }\n');
    const npmIn = (args) => run("npm", args, { cwd: project, env: npmEnv(registry.url) });
    const install = await npmIn(["install", "--omit=optional", `${NAME}@${packed.version}`]);
    assert.equal(install.code, 0, describe(install));
    assert.ok(!fs.existsSync(path.join(project, "node_modules", packed.host)), "npm left the CLI package out");
    const bin = path.join(project, "node_modules", ".bin", "opencode-sync");
    const env = { PATH: process.env.PATH, HOME: work };
    const local = await run(bin, ["--version"], { cwd: project, env });
    assertMissing(local);
    assert.match(local.stderr, /^ {2}npm install --include=optional/m);
    const again = await npmIn(["install", "--include=optional"]);
    assert.equal(again.code, 0, describe(again));
    assert.equal((await run(bin, ["--version"], { cwd: project, env })).stdout.trim(), `opencode-sync ${packed.version}`);

    // The override: a binary that does not exist is named.
    const missing = path.join(work, "no-such-binary");
    const o = await cli(broken, ["--version"], { env: { OPENCODE_SYNC_BINARY: missing } });
    assert.equal(o.code, 1);
    assert.match(o.stderr, new RegExp(`OPENCODE_SYNC_BINARY is set to ${missing}, which does not exist`));
  }));

test("a non-host package: npm install -g --os=linux --cpu=arm64 puts the arm64 CLI in place, and the launcher runs it under qemu", () =>
  guarded(async () => {
    const arm = "opencode-sync-plugin-linux-arm64";
    assert.ok(packed.platforms?.[arm], "scripts/pack --all packed the linux-arm64 package");
    const dir = path.join(work, "prefix-arm64");
    const before = registry.tarballRequests().length;
    await npmInstallGlobal(dir, [`${NAME}@${packed.version}`], { args: ["--os=linux", "--cpu=arm64", "--libc=glibc"] });
    // (The plugin's tarball may come from npm's cache by now.)
    const fetchedCli = registry.tarballRequests().slice(before).filter((f) => f !== `${NAME}-${packed.version}.tgz`);
    assert.deepEqual(fetchedCli, [`${arm}-${packed.version}.tgz`], "npm fetched the arm64 CLI only");
    const installed = path.join(packageDirOf(dir), "node_modules");
    assert.ok(!fs.existsSync(path.join(installed, packed.host)), "no x64 CLI package");
    const binary = path.join(installed, arm, "bin", "opencode-sync");
    const file = spawnSync("file", ["-b", binary], { encoding: "utf8" }).stdout;
    assert.match(file, /ELF 64-bit LSB .*ARM aarch64/, `the arm64 binary: ${file}`);

    // This x64 Node has no binfmt for aarch64 here: lib/emulate-arm64.cjs makes it report
    // arm64 (so the launcher looks for the arm64 package by itself) and runs aarch64
    // executables under qemu-aarch64 -L /usr/aarch64-linux-gnu, as binfmt would.
    const preload = path.join(REPO, "tests", "e2e", "lib", "emulate-arm64.cjs");
    const env = { NODE_OPTIONS: `--require ${preload}` };
    const v = await cli(dir, ["--version"], { env });
    assert.equal(v.code, 0, describe(v));
    assert.equal(v.stdout.trim(), `opencode-sync ${packed.version}`);
    const c = await cli(dir, ["config", "--json"], { env, home: path.join(work, "arm64-home") });
    assert.equal(c.code, 0, describe(c));
    assert.equal(JSON.parse(c.stdout).path, path.join(work, "arm64-home", ".config", "opencode-sync", "config.json"));
    // Without the preload, x64 Node looks for the x64 package, which is not there.
    const x64 = await cli(dir, ["--version"]);
    assert.equal(x64.code, 1);
    assert.match(x64.stderr, new RegExp(`the package ${packed.host} is not installed`));
  }));

test("a Windows package: npm install -g --os=win32 --cpu=x64 puts opencode-sync.exe in place, and the launcher runs it (under wine)", () =>
  guarded(async () => {
    const win = "opencode-sync-plugin-win32-x64";
    assert.ok(packed.platforms?.[win], "scripts/pack --all packed the win32-x64 package");
    const dir = path.join(work, "prefix-win32");
    const before = registry.tarballRequests().length;
    await npmInstallGlobal(dir, [`${NAME}@${packed.version}`], { args: ["--os=win32", "--cpu=x64"] });
    const fetchedCli = registry.tarballRequests().slice(before).filter((f) => f !== `${NAME}-${packed.version}.tgz`);
    assert.deepEqual(fetchedCli, [`${win}-${packed.version}.tgz`], "npm fetched the Windows CLI only");
    const exe = path.join(packageDirOf(dir), "node_modules", win, "bin", "opencode-sync.exe");
    assert.ok(fs.existsSync(exe), "the package carries bin/opencode-sync.exe");
    // No Windows Node here: lib/emulate-win32.cjs makes Node report win32 (the launcher
    // then looks for the win32 package and opencode-sync.exe by itself) and runs PE
    // executables under wine64, in the platform suite's prefix (lib/wine.mjs: made here
    // when this suite runs first).
    const { WINEPREFIX, WINEDEBUG, WINEDLLOVERRIDES } = await ensureWinePrefix();
    const env = { NODE_OPTIONS: `--require ${path.join(REPO, "tests", "e2e", "lib", "emulate-win32.cjs")}`, WINEPREFIX, WINEDEBUG, WINEDLLOVERRIDES };
    const v = await cli(dir, ["--version"], { env });
    assert.equal(v.code, 0, describe(v));
    assert.equal(v.stdout.trim(), `opencode-sync ${packed.version}`);
  }));

test("the tarballs install together with no registry serving the platform packages, and uninstall cleanly", () =>
  guarded(async () => {
    // A local build before it is published: npm looks the optional dependencies up, finds
    // nothing (404, as for an unpublished name), skips them, and installs both tarballs
    // side by side; the launcher finds the CLI package next to the plugin.
    const empty = await startNpmRegistry();
    const local = path.join(work, "prefix-tarballs");
    try {
      await npmInstallGlobal(local, [packed.main.file, packed.platform.file], { registryUrl: empty.url });
      assert.deepEqual(empty.tarballRequests(), []);
    } finally {
      await empty.close();
    }
    assert.ok(fs.existsSync(path.join(local, "lib", "node_modules", packed.host, "package.json")));
    const r = await cli(local, ["--version"]);
    assert.equal(r.code, 0, describe(r));
    assert.equal(r.stdout.trim(), `opencode-sync ${packed.version}`);

    // npm uninstall -g removes the plugin, its CLI package and the command.
    const u = await run("npm", ["uninstall", "-g", "--prefix", prefix, NAME], { env: npmEnv(registry.url) });
    assert.equal(u.code, 0, describe(u));
    assert.ok(!fs.existsSync(launcherOf(prefix)), "the opencode-sync command is gone");
    assert.ok(!fs.existsSync(packageDirOf(prefix)), "the plugin and its CLI package are gone");
  }));
