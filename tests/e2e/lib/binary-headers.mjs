// Reads what an executable's headers say about where it can run, for binaries this
// machine cannot run (macOS, Windows on arm64): a Mach-O's CPU, minimum macOS version,
// code signature and the dylibs it loads; a PE's machine, subsystem and imported DLLs.
// Only the fields the platform suite checks are parsed; anything unexpected throws.

import fs from "node:fs";

const MH_MAGIC_64 = 0xfeedfacf;
const MH_EXECUTE = 2;
const CPU = { 0x01000007: "x86_64", 0x0100000c: "arm64" };
const LC_LOAD_DYLIB = 0xc;
const LC_LOAD_WEAK_DYLIB = 0x80000018;
const LC_REEXPORT_DYLIB = 0x8000001f;
const LC_LAZY_LOAD_DYLIB = 0x20;
const LC_CODE_SIGNATURE = 0x1d;
const LC_VERSION_MIN_MACOSX = 0x24;
const LC_BUILD_VERSION = 0x32;
const PLATFORM_MACOS = 1;

const cstr = (buf, at) => buf.toString("latin1", at, buf.indexOf(0, at));
const version = (v) => `${v >>> 16}.${(v >>> 8) & 0xff}${v & 0xff ? `.${v & 0xff}` : ""}`;

/**
 * A 64-bit Mach-O executable's facts: { cpu, fileType, minos, platform, dylibs, signed }.
 * `minos` is "11.0" style, from LC_BUILD_VERSION (or the older LC_VERSION_MIN_MACOSX).
 */
export function machO(file) {
  const buf = fs.readFileSync(file);
  const magic = buf.readUInt32LE(0);
  if (magic !== MH_MAGIC_64) throw new Error(`${file}: not a 64-bit little-endian Mach-O (magic 0x${magic.toString(16)})`);
  const out = {
    magic: "MH_MAGIC_64",
    cpu: CPU[buf.readUInt32LE(4)] ?? `cputype 0x${buf.readUInt32LE(4).toString(16)}`,
    executable: buf.readUInt32LE(12) === MH_EXECUTE,
    minos: null,
    platform: null,
    dylibs: [],
    signed: false,
  };
  const ncmds = buf.readUInt32LE(16);
  let at = 32;
  for (let i = 0; i < ncmds; i++) {
    const cmd = buf.readUInt32LE(at);
    const size = buf.readUInt32LE(at + 4);
    if (size < 8 || at + size > buf.length) throw new Error(`${file}: load command ${i} is cut short`);
    if (cmd === LC_BUILD_VERSION) {
      out.platform = buf.readUInt32LE(at + 8) === PLATFORM_MACOS ? "macos" : `platform ${buf.readUInt32LE(at + 8)}`;
      out.minos = version(buf.readUInt32LE(at + 12));
    } else if (cmd === LC_VERSION_MIN_MACOSX) {
      out.platform = "macos";
      out.minos = version(buf.readUInt32LE(at + 8));
    } else if ([LC_LOAD_DYLIB, LC_LOAD_WEAK_DYLIB, LC_REEXPORT_DYLIB, LC_LAZY_LOAD_DYLIB].includes(cmd)) {
      out.dylibs.push(cstr(buf, at + buf.readUInt32LE(at + 8)));
    } else if (cmd === LC_CODE_SIGNATURE) {
      out.signed = true;
    }
    at += size;
  }
  return out;
}

const MACHINE = { 0x8664: "x64", 0xaa64: "arm64", 0x14c: "x86" };
const SUBSYSTEM = { 2: "windows-gui", 3: "console" };

/** A PE executable's facts: { machine, pe32plus, subsystem, dlls }. */
export function pe(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString("latin1", 0, 2) !== "MZ") throw new Error(`${file}: no MZ header`);
  const peAt = buf.readUInt32LE(0x3c);
  if (buf.toString("latin1", peAt, peAt + 4) !== "PE\0\0") throw new Error(`${file}: no PE signature`);
  const coff = peAt + 4;
  const sections = buf.readUInt16LE(coff + 2);
  const optSize = buf.readUInt16LE(coff + 16);
  const opt = coff + 20;
  const pe32plus = buf.readUInt16LE(opt) === 0x20b;
  if (!pe32plus) throw new Error(`${file}: not PE32+`);
  const importRva = buf.readUInt32LE(opt + 112 + 8); // data directory 1: the import table
  const table = opt + optSize;
  const toOffset = (rva) => {
    for (let i = 0; i < sections; i++) {
      const s = table + i * 40;
      const va = buf.readUInt32LE(s + 12);
      const size = Math.max(buf.readUInt32LE(s + 8), buf.readUInt32LE(s + 16));
      if (rva >= va && rva < va + size) return rva - va + buf.readUInt32LE(s + 20);
    }
    throw new Error(`${file}: RVA 0x${rva.toString(16)} is in no section`);
  };
  const dlls = [];
  if (importRva) {
    for (let d = toOffset(importRva); buf.readUInt32LE(d + 12) !== 0; d += 20) dlls.push(cstr(buf, toOffset(buf.readUInt32LE(d + 12))));
  }
  return {
    machine: MACHINE[buf.readUInt16LE(coff)] ?? `machine 0x${buf.readUInt16LE(coff).toString(16)}`,
    pe32plus,
    subsystem: SUBSYSTEM[buf.readUInt16LE(opt + 68)] ?? `subsystem ${buf.readUInt16LE(opt + 68)}`,
    dlls,
  };
}
