// The one comparison of the plugin suites: what the contract sync server stored (its
// `GET /control/dump`) against OpenCode's own opencode.db (`readStore()` from
// lib/opencode.mjs), field by field, by the rules of crates/core/src/map.rs. Used by
// plugin-opencode.test.mjs and delivery.test.mjs; serve.test.mjs compares what the read
// API (`/api/sessions` + `/api/sessions/get`) answers, through `dumpFromReadApi()`.

import assert from "node:assert/strict";
import path from "node:path";

/** The plugin's default `maxToolOutputBytes` (crates/core/src/config.rs). */
export const MAX_TOOL_OUTPUT_BYTES = 16_384;

const bytes = (s) => Buffer.byteLength(s, "utf8");

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Compares a stored value with the db's: equal, except that a string containing one of
 * `secrets` must be stored without any of them and with the redaction mask.
 */
function assertLike(actual, expected, secrets, label) {
  if (typeof expected === "string" && secrets.some((s) => expected.includes(s))) {
    assert.equal(typeof actual, "string", `${label}: a string`);
    for (const s of secrets) assert.ok(!actual.includes(s), `${label}: secret leaked: ${actual}`);
    assert.ok(actual.includes("[REDACTED]"), `${label}: redaction mask missing: ${actual}`);
    return;
  }
  if (expected && typeof expected === "object" && JSON.stringify(expected).match(new RegExp(secrets.map(escapeRe).join("|") || "(?!)"))) {
    assert.equal(typeof actual, "object", `${label}: an object`);
    assert.deepEqual(Object.keys(actual ?? {}).sort(), Object.keys(expected).sort(), `${label}: keys`);
    for (const k of Object.keys(expected)) assertLike(actual[k], expected[k], secrets, `${label}.${k}`);
    return;
  }
  assert.deepEqual(actual, expected, label);
}

/** The stored tool-result output for a db output: as is, or cut at the limit and marked. */
function assertToolOutput(stored, result, dbOutput, secrets, limit, label) {
  if (bytes(dbOutput) <= limit || secrets.some((s) => dbOutput.includes(s))) {
    assertLike(stored, dbOutput, secrets, label);
    assert.equal(result.truncated, undefined, `${label}: not marked truncated`);
    return;
  }
  const m = stored.match(/\n… \[truncated: showing (\d+) of (\d+) bytes\]$/);
  assert.ok(m, `${label}: long output carries the truncation marker; ends with ${JSON.stringify(stored.slice(-120))}`);
  assert.equal(Number(m[2]), bytes(dbOutput), `${label}: marker names the full size`);
  assert.ok(Number(m[1]) <= limit, `${label}: cut at the limit`);
  const kept = stored.slice(0, m.index);
  assert.equal(bytes(kept), Number(m[1]), `${label}: marker names the kept size`);
  assert.ok(dbOutput.startsWith(kept), `${label}: the kept text is the output's beginning`);
  assert.equal(result.truncated, true, `${label}: marked truncated`);
}

/** The part types the plugin sends for one db message, in order (map.rs). */
function expectedPartKinds(dbParts) {
  const kinds = [];
  for (const p of dbParts) {
    const d = p.data;
    if (d.type === "text" && d.synthetic !== true && d.text) kinds.push("text");
    else if (d.type === "tool") {
      kinds.push("tool-call");
      if (d.state?.status === "completed" || d.state?.status === "error") kinds.push("tool-result");
    }
  }
  return kinds;
}

/**
 * Asserts that the server holds session `sessionID` exactly as opencode.db does:
 * - the session: externalId once, title, projectPath/Name, model/provider, source,
 *   prompt = input + cache read + cache write, completion = output + reasoning, cost
 *   within 1e-9, createdAt = time_created, messageCount = the db's message count;
 * - every db message exactly once (no other): role, textContent (non-synthetic text
 *   parts joined by a blank line), createdAt within 1 s, model, tokens;
 * - the part sequence (text, tool-call, tool-result per finished call) with toolName,
 *   callID, status, args, title, output (or the truncation marker), error, exit code.
 *
 * @param {{sessions: object[], messages: object[], parts: object[]}} db  readStore() (whole or one session)
 * @param {object} dump  the server's GET /control/dump, or dumpFromReadApi()'s
 * @param {string} sessionID
 * @param {object} [o]
 * @param {string[]} [o.secrets]  values that must arrive masked ("[REDACTED]"), never as is
 * @param {number} [o.maxToolOutputBytes]  the plugin's limit (its default)
 * @param {() => string} [o.context]  evidence appended when the session is missing (e.g. the plugin's log)
 * @param {boolean} [o.readApi]  `dump` comes from the read API, whose sessions have no `source`
 * @returns {{row: object, messages: object[], parts: object[], stored: object}}
 *   the db's session row, messages and parts, and the stored session
 */
export function assertStoredAsInDb(db, dump, sessionID, { secrets = [], maxToolOutputBytes = MAX_TOOL_OUTPUT_BYTES, context = () => "", readApi = false } = {}) {
  const rows = db.sessions.filter((s) => s.id === sessionID);
  assert.equal(rows.length, 1, `opencode.db has session ${sessionID}`);
  const row = rows[0];
  const messages = db.messages.filter((m) => m.session_id === sessionID);
  const parts = db.parts.filter((p) => p.session_id === sessionID);

  const matches = dump.users.flatMap((u) => u.sessions.filter((s) => s.externalId === sessionID));
  assert.equal(
    matches.length,
    1,
    `the server has session ${sessionID} once; it has [${dump.users.flatMap((u) => u.sessions.map((s) => s.externalId))}]; ${context()}`,
  );
  const s = matches[0];

  // --- the session ---
  assert.equal(s.title, row.title, "title");
  assert.equal(s.projectPath, row.directory, "projectPath = session.directory");
  assert.equal(s.projectName, path.basename(row.directory), "projectName = last path segment");
  const lastAssistant = messages.filter((m) => m.data.role === "assistant").at(-1);
  const modelID = row.model?.id ?? lastAssistant?.data.modelID;
  const providerID = row.model?.id ? row.model.providerID : lastAssistant?.data.providerID;
  assert.equal(s.model, modelID, "model");
  assert.equal(s.provider, providerID, "provider");
  if (!readApi) assert.equal(s.source, "opencode");
  const prompt = row.tokens_input + row.tokens_cache_read + row.tokens_cache_write;
  const completion = row.tokens_output + row.tokens_reasoning;
  assert.ok(prompt > 0 && completion > 0, "OpenCode counted tokens");
  assert.equal(s.promptTokens, prompt, `promptTokens = input ${row.tokens_input} + cache read ${row.tokens_cache_read} + cache write ${row.tokens_cache_write}`);
  assert.equal(s.completionTokens, completion, `completionTokens = output ${row.tokens_output} + reasoning ${row.tokens_reasoning}`);
  assert.ok(row.cost > 0, "OpenCode computed a cost");
  assert.ok(Math.abs(s.cost - row.cost) < 1e-9, `cost: stored ${s.cost}, db ${row.cost}`);
  assert.equal(s.createdAt, row.time_created, "session createdAt = db time_created");
  assert.equal(s.messageCount, messages.length, "messageCount = db messages");

  // --- every message, once ---
  const storedIds = s.messages.map((m) => m.externalId);
  assert.equal(new Set(storedIds).size, storedIds.length, `no message stored twice: ${storedIds}`);
  assert.deepEqual([...storedIds].sort(), messages.map((m) => m.id).sort(), "the stored messages are the db's");

  for (const m of messages) {
    const label = `message ${m.id} (${m.data.role})`;
    const sm = s.messages.find((x) => x.externalId === m.id);
    const dbParts = parts.filter((p) => p.message_id === m.id); // id order = creation order
    assert.equal(sm.role, m.data.role, `${label}: role`);
    const texts = dbParts.filter((p) => p.data.type === "text" && p.data.synthetic !== true && p.data.text).map((p) => p.data.text);
    assertLike(sm.textContent, texts.length ? texts.join("\n\n") : undefined, secrets, `${label}: textContent`);
    assert.ok(Math.abs(sm.createdAt - m.time_created) <= 1000, `${label}: createdAt ${sm.createdAt} vs db ${m.time_created}`);
    if (m.data.role === "assistant") {
      assert.equal(sm.model, m.data.modelID, `${label}: model`);
      const t = m.data.tokens;
      const mp = t.input + (t.cache?.read ?? 0) + (t.cache?.write ?? 0);
      const mc = t.output + (t.reasoning ?? 0);
      assert.equal(sm.promptTokens, mp > 0 ? mp : undefined, `${label}: promptTokens (tokens ${JSON.stringify(t)})`);
      assert.equal(sm.completionTokens, mc > 0 ? mc : undefined, `${label}: completionTokens (tokens ${JSON.stringify(t)})`);
    } else {
      assert.equal(sm.model, m.data.model?.modelID, `${label}: model`);
    }

    // Parts: text parts and tool calls/results, in the db's order.
    assert.deepEqual(
      sm.parts.map((p) => p.type),
      expectedPartKinds(dbParts),
      `${label}: stored part types (db parts: ${dbParts.map((p) => p.data.type)})`,
    );
    const storedTexts = sm.parts.filter((p) => p.type === "text").map((p) => p.content);
    assert.equal(storedTexts.length, texts.length);
    texts.forEach((text, i) => assertLike(storedTexts[i], text, secrets, `${label}: text part ${i}`));

    for (const p of dbParts.filter((x) => x.data.type === "tool")) {
      const d = p.data;
      const tl = `${label}: ${d.tool} ${d.callID}`;
      const i = sm.parts.findIndex((x) => x.type === "tool-call" && x.content?.callID === d.callID);
      assert.ok(i >= 0, `${tl}: a tool-call part`);
      const call = sm.parts[i].content;
      assert.equal(call.toolName, d.tool, `${tl}: toolName`);
      assert.equal(call.status, d.state.status, `${tl}: status`);
      assertLike(call.args, d.state.input, secrets, `${tl}: args`);
      if (d.state.title !== undefined) assertLike(call.title, d.state.title, secrets, `${tl}: title`);
      if (d.state.status !== "completed" && d.state.status !== "error") continue;
      const next = sm.parts[i + 1];
      assert.equal(next?.type, "tool-result", `${tl}: the tool-result follows its call`);
      const result = next.content;
      if (d.state.status === "completed") {
        assertToolOutput(result.output, result, d.state.output ?? "", secrets, maxToolOutputBytes, `${tl}: output`);
      } else {
        assertLike(result.error, d.state.error, secrets, `${tl}: error`);
      }
      const exit = d.state.metadata?.exit;
      if (typeof exit === "number") assert.equal(result.exit, exit, `${tl}: exit code`);
      else assert.equal(result.exit, undefined, `${tl}: no exit code`);
    }
  }
  return { row, messages, parts, stored: s };
}

/**
 * What an OpenSync server holds, read through its read API (`GET /api/sessions`, then
 * `GET /api/sessions/get?id=` for each session), in the shape of the control dump
 * (`{users: [{sessions: [{...session, messages}]}]}`) for `assertStoredAsInDb(...,
 * {readApi: true})`. Without `apiKey` the requests carry no key (a local server's open
 * reads).
 */
export async function dumpFromReadApi(url, { apiKey } = {}) {
  const headers = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
  const get = async (route) => {
    const res = await fetch(`${url}${route}`, { headers, signal: AbortSignal.timeout(30_000) });
    const text = await res.text();
    assert.equal(res.status, 200, `GET ${route}: ${res.status} ${text}`);
    return JSON.parse(text);
  };
  const { sessions } = await get("/api/sessions?limit=1000");
  const full = [];
  for (const s of sessions) {
    const got = await get(`/api/sessions/get?id=${encodeURIComponent(s.id)}`);
    assert.deepEqual(got.session, s, `/api/sessions/get agrees with /api/sessions on ${s.externalId}`);
    full.push({ ...got.session, messages: got.messages });
  }
  return { users: [{ sessions: full }] };
}
