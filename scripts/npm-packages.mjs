#!/usr/bin/env node
// The npm packages, from one version (the workspace Cargo.toml's) and one list of
// platforms (pkg-template/targets.json). Used by scripts/pack and by the packaging test;
// release tooling runs `stamp` once per target with that target's binary.
//
//   node scripts/npm-packages.mjs check                 versions and names in step? (exit 1 if not)
//   node scripts/npm-packages.mjs sync-version          rewrite npm/package.json to match
//   node scripts/npm-packages.mjs host                  the package for this machine (rustc's host)
//   node scripts/npm-packages.mjs stamp PKG DIR [BIN]   write package PKG into DIR (with BIN as its binary)
//   node scripts/npm-packages.mjs pack BIN              stage and `npm pack` the plugin and this
//                                                       machine's CLI package into dist/, print sizes,
//                                                       and describe them in dist/packages.json
//   node scripts/npm-packages.mjs pack-all              the same for the plugin and every platform
//                                                       package, from the cross-built binaries
//   node scripts/npm-packages.mjs cross-targets         the Rust target of every platform package

import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, cpSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const TEMPLATE_DIR = join(ROOT, "pkg-template");
export const DIST = join(ROOT, "dist");
const MAIN_JSON = join(ROOT, "npm", "package.json");

/** Size goals, in bytes (the README's Packaging section). */
export const GOALS = { pluginTarball: 200 * 1000, cliBinary: 8 * 1000 * 1000 };

const readJson = (file) => JSON.parse(readFileSync(file, "utf8"));

/** The workspace version: `version` under `[workspace.package]` in Cargo.toml. */
export function cargoVersion() {
  const toml = readFileSync(join(ROOT, "Cargo.toml"), "utf8");
  const section = toml.split(/^\[workspace\.package\]\s*$/m)[1]?.split(/^\[/m)[0] ?? "";
  const version = section.match(/^version\s*=\s*"([^"]+)"/m)?.[1];
  if (!version) throw new Error("Cargo.toml has no version under [workspace.package]");
  return version;
}

/** Every per-platform package: {package, os, cpu, libc?, rust, binary}. */
export function targets() {
  return readJson(join(TEMPLATE_DIR, "targets.json")).targets;
}

export function mainManifest() {
  return readJson(MAIN_JSON);
}

/** What is out of step between Cargo.toml, npm/package.json and targets.json ([] when nothing). */
export function problems() {
  const version = cargoVersion();
  const main = mainManifest();
  const out = [];
  if (main.version !== version) out.push(`npm/package.json has version ${main.version}, Cargo.toml ${version}`);
  const optional = main.optionalDependencies ?? {};
  for (const t of targets()) {
    if (!t.package.startsWith(`${main.name}-`)) out.push(`${t.package} is not named ${main.name}-<os>-<arch>[-musl]`);
    if (!(t.package in optional)) out.push(`npm/package.json's optionalDependencies lack ${t.package}`);
    else if (optional[t.package] !== version) out.push(`npm/package.json wants ${t.package}@${optional[t.package]}, not ${version}`);
  }
  for (const name of Object.keys(optional)) {
    if (!targets().some((t) => t.package === name)) out.push(`npm/package.json's optionalDependencies name ${name}, which targets.json does not list`);
  }
  return out;
}

/** Rewrites npm/package.json's version and optionalDependencies from Cargo.toml and targets.json. */
export function syncVersion() {
  const version = cargoVersion();
  const main = mainManifest();
  main.version = version;
  main.optionalDependencies = Object.fromEntries(targets().map((t) => [t.package, version]).sort(([a], [b]) => a.localeCompare(b)));
  writeFileSync(MAIN_JSON, JSON.stringify(main, null, 2) + "\n");
  return version;
}

function describe(t) {
  const os = { linux: "Linux", darwin: "macOS", win32: "Windows" }[t.os] ?? t.os;
  return `${os} ${t.cpu}${t.libc ? ` (${t.libc})` : ""}`;
}

/** The package.json of one platform package, stamped from pkg-template/package.json. */
export function platformManifest(t, version = cargoVersion()) {
  const m = readJson(join(TEMPLATE_DIR, "package.json"));
  m.name = t.package;
  m.version = version;
  m.description = m.description.replace("DESCRIPTION", describe(t));
  m.os = [t.os];
  m.cpu = [t.cpu];
  if (t.libc) m.libc = [t.libc];
  else delete m.libc;
  return m;
}

/** Writes platform package `name` into `dir`: package.json, README.md and, given one, bin/<binary>. */
export function stamp(name, dir, binary, version = cargoVersion()) {
  const t = targets().find((x) => x.package === name);
  if (!t) throw new Error(`${name} is not in pkg-template/targets.json`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, "bin"), { recursive: true });
  writeFileSync(join(dir, "package.json"), JSON.stringify(platformManifest(t, version), null, 2) + "\n");
  const readme = readFileSync(join(TEMPLATE_DIR, "README.md"), "utf8")
    .replaceAll("PACKAGE", t.package)
    .replaceAll("DESCRIPTION", describe(t))
    .replaceAll("RUST", t.rust);
  writeFileSync(join(dir, "README.md"), readme);
  copyFileSync(join(ROOT, "LICENSE"), join(dir, "LICENSE"));
  if (binary) {
    copyFileSync(binary, join(dir, "bin", t.binary));
    chmodSync(join(dir, "bin", t.binary), 0o755);
  }
  return t;
}

/** The target this machine builds natively: rustc's host triple, looked up in targets.json. */
export function hostTarget() {
  const host = execFileSync("rustc", ["-vV"], { encoding: "utf8" }).match(/^host: (\S+)$/m)?.[1];
  const t = targets().find((x) => x.rust === host);
  if (!t) throw new Error(`no package in pkg-template/targets.json for this machine's Rust target ${host}`);
  return t;
}

/** `npm pack DIR` into dist/; returns npm's report ({filename, size, files, ...}). */
function npmPack(dir) {
  const out = execFileSync("npm", ["pack", "--json", "--pack-destination", DIST, dir], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, npm_config_loglevel: "error", npm_config_fund: "false", npm_config_update_notifier: "false" },
  });
  return JSON.parse(out)[0];
}

const kb = (n) => `${(n / 1000).toFixed(1)} KB`;
const mb = (n) => `${(n / 1e6).toFixed(2)} MB`;

/** The README's sections for those who build the project, not for those who install it. */
const DEVELOPER_SECTIONS = new Set(["Two commands", "Layout", "Packaging", "Benchmarks"]);

/**
 * The plugin package's README: the repository's README without its developer sections
 * (building, testing, packaging, benchmarks) and its status note, which a user installing
 * from npm does not need (and which would cost the tarball a tenth of its size).
 */
export function packageReadme(text = readFileSync(join(ROOT, "README.md"), "utf8")) {
  const [preamble, ...sections] = text.split(/^(?=## )/m);
  const intro = preamble.replace(/^> Status:[^\n]*\n(?:>[^\n]*\n)*\n?/m, "");
  const kept = sections.filter((s) => !DEVELOPER_SECTIONS.has(s.slice(3, s.indexOf("\n")).trim()));
  const url = mainManifest().repository?.url?.replace(/^git\+/, "").replace(/\.git$/, "");
  const pointer = `## Building from source\n\nBuilding, testing, packaging and benchmarks: see the README of the repository${url ? ` (${url})` : ""}.\n`;
  return [intro, ...kept, pointer].join("");
}

/**
 * Stages the plugin package (npm/ plus the README) and this machine's CLI package (with
 * `binary`), packs both into dist/ and prints the sizes. Returns {main, platform, binary}
 * with each tarball's path and size.
 */
export function pack(binary, { quiet = false } = {}) {
  const bad = problems();
  if (bad.length) throw new Error(`versions out of step:\n  ${bad.join("\n  ")}\nrun: scripts/pack --sync-version`);
  const version = cargoVersion();
  const main = mainManifest();
  const host = hostTarget();
  rmSync(DIST, { recursive: true, force: true });
  const stage = join(DIST, "stage");

  const mainDir = join(stage, main.name);
  cpSync(join(ROOT, "npm"), mainDir, { recursive: true });
  writeFileSync(join(mainDir, "README.md"), packageReadme());
  copyFileSync(join(ROOT, "LICENSE"), join(mainDir, "LICENSE"));
  const mainReport = npmPack(mainDir);
  const packed = new Set(mainReport.files.map((f) => f.path));
  const missing = main.files.filter((f) => !packed.has(f));
  if (missing.length) throw new Error(`the plugin tarball lacks ${missing.join(", ")} (run scripts/build)`);

  const platformDir = join(stage, host.package);
  stamp(host.package, platformDir, binary, version);
  const platformReport = npmPack(platformDir);
  rmSync(stage, { recursive: true, force: true });

  const result = {
    version,
    host: host.package,
    main: { file: join(DIST, mainReport.filename), size: mainReport.size, unpacked: mainReport.unpackedSize },
    platform: { file: join(DIST, platformReport.filename), size: platformReport.size },
    binary: { file: binary, size: statSync(binary).size },
  };
  const mark = (size, goal) => (size < goal ? "ok" : "OVER THE GOAL");
  if (quiet) return result;
  console.log(`[pack] version ${version}, this machine's CLI package: ${host.package} (${host.rust})`);
  console.log(
    `[pack] plugin tarball  dist/${mainReport.filename}: ${kb(result.main.size)} (${kb(result.main.unpacked)} unpacked; goal < ${kb(GOALS.pluginTarball)}: ${mark(result.main.size, GOALS.pluginTarball)})`,
  );
  console.log(
    `[pack] CLI binary      ${host.binary}: ${mb(result.binary.size)} stripped (goal < ${mb(GOALS.cliBinary)}: ${mark(result.binary.size, GOALS.cliBinary)})`,
  );
  console.log(`[pack] CLI tarball     dist/${platformReport.filename}: ${mb(result.platform.size)}`);
  // What was packed, for the packaging test and release tooling.
  writeFileSync(join(DIST, "packages.json"), JSON.stringify(result, null, 2) + "\n");
  return result;
}

/** Where `scripts/pack --all` (cargo zigbuild --profile release-cross) leaves a target's binary. */
export function crossBinary(t, targetDir = process.env.CARGO_TARGET_DIR || join(ROOT, "target")) {
  return join(resolve(targetDir), t.rust, "release-cross", t.binary);
}

/**
 * `scripts/pack --all`: the plugin and every platform package of targets.json, each with
 * its cross-built binary (crossBinary), packed into dist/ with sizes. dist/packages.json
 * keeps the host's entries (`host`, `platform`, `binary`) as pack() writes them, and adds
 * `platforms`: {package: {rust, file, size, binary: {file, size}}}.
 */
export function packAll() {
  const bad = problems();
  if (bad.length) throw new Error(`versions out of step:\n  ${bad.join("\n  ")}\nrun: scripts/pack --sync-version`);
  const all = targets();
  const missing = all.filter((t) => !statSafe(crossBinary(t)));
  if (missing.length) throw new Error(`not built: ${missing.map((t) => crossBinary(t)).join(", ")} (scripts/pack --all builds them)`);
  const host = hostTarget();
  const result = pack(crossBinary(host), { quiet: true });
  const stage = join(DIST, "stage");
  result.platforms = {};
  for (const t of all) {
    const binary = crossBinary(t);
    let report;
    if (t.package === host.package) {
      report = { filename: basename(result.platform.file), size: result.platform.size };
    } else {
      const dir = join(stage, t.package);
      stamp(t.package, dir, binary, result.version);
      report = npmPack(dir);
    }
    result.platforms[t.package] = { rust: t.rust, file: join(DIST, report.filename), size: report.size, binary: { file: binary, size: statSync(binary).size } };
  }
  rmSync(stage, { recursive: true, force: true });
  const mark = (size, goal) => (size < goal ? "ok" : "OVER THE GOAL");
  console.log(`[pack] version ${result.version}: the plugin and ${all.length} platform packages`);
  console.log(`[pack] plugin tarball  dist/${basename(result.main.file)}: ${kb(result.main.size)} (goal < ${kb(GOALS.pluginTarball)}: ${mark(result.main.size, GOALS.pluginTarball)})`);
  for (const [name, p] of Object.entries(result.platforms)) {
    console.log(`[pack] ${name.padEnd(40)} ${basename(p.file).padEnd(52)} ${mb(p.size)}  binary ${mb(p.binary.size)} (${mark(p.binary.size, GOALS.cliBinary)})`);
  }
  writeFileSync(join(DIST, "packages.json"), JSON.stringify(result, null, 2) + "\n");
  const over = Object.entries(result.platforms).filter(([, p]) => p.binary.size >= GOALS.cliBinary);
  if (over.length) throw new Error(`binaries over the ${mb(GOALS.cliBinary)} goal: ${over.map(([n]) => n).join(", ")}`);
  return result;
}

function statSafe(file) {
  try {
    return statSync(file);
  } catch {
    return null;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const [command, ...args] = process.argv.slice(2);
  try {
    if (command === "check") {
      const bad = problems();
      if (bad.length) {
        console.error(`versions out of step:\n  ${bad.join("\n  ")}\nrun: scripts/pack --sync-version`);
        process.exit(1);
      }
      console.log(`[pack] version ${cargoVersion()} everywhere; ${targets().length} platform packages`);
    } else if (command === "sync-version") {
      console.log(`[pack] npm/package.json set to ${syncVersion()} (plugin and every platform package)`);
    } else if (command === "host") {
      console.log(hostTarget().package);
    } else if (command === "stamp" && args.length >= 2) {
      stamp(args[0], resolve(args[1]), args[2] && resolve(args[2]));
    } else if (command === "pack-all" && args.length === 0) {
      packAll();
    } else if (command === "cross-targets") {
      console.log(targets().map((t) => t.rust).join("\n"));
    } else if (command === "pack" && args.length === 1) {
      pack(resolve(args[0]));
    } else {
      console.error("usage: node scripts/npm-packages.mjs check | sync-version | host | stamp PKG DIR [BIN] | pack BIN | pack-all | cross-targets");
      process.exit(2);
    }
  } catch (error) {
    console.error(`error: ${error.message}`);
    process.exit(1);
  }
}
