// What a sync server must hold for the sessions of the shared V2 scenario
// (lib/v2-streams.mjs `facts`), whichever path delivered them: the plugin under the V2
// test host (v2-plugin.test.mjs) or backfill of the same sessions as OpenCode 2 stores
// them (backfill-v2.test.mjs). Every session, message and tool call once, field by field.

import assert from "node:assert/strict";

/**
 * `dump`: the contract server's `/control/dump`; `facts`: the sessions' expected facts;
 * `sent(f)`: the messages of session fact `f` that must have arrived.
 */
export function assertV2Stored(dump, facts, sent) {
  assert.equal(dump.users.length, 1);
  const stored = new Map(dump.users[0].sessions.map((s) => [s.externalId, s]));
  assert.deepEqual([...stored.keys()].sort(), facts.map((f) => f.id).sort(), "same sessions");
  for (const f of facts) {
    const got = stored.get(f.id);
    const where = `session ${f.id}`;
    assert.equal(got.title, f.title, `${where} title`);
    assert.equal(got.projectPath, f.directory, `${where} projectPath`);
    assert.equal(got.projectName, f.projectName, `${where} projectName`);
    assert.equal(got.model, f.model, `${where} model`);
    assert.equal(got.provider, f.provider, `${where} provider`);
    assert.equal(got.source, "opencode");
    assert.equal(got.promptTokens, f.tokens.input + f.tokens.cache.read + f.tokens.cache.write, `${where} promptTokens`);
    assert.equal(got.completionTokens, f.tokens.output + f.tokens.reasoning, `${where} completionTokens`);
    assert.ok(Math.abs(got.cost - f.cost) < 1e-12, `${where} cost ${got.cost} vs ${f.cost}`);
    assert.equal(got.createdAt, f.createdAt, `${where} createdAt`);
    assert.equal(got.durationMs, f.updatedAt - f.createdAt, `${where} durationMs`);
    const messages = sent(f);
    assert.equal(got.messageCount, messages.length, `${where} messageCount`);
    assert.equal(got.messages.length, messages.length, `${where} messages`);
    for (const m of messages) {
      const sm = got.messages.find((x) => x.externalId === m.id);
      const at = `message ${m.id}`;
      assert.ok(sm, `${at} stored`);
      assert.equal(sm.role, m.role, `${at} role`);
      assert.equal(sm.createdAt, m.createdAt, `${at} createdAt`);
      assert.equal(sm.textContent ?? undefined, m.text, `${at} text`);
      if (m.role !== "assistant") continue;
      assert.equal(sm.model, m.model, `${at} model`);
      assert.equal(sm.promptTokens ?? 0, m.tokens.input + m.tokens.cache.read + m.tokens.cache.write, `${at} promptTokens`);
      assert.equal(sm.completionTokens ?? 0, m.tokens.output + m.tokens.reasoning, `${at} completionTokens`);
      assert.equal(sm.durationMs, m.completedAt - m.createdAt, `${at} durationMs`);
      const calls = sm.parts.filter((p) => p.type === "tool-call").map((p) => p.content);
      const results = sm.parts.filter((p) => p.type === "tool-result").map((p) => p.content);
      assert.equal(calls.length, m.tools.length, `${at} tool calls`);
      assert.equal(results.length, m.tools.length, `${at} tool results`);
      for (const [i, tool] of m.tools.entries()) {
        const [call, result] = [calls[i], results[i]];
        const it = `${at} ${tool.name} ${tool.callID}`;
        assert.equal(call.toolName, tool.name, it);
        assert.equal(call.callID, tool.callID, it);
        assert.equal(call.status, tool.status, `${it} status`);
        assert.deepEqual(call.args, tool.args, `${it} args`);
        assert.equal(result.output, tool.output ?? tool.error, `${it} output`);
        assert.equal(result.error, tool.error, `${it} error`);
        assert.equal(result.exit, tool.exit, `${it} exit`);
        assert.equal(result.durationMs, tool.durationMs, `${it} durationMs`);
      }
    }
  }
}
