// Realistic OpenCode 2 event streams for the V2 test host (lib/v2-host.mjs), with the facts a
// sync server must end up holding and the same sessions as OpenCode 2 stores them in
// opencode.db, all three generated from ONE description of the sessions so they cannot
// disagree. Shapes follow the 2.0.26 ones in shared/opencode-host-v2.md ("Events a
// sync plugin needs", "Storage (for backfill)") and the real rows in
// tests/fixtures/opencode-2.0.26-sessions.sql (a copy of shared/recorded/) (ids, field names, `content` items, tool
// `state`, `metadata.exit`, subagent `metadata.sessionID`, `idle` rows, totals that include
// the title call).
//
//   v2Scenario()          two project locations in one service: sessions, events per host
//                         process, expected facts, session_v2/session_message rows
//   writeV2Database()     those rows into an opencode.db (Bun's bun:sqlite)
//   loadSqlDump()         a .sql dump (e.g. the recorded 2.0.26 one) into an opencode.db
//   readV2Database()      session_v2 + session_message of an opencode.db, parsed
//
// Where the facts are silent the generator assumes, and says so here: the order
// inbox.enqueued -> execution.started -> inbox.delivered -> step.started; a user row's id is
// the inbox id; `ordinal` is the item's index in the step's content; which events are
// durable (everything session-scoped except deltas, tool.progress, step.streamed and
// usage.updated); a row's `seq` is its creating event's durable seq; a step cut by a
// shutdown leaves an assistant row with `time.created` only and no unfinished text, and no
// `idle` row; execution.* events and usage.updated carry no `location` (the 2.0.26 sample
// has execution.succeeded without one), every other session event does.

import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const E2E_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BUN_BIN = path.join(E2E_DIR, "node_modules", "bun", "bin", "bun.exe");
export const RECORDED_V2_SQL = fileURLToPath(new URL("../../fixtures/opencode-2.0.26-sessions.sql", import.meta.url));

const VERSION = "2.0.26";
const ZERO_TOKENS = () => ({ input: 0, output: 0, reasoning: 0, cache: { read: 0, write: 0 } });
const addTokens = (a, b) => ({
  input: a.input + b.input,
  output: a.output + b.output,
  reasoning: a.reasoning + b.reasoning,
  cache: { read: a.cache.read + b.cache.read, write: a.cache.write + b.cache.write },
});
const round = (x) => Math.round(x * 1e9) / 1e9;

/** Deterministic V2-looking ids: prefix + 12 hex digits (time, counter) + 14 base62 characters. */
function idMaker(seed) {
  let n = 0;
  const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  return (prefix, time) => {
    n++;
    // Message and event ids ascend with time; session ids descend (as in the 2.0.26 rows).
    let value = BigInt(time) * 4096n + BigInt(n & 0xfff);
    if (prefix === "ses") value = (1n << 48n) - 1n - value;
    const hex = value.toString(16).slice(-12).padStart(12, "0");
    let x = BigInt(seed) * 1_000_003n + BigInt(n) * 7_919n + BigInt(time);
    let tail = "";
    for (let i = 0; i < 14; i++) {
      tail += alphabet[Number(x % 62n)];
      x = x / 62n + BigInt(i * 31 + n);
    }
    return `${prefix}_${hex}${tail}`;
  };
}

/** Split a text into stream deltas of about `size` characters. */
function deltas(text, size = 12) {
  const out = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out.length ? out : [""];
}

/**
 * Generates the events, rows and facts of sessions described by `spec`s. Each session
 * keeps a durable seq; `process` is the host process index events are emitted in.
 */
class Recorder {
  constructor(id) {
    this.id = id;
    this.events = []; // {process, event}
    this.rows = { session_v2: [], session_message: [] };
    this.facts = {};
    this.process = 0;
    this.seq = new Map();
  }

  emit(time, type, data, { location, durable = true } = {}) {
    const sessionID = data.sessionID;
    const event = { id: this.id("evt", time), created: time, type, data };
    if (location) event.location = structuredClone(location);
    if (durable && sessionID) {
      const seq = (this.seq.get(sessionID) ?? 0) + 1;
      this.seq.set(sessionID, seq);
      event.durable = { aggregateID: sessionID, seq, version: 1 };
    }
    this.events.push({ process: this.process, event });
    return event.durable?.seq ?? this.seq.get(sessionID) ?? 0;
  }

  /**
   * One session. `spec`: {location, projectID, slug, title, titleCall?: {cost, tokens},
   * parentID?, agent?, branch?, turns: [{prompt, selectModel?, steps: [{agent, model, items,
   * finish?}], interrupt?: {afterItems, resumeSteps}}]}; items: {text} | {reasoning} |
   * {tool: {name, input, output?, exit?, error?, child?: spec}}. `clock` is {now}, shared
   * with subagent children so they run inside the parent's tool call.
   */
  session(spec, clock) {
    const sessionID = spec.id ?? this.id("ses", clock.now);
    const loc = { directory: spec.location.directory, ...(spec.location.workspaceID ? { workspaceID: spec.location.workspaceID } : {}) };
    const at = { location: loc };
    const created = clock.now;
    const fact = {
      id: sessionID,
      ...(spec.parentID ? { parentID: spec.parentID } : {}),
      directory: loc.directory,
      projectName: path.basename(loc.directory),
      projectID: spec.projectID,
      title: spec.title,
      branch: spec.branch,
      model: undefined,
      provider: undefined,
      agent: spec.agent,
      tokens: ZERO_TOKENS(),
      cost: 0,
      createdAt: created,
      updatedAt: created,
      messages: [],
    };
    this.facts[sessionID] = fact;
    const row = {
      id: sessionID, project_id: spec.projectID, workspace_id: loc.workspaceID ?? null, parent_id: spec.parentID ?? null,
      fork_session_id: null, fork_boundary: null, slug: spec.slug, directory: loc.directory, path: "", title: null,
      version: VERSION, share_url: null, summary_additions: null, summary_deletions: null, summary_files: null,
      summary_diffs: null, metadata: null, cost: 0, tokens_input: 0, tokens_output: 0, tokens_reasoning: 0,
      tokens_cache_read: 0, tokens_cache_write: 0, revert: null, permission: null, agent: spec.agent ?? null, model: null,
      time_created: created, time_updated: created, time_idle: null, time_viewed: null, idle_outcome: null,
      time_compacting: null, time_archived: null, time_suspended: null, resume_attempts: 0,
    };
    this.rows.session_v2.push(row);
    const message = (id, type, seq, time, data) => {
      const r = { id, session_id: sessionID, type, seq, time_created: time, time_updated: time, data };
      this.rows.session_message.push(r);
      return r;
    };
    const usage = (time, cost, tokens) => {
      fact.cost = round(fact.cost + cost);
      fact.tokens = addTokens(fact.tokens, tokens);
      row.cost = fact.cost;
      Object.assign(row, { tokens_input: fact.tokens.input, tokens_output: fact.tokens.output, tokens_reasoning: fact.tokens.reasoning, tokens_cache_read: fact.tokens.cache.read, tokens_cache_write: fact.tokens.cache.write });
      this.emit(time, "session.usage.updated", { sessionID, cost: fact.cost, tokens: structuredClone(fact.tokens) }, { durable: false });
    };

    this.emit(created, "session.created", {
      sessionID, slug: spec.slug, version: VERSION, projectID: spec.projectID, location: loc, subpath: "",
      ...(spec.parentID ? { parentID: spec.parentID, title: spec.title } : {}),
      ...(spec.agent ? { agent: spec.agent } : {}),
    }, at);
    if (spec.parentID) row.title = spec.title;

    let named = Boolean(spec.parentID);
    for (const turn of spec.turns) {
      clock.now = Math.max(clock.now + 7, turn.notBefore ?? 0);
      if (turn.selectModel) {
        this.emit(clock.now, "session.model.selected", { sessionID, model: turn.selectModel, ...(fact.model ? { previous: { id: fact.model, providerID: fact.provider } } : {}) }, at);
        row.model = JSON.stringify(turn.selectModel);
        clock.now += 2;
      }
      const inboxID = this.id("msg", clock.now);
      const payload = { text: turn.prompt, files: [] };
      const userTime = clock.now;
      const userSeq = this.emit(userTime, "session.inbox.enqueued", { sessionID, inboxID, item: { type: "user", payload, delivery: "queue" } }, at);
      this.emit(userTime + 1, "session.execution.started", { sessionID });
      this.emit(userTime + 1, "session.inbox.delivered", { sessionID, inboxID }, at);
      message(inboxID, "user", userSeq, userTime, { time: { created: userTime }, ...payload });
      fact.messages.push({ id: inboxID, role: "user", text: turn.prompt, createdAt: userTime });
      clock.now += 15;

      const runSteps = (steps, cut) => {
        for (const [si, step] of steps.entries()) {
          const cutHere = cut && si === steps.length - 1 ? cut : undefined;
          const stepID = this.id("msg", clock.now);
          const stepTime = clock.now;
          const seq = this.emit(stepTime, "session.step.started", { sessionID, assistantMessageID: stepID, agent: step.agent, model: step.model, started: stepTime }, at);
          const ids = { sessionID, assistantMessageID: stepID };
          const content = [];
          const mfact = { id: stepID, role: "assistant", agent: step.agent, model: step.model.id, provider: step.model.providerID, createdAt: stepTime, tools: [] };
          fact.messages.push(mfact);
          fact.model = step.model.id;
          fact.provider = step.model.providerID;
          const texts = [];
          const reasonings = [];
          const items = cutHere ? step.items.slice(0, cutHere.afterItems) : step.items;
          for (const item of items) {
            const ordinal = content.length;
            if (item.text !== undefined || item.reasoning !== undefined) {
              const kind = item.text !== undefined ? "text" : "reasoning";
              const text = item.text ?? item.reasoning;
              const started = (clock.now += 3);
              this.emit(started, `session.${kind}.started`, { ...ids, ordinal }, at);
              for (const delta of deltas(text)) this.emit((clock.now += 1), `session.${kind}.delta`, { ...ids, ordinal, delta }, { ...at, durable: false });
              this.emit((clock.now += 1), `session.${kind}.ended`, { ...ids, ordinal, text }, at);
              content.push(kind === "text" ? { type: "text", text } : { type: "reasoning", text, time: { created: started, completed: clock.now } });
              (kind === "text" ? texts : reasonings).push(text);
              continue;
            }
            const tool = item.tool;
            const callID = `call_${String(clock.now % 1e8).padStart(8, "0")}`;
            const tcreated = (clock.now += 4);
            const inputText = JSON.stringify(tool.input);
            this.emit(tcreated, "session.tool.input.started", { ...ids, id: callID, name: tool.name }, at);
            for (const delta of deltas(inputText, 24)) this.emit((clock.now += 1), "session.tool.input.delta", { ...ids, id: callID, delta }, { ...at, durable: false });
            this.emit((clock.now += 1), "session.tool.input.ended", { ...ids, id: callID, text: inputText }, at);
            const ran = (clock.now += 2);
            this.emit(ran, "session.tool.called", { ...ids, id: callID, input: tool.input, executed: false }, at);
            const tfact = { callID, name: tool.name, args: tool.input };
            let state;
            if (tool.child) {
              const child = this.session({ ...tool.child, parentID: sessionID }, clock);
              tfact.childSessionID = child.id;
              const out = `<subagent sessionID="${child.id}" state="completed">\n${child.lastText}\n</subagent>`;
              tool.output = out;
              tool.metadata = { sessionID: child.id, status: "completed", truncated: false };
            }
            if (tool.name === "shell") {
              this.emit((clock.now += 5), "session.tool.progress", { ...ids, id: callID, metadata: { output: tool.output.split("\n")[0] } }, { ...at, durable: false });
            }
            const completed = (clock.now += tool.ms ?? 11);
            if (tool.error) {
              const error = { type: "tool.execution", message: tool.error };
              this.emit(completed, "session.tool.failed", { ...ids, id: callID, error, executed: false }, at);
              state = { status: "error", input: tool.input, error };
              Object.assign(tfact, { status: "error", error: tool.error });
            } else {
              const metadata = tool.metadata ?? (tool.name === "shell" ? { status: "completed", truncated: false, exit: tool.exit ?? 0 } : { truncated: false });
              const result = [{ type: "text", text: tool.output }];
              this.emit(completed, "session.tool.success", { ...ids, id: callID, content: result, metadata, executed: false }, at);
              state = { status: "completed", input: tool.input, content: result, metadata };
              Object.assign(tfact, { status: "completed", output: tool.output });
              if (typeof metadata.exit === "number") tfact.exit = metadata.exit;
            }
            tfact.durationMs = completed - ran;
            mfact.tools.push(tfact);
            content.push({ type: "tool", id: callID, name: tool.name, executed: false, state, time: { created: tcreated, ran, completed } });
          }
          if (texts.length) mfact.text = texts.join("\n\n");
          if (reasonings.length) mfact.reasoning = reasonings.join("\n\n");
          if (cutHere) {
            // Shutdown mid-step: the step never ends; the row keeps what had finished.
            const ordinal = content.length;
            this.emit((clock.now += 3), "session.text.started", { ...ids, ordinal }, at);
            for (const delta of deltas(cutHere.partialText ?? "")) this.emit((clock.now += 1), "session.text.delta", { ...ids, ordinal, delta }, { ...at, durable: false });
            mfact.interrupted = true;
            message(stepID, "assistant", seq, stepTime, { time: { created: stepTime }, agent: step.agent, model: step.model, content });
            return false;
          }
          const streamed = (clock.now += 2);
          this.emit(streamed, "session.step.streamed", ids, { ...at, durable: false });
          const stepCompleted = (clock.now += 3);
          const finish = step.finish ?? (content.at(-1)?.type === "tool" ? "tool-calls" : "stop");
          const rawFinish = finish === "tool-calls" ? "tool_calls" : finish;
          this.emit(stepCompleted, "session.step.ended", { ...ids, finish, rawFinish, cost: step.cost, tokens: step.tokens }, at);
          Object.assign(mfact, { completedAt: stepCompleted, finish, cost: step.cost, tokens: structuredClone(step.tokens) });
          const r = message(stepID, "assistant", seq, stepTime, { time: { created: stepTime, streamed, completed: stepCompleted }, agent: step.agent, model: step.model, content, finish, rawFinish, cost: step.cost, tokens: step.tokens });
          r.time_updated = stepCompleted + 1;
          fact.lastText = texts.at(-1) ?? fact.lastText;
          usage(stepCompleted + 1, step.cost, step.tokens);
          row.time_updated = fact.updatedAt = stepCompleted;
          if (!named) {
            // The generated title: its model call counts in the session's totals only.
            named = true;
            clock.now += 4;
            this.emit(clock.now, "session.renamed", { sessionID, title: spec.title }, at);
            row.title = spec.title;
            usage(clock.now + 1, spec.titleCall.cost, spec.titleCall.tokens);
          }
          clock.now += 6;
        }
        return true;
      };

      const done = runSteps(turn.steps, turn.interrupt);
      if (!done) {
        this.emit((clock.now += 2), "session.execution.interrupted", { sessionID, reason: "shutdown" });
        this.process++;
        clock.now += turn.interrupt.downtimeMs ?? 1500;
        // The next boot resumes the turn (max 10 resumes): a fresh busy period and step.
        row.resume_attempts = 0;
        this.emit(clock.now, "session.execution.started", { sessionID });
        clock.now += 9;
        runSteps(turn.interrupt.resumeSteps);
      }
      const idle = (clock.now += 1);
      const endSeq = this.emit(idle, "session.execution.succeeded", { sessionID });
      message(this.id("msg", idle), "idle", endSeq, idle, { time: { created: idle }, outcome: "succeeded" });
      Object.assign(row, { time_idle: idle, idle_outcome: "succeeded" });
    }
    return { id: sessionID, lastText: fact.lastText };
  }
}

const tokens = (input, output, reasoning = 0, read = 200, write = 0) => ({ input, output, reasoning, cache: { read, write } });

/**
 * Two project locations in one V2 service, as a host test replays them:
 * - A: a session with two turns: turn 1 = a step with reasoning, text and `shell` (exit 0),
 *   a step with `read` and `shell` exit 1, a closing text step; the title is generated;
 *   before turn 2 the model is switched (`session.model.selected`); turn 2 = a failing
 *   `read`, a `subagent` call whose child session (parentID = A's session) runs inside it,
 *   and a closing text step. `vcs.branch.updated` for A at the start.
 * - B: a session whose turn 1 completes (with a `shell` call) while A runs (the streams
 *   interleave), and whose turn 2 is cut by `session.execution.interrupted {reason:
 *   "shutdown"}` mid-step (host process 0 ends there) and resumed by host process 1.
 *
 * @param {object} [o]
 * @param {{directory: string, projectID?: string, branch?: string}} [o.a]
 * @param {{directory: string, projectID?: string, branch?: string}} [o.b]
 * @param {number} [o.start]  epoch ms of the first event
 * @returns {{locations: {a, b}, processes: object[][], facts: {sessions: object}, rows:
 *   {session_v2: object[], session_message: object[]}, sessionInfos: object[],
 *   sessionIDs: {a, child, b}}}
 *   `processes[i]` is the event list host process i publishes, in order (`created`
 *   ascending); `facts.sessions[id]` is what a sync server must hold for each session;
 *   `sessionInfos` seed `host.sessions` of a second host process (V2 reads them from its db).
 */
export function v2Scenario({
  a = { directory: "/home/dev/proj-a", projectID: "8c7be089f453473f677616cd2481db433813236e", branch: "feature/sync" },
  b = { directory: "/home/dev/proj-b", projectID: "2f1c4b0e9d8a7c6b5a49382716f5e4d3c2b1a098", branch: "main" },
  start = 1791500491000,
} = {}) {
  const id = idMaker(start);
  const m1 = { id: "m1", providerID: "fake" };
  const m2 = { id: "m2", providerID: "fake" };
  const m3 = { id: "m3", providerID: "local" };
  const locA = { directory: a.directory, ...(a.workspaceID ? { workspaceID: a.workspaceID } : {}) };
  const locB = { directory: b.directory, ...(b.workspaceID ? { workspaceID: b.workspaceID } : {}) };

  const rec = new Recorder(id);
  rec.emit(start, "vcs.branch.updated", { branch: a.branch }, { location: locA, durable: false });
  const sessionA = rec.session(
    {
      location: locA, projectID: a.projectID, branch: a.branch, slug: "tidy-squid", title: "Fix the failing test",
      titleCall: { cost: 0.00051, tokens: tokens(420, 12, 0, 0, 0) },
      turns: [
        {
          prompt: "Run the tests and tell me what fails",
          steps: [
            { agent: "build", model: m1, cost: 0.00357, tokens: tokens(1000, 34, 12), items: [
              { reasoning: "The user wants the test results; run them first." },
              { text: "Running the tests." },
              { tool: { name: "shell", input: { command: "echo hi > note.txt && echo hi", description: "Print hi" }, output: "hi\n", exit: 0, ms: 39 } },
            ] },
            { agent: "build", model: m1, cost: 0.00412, tokens: tokens(1180, 41, 0, 300, 20), items: [
              { tool: { name: "read", input: { path: "note.txt" }, output: "Read file note.txt, lines 1-1\n1: hi", ms: 4 } },
              { tool: { name: "shell", input: { command: "npm test", description: "Run the tests" }, output: "FAIL test/sum.test.js\n  expected 3, got 4\n\nExited with code 1", exit: 1, ms: 231 } },
            ] },
            { agent: "build", model: m1, cost: 0.00298, tokens: tokens(1320, 57), items: [
              { text: "One test fails: `sum.test.js` expects 3 and gets 4." },
            ] },
          ],
        },
        {
          prompt: "Look around for the cause",
          selectModel: m2,
          steps: [
            { agent: "build", model: m2, cost: 0.00117, tokens: tokens(1400, 22), items: [
              { tool: { name: "read", input: { path: "/nonexistent/file.txt" }, error: "File not found: /nonexistent/file.txt", ms: 8 } },
            ] },
            { agent: "build", model: m2, cost: 0.00121, tokens: tokens(1460, 30), items: [
              { tool: { name: "subagent", input: { agent: "general", description: "Look around", prompt: "List the files and summarise them." }, child: {
                location: locA, projectID: a.projectID, branch: a.branch, slug: "stellar-mountain", title: "Look around", agent: "general",
                turns: [{ prompt: "You are a subagent spawned by another session.\nList the files and summarise them.", steps: [
                  { agent: "general", model: m1, cost: 0.00357, tokens: tokens(1000, 34), items: [{ text: "Hello from the fake model. The answer is 42. " }] },
                ] }],
              } } },
            ] },
            { agent: "build", model: m2, cost: 0.00133, tokens: tokens(1590, 48), items: [
              { text: "The subagent found `src/sum.js`; it adds one too many." },
            ] },
          ],
        },
      ],
    },
    { now: start + 5 },
  );
  const eventsA = rec.events;
  rec.events = [];
  const endA = Math.max(...eventsA.map((e) => e.event.created));
  const sessionB = rec.session(
    {
      location: locB, projectID: b.projectID, branch: b.branch, slug: "calm-circuit", title: "Summarise the README",
      titleCall: { cost: 0.0004, tokens: tokens(380, 10, 0, 0, 0) },
      turns: [
        { prompt: "What does this project do?", steps: [
          { agent: "build", model: m3, cost: 0.0021, tokens: tokens(900, 25, 0, 100, 0), items: [
            { tool: { name: "shell", input: { command: "head -3 README.md", description: "Show the README" }, output: "# proj-b\n\nA tiny project.", exit: 0, ms: 17 } },
          ] },
          { agent: "build", model: m3, cost: 0.0023, tokens: tokens(980, 31, 0, 100, 0), items: [{ text: "It is a tiny project; the README says so." }] },
        ] },
        { prompt: "Now summarise the README in one line", notBefore: endA + 50, steps: [
          { agent: "build", model: m3, cost: 0, tokens: tokens(0, 0, 0, 0, 0), items: [{ text: "unused" }] },
        ], interrupt: { afterItems: 0, partialText: "Summary so far: the READ", downtimeMs: 2000, resumeSteps: [
          { agent: "build", model: m3, cost: 0.0019, tokens: tokens(1010, 18, 0, 100, 0), items: [{ text: "proj-b: a tiny project." }] },
        ] } },
      ],
    },
    // B starts while A's first turn runs (the streams interleave); its second turn comes
    // after A's last event, so host process 0 ends with B's interrupt.
    { now: start + 60 },
  );
  const eventsB = rec.events;
  const all = [...eventsA, ...eventsB].sort((x, y) => x.event.created - y.event.created);
  const processes = [all.filter((e) => e.process === 0).map((e) => e.event), all.filter((e) => e.process === 1).map((e) => e.event)];
  const childID = rec.facts[sessionA.id].messages.flatMap((m) => m.tools ?? []).find((t) => t.childSessionID).childSessionID;
  for (const f of Object.values(rec.facts)) delete f.lastText;
  return {
    locations: { a: locA, b: locB },
    processes,
    facts: { sessions: rec.facts },
    rows: rec.rows,
    sessionInfos: rec.rows.session_v2.map(sessionInfoOf),
    sessionIDs: { a: sessionA.id, child: childID, b: sessionB.id },
  };
}

/**
 * The Session.Info `ctx.session.get` answers for a session_v2 row (what a second host
 * process must know, since V2 reads it from opencode.db): the fields the row holds.
 */
export function sessionInfoOf(row) {
  return {
    id: row.id,
    projectID: row.project_id,
    location: { directory: row.directory, ...(row.workspace_id ? { workspaceID: row.workspace_id } : {}) },
    ...(row.parent_id ? { parentID: row.parent_id } : {}),
    slug: row.slug,
    ...(row.title ? { title: row.title } : {}),
    ...(row.agent ? { agent: row.agent } : {}),
    ...(row.model ? { model: JSON.parse(row.model) } : {}),
    version: row.version,
    cost: row.cost,
    tokens: { input: row.tokens_input, output: row.tokens_output, reasoning: row.tokens_reasoning, cache: { read: row.tokens_cache_read, write: row.tokens_cache_write } },
    time: { created: row.time_created, updated: row.time_updated },
  };
}

const DDL = `
CREATE TABLE IF NOT EXISTS \`session_message\` (
  \`id\` text PRIMARY KEY, \`session_id\` text NOT NULL, \`type\` text NOT NULL, \`seq\` integer NOT NULL,
  \`time_created\` integer NOT NULL, \`time_updated\` integer NOT NULL, \`data\` text NOT NULL,
  CONSTRAINT \`fk_session_message_session_id_session_v2_id_fk\` FOREIGN KEY (\`session_id\`) REFERENCES \`session_v2\`(\`id\`) ON DELETE CASCADE
);
CREATE UNIQUE INDEX IF NOT EXISTS session_message_session_seq_idx ON session_message (session_id, seq);
CREATE INDEX IF NOT EXISTS session_message_session_type_seq_idx ON session_message (session_id, type, seq);
CREATE TABLE IF NOT EXISTS \`session_v2\` (
  \`id\` text PRIMARY KEY, \`project_id\` text NOT NULL, \`workspace_id\` text, \`parent_id\` text, \`fork_session_id\` text,
  \`fork_boundary\` text, \`slug\` text NOT NULL, \`directory\` text NOT NULL, \`path\` text, \`title\` text,
  \`version\` text NOT NULL, \`share_url\` text, \`summary_additions\` integer, \`summary_deletions\` integer,
  \`summary_files\` integer, \`summary_diffs\` text, \`metadata\` text, \`cost\` real DEFAULT 0 NOT NULL,
  \`tokens_input\` integer DEFAULT 0 NOT NULL, \`tokens_output\` integer DEFAULT 0 NOT NULL,
  \`tokens_reasoning\` integer DEFAULT 0 NOT NULL, \`tokens_cache_read\` integer DEFAULT 0 NOT NULL,
  \`tokens_cache_write\` integer DEFAULT 0 NOT NULL, \`revert\` text, \`permission\` text, \`agent\` text, \`model\` text,
  \`time_created\` integer NOT NULL, \`time_updated\` integer NOT NULL, \`time_idle\` integer, \`time_viewed\` integer,
  \`idle_outcome\` text, \`time_compacting\` integer, \`time_archived\` integer, \`time_suspended\` integer,
  \`resume_attempts\` integer DEFAULT 0 NOT NULL,
  CONSTRAINT \`fk_session_v2_project_id_project_id_fk\` FOREIGN KEY (\`project_id\`) REFERENCES \`project\`(\`id\`) ON DELETE CASCADE
);`;

const WRITE_DB = `
import { Database } from "bun:sqlite";
import fs from "node:fs";
const db = new Database(process.env.V2_DB_PATH, { create: true });
db.exec("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;");
const input = JSON.parse(fs.readFileSync(process.env.V2_INPUT, "utf8"));
if (input.sql !== undefined) db.exec(input.sql);
else {
  db.exec(input.ddl);
  const insert = (table, rows) => {
    if (!rows.length) return;
    const cols = Object.keys(rows[0]);
    const q = db.prepare(\`INSERT INTO \${table} (\${cols.join(", ")}) VALUES (\${cols.map(() => "?").join(", ")})\`);
    const value = (v) => (v === undefined ? null : v !== null && typeof v === "object" ? JSON.stringify(v) : v);
    for (const r of rows) q.run(...cols.map((c) => value(r[c])));
  };
  db.transaction(() => {
    insert("session_v2", input.rows.session_v2);
    insert("session_message", input.rows.session_message);
  })();
}
db.close();
`;

const READ_DB = `
import { Database } from "bun:sqlite";
const db = new Database(process.env.V2_DB_PATH, { readonly: true });
const out = {
  sessions: db.query("SELECT * FROM session_v2 ORDER BY time_created, id").all(),
  messages: db.query("SELECT * FROM session_message ORDER BY session_id, seq").all(),
};
db.close();
process.stdout.write(JSON.stringify(out));
`;

function runBun(script, env) {
  if (!fs.existsSync(BUN_BIN)) throw new Error(`${BUN_BIN} is missing: run scripts/setup-e2e first`);
  const r = spawnSync(BUN_BIN, ["-e", script], {
    encoding: "utf8",
    timeout: 30_000,
    maxBuffer: 256 * 1024 * 1024,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0", ...env },
  });
  if (r.status !== 0) throw new Error(`bun:sqlite on ${env.V2_DB_PATH} failed (${r.status} ${r.signal ?? ""}): ${r.stderr}${r.error ?? ""}`);
  return r.stdout;
}

function withInput(value, fn) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "v2rows-"));
  try {
    const file = path.join(dir, "input.json");
    fs.writeFileSync(file, JSON.stringify(value));
    return fn(file);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Write OpenCode 2 rows (`v2Scenario().rows`; a row's object values, such as
 * session_message `data`, are stored as JSON text) into `dbPath` (created if missing; the 2.0.26
 * DDL of session_v2 and session_message, added beside any tables already there, e.g. V1's).
 */
export function writeV2Database(dbPath, rows) {
  withInput({ ddl: DDL, rows }, (file) => runBun(WRITE_DB, { V2_DB_PATH: dbPath, V2_INPUT: file }));
}

/** Execute a .sql dump (default: the recorded 2.0.26 sessions) into `dbPath`. */
export function loadSqlDump(dbPath, sqlFile = RECORDED_V2_SQL) {
  withInput({ sql: fs.readFileSync(sqlFile, "utf8") }, (file) => runBun(WRITE_DB, { V2_DB_PATH: dbPath, V2_INPUT: file }));
}

/** session_v2 and session_message of `dbPath`, with `data` parsed. */
export function readV2Database(dbPath) {
  const raw = JSON.parse(runBun(READ_DB, { V2_DB_PATH: dbPath }));
  return { sessions: raw.sessions, messages: raw.messages.map((m) => ({ ...m, data: JSON.parse(m.data) })) };
}
