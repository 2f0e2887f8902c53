// The delivery acceptance suite: nothing OpenCode stores is lost or duplicated on its way
// to the server, whatever the network or the process does. The REAL OpenCode binary with
// our plugin (file://<repo>/npm/index.js), scripted models, the contract sync server
// (crates/server, a child process with --control and fault injection), and the native
// CLI's `opencode-sync sync --flush` draining the same durable outbox. After each
// scenario the server's dump is compared with opencode.db by lib/compare.mjs (every
// session field, every message once, every tool call, messageCount = the real count),
// and the outbox must be empty.
//
// Scenarios (each with its own sync server, so faults do not leak between them):
//   1. the server refuses connections for a whole two-turn session; then (a) the next
//      OpenCode start delivers the leftovers, (b) `sync --flush` does;
//   2. 429 + Retry-After: 2 on every 3rd request and 500 on every 5th;
//   3. a hanging server: `opencode run` wall time within 3 s of a run without the
//      plugin, then `sync --flush` completes the data;
//   4. OpenCode SIGKILLed mid-turn, then run again with --session;
//   5. two OpenCode processes in two projects at once plus concurrent `sync --flush`.
//
// Needs: `scripts/build` (npm/wasm/), `cargo build -p opencode-sync-server -p
// opencode-sync-cli` (or OPENCODE_SYNC_SERVER_BIN / OPENCODE_SYNC_CLI_BIN), `bash
// scripts/setup-e2e`. Run: cd tests/e2e && node --test delivery.test.mjs. E2E_KEEP=1 keeps
// every environment under tests/e2e/.work/ (a failed one is always kept, with
// server-dump-*.json, flush-*.json and the OpenCode logs).

import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { runOpencode, readStore, writeConfig, stubConfigDirDeps } from "./lib/opencode.mjs";
import { PLUGIN_URL, writeSyncCredentials } from "./lib/sync-server.mjs";
import { assertStoredAsInDb } from "./lib/compare.mjs";
import {
  CLI_BIN,
  API_KEY,
  TITLE,
  MAX_PLUGIN_OVERHEAD_MS,
  FLUSH_TIMEOUT_S,
  TWO_TURNS,
  ONE_TURN,
  SHORT,
  children,
  scenario,
  configure,
  addProject,
  run,
  assertScriptConsumed,
  syncFlush,
  flushOk,
  outboxDir,
  outbox,
  evidence,
  sessionIds,
  dumpFor,
  assertComplete,
  requestSummary,
  listen,
  cli,
} from "./lib/delivery-kit.mjs";

// ---------------------------------------------------------------------------------------
// 1. Server down for a whole session
// ---------------------------------------------------------------------------------------

test("server refusing connections for a whole two-turn session: the next OpenCode start, or sync --flush, delivers it", async (t) => {
  await scenario(t, async ({ sync, model, env }) => {
    await sync.setFaults([{ kind: "refuse" }]);
    // Two environments, each a two-turn session while the server is down, run side by side.
    const sides = await Promise.all(
      ["next-start", "flush"].map(async (name) => {
        const e = env({ name: `refuse-${name}` });
        const m = await model();
        m.setScript(TWO_TURNS());
        configure(e, sync, m);
        await run(t, e, ["read", "notes", "and", "run", "one"], { label: `${name}-turn-1` });
        const [sessionID] = sessionIds(e);
        await run(t, e, ["and", "one", "more"], { label: `${name}-turn-2`, session: sessionID });
        assertScriptConsumed(m, name);
        return { name, e, m, sessionID };
      }),
    );
    const down = await sync.dump();
    assert.deepEqual(down.users.flatMap((u) => u.sessions), [], "nothing reached the server while it refused connections");
    for (const { name, e } of sides) {
      const box = outbox(e);
      t.diagnostic(`${name}: ${box.records.length} record(s) queued while the server was down`);
      assert.ok(box.records.length >= 3, `${name}: the session and its messages wait in the outbox\n${evidence(e)}`);
      assert.deepEqual(box.claims, [], `${name}: no record left claimed\n${evidence(e)}`);
    }

    await sync.clearFaults();
    const [a, b] = sides;
    // (a) any next `opencode run` in the same environment sends the leftovers.
    a.m.setScript(SHORT());
    await run(t, a.e, ["short", "one"], { label: "next-start-new-session" });
    assertScriptConsumed(a.m, "next start");
    assert.equal(sessionIds(a.e).length, 2, "a new session next to the first");
    // (b) `opencode-sync sync --flush` sends them.
    await flushOk(t, b.e, "flush");

    const { dump } = await assertComplete(a.e, sync, "next-start");
    await assertComplete(b.e, sync, "flush");
    t.diagnostic(`requests: ${requestSummary(dump.requests)}`);
  });
});

// ---------------------------------------------------------------------------------------
// 2. Rate limits and server errors
// ---------------------------------------------------------------------------------------

test("429 with Retry-After: 2 on every 3rd request and 500 on every 5th: complete, Retry-After honoured", async (t) => {
  await scenario(t, async ({ sync, model, env }) => {
    await sync.setFaults([
      { kind: "status", status: 429, every: 3, retryAfter: 2 },
      { kind: "status", status: 500, every: 5 },
    ]);
    const e = env({ name: "throttled" });
    const m = await model();
    m.setScript(TWO_TURNS());
    configure(e, sync, m);
    const phases = [];
    const phase = async (name, fn) => {
      const from = Date.now();
      await fn();
      phases.push({ name, from, to: Date.now() });
    };
    await phase("turn-1", () => run(t, e, ["read", "notes", "and", "run", "one"], { label: "turn-1" }));
    const [sessionID] = sessionIds(e);
    await phase("turn-2", () => run(t, e, ["and", "one", "more"], { label: "turn-2", session: sessionID }));
    assertScriptConsumed(m, "throttled");
    // Whatever the plugin could not deliver before OpenCode exited: the CLI, still throttled.
    await phase("flush", () => flushOk(t, e, "flush"));

    const { dump } = await assertComplete(e, sync, "throttled");
    t.diagnostic(`requests: ${requestSummary(dump.requests)}`);
    const injected = dump.requests.filter((r) => r.injected);
    assert.ok(injected.some((r) => r.status === 429), "some requests were answered 429");
    assert.ok(injected.some((r) => r.status === 500), "some requests were answered 500");
    // Each phase sends one session, and a sender has one request of a session in flight
    // at a time: after a 429 with Retry-After: 2 the next request comes 2 s later at the
    // earliest.
    const gaps = [];
    for (const p of phases) {
      const rs = dump.requests.filter((r) => r.timestamp >= p.from && r.timestamp <= p.to).sort((x, y) => x.timestamp - y.timestamp);
      rs.forEach((r, i) => {
        const next = rs[i + 1];
        if (r.status === 429 && next) {
          const gap = next.timestamp - (r.timestamp + (r.durationMs ?? 0));
          gaps.push(gap);
          assert.ok(gap >= 1900, `${p.name}: a request ${gap} ms after a 429 with Retry-After: 2`);
        }
      });
    }
    t.diagnostic(`gaps after a 429 (ms): ${gaps}`);
    assert.ok(gaps.length > 0, "a sender went on after a 429 (so Retry-After was checked)");
  });
});

// ---------------------------------------------------------------------------------------
// 3. A hanging server
// ---------------------------------------------------------------------------------------

test("a hanging server costs opencode run < 3 s, and sync --flush completes the data afterwards", async (t) => {
  await scenario(t, async ({ sync, model, env }) => {
    const m = await model();
    /** One ONE_TURN run in a fresh environment; with the plugin, the server hangs. */
    const timed = async (plugin, label) => {
      const e = env({ name: label });
      m.setScript(ONE_TURN());
      configure(e, sync, m, { plugin });
      const r = await run(t, e, ["say", "hello"], { label });
      assertScriptConsumed(m, label);
      return { e, wallMs: r.wallMs };
    };
    await sync.setFaults([{ kind: "hang", maxMs: 120_000 }]);
    const baseline = [await timed(false, "hang-baseline")];
    const withPlugin = [await timed(true, "hang-plugin")];
    const overhead = () => Math.min(...withPlugin.map((x) => x.wallMs)) - Math.min(...baseline.map((x) => x.wallMs));
    // dispose() waits its full 2 s for a server that does not answer, so the expected
    // overhead is ~2 s; one run varies by a second or more on a busy machine. Near the
    // limit, both are measured once more and the fastest of each compared (a plugin
    // that really costs 3 s fails both times).
    if (overhead() >= MAX_PLUGIN_OVERHEAD_MS - 500) {
      t.diagnostic(`first pair: without ${baseline[0].wallMs} ms, with ${withPlugin[0].wallMs} ms: measuring again`);
      baseline.push(await timed(false, "hang-baseline-2"));
      withPlugin.push(await timed(true, "hang-plugin-2"));
    }
    t.diagnostic(`wall time against a hanging server: without plugin ${baseline.map((x) => x.wallMs)} ms, with ${withPlugin.map((x) => x.wallMs)} ms, overhead ${overhead()} ms`);
    assert.ok(overhead() < MAX_PLUGIN_OVERHEAD_MS, `the plugin added ${overhead()} ms to opencode run against a hanging server`);

    await sync.clearFaults();
    for (const [i, { e }] of withPlugin.entries()) {
      await flushOk(t, e, `hang-flush-${i + 1}`);
      await assertComplete(e, sync, `hang-${i + 1}`);
    }
    const stored = (await sync.dump()).users.flatMap((u) => u.sessions.map((s) => s.externalId));
    for (const { e } of baseline) {
      for (const id of sessionIds(e)) assert.ok(!stored.includes(id), "nothing is sent without the plugin");
    }
  });
});

// ---------------------------------------------------------------------------------------
// 3b. A server that redirects
// ---------------------------------------------------------------------------------------

test("a server answering 307 to another port: nothing reaches that port, the records stay queued, status and sync --flush name the redirect", async (t) => {
  await scenario(t, async ({ sync, model, env }) => {
    // Whatever connects here was sent where the user never pointed the plugin.
    const trapped = [];
    const trap = await listen((req, res) => {
      trapped.push(`${req.method} ${req.url} auth=${Boolean(req.headers.authorization)}`);
      res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
    });
    let trapConnections = 0;
    trap.server.on("connection", () => trapConnections++);
    const redirected = [];
    const redirector = await listen((req, res) => {
      redirected.push(`${req.method} ${req.url}`);
      req.resume();
      res.writeHead(307, { location: `${trap.url}${req.url}` }).end();
    });
    try {
      const e = env({ name: "redirect" });
      const m = await model();
      m.setScript(ONE_TURN());
      configure(e, { url: redirector.url }, m);
      await run(t, e, ["say", "hello"], { label: "redirect" });
      assertScriptConsumed(m, "redirect");
      t.diagnostic(`the redirector saw: ${JSON.stringify(redirected)}`);
      assert.ok(redirected.some((r) => r.startsWith("POST /sync/")), "the plugin tried to deliver");
      assert.equal(trapConnections, 0, `the redirect was followed: ${JSON.stringify(trapped)}`);
      const box = outbox(e);
      assert.ok(box.records.length >= 3, `the session and its messages stay queued\n${evidence(e)}`);
      assert.deepEqual(box.quarantine, [], "a redirect sets nothing aside");
      assert.deepEqual(box.claims, [], "no record left claimed");

      const status = await cli(e, ["status"]);
      assert.equal(status.code, 1, status.out);
      assert.match(status.out, /HTTP 307 redirect, not followed/, status.out);

      // A redirect does not fix itself: the flush stops at once instead of retrying for 60 s.
      const flush = await syncFlush(t, e, { label: "redirect-flush" });
      assert.equal(flush.code, 1, flush.stdout + flush.stderr);
      assert.ok(flush.wallMs < 10_000, `sync --flush took ${flush.wallMs} ms against a redirect`);
      assert.match(flush.json?.report?.redirected ?? "", /^HTTP 307 redirect, not followed/, flush.stdout);
      assert.equal(trapConnections, 0, `the flush followed the redirect: ${JSON.stringify(trapped)}`);
      assert.equal(outbox(e).records.length, box.records.length, "every record is still queued");
      const after = await cli(e, ["status"]);
      assert.match(after.out, /last error:\s+HTTP 307 redirect, not followed/i, after.out);

      // Pointed at the right server, the same records complete the session.
      configure(e, sync, m);
      await flushOk(t, e, "redirect-fixed");
      await assertComplete(e, sync, "redirect");
    } finally {
      redirector.server.closeAllConnections?.();
      trap.server.closeAllConnections?.();
      await new Promise((r) => redirector.server.close(r));
      await new Promise((r) => trap.server.close(r));
    }
  });
});

// ---------------------------------------------------------------------------------------
// 4. OpenCode killed mid-turn
// ---------------------------------------------------------------------------------------

test("OpenCode SIGKILLed mid-turn while the server is down, then run again with --session: everything it stored arrives once", async (t) => {
  await scenario(t, async ({ sync, model, env }) => {
    const e = env({ name: "killed" });
    const m = await model();
    const STALL_MS = 20_000;
    m.setScript([
      [
        { text: "Running first.", toolCalls: [{ name: "bash", args: { command: "echo before-the-kill", description: "First" } }] },
        // The model stalls here: OpenCode is killed while it waits for this step.
        { text: "This answer never arrives.", delayMs: STALL_MS },
      ],
      [{ text: "Resumed and done." }],
    ]);
    configure(e, sync, m);
    // The server is down during the killed run: what the plugin queued can only be on
    // disk when the process dies.
    await sync.setFaults([{ kind: "refuse" }]);
    let child;
    const killed = runOpencode(e, ["run", "and", "wait"], {
      env: { OPENCODE_RECORDER_FILE: path.join(e.root, "recording-killed.jsonl") },
      onSpawn: (c) => (child = c),
    });
    // Kill once OpenCode asked for the stalled step (the first tool result is stored by
    // then) and the plugin had a moment to queue what it had.
    const deadline = Date.now() + 60_000;
    while (m.stepRequests().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(m.stepRequests().length, 2, "OpenCode reached the stalled step");
    await new Promise((r) => setTimeout(r, 1500));
    process.kill(-child.pid, "SIGKILL");
    const r1 = await killed;
    t.diagnostic(`killed run: ${r1.wallMs} ms, signal ${r1.signal}`);
    assert.equal(r1.signal, "SIGKILL");
    const left = outbox(e);
    t.diagnostic(`after the kill: outbox ${JSON.stringify(left)}`);
    assert.ok(left.records.length >= 3, `the session, the prompt and the finished step wait in the outbox\n${evidence(e)}`);
    assert.deepEqual(left.claims, [], `no record was in flight when the process died\n${evidence(e)}`);
    assert.ok(left.records.some((f) => f.includes(".draft.")), `a draft of the message in progress is on disk\n${evidence(e)}`);
    const [sessionID] = sessionIds(e);
    await sync.clearFaults();

    // Run again in the same session (the stalled step was consumed: turn 2 answers).
    const again = readStore(e, { sessionID });
    t.diagnostic(`opencode.db after the kill: ${again.messages.length} messages (${again.messages.map((x) => `${x.data.role}${x.data.time?.completed ? "" : " incomplete"}`)})`);
    await run(t, e, ["go", "on"], { label: "after-kill", session: sessionID });
    assertScriptConsumed(m, "killed");

    // The assistant message OpenCode had begun when it was killed stays in opencode.db,
    // never completed, and no later event names it: it arrives from the draft the killed
    // plugin kept, which the next start sends because its writer is dead.
    const db = readStore(e);
    const orphans = db.messages.filter((x) => x.data.role === "assistant" && !x.data.time?.completed).map((x) => x.id);
    t.diagnostic(`left incomplete by the kill: ${orphans}`);
    assert.ok(orphans.length >= 1, "the kill left a message in progress (else this test tests nothing)");
    const dump = await dumpFor(e, sync, "killed");
    assertStoredAsInDb(db, dump, sessionID, { context: () => evidence(e) });
    assert.deepEqual(outbox(e), { records: [], claims: [], other: [], quarantine: [] }, `the outbox is empty\n${evidence(e)}`);
    assert.deepEqual(dump.requests.filter((r) => r.rejected || r.status >= 300), [], "every request accepted");
    t.diagnostic(`requests: ${requestSummary(dump.requests)}`);
  });
});

// ---------------------------------------------------------------------------------------
// 5. Concurrency
// ---------------------------------------------------------------------------------------

test("two OpenCode processes in two projects at once, plus a concurrent sync --flush: both complete, nothing twice", async (t) => {
  await scenario(t, async ({ sync, model, env }) => {
    // One user, one machine (one outbox, one opencode.db), two projects. The server
    // refuses connections while both sessions start, so their records pile up in the
    // outbox and both plugins back off; then it comes back, slow, and `sync --flush`
    // runs over and over while both OpenCode processes still run: three senders
    // competing for the same records.
    const e = env({ name: "concurrent" });
    const projects = [addProject(e, "alpha"), addProject(e, "beta")];
    writeSyncCredentials(e, { url: sync.url, apiKey: API_KEY });
    const models = [];
    for (const dir of projects) {
      const m = await model();
      m.setScript([
        [
          {
            text: "Reading and running.",
            toolCalls: [
              { name: "read", args: { filePath: "notes.txt" } },
              { name: "bash", args: { command: "sleep 1 && echo slow", description: "Takes a second" } },
            ],
          },
          { toolCalls: [{ name: "bash", args: { command: "sleep 1 && echo slower", description: "One more" } }] },
          { text: "Both done." },
        ],
      ]);
      writeConfig({ ...e, project: dir }, { baseURL: m.baseURL, location: "project", plugins: [PLUGIN_URL] });
      models.push(m);
    }
    stubConfigDirDeps(e.opencodeConfigDir);
    await sync.setFaults([{ kind: "refuse" }]);

    const waitFor = async (what, cond, ms = 60_000) => {
      const deadline = Date.now() + ms;
      while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.ok(cond(), `timed out waiting for ${what}`);
    };
    let running = 2;
    const start = (i) =>
      run(t, e, ["read", "notes", "and", "run", "two"], { label: `project-${i + 1}`, project: projects[i] }).finally(() => (running -= 1));
    // The second starts once the first is up: two OpenCode processes creating a new
    // opencode.db at the same instant race on its migrations (OpenCode's, not ours).
    const first = start(0);
    await waitFor("the first OpenCode to ask its model", () => models[0].requests.length > 0);
    const second = start(1);
    const runs = Promise.all([first, second]);
    runs.catch(() => {}); // awaited below
    const sessionsQueued = () => new Set(outbox(e).records.map((f) => f.split(".")[1])).size;
    await waitFor("records of both sessions in the outbox", () => sessionsQueued() === 2 || running === 0);
    assert.ok(running === 2, "both OpenCode processes still run");
    await new Promise((r) => setTimeout(r, 1000)); // both plugins fail and back off
    await sync.setFaults([{ kind: "slow", delayMs: 150 }]);

    const flushes = [];
    while (running > 0) {
      flushes.push(await syncFlush(t, e));
      await new Promise((r) => setTimeout(r, 100));
    }
    await runs;
    const delivered = flushes.reduce((n, f) => n + (f.json?.report?.delivered ?? 0), 0);
    t.diagnostic(`${flushes.length} concurrent sync --flush runs delivered ${delivered} record(s); exit codes ${[...new Set(flushes.map((f) => f.code))]}`);
    for (const f of flushes) assert.ok(f.code === 0 || f.code === 1, `sync --flush ran: ${f.code} ${f.stderr}`);
    assert.ok(delivered > 0, "sync --flush delivered records while both OpenCode processes ran");
    models.forEach((m, i) => assertScriptConsumed(m, `project ${i + 1}`));

    // Whatever the plugins could not deliver before exiting goes now.
    await sync.clearFaults();
    await flushOk(t, e, "final");
    const db = readStore(e);
    assert.equal(db.sessions.length, 2, "two sessions");
    assert.deepEqual(db.sessions.map((s) => s.directory).sort(), [...projects].sort(), "one per project");
    const { dump } = await assertComplete(e, sync, "concurrent");
    t.diagnostic(`requests: ${requestSummary(dump.requests)}`);
  });
});
