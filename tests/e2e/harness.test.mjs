// End-to-end check of the harness itself: the real OpenCode binary, the scripted model
// server and the recorder plugin, compared against OpenCode's own opencode.db.
// Run: bash scripts/setup-e2e && cd tests/e2e && npm test
// E2E_KEEP=1 keeps every environment under tests/e2e/.work/ (failed ones are always kept).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { startModelServer } from "./lib/model-server.mjs";
import {
  createEnv,
  writeConfig,
  runOpencode,
  describeRun,
  readStore,
  readRecording,
  recordedEvents,
  finalStates,
  preinstallNpmPlugin,
  RECORDER_PLUGIN,
  RECORDER_PLUGIN_URL,
  OPENCODE_VERSION,
  withEnv,
} from "./lib/opencode.mjs";

const TITLE = "Harness check session";
let server;

before(async () => {
  server = await startModelServer({ title: TITLE });
});

after(async () => {
  await server?.close();
});

function assertRunOk(r) {
  assert.equal(r.timedOut, false, `opencode timed out\n${describeRun(r)}`);
  assert.equal(r.code, 0, `opencode failed\n${describeRun(r)}`);
}

function assertScriptConsumed() {
  assert.deepEqual(server.problems, [], "model server saw unexpected requests");
  assert.equal(server.remaining(), 0, "not every scripted step was requested");
}

/**
 * What every run must show in the recording and in opencode.db for `sessionID`.
 * Returns the store restricted to that session.
 */
function assertRecordingMatchesStore(e, lines, sessionID) {
  const store = readStore(e, { sessionID });
  assert.equal(store.sessions.length, 1, "opencode.db has the session");
  const row = store.sessions[0];

  const fin = finalStates(lines);
  // Every message and part the plugin saw is in the store, and its last state as the
  // plugin saw it equals the stored row (with ids folded back in) exactly.
  const recMsgIds = [...fin.messages.values()].filter((m) => m.sessionID === sessionID).map((m) => m.id).sort();
  assert.deepEqual(recMsgIds, store.messages.map((m) => m.id).sort(), "same message ids in events and store");
  for (const m of store.messages) assert.deepEqual(fin.messages.get(m.id), m.info, `message ${m.id}: last event == stored`);
  const recPartIds = [...fin.parts.values()].filter((p) => p.sessionID === sessionID).map((p) => p.id).sort();
  assert.deepEqual(recPartIds, store.parts.map((p) => p.id).sort(), "same part ids in events and store");
  for (const p of store.parts) assert.deepEqual(fin.parts.get(p.id), p.info, `part ${p.id}: last event == stored`);

  // The session's running totals as last announced equal the stored ones.
  const s = fin.sessions.get(sessionID);
  assert.ok(s, "session seen in events");
  assert.equal(s.title, row.title);
  assert.equal(s.cost, row.cost);
  assert.equal(s.tokens.input, row.tokens_input);
  assert.equal(s.tokens.output, row.tokens_output);
  assert.equal(row.title, TITLE, "the scripted title was generated and stored");
  assert.ok(row.cost > 0, "cost computed from the model config");
  assert.ok(row.tokens_input > 0 && row.tokens_output > 0, "tokens recorded from usage");
  assert.equal(row.version, OPENCODE_VERSION);
  assert.deepEqual(row.model, { id: "mock-1", providerID: "mock", variant: "default" });
  assert.equal(row.directory, e.project);

  const project = store.projects.find((p) => p.id === row.project_id);
  assert.ok(project, "project row");
  assert.equal(project.vcs, "git");
  assert.equal(project.worktree, e.project);
  assert.notEqual(project.id, "global", "a repo with a commit gets its own project id");

  // Every assistant message completed; user messages carry the model.
  for (const m of store.messages) {
    if (m.data.role === "assistant") {
      assert.ok(m.data.time.completed >= m.data.time.created, `assistant ${m.id} completed`);
      assert.ok(m.data.cost > 0);
    } else {
      assert.equal(m.data.role, "user");
      assert.deepEqual(m.data.model, { providerID: "mock", modelID: "mock-1" });
    }
  }
  return store;
}

/** Lifecycle hooks every run of `opencode run` with the recorder shows. */
function assertLifecycle(lines, e, sessionID, { turns, created = true }) {
  const inits = lines.filter((l) => l.hook === "init");
  assert.equal(inits.length, turns, "plugin initialised once per opencode process");
  for (const init of inits) {
    assert.equal(init.input.directory, e.project);
    assert.equal(init.input.worktree, e.project);
    assert.equal(init.input.project.vcs, "git");
    assert.equal(init.input.project.worktree, e.project);
    assert.equal(typeof init.input.serverUrl, "string");
    assert.ok(!("client" in init.input) && !("$" in init.input));
  }
  assert.equal(lines.filter((l) => l.hook === "dispose").length, turns, "dispose once per process");
  assert.equal(lines.at(-1).hook, "dispose", "dispose comes last");

  const createdEvents = recordedEvents(lines, "session.created");
  assert.equal(createdEvents.length, created ? 1 : 0);
  if (created) {
    assert.equal(createdEvents[0].properties.info.id, sessionID);
    assert.match(createdEvents[0].properties.info.title, /^New session - /, "placeholder title first");
  }
  const chats = lines.filter((l) => l.hook === "chat.message");
  assert.equal(chats.length, turns);
  for (const c of chats) assert.equal(c.input.i.sessionID, sessionID);

  const idle = recordedEvents(lines, "session.idle").filter((ev) => ev.properties.sessionID === sessionID);
  assert.equal(idle.length, turns, "session.idle once per turn");

  const completedAssistant = recordedEvents(lines, "message.updated").filter(
    (ev) => ev.properties.info.role === "assistant" && ev.properties.info.time.completed,
  );
  assert.ok(completedAssistant.length > 0, "assistant message.updated with time.completed");
  for (const ev of recordedEvents(lines)) {
    assert.ok(typeof ev.id === "string" && typeof ev.type === "string");
    if (ev.properties?.sessionID !== undefined) assert.equal(ev.properties.sessionID, sessionID);
  }
}

/** The final tool parts in the recording, by callID. */
function toolParts(lines) {
  const byCall = new Map();
  for (const p of finalStates(lines).parts.values()) if (p.type === "tool") byCall.set(p.callID, p);
  return byCall;
}

test("one turn with a shell tool call", async (t) => {
  server.setScript([
    [
      { text: "Running it.", toolCalls: [{ name: "bash", args: { command: "echo hello-e2e", description: "Say hello" } }] },
      { text: "All done." },
    ],
  ]);
  await withEnv(t, { name: "one-turn", branch: "main" }, async (e) => {
    const recFile = path.join(e.root, "recording.jsonl");
    writeConfig(e, { baseURL: server.baseURL, plugins: [RECORDER_PLUGIN_URL] });
    const r = await runOpencode(e, "say hello", { env: { OPENCODE_RECORDER_FILE: recFile } });
    t.diagnostic(`opencode run: ${r.wallMs} ms`);
    assertRunOk(r);
    assertScriptConsumed();
    assert.match(r.stdout, /All done\./);

    const lines = readRecording(recFile);
    const sessionID = recordedEvents(lines, "session.created")[0]?.properties.sessionID;
    assert.match(sessionID ?? "", /^ses_/);
    assertLifecycle(lines, e, sessionID, { turns: 1 });

    const tools = toolParts(lines);
    assert.equal(tools.size, 1);
    const [bash] = tools.values();
    assert.equal(bash.tool, "bash");
    assert.equal(bash.state.status, "completed");
    assert.deepEqual(bash.state.input, { command: "echo hello-e2e", description: "Say hello" });
    assert.equal(bash.state.output, "hello-e2e\n");
    assert.equal(bash.state.metadata.exit, 0);

    const before = lines.filter((l) => l.hook === "tool.before");
    const afterHooks = lines.filter((l) => l.hook === "tool.after");
    assert.equal(before.length, 1);
    assert.deepEqual(before[0].input.i, { tool: "bash", sessionID, callID: bash.callID });
    assert.deepEqual(before[0].input.o.args, bash.state.input);
    assert.equal(afterHooks.length, 1);
    assert.equal(afterHooks[0].input.o.output, "hello-e2e\n");

    const store = assertRecordingMatchesStore(e, lines, sessionID);
    const assistants = store.messages.filter((m) => m.data.role === "assistant");
    assert.deepEqual(assistants.map((m) => m.data.finish), ["tool-calls", "stop"]);
    const storedTool = store.parts.find((p) => p.data.type === "tool");
    assert.equal(storedTool.id, bash.id);
    assert.equal(storedTool.message_id, assistants[0].id);
    assert.equal(storedTool.data.callID, bash.callID);
    // The prompt went in as one argv word with a space: OpenCode stores it quoted.
    const userText = store.parts.find((p) => p.message_id === store.messages[0].id && p.data.type === "text");
    assert.equal(userText.data.text, '"say hello"');
    assert.equal(server.titleRequests().length, 1, "one title request");
  });
});

test("two turns: read, a failing command and a long output, continued with --session", async (t) => {
  const branch = "feature/e2e-branch";
  server.setScript([
    [
      {
        toolCalls: [
          { name: "read", args: { filePath: "notes.txt" } },
          { name: "bash", args: { command: "echo failing && exit 3", description: "Fails on purpose" } },
        ],
      },
      { toolCalls: [{ name: "bash", args: { command: "seq 1 20000", description: "Long output" } }] },
      { text: "Read the notes and ran two commands." },
    ],
    [
      { toolCalls: [{ name: "bash", args: { command: "git rev-parse --abbrev-ref HEAD", description: "Show branch" } }] },
      { text: "Second turn done." },
    ],
  ]);
  await withEnv(t, { name: "two-turns", branch }, async (e) => {
    const recFile = path.join(e.root, "recording.jsonl");
    writeConfig(e, { baseURL: server.baseURL, plugins: [RECORDER_PLUGIN_URL] });
    const env = { OPENCODE_RECORDER_FILE: recFile };

    const r1 = await runOpencode(e, ["read", "notes", "and", "run", "commands"], { env });
    t.diagnostic(`turn 1: ${r1.wallMs} ms`);
    assertRunOk(r1);
    const sessionID = readStore(e).sessions[0]?.id;
    assert.match(sessionID ?? "", /^ses_/);
    const titleRequestsAfterTurn1 = server.titleRequests().length;

    const r2 = await runOpencode(e, ["now", "show", "the", "branch"], { env, session: sessionID });
    t.diagnostic(`turn 2: ${r2.wallMs} ms`);
    assertRunOk(r2);
    assertScriptConsumed();
    assert.match(r2.stdout, /Second turn done\./);
    assert.equal(titleRequestsAfterTurn1, 1);
    assert.equal(server.titleRequests().length, 1, "no new title for a continued session");

    const lines = readRecording(recFile);
    assertLifecycle(lines, e, sessionID, { turns: 2 });

    const tools = toolParts(lines);
    assert.equal(tools.size, 4);
    for (const p of tools.values()) assert.equal(p.state.status, "completed", `${p.tool} ${p.callID} completed`);
    const byCommand = (c) => [...tools.values()].find((p) => p.state.input.command === c);

    const read = [...tools.values()].find((p) => p.tool === "read");
    assert.match(read.state.output, /hello from notes/);

    const failing = byCommand("echo failing && exit 3");
    assert.equal(failing.state.metadata.exit, 3, "non-zero exit is still status completed");
    assert.equal(failing.state.output, "failing\n");

    const long = byCommand("seq 1 20000");
    assert.equal(long.state.metadata.exit, 0);
    assert.equal(long.state.metadata.truncated, true, "long output is truncated");
    assert.match(long.state.output, /^\.\.\.output truncated\.\.\.\n\nFull output saved to: /);
    assert.ok(long.state.output.length < 20_000);
    // What OpenCode keeps is a tail of what it had read of the stream when the command
    // ended, and under load that is not always the end (seen: cut at "1482", mid-line, of
    // 20000): assert a run of consecutive numbers, not its last line. The "full output"
    // file holds a bounded tail too (seen: 72 to 109 KB of the 109 KB, varying run to run).
    const seqTail = (text) => {
      const lines = text.split("\n").filter(Boolean);
      const whole = lines.slice(0, -1).map(Number);
      return whole.length > 100 && whole.every((n, i) => n === whole[0] + i) && whole.at(-1) <= 20_000;
    };
    const shown = long.state.output.replace(/^\.\.\.output truncated\.\.\.\n\nFull output saved to: [^\n]+\n\n/, "");
    assert.ok(seqTail(shown), `a tail of seq's output: ${JSON.stringify(shown.slice(0, 80))}…${JSON.stringify(shown.slice(-40))}`);
    const saved = fs.readFileSync(long.state.metadata.outputPath, "utf8");
    assert.ok(seqTail(saved), "output tail kept in a file");

    const branchPart = byCommand("git rev-parse --abbrev-ref HEAD");
    assert.equal(branchPart.state.output, `${branch}\n`);

    // tool.execute.before/after pair up with the tool parts by callID.
    const beforeIds = lines.filter((l) => l.hook === "tool.before").map((l) => l.input.i.callID).sort();
    const afterIds = lines.filter((l) => l.hook === "tool.after").map((l) => l.input.i.callID).sort();
    assert.deepEqual(beforeIds, [...tools.keys()].sort());
    assert.deepEqual(afterIds, [...tools.keys()].sort());

    const store = assertRecordingMatchesStore(e, lines, sessionID);
    assert.equal(readStore(e).sessions.length, 1, "--session continued the same session");
    const users = store.messages.filter((m) => m.data.role === "user");
    const assistants = store.messages.filter((m) => m.data.role === "assistant");
    assert.equal(users.length, 2);
    assert.deepEqual(assistants.map((m) => m.data.finish), ["tool-calls", "tool-calls", "stop", "tool-calls", "stop"]);
    for (const a of assistants) assert.ok(users.some((u) => u.id === a.data.parentID), "assistant parentID is a user message");
    const storedTools = store.parts.filter((p) => p.data.type === "tool");
    assert.deepEqual(
      storedTools.map((p) => [p.id, p.data.callID, p.data.state.status]).sort(),
      [...tools.values()].map((p) => [p.id, p.callID, p.state.status]).sort(),
    );
    const userTexts = users.map((u) => store.parts.find((p) => p.message_id === u.id && p.data.type === "text").data.text);
    assert.deepEqual(userTexts, ["read notes and run commands", "now show the branch"], "separate argv words are not quoted");
  });
});

test("an npm-name plugin with options loads offline from OpenCode's package cache", async (t) => {
  server.setScript([[{ text: "Plain answer." }]]);
  await withEnv(t, { name: "npm-plugin" }, async (e) => {
    const recFile = path.join(e.root, "recording.jsonl");
    const pkg = path.join(e.root, "pkg");
    fs.mkdirSync(pkg);
    fs.copyFileSync(RECORDER_PLUGIN, path.join(pkg, "index.mjs"));
    fs.writeFileSync(
      path.join(pkg, "package.json"),
      JSON.stringify({ name: "opencode-e2e-recorder", version: "0.0.1", type: "module", main: "index.mjs" }),
    );
    const spec = preinstallNpmPlugin(e, { name: "opencode-e2e-recorder", version: "0.0.1", from: pkg });
    writeConfig(e, { baseURL: server.baseURL, plugins: [[spec, { endpoint: "http://127.0.0.1:9", n: 1 }]] });
    const r = await runOpencode(e, "hello", { env: { OPENCODE_RECORDER_FILE: recFile } });
    t.diagnostic(`opencode run: ${r.wallMs} ms`);
    assertRunOk(r);
    assertScriptConsumed();
    const lines = readRecording(recFile);
    const inits = lines.filter((l) => l.hook === "init");
    assert.equal(inits.length, 1);
    assert.deepEqual(inits[0].options, { endpoint: "http://127.0.0.1:9", n: 1 }, "tuple options reach the plugin");
    const sessionID = recordedEvents(lines, "session.created")[0].properties.sessionID;
    assertLifecycle(lines, e, sessionID, { turns: 1 });
    assertRecordingMatchesStore(e, lines, sessionID);
    assert.deepEqual(fs.readdirSync(path.join(e.cacheHome, "opencode", "packages")), [spec], "nothing else installed");
  });
});
