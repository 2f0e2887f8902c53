// The wine prefix the Windows CLI runs in (tests/e2e/.work/wineprefix), shared by the
// platform suite and the packaging suite so that either may run first on a fresh machine:
// made once (wineboot takes ~20 s) with what Rust's std needs and Wine 8.0 (Debian 12)
// lacks, a bcryptprimitives.dll stand-in built with zig (scripts/setup-cross).

import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { WORK_DIR } from "./opencode.mjs";
import { REPO } from "./sync-server.mjs";

export const WINE = ["/usr/lib/wine/wine64", "/usr/bin/wine64"].find((p) => fs.existsSync(p)) ?? "wine64";
export const WINE_PREFIX = path.join(WORK_DIR, "wineprefix");

/** The environment a Windows program runs in under wine: quiet, no Mono or Gecko prompts. */
export function wineEnv() {
  return { PATH: process.env.PATH, HOME: process.env.HOME, WINEPREFIX: WINE_PREFIX, WINEDEBUG: "-all", WINEDLLOVERRIDES: "mscoree,mshtml=" };
}

/** Runs a command to completion within `timeoutMs`; rejects with its output when it fails. */
function runChecked(argv, env, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    execFile(argv[0], argv.slice(1), { env, timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${what} failed (${err.code ?? err.signal}): ${argv.join(" ")}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`));
      else resolve();
    });
  });
}

let making;

/** Makes the prefix when it is missing (once per process); returns wineEnv(). */
export async function ensureWinePrefix() {
  making ??= (async () => {
    const env = wineEnv();
    if (!fs.existsSync(path.join(WINE_PREFIX, "system.reg"))) {
      await runChecked([WINE, "wineboot", "-i"], env, 300_000, "wineboot (install wine64: scripts/setup-cross)");
    }
    // Wine 8.0 lacks bcryptprimitives.dll (Windows 10+ has it; Rust's std takes its
    // random numbers from it): a stand-in built with zig goes into system32.
    const dll = path.join(WINE_PREFIX, "drive_c", "windows", "system32", "bcryptprimitives.dll");
    if (!fs.existsSync(dll)) {
      const python = path.join(REPO, ".tools", "cross", "bin", "python3");
      const source = path.join(REPO, "tests", "e2e", "lib", "wine-bcryptprimitives.c");
      await runChecked(
        [python, "-m", "ziglang", "cc", "-shared", "-target", "x86_64-windows-gnu", "-O2", "-o", dll, source, "-lbcrypt"],
        { PATH: process.env.PATH, HOME: process.env.HOME },
        300_000,
        "building the bcryptprimitives.dll stand-in (zig: scripts/setup-cross)",
      );
    }
  })();
  await making;
  return wineEnv();
}
