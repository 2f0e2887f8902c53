// `opencode-sync status` tells the truth about the plugin, and the plugin loses nothing
// silently: the REAL OpenCode with our plugin, the contract server with faults, and the
// native CLI. Each failure the plugin meets is written into the record it concerns, so a
// later `status` names it; an outbox that cannot be written is reported and the history
// is backfilled once it can; a server's Retry-After outlives the OpenCode process that
// heard it.
//
// The read-only and the full outbox are tmpfs mounts over the outbox directory, which
// needs root (CI runs as root); without it those two tests are skipped and say why.
//
// Needs what delivery.test.mjs needs (scripts/build, the contract server and the CLI).

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { runOpencode, readStore } from "./lib/opencode.mjs";
import { assertStoredAsInDb } from "./lib/compare.mjs";
import {
  ONE_TURN,
  TWO_TURNS,
  SHORT,
  children,
  scenario,
  configure,
  run,
  assertScriptConsumed,
  outboxDir,
  outbox,
  evidence,
  sessionIds,
  dumpFor,
  assertComplete,
  requestSummary,
  flushOk,
  cli,
} from "./lib/delivery-kit.mjs";

const SYNC_ROUTES = ["/sync/session", "/sync/message"];
const isRoot = process.getuid?.() === 0;
const canMount = isRoot && spawnSync("mount", ["--version"]).status === 0;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The requests the plugin made to the sync routes, oldest first. */
function syncRequests(dump) {
  return dump.requests.filter((r) => SYNC_ROUTES.includes(r.path)).sort((a, b) => a.timestamp - b.timestamp);
}

test("a plugin killed mid-drain against 503 + Retry-After: 2: status names the 503 and the retry time", async (t) => {
  await scenario(t, async ({ sync, model, env }) => {
    const e = env({ name: "killed-503" });
    const m = await model();
    m.setScript([
      [
        { text: "Running it.", toolCalls: [{ name: "bash", args: { command: "echo hello", description: "Say hello" } }] },
        // OpenCode waits here while the plugin retries; it is killed meanwhile.
        { text: "Never said.", delayMs: 30_000 },
      ],
    ]);
    configure(e, sync, m);
    await sync.setFaults([{ kind: "status", status: 503, retryAfter: 2, paths: SYNC_ROUTES }]);
    let child;
    const running = runOpencode(e, ["say", "hello"], { onSpawn: (c) => (child = c), timeoutMs: 60_000 });
    const deadline = Date.now() + 45_000;
    while (Date.now() < deadline) {
      const refused = syncRequests(await sync.dump()).filter((r) => r.status === 503);
      if (refused.length >= 2) break;
      await sleep(200);
    }
    process.kill(-child.pid, "SIGKILL");
    const r = await running;
    assert.equal(r.signal, "SIGKILL", "OpenCode was killed mid-drain");
    const refused = syncRequests(await sync.dump()).filter((x) => x.status === 503);
    assert.ok(refused.length >= 2, `the plugin tried and was refused: ${requestSummary((await sync.dump()).requests)}`);

    const status = await cli(e, ["status"]);
    t.diagnostic(status.out);
    assert.match(status.out, /Last error:\s+HTTP 503/, status.out);
    assert.match(status.out, /Next try:\s+at \d\d:\d\d:\d\d UTC \((in \d+ s|due now)\), as the server asked/, status.out);
    const json = JSON.parse((await cli(e, ["status", "--json"])).out);
    assert.match(json.outbox.lastError, /^HTTP 503/);
    assert.ok(json.outbox.nextTryAt > 0, JSON.stringify(json.outbox));

    await sync.clearFaults();
    await flushOk(t, e, "after-503");
    const db = readStore(e);
    const dump = await dumpFor(e, sync, "killed-503");
    const [sessionID] = sessionIds(e);
    const stored = dump.users.flatMap((u) => u.sessions).find((s) => s.externalId === sessionID);
    assert.ok(stored, "the session arrived after the flush");
    assert.ok(stored.messages.length >= 1 && db.messages.length >= 1);
  });
});

test("429 with Retry-After: 20: no request to that server before 20 s, across OpenCode processes", async (t) => {
  await scenario(t, async ({ sync, model, env }) => {
    const e = env({ name: "retry-after-20" });
    const m = await model();
    configure(e, sync, m);
    await sync.setFaults([{ kind: "status", status: 429, retryAfter: 20, paths: SYNC_ROUTES }]);
    // Three short runs, one after another (as a user does): each new process reads the
    // records the last one left, with the wait the server asked for.
    for (const label of ["first", "second", "third"]) {
      m.setScript(SHORT());
      await run(t, e, ["short", "one", label], { label });
      assertScriptConsumed(m, label);
    }
    const requests = syncRequests(await sync.dump());
    t.diagnostic(`requests: ${JSON.stringify(requests.map((r) => [r.timestamp - requests[0].timestamp, r.status]))}`);
    const first429 = requests.find((r) => r.status === 429);
    assert.ok(first429, "the server answered 429");
    const early = requests.filter((r) => r.timestamp > first429.timestamp + 50 && r.timestamp < first429.timestamp + 20_000);
    assert.deepEqual(early, [], "a request within the 20 s the server asked for");
    assert.ok(outbox(e).records.length >= 3, `everything waits in the outbox\n${evidence(e)}`);

    await sync.clearFaults();
    const waitMs = first429.timestamp + 20_000 - Date.now();
    if (waitMs > 0) await sleep(waitMs + 200);
    await flushOk(t, e, "after-429");
    await assertComplete(e, sync, "retry-after-20");
  });
});

/**
 * A tmpfs over the environment's outbox directory for the length of `fn`: read-only, or
 * so small that it fills after a few records.
 */
async function withOutboxMount(e, options, fn) {
  const dir = outboxDir(e);
  fs.mkdirSync(dir, { recursive: true });
  execFileSync("mount", ["-t", "tmpfs", "-o", options, "tmpfs", dir]);
  try {
    return await fn(dir);
  } finally {
    for (let i = 0; i < 20; i++) {
      if (spawnSync("umount", [dir]).status === 0) break;
      await sleep(100);
    }
  }
}

/** A two-turn session during a 20 s outage with an outbox that cannot take the records. */
async function outageWithUnwritableOutbox(t, { sync, model, env }, { name, mountOptions, fill }) {
  const e = env({ name });
  const m = await model();
  configure(e, sync, m);
  await sync.setFaults([{ kind: "refuse" }]);
  const outageStarted = Date.now();
  let statusDuring;
  await withOutboxMount(e, mountOptions, async (dir) => {
    if (fill) fill(dir);
    m.setScript(TWO_TURNS());
    await run(t, e, ["read", "notes", "and", "run", "one"], { label: `${name}-turn-1` });
    const [sessionID] = sessionIds(e);
    await run(t, e, ["and", "one", "more"], { label: `${name}-turn-2`, session: sessionID });
    assertScriptConsumed(m, name);
    statusDuring = await cli(e, ["status"]);
  });
  t.diagnostic(statusDuring.out);
  assert.match(statusDuring.out, /Outbox:\s+NOT WRITABLE/, `status says what could not be queued\n${statusDuring.out}`);
  const log = evidence(e);
  assert.match(log, /could not write .* to the outbox/, `the plugin said so once\n${log}`);

  // The outage lasts 20 s; then the server is back and the user runs `sync`.
  const left = outageStarted + 20_000 - Date.now();
  if (left > 0) await sleep(left);
  await sync.clearFaults();
  const backfill = await cli(e, ["sync", "--json"]);
  assert.equal(backfill.code, 0, backfill.out);
  const db = readStore(e);
  const dump = await dumpFor(e, sync, name);
  for (const id of db.sessions.map((s) => s.id)) {
    assertStoredAsInDb(db, dump, id, { context: () => evidence(e) });
  }
}

test("a read-only outbox during a 20 s outage: status says so, and sync then delivers every fact", { skip: !canMount && "mounting a tmpfs over the outbox needs root" }, async (t) => {
  await scenario(t, (ctx) => outageWithUnwritableOutbox(t, ctx, { name: "read-only", mountOptions: "ro,size=1m" }));
});

test("a full outbox during a 20 s outage: status says so, and sync then delivers every fact", { skip: !canMount && "mounting a tmpfs over the outbox needs root" }, async (t) => {
  await scenario(t, (ctx) =>
    outageWithUnwritableOutbox(t, ctx, {
      name: "full",
      mountOptions: "size=64k",
      // Fill it to the last few blocks: the first records fit, the rest do not.
      fill: (dir) => {
        try {
          fs.writeFileSync(path.join(dir, "filler"), Buffer.alloc(60 * 1024, 0x20));
        } catch {
          // full already
        }
      },
    }),
  );
});

// Keep the kit's child registry referenced (it kills strays at exit).
void children;

test("OpenCode SIGKILLed mid-turn, then sync --flush: the draft arrives and the session's totals equal OpenCode's store", async (t) => {
  await scenario(t, async ({ sync, model, env }) => {
    const e = env({ name: "killed-flush" });
    const m = await model();
    m.setScript([
      [
        {
          text: "Running first.",
          toolCalls: [{ name: "bash", args: { command: "echo before-the-kill", description: "First" } }],
          usage: { prompt: 1300, completion: 50, cached: 100 },
        },
        // The model stalls here: OpenCode is killed while it waits for this step.
        { text: "This answer never arrives.", delayMs: 30_000 },
      ],
    ]);
    configure(e, sync, m);
    // Down during the killed run: nothing can have been delivered before the kill.
    await sync.setFaults([{ kind: "refuse" }]);
    let child;
    const killed = runOpencode(e, ["run", "and", "wait"], { onSpawn: (c) => (child = c) });
    const deadline = Date.now() + 60_000;
    while (m.stepRequests().length < 2 && Date.now() < deadline) await sleep(100);
    assert.equal(m.stepRequests().length, 2, "OpenCode reached the stalled step");
    await sleep(1500);
    process.kill(-child.pid, "SIGKILL");
    assert.equal((await killed).signal, "SIGKILL");
    assert.ok(outbox(e).records.some((f) => f.includes(".draft.")), `a draft is on disk\n${evidence(e)}`);
    await sync.clearFaults();

    const flush = await flushOk(t, e, "killed-flush");
    assert.equal(flush.json?.finalTotals?.sent, 1, JSON.stringify(flush.json));
    const db = readStore(e);
    const [sessionID] = sessionIds(e);
    const row = db.sessions.find((s) => s.id === sessionID);
    assert.ok(row.cost > 0 && row.tokens_input > 0, "OpenCode counted the finished step");
    const dump = await dumpFor(e, sync, "killed-flush");
    assertStoredAsInDb(db, dump, sessionID, { context: () => evidence(e) });
  });
});
