#!/usr/bin/env node
// `opencode-sync`: runs the native CLI that the per-platform package
// (opencode-sync-plugin-<os>-<arch>[-musl], an optional dependency npm installs for this
// machine only) carries. Glue only: find the binary, run it with our arguments and
// stdio, pass signals on, and exit the way it exited. OPENCODE_SYNC_BINARY overrides the
// binary (a local build, or a platform npm has no package for).

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { constants } from "node:os";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);
const pkg = require("../package.json");
const exe = process.platform === "win32" ? "opencode-sync.exe" : "opencode-sync";

function fail(message) {
  process.stderr.write(`opencode-sync: ${message}\n`);
  process.exit(1);
}

/** True on a Linux whose C library is musl (Alpine): Node's own report says which libc it runs on. */
function isMusl() {
  if (process.platform !== "linux") return false;
  try {
    process.report.excludeNetwork = true; // faster, where Node knows the setting
  } catch {
    // older Node
  }
  try {
    return !process.report.getReport().header.glibcVersionRuntime;
  } catch {
    return false;
  }
}

/** The platform packages that can run here, best first (a static musl build also runs on glibc). */
function candidates() {
  const base = `${pkg.name}-${process.platform}-${process.arch}`;
  if (process.platform !== "linux") return [base];
  return isMusl() ? [`${base}-musl`] : [base, `${base}-musl`];
}

function findBinary() {
  const override = process.env.OPENCODE_SYNC_BINARY;
  if (override) {
    if (!existsSync(override)) fail(`OPENCODE_SYNC_BINARY is set to ${override}, which does not exist.`);
    return override;
  }
  const names = candidates();
  for (const name of names) {
    let dir;
    try {
      dir = dirname(require.resolve(`${name}/package.json`));
    } catch {
      continue; // not installed
    }
    const binary = join(dir, "bin", exe);
    if (!existsSync(binary)) continue;
    const found = require(`${name}/package.json`).version;
    if (found !== pkg.version) {
      process.stderr.write(`opencode-sync: warning: ${name} is ${found}, ${pkg.name} is ${pkg.version}; reinstall ${pkg.name}\n`);
    }
    return binary;
  }
  const wanted = names[0];
  if (!(wanted in (pkg.optionalDependencies ?? {}))) {
    fail(
      `there is no prebuilt CLI for this platform (${wanted.slice(pkg.name.length + 1)}).\n` +
        `Build it from source (cargo build --release -p opencode-sync-cli) and set OPENCODE_SYNC_BINARY to the binary.`,
    );
  }
  fail(
    `the native CLI for this platform is missing: the package ${wanted} is not installed.\n` +
      `npm installs it with ${pkg.name}, as an optional dependency, unless optional dependencies\n` +
      `were left out (--omit=optional, or omit=optional in .npmrc) or node_modules was copied from\n` +
      `another platform. To fix it, reinstall with optional dependencies:\n` +
      `  npm install -g ${pkg.name}@${pkg.version} --include=optional    (installed globally)\n` +
      `  npm install --include=optional    (in a project that depends on ${pkg.name})\n` +
      `or set OPENCODE_SYNC_BINARY to the path of an opencode-sync binary.`,
  );
}

const binary = findBinary();

// Ctrl-C in a terminal sends SIGINT to the whole foreground process group, so a child
// sharing our group already gets it: passing it on too would make one Ctrl-C count as
// two (and a second Ctrl-C means "quit now"). So with a terminal attached the child
// shares our group and gets SIGINT from the terminal; without one it gets a process group
// of its own, and every signal reaches it through us, exactly once.
const interactive = Boolean(process.stdin.isTTY || process.stdout.isTTY || process.stderr.isTTY);
const child = spawn(binary, process.argv.slice(2), {
  stdio: "inherit",
  detached: !interactive && process.platform !== "win32",
});

const forward = {
  SIGINT: !interactive,
  SIGTERM: true,
  SIGHUP: true,
};
const handlers = {};
for (const [signal, pass] of Object.entries(forward)) {
  handlers[signal] = () => {
    if (pass) {
      try {
        child.kill(signal);
      } catch {
        // already gone
      }
    }
  };
  process.on(signal, handlers[signal]);
}

child.on("error", (error) => fail(`cannot run ${binary}: ${error.message}`));
child.on("exit", (code, signal) => {
  if (signal) {
    // Die the same way, so a shell or supervisor sees what happened to the CLI.
    for (const [name, handler] of Object.entries(handlers)) process.off(name, handler);
    process.kill(process.pid, signal);
    process.exitCode = 128 + (constants.signals[signal] ?? 0);
    return;
  }
  process.exit(code ?? 1);
});
