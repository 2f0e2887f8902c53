// A running `opencode-sync serve` as the suites see it: its output collected, and the
// wait for its banner (the serve and scripts/start suites both start one).
import assert from "node:assert/strict";

/** Collects a child's stdout and stderr; `exited` resolves with `{code, signal}`. */
export function collectOutput(child) {
  const out = { stdout: "", stderr: "" };
  child.stdout.setEncoding("utf8").on("data", (d) => (out.stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d) => (out.stderr += d));
  out.exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return out;
}

/**
 * Waits (`timeoutMs` at most) until `child` (collected by `collectOutput` as `out`) printed
 * the serve banner; rejects when it exits or fails to start first. Resolves with the
 * `{url, port}` the banner names. `what` names the command in the errors.
 */
export async function waitForServeBanner(child, out, { timeoutMs, what }) {
  await new Promise((resolve, reject) => {
    const output = () => `\n--- stdout ---\n${out.stdout}\n--- stderr ---\n${out.stderr}`;
    const timer = setTimeout(() => reject(new Error(`${what} did not start the server in ${timeoutMs / 1000} s${output()}`)), timeoutMs);
    const check = () => {
      if (out.stdout.includes("Stop with Ctrl-C.")) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on("data", check);
    check();
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    out.exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code ?? signal}) before the server started${output()}`));
    });
  });
  const m = out.stdout.match(/listening on (http:\/\/127\.0\.0\.1:(\d+))/);
  assert.ok(m, `the banner names the URL:\n${out.stdout}`);
  return { url: m[1], port: Number(m[2]) };
}
