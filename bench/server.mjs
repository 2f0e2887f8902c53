// Starts the release contract server (`opencode-sync-server --control`) on loopback for a
// benchmark; resolves with {child, url, controlUrl}. Its stdin stays a pipe, so it stops
// when the benchmark process goes away.
import { spawn } from "node:child_process";

export function startServer(serverBin, apiKey) {
  const child = spawn(serverBin, ["--api-key", apiKey, "--control"], { stdio: ["pipe", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error("server did not start in 10 s")), 10_000);
    child.stdout.on("data", (d) => {
      buf += d;
      const nl = buf.indexOf("\n");
      if (nl >= 0) {
        clearTimeout(timer);
        resolve({ child, ...JSON.parse(buf.slice(0, nl)) });
      }
    });
    child.on("exit", (code) => reject(new Error(`server exited ${code}`)));
  });
}
