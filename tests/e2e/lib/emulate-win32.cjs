// Test-only preload (node --require): makes this Linux Node look like a Windows x64 one to
// the `opencode-sync` launcher, so the packaging suite can check that the launcher finds
// `bin/opencode-sync.exe` in the win32-x64 package that `npm install --os=win32` put in
// place, and runs it. There is no Windows Node here: a PE executable handed to
// child_process.spawn runs under wine64 (Debian's, installed by scripts/setup-cross), in
// the prefix named by WINEPREFIX. Nothing else changes.

"use strict";
const childProcess = require("node:child_process");
const fs = require("node:fs");
const { syncBuiltinESMExports } = require("node:module");

const WINE = ["/usr/lib/wine/wine64", "/usr/bin/wine64"].find((p) => fs.existsSync(p)) ?? "wine64";

function isPe(file) {
  try {
    const fd = fs.openSync(file, "r");
    const head = Buffer.alloc(2);
    fs.readSync(fd, head, 0, 2, 0);
    fs.closeSync(fd);
    return head.toString("latin1") === "MZ";
  } catch {
    return false;
  }
}

Object.defineProperty(process, "platform", { value: "win32", enumerable: true, configurable: true, writable: false });
const spawn = childProcess.spawn;
childProcess.spawn = function spawnUnderWine(file, args, options) {
  if (typeof file === "string" && isPe(file)) {
    const rest = Array.isArray(args) ? args : [];
    return spawn.call(this, WINE, [file, ...rest], Array.isArray(args) ? options : args);
  }
  return spawn.apply(this, arguments);
};
syncBuiltinESMExports();
