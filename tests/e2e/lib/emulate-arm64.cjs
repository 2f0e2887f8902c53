// Test-only preload (node --require): makes this x64 Node look like an arm64 Linux one to
// the `opencode-sync` launcher, so the packaging suite can check that the launcher finds
// and runs the arm64 package that `npm install --cpu=arm64` put in place. This machine has
// no binfmt_misc registration for aarch64 (a VM without it mounted), so what binfmt would
// do is done here: an aarch64 ELF handed to child_process.spawn runs through
// `qemu-aarch64 -L /usr/aarch64-linux-gnu` (Debian's qemu-user and libc6-arm64-cross,
// installed by scripts/setup-cross). Nothing else changes.

"use strict";
const childProcess = require("node:child_process");
const fs = require("node:fs");
const { syncBuiltinESMExports } = require("node:module");

const SYSROOT = "/usr/aarch64-linux-gnu";
const EM_AARCH64 = 183;

function isAarch64Elf(file) {
  try {
    const fd = fs.openSync(file, "r");
    const head = Buffer.alloc(20);
    fs.readSync(fd, head, 0, 20, 0);
    fs.closeSync(fd);
    return head.readUInt32BE(0) === 0x7f454c46 && head.readUInt16LE(18) === EM_AARCH64;
  } catch {
    return false;
  }
}

Object.defineProperty(process, "arch", { value: "arm64", enumerable: true, configurable: true, writable: false });
const spawn = childProcess.spawn;
childProcess.spawn = function spawnEmulated(file, args, options) {
  if (typeof file === "string" && isAarch64Elf(file)) {
    const rest = Array.isArray(args) ? args : [];
    return spawn.call(this, "qemu-aarch64", ["-L", SYSROOT, file, ...rest], Array.isArray(args) ? options : args);
  }
  return spawn.apply(this, arguments);
};
syncBuiltinESMExports();
