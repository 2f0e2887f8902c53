// A tiny npm registry on loopback, for installing our packed tarballs the way users will
// get them once published (`npm install -g opencode-sync-plugin`), with no network: it
// answers `GET /<name>` with a packument and `GET /-/<file>.tgz` with a tarball, and 404
// to everything else (so a name it does not serve behaves like an unpublished one).
// Every request is logged, so a test can see which packages npm chose to download.

import crypto from "node:crypto";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";

/** The package.json inside an npm tarball. */
export function manifestOf(tarball) {
  return JSON.parse(execFileSync("tar", ["-xzOf", tarball, "package/package.json"], { encoding: "utf8" }));
}

/**
 * Starts the registry. `packages`: [{ manifest, tarball? }]; a package without a tarball
 * is listed (npm can read its os/cpu/libc) but its tarball URL answers 404.
 * Resolves with { url, requests: [{method, path, status}], tarballRequests(), close() }.
 */
export async function startNpmRegistry({ packages = [] } = {}) {
  const tarballs = new Map(); // "/-/<file>" -> bytes
  const packuments = new Map(); // name -> packument (without tarball URLs' origin)
  for (const { manifest, tarball } of packages) {
    const file = `${manifest.name.replace("/", "-")}-${manifest.version}.tgz`;
    const dist = { tarball: `/-/${file}` };
    if (tarball) {
      const bytes = fs.readFileSync(tarball);
      tarballs.set(dist.tarball, bytes);
      dist.integrity = `sha512-${crypto.createHash("sha512").update(bytes).digest("base64")}`;
      dist.shasum = crypto.createHash("sha1").update(bytes).digest("hex");
    }
    packuments.set(manifest.name, {
      name: manifest.name,
      "dist-tags": { latest: manifest.version },
      versions: { [manifest.version]: { ...manifest, _id: `${manifest.name}@${manifest.version}`, dist } },
    });
  }

  const requests = [];
  let origin = "";
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url, "http://x").pathname);
    const send = (status, body, type = "application/json") => {
      requests.push({ method: req.method, path: url, status });
      res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body) });
      res.end(req.method === "HEAD" ? undefined : body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return send(404, '{"error":"not found"}');
    if (tarballs.has(url)) return send(200, tarballs.get(url), "application/octet-stream");
    const packument = packuments.get(url.slice(1));
    if (!packument) return send(404, '{"error":"not found"}');
    const withOrigin = structuredClone(packument);
    for (const v of Object.values(withOrigin.versions)) v.dist.tarball = `${origin}${v.dist.tarball}`;
    return send(200, JSON.stringify(withOrigin));
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  origin = `http://127.0.0.1:${server.address().port}`;
  return {
    url: `${origin}/`,
    requests,
    /** Names of the packages whose tarball npm asked for. */
    tarballRequests: () => requests.filter((r) => r.path.startsWith("/-/")).map((r) => path.basename(r.path)),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
