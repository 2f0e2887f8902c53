// Tests of the OpenCode 2 test host (lib/v2-host.mjs) itself, with the tiny fixture plugins
// of fixtures/v2/: that it loads, refuses, scopes and feeds plugins as the facts in
// shared/opencode-host-v2.md say V2 does, so the plugin's V2 side can be tested
// against it. Also checks that the V2 stream generator (lib/v2-streams.mjs) agrees with
// itself: its events, its expected facts and its opencode.db rows. Runs under Node
// (`npm test`) and under Bun (`node_modules/.bin/bun test ./v2-host.test.mjs`: Bun runs
// node:test files only through its own runner).

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

import { createV2Host, normalizePluginEntries, FILE_PATH_WARNING, LOAD_ERROR_MESSAGE } from "./lib/v2-host.mjs";
import { fixtureCalls } from "./fixtures/v2/registry.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FIXTURES = path.join(HERE, "fixtures", "v2");
const fixture = (name) => path.join(FIXTURES, name);
const fixtureUrl = (name) => pathToFileURL(fixture(name)).href;

/** Two plain project directories (non-git: project "global") and a cleanup. */
function twoProjects(t) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "v2host-"));
  const a = path.join(root, "proj-a");
  const b = path.join(root, "proj-b");
  fs.mkdirSync(a);
  fs.mkdirSync(b);
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  return { root, a: { directory: a }, b: { directory: b } };
}

/** A host that is shut down after the test, and the fixture calls made from now on. */
function startHost(t, options) {
  const host = createV2Host({ packagesDir: path.join(FIXTURES, "packages"), ...options });
  t.after(() => host.shutdown());
  const from = fixtureCalls.length;
  const calls = (plugin, call) => fixtureCalls.slice(from).filter((c) => (!plugin || c.plugin === plugin) && (!call || c.call === call));
  return { host, calls };
}

test("a V1-only plugin is refused with V2's LoadError and never called", async (t) => {
  const { a } = twoProjects(t);
  const { host, calls } = startHost(t);
  for (const name of ["v1-only", "v1-object"]) {
    const r = await host.load(a, fixtureUrl(name));
    assert.equal(r.status, "failed", name);
    assert.equal(r.error.name, "PluginModule.LoadError", name);
    assert.ok(r.error.message.startsWith(LOAD_ERROR_MESSAGE + " (cause: SchemaError("), `${name}: ${r.error.message}`);
  }
  const failures = host.logs.filter((l) => l.source === "host" && l.text === "failed to load plugin");
  assert.equal(failures.length, 2);
  for (const f of failures) assert.match(f.cause, /^PluginModule\.LoadError: Plugin must export a default definition with an id and an effect or setup function\. \(cause: SchemaError/);
  assert.deepEqual(calls(), [], "neither the V1 function nor server() was called");
});

test("a dual {id, server, setup} plugin: setup once per location with that location's ctx, server never", async (t) => {
  const { root, a, b } = twoProjects(t);
  const { host, calls } = startHost(t);
  // Location A through V2's `plugins` key with options, B through a legacy V1 `plugin` tuple.
  assert.equal((await host.loadConfig(a, { plugins: [{ package: fixtureUrl("dual"), options: { team: "a" } }] }))[0].status, "active");
  const rb = await host.loadConfig(b, { plugin: [["../" + path.relative(root, fixture("dual")).split(path.sep).join("/"), { team: "b" }]] }, { configDir: b.directory });
  assert.equal(rb[0].status, "active", rb[0].error?.message);

  const setups = calls("dual", "setup");
  assert.equal(setups.length, 2, "one setup per location");
  assert.deepEqual(calls("dual", "server"), [], "server is never called by V2");
  assert.deepEqual(
    setups.map((s) => [s.location.directory, s.options.team]),
    [
      [a.directory, "a"],
      [b.directory, "b"],
    ],
  );
  for (const s of setups) {
    assert.deepEqual(s.location.project, { id: "global", directory: s.location.directory, canonical: s.location.directory });
    assert.deepEqual(Object.keys(s.app).sort(), ["channel", "name", "version"]);
    for (const k of ["app", "location", "options", "event", "session", "storage", "vcs", "tool", "permission"]) assert.ok(s.keys.includes(k), `ctx.${k}`);
    for (const k of ["client", "$", "directory", "project", "serverUrl"]) assert.ok(!s.keys.includes(k), `no ctx.${k}`);
  }
  // A string entry gets `options: {}`; the same plugin id twice in one location fails.
  const again = await host.load(a, fixtureUrl("dual"));
  assert.equal(again.status, "failed");
  assert.match(again.error.message, /Duplicate plugin ID: dual/);
  assert.equal(calls("dual", "setup").length, 2);

  await host.shutdown();
  assert.deepEqual(calls("dual", "cleanup").map((c) => c.directory).sort(), [a.directory, b.directory].sort(), "cleanup once per location at shutdown");
});

test("a file path entry is dropped with V2's warning; its directory loads (file://, /abs, ./rel)", async (t) => {
  const { a } = twoProjects(t);
  const { host, calls } = startHost(t);
  const dropped = await host.load(a, pathToFileURL(path.join(fixture("dual"), "index.mjs")).href);
  assert.equal(dropped.status, "dropped");
  assert.equal(dropped.warning, FILE_PATH_WARNING);
  assert.ok(host.logs.some((l) => l.level === "warn" && l.text.startsWith("configured plugin path must be a directory")));
  assert.equal((await host.load(a, { package: path.join(fixture("dual"), "index.mjs") })).status, "dropped", "an absolute file path too");
  assert.deepEqual(calls("dual", "setup"), [], "a dropped entry is not imported");

  assert.equal((await host.load(a, fixtureUrl("dual"))).status, "active", "file:///dir loads");
  const { b } = twoProjects(t);
  assert.equal((await host.load(b, fixture("dual"))).status, "active", "/abs/dir loads");
  const c = { directory: path.join(FIXTURES, "packages") };
  assert.equal((await host.load(c, "./../entrypoint")).status, "active", "./rel resolves against the config directory");
  assert.equal(calls("dual", "setup").length, 2);
});

test("entrypoints: server.* before index.*, package.json main/exports ignored; a package's ./server export first", async (t) => {
  const { a } = twoProjects(t);
  const { host, calls } = startHost(t);
  const r = await host.load(a, fixtureUrl("entrypoint"));
  assert.equal(r.id, "entry-server");
  assert.equal(path.basename(r.file), "server.mjs");

  const p = await host.load(a, { package: "dual-pkg@^1.0.0", options: { from: "package" } });
  assert.equal(p.status, "active", p.error?.message);
  assert.deepEqual(calls("dual-pkg", "setup").map((c) => [c.entry, c.options]), [["server", { from: "package" }]]);
  assert.deepEqual(normalizePluginEntries({ plugin: ["x", ["y", { o: 1 }]], plugins: ["z", { package: "w" }] }), ["x", { package: "y", options: { o: 1 } }, "z", { package: "w" }]);
});

test("setup failures: a throw or a setup that awaits its loop is recorded failed and the next plugin still loads; effect wins over setup", async (t) => {
  const { a } = twoProjects(t);
  const { host, calls } = startHost(t, { setupTimeoutMs: 300 });
  const thrown = await host.load(a, fixtureUrl("throws"));
  assert.equal(thrown.status, "failed");
  assert.equal(thrown.error.message, "setup refused on purpose");
  const hung = await host.load(a, fixtureUrl("awaits-loop"));
  assert.equal(hung.status, "failed");
  assert.match(hung.error.message, /setup of awaits-loop did not finish within 300 ms/);
  assert.equal((await host.load(a, fixtureUrl("dual"))).status, "active");
  const effect = await host.load(a, fixtureUrl("effect"));
  assert.equal(effect.kind, "effect");
  assert.deepEqual(calls("effect"), [], "neither effect (not run here) nor setup was called");
  assert.equal(host.subscriberCount, 0, "the failed plugin's stream was closed");
});

test("every instance sees every location's events, with and without location; console is captured per plugin", async (t) => {
  const { a, b } = twoProjects(t);
  const { host, calls } = startHost(t);
  await host.load(a, fixtureUrl("recorder"));
  await host.load(b, fixtureUrl("recorder"));
  const created = (sessionID, loc) => ({ type: "session.created", location: loc, data: { sessionID, projectID: "global", location: loc, slug: "s", version: "2.0.26" } });
  assert.equal(host.publish(created("ses_a", a)), 2);
  host.publish(created("ses_b", b));
  host.publish({ type: "session.execution.succeeded", data: { sessionID: "ses_b" } }); // no location, as on 2.0.26
  host.publish({ type: "vcs.branch.updated", location: a, data: { branch: "feature/x" } });
  await host.drain();

  const events = calls("recorder", "event");
  assert.equal(events.length, 8, "4 events x 2 instances");
  for (const dir of [a.directory, b.directory]) {
    const seen = events.filter((e) => e.directory === dir);
    assert.deepEqual(seen.map((e) => e.event.type), ["session.created", "session.created", "session.execution.succeeded", "vcs.branch.updated"], dir);
    assert.deepEqual(seen.map((e) => e.owner), [a.directory, b.directory, b.directory, a.directory], "owner by event.location, else ctx.session.get");
    for (const e of seen) {
      assert.match(e.event.id, /^evt_[0-9a-f]{12}[0-9A-Za-z]{14}$/);
      assert.equal(typeof e.event.created, "number");
    }
  }
  assert.equal(events[0].event.id, events[1].event.id, "the same event, one id, for both instances");
  assert.ok(!("location" in events.find((e) => e.event.type === "session.execution.succeeded").event));

  // session.get answers Session.Info kept from the events; storage is shared by plugin id.
  assert.deepEqual((await host.sessions.get("ses_a")).location, a);
  const pluginLines = host.logs.filter((l) => l.source === "plugin" && l.pluginID === "recorder").map((l) => l.text).sort();
  assert.deepEqual(pluginLines, [`recorder started in ${a.directory}`, `recorder started in ${b.directory}`].sort());
  assert.equal(host.logs.filter((l) => l.source === "plugin").length, 2, "only plugin output is captured");
});

test("no replay: subscribing after a publish misses it, and an evicted location misses what is published while it is gone", async (t) => {
  const { a, b } = twoProjects(t);
  const { host, calls } = startHost(t);
  host.publish({ type: "project.updated", data: { n: 1 } });
  await host.load(a, fixtureUrl("recorder"));
  host.publish({ type: "project.updated", data: { n: 2 } });
  await host.drain();
  assert.deepEqual(calls("recorder", "event").map((e) => e.event.data.n), [2], "the event before subscribe is missed");

  await host.evict(a);
  host.publish({ type: "project.updated", data: { n: 3 } });
  await host.load(a, fixtureUrl("recorder"));
  await host.load(b, fixtureUrl("recorder"));
  host.publish({ type: "project.updated", data: { n: 4 } });
  await host.drain();
  assert.deepEqual(calls("recorder", "event").map((e) => [path.basename(e.directory), e.event.data.n]), [["proj-a", 2], ["proj-a", 4], ["proj-b", 4]]);
});

test("cleanup runs on evict and shutdown; running executions are interrupted (inactivity, shutdown) first", async (t) => {
  const { a, b } = twoProjects(t);
  const { host, calls } = startHost(t);
  await host.load(a, fixtureUrl("recorder"));
  await host.load(b, fixtureUrl("recorder"));
  for (const [id, loc] of [["ses_a", a], ["ses_b", b]]) {
    host.publish({ type: "session.created", location: loc, data: { sessionID: id, projectID: "global", location: loc, slug: id, version: "2.0.26" } });
    host.publish({ type: "session.execution.started", data: { sessionID: id } });
  }
  await host.evict(a);
  assert.deepEqual(calls("recorder", "cleanup").map((c) => c.directory), [a.directory], "A's cleanup ran on evict");
  assert.deepEqual(calls("recorder", "loop-ended").map((c) => c.directory), [a.directory]);
  const interrupted = (dir) => calls("recorder", "event").filter((e) => e.directory === dir && e.event.type === "session.execution.interrupted").map((e) => [e.event.data.sessionID, e.event.data.reason]);
  assert.deepEqual(interrupted(a.directory), [["ses_a", "inactivity"]], "A saw its session interrupted before closing");
  assert.deepEqual(interrupted(b.directory), [["ses_a", "inactivity"]], "B sees it too, and ses_b is not interrupted");
  assert.equal(host.publish({ type: "project.updated", data: {} }), 1, "only B's stream is live");

  await host.shutdown();
  assert.deepEqual(calls("recorder", "cleanup").map((c) => c.directory), [a.directory, b.directory], "B's cleanup ran on shutdown");
  assert.deepEqual(interrupted(b.directory), [["ses_a", "inactivity"], ["ses_b", "shutdown"]]);
  assert.equal(host.subscriberCount, 0);
  assert.throws(() => host.publish({ type: "project.updated", data: {} }), /shut down/);
  assert.equal(console.log.name, "log", "console restored");
});

test("a git location: project is the root commit, vcs.get() the branch (then vcs.branch.updated's)", async (t) => {
  const { a } = twoProjects(t);
  const git = (...args) => execFileSync("git", ["-C", a.directory, "-c", "user.name=e2e", "-c", "user.email=e2e@example.invalid", "-c", "commit.gpgsign=false", ...args], { encoding: "utf8" }).trim();
  git("init", "-q", "-b", "trunk");
  git("commit", "-q", "--allow-empty", "-m", "root");
  const root = git("rev-list", "--max-parents=0", "HEAD");
  const { host } = startHost(t);
  let ctx;
  host.sessions.set("ses_x", { id: "ses_x", location: a, title: "set by the test" });
  const file = path.join(a.directory, "probe");
  fs.mkdirSync(file);
  fs.writeFileSync(path.join(file, "index.mjs"), "export default { id: 'probe', setup(ctx) { globalThis.__v2probe = ctx; } };\n");
  await host.load(a, "./probe");
  ctx = globalThis.__v2probe;
  assert.equal(ctx.location.project.id, root);
  assert.equal(fs.realpathSync(ctx.location.project.directory), fs.realpathSync(a.directory));
  assert.deepEqual(await ctx.vcs.get(), { branch: { current: "trunk", default: undefined } });
  host.publish({ type: "vcs.branch.updated", location: a, data: { branch: "feature/y" } });
  assert.equal((await ctx.vcs.get()).branch.current, "feature/y");
  assert.equal((await ctx.session.get({ sessionID: "ses_x" })).title, "set by the test");
  await assert.rejects(ctx.session.get({ sessionID: "ses_nope" }), { name: "NotFoundError" });
  assert.throws(() => ctx.tool.hook("execute.after", () => {}), /ctx\.tool\.hook is not in the test host/);
  await ctx.storage.set("k/1", { v: 1 });
  await ctx.storage.set("k/2", [2]);
  await ctx.storage.set("other", 3);
  assert.deepEqual(await ctx.storage.scan({ prefix: "k/", limit: 1 }), { entries: [{ key: "k/1", value: { v: 1 } }], next: "k/1" });
  assert.deepEqual(await ctx.storage.scan({ prefix: "k/", after: "k/1" }), { entries: [{ key: "k/2", value: [2] }] });
  await ctx.storage.remove("k/1");
  assert.equal(await ctx.storage.get("k/1"), undefined);
  delete globalThis.__v2probe;
});

// ---------------------------------------------------------------------------------------
// lib/v2-streams.mjs: the generated V2 streams, facts and rows agree with each other and
// with the recorded 2.0.26 rows, and replay through the host across two host processes.

test("v2-streams: events, expected facts and opencode.db rows describe the same sessions", async () => {
  const { v2Scenario } = await import("./lib/v2-streams.mjs");
  const sc = v2Scenario();
  const events = sc.processes.flat();
  assert.deepEqual(Object.keys(sc.facts.sessions).sort(), Object.values(sc.sessionIDs).sort());
  assert.equal(sc.facts.sessions[sc.sessionIDs.child].parentID, sc.sessionIDs.a, "the subagent child is linked to its parent");
  assert.equal(sc.processes[0].at(-1).type, "session.execution.interrupted");
  assert.equal(sc.processes[0].at(-1).data.reason, "shutdown");
  const times = events.map((e) => e.created);
  assert.ok(times.every((x, i) => i === 0 || x >= times[i - 1]), "events in time order");
  for (const e of events) {
    assert.match(e.id, /^evt_/);
    if (e.type.startsWith("session.")) assert.ok(sc.facts.sessions[e.data.sessionID], `${e.type} names a known session`);
  }
  assert.ok(events.some((e) => e.type.startsWith("session.") && !e.location) && events.some((e) => e.location), "events with and without location");
  for (const type of ["session.inbox.enqueued", "session.inbox.delivered", "session.step.started", "session.step.ended", "session.text.delta", "session.reasoning.ended", "session.tool.success", "session.tool.failed", "session.renamed", "session.usage.updated", "session.model.selected", "vcs.branch.updated", "session.execution.started", "session.execution.succeeded"]) {
    assert.ok(events.some((e) => e.type === type), `the streams contain ${type}`);
  }

  for (const [sessionID, fact] of Object.entries(sc.facts.sessions)) {
    const mine = events.filter((e) => e.data.sessionID === sessionID);
    const seqs = mine.filter((e) => e.durable).map((e) => e.durable.seq);
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), `${sessionID}: durable seq 1..n`);
    const usage = mine.filter((e) => e.type === "session.usage.updated").at(-1).data;
    assert.deepEqual(usage.tokens, fact.tokens, `${sessionID}: totals = the last usage.updated`);
    assert.ok(Math.abs(usage.cost - fact.cost) < 1e-12);
    const row = sc.rows.session_v2.find((r) => r.id === sessionID);
    assert.deepEqual([row.title, row.cost, row.tokens_input, row.tokens_output, row.tokens_cache_read, row.parent_id ?? undefined], [fact.title, fact.cost, fact.tokens.input, fact.tokens.output, fact.tokens.cache.read, fact.parentID]);
    const rows = sc.rows.session_message.filter((r) => r.session_id === sessionID);
    assert.deepEqual(rows.filter((r) => r.type !== "idle").map((r) => r.id), fact.messages.map((m) => m.id), `${sessionID}: one row per message, idle rows aside`);
    assert.equal(new Set(rows.map((r) => r.seq)).size, rows.length, "unique (session_id, seq)");
    const stepsInEvents = mine.filter((e) => e.type === "session.step.started").map((e) => e.data.assistantMessageID);
    assert.deepEqual(fact.messages.filter((m) => m.role === "assistant").map((m) => m.id), stepsInEvents, "one assistant message per step");
    for (const m of fact.messages.filter((x) => x.role === "assistant")) {
      const texts = mine.filter((e) => e.type === "session.text.ended" && e.data.assistantMessageID === m.id).map((e) => e.data.text);
      assert.equal(m.text, texts.length ? texts.join("\n\n") : undefined, `${m.id}: text`);
      const ended = mine.find((e) => e.type === "session.step.ended" && e.data.assistantMessageID === m.id);
      assert.equal(m.completedAt, ended?.created);
      assert.deepEqual(m.tokens, ended?.data.tokens);
      for (const tool of m.tools) {
        const called = mine.find((e) => e.type === "session.tool.called" && e.data.id === tool.callID);
        const end = mine.find((e) => (e.type === "session.tool.success" || e.type === "session.tool.failed") && e.data.id === tool.callID);
        assert.deepEqual(called.data.input, tool.args);
        assert.equal(tool.durationMs, end.created - called.created);
        if (end.type === "session.tool.success") {
          assert.equal(end.data.content.map((c) => c.text).join(""), tool.output);
          assert.equal(end.data.metadata.exit, tool.exit);
        } else assert.equal(end.data.error.message, tool.error);
      }
    }
  }
  const tools = Object.values(sc.facts.sessions).flatMap((f) => f.messages.flatMap((m) => m.tools ?? []));
  assert.deepEqual(tools.map((x) => [x.name, x.status, x.exit]).sort(), [
    ["read", "completed", undefined], ["read", "error", undefined], ["shell", "completed", 0], ["shell", "completed", 0], ["shell", "completed", 1], ["subagent", "completed", undefined],
  ].sort());
  assert.equal(tools.find((x) => x.name === "subagent").childSessionID, sc.sessionIDs.child);
});

test("v2-streams: the opencode.db exporter round-trips, and its rows have the recorded 2.0.26 shapes", async (t) => {
  const { v2Scenario, writeV2Database, loadSqlDump, readV2Database } = await import("./lib/v2-streams.mjs");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "v2db-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const sc = v2Scenario();
  const ours = path.join(dir, "ours.db");
  writeV2Database(ours, sc.rows);
  const back = readV2Database(ours);
  assert.deepEqual(back.sessions.map((r) => r.id).sort(), sc.rows.session_v2.map((r) => r.id).sort());
  for (const r of sc.rows.session_v2) assert.deepEqual(back.sessions.find((x) => x.id === r.id), r);
  const byId = new Map(sc.rows.session_message.map((r) => [r.id, r]));
  assert.equal(back.messages.length, byId.size);
  for (const m of back.messages) assert.deepEqual(m, byId.get(m.id));

  const recorded = path.join(dir, "recorded.db");
  loadSqlDump(recorded);
  const real = readV2Database(recorded);
  assert.equal(real.sessions.length, 5);
  assert.equal(real.messages.length, 21);
  assert.deepEqual(Object.keys(back.sessions[0]).sort(), Object.keys(real.sessions[0]).sort(), "session_v2 columns");
  const keysOf = (rows, type) => new Set(rows.filter((m) => m.type === type).flatMap((m) => Object.keys(m.data)));
  for (const type of ["user", "assistant", "idle"]) {
    const realKeys = keysOf(real.messages, type);
    for (const k of keysOf(back.messages, type)) assert.ok(realKeys.has(k), `${type} data key ${k} is a recorded one`);
  }
  const items = (rows) => rows.flatMap((m) => (m.type === "assistant" ? m.data.content : []));
  const realTool = items(real.messages).find((c) => c.type === "tool" && c.name === "shell");
  const ourTool = items(back.messages).find((c) => c.type === "tool" && c.name === "shell");
  assert.deepEqual(Object.keys(ourTool).sort(), Object.keys(realTool).sort(), "tool item keys");
  assert.deepEqual(Object.keys(ourTool.state).sort(), Object.keys(realTool.state).sort(), "tool state keys");
  assert.deepEqual(Object.keys(ourTool.state.metadata).sort(), Object.keys(realTool.state.metadata).sort(), "shell metadata keys");
  const realError = items(real.messages).find((c) => c.state?.status === "error").state;
  assert.deepEqual(items(back.messages).find((c) => c.state?.status === "error").state.error.type, realError.error.type);
});

test("v2-streams: replayed through two host processes, every instance sees each event once and can attribute it", async (t) => {
  const { v2Scenario } = await import("./lib/v2-streams.mjs");
  const { root, a, b } = twoProjects(t);
  const sc = v2Scenario({ a: { ...a, projectID: "global", branch: "main" }, b: { ...b, projectID: "global", branch: "main" } });
  const storageFile = path.join(root, "kv.json");
  const seenBy = [];
  for (const [index, events] of sc.processes.entries()) {
    const { host, calls } = startHost(t, { storageFile });
    if (index > 0) for (const info of sc.sessionInfos) host.sessions.set(info.id, info); // V2 reads them from its db
    await host.load(a, fixtureUrl("recorder"));
    await host.load(b, fixtureUrl("recorder"));
    for (const e of events) host.publish(e);
    await host.drain();
    await host.shutdown();
    seenBy.push(calls("recorder", "event"));
  }
  for (const [index, seen] of seenBy.entries()) {
    for (const dir of [a.directory, b.directory]) {
      const mine = seen.filter((x) => x.directory === dir);
      assert.deepEqual(mine.map((x) => x.event.id), sc.processes[index].map((e) => e.id), `process ${index}, ${path.basename(dir)}: every event once, in order, none added at shutdown`);
      for (const x of mine.filter((y) => y.event.data.sessionID)) {
        assert.equal(x.owner, sc.facts.sessions[x.event.data.sessionID].directory, `${x.event.type} attributed to its session's location`);
      }
    }
  }
  const kv = JSON.parse(fs.readFileSync(storageFile, "utf8"));
  const total = sc.processes.flat().length * 2;
  assert.equal(Object.keys(kv).length, total, "storage written by both processes' instances is one shared store");
});
