// Fast checks of the scripted model server on its own (no OpenCode): the wire format
// OpenCode's @ai-sdk/openai-compatible provider reads, streaming and not.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startModelServer, isTitleRequest } from "./lib/model-server.mjs";

let server;
before(async () => {
  server = await startModelServer({ title: "A title" });
});
after(async () => {
  await server?.close();
});

const post = (body) =>
  fetch(`${server.baseURL}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "mock-1", ...body }),
  });

async function sseChunks(res) {
  const text = await res.text();
  const data = text
    .split("\n\n")
    .filter((b) => b.startsWith("data: "))
    .map((b) => b.slice(6));
  assert.equal(data.at(-1), "[DONE]");
  return data.slice(0, -1).map((d) => JSON.parse(d));
}

test("non-streaming: tool calls then text, with usage", async () => {
  server.setScript([[{ toolCalls: [{ name: "read", args: { filePath: "a.txt" } }] }, { text: "ok", usage: { prompt: 10, completion: 2 } }]]);
  const r1 = await (await post({ messages: [{ role: "user", content: "hi" }] })).json();
  assert.equal(r1.object, "chat.completion");
  assert.equal(r1.choices[0].finish_reason, "tool_calls");
  const call = r1.choices[0].message.tool_calls[0];
  assert.equal(call.type, "function");
  assert.equal(call.function.name, "read");
  assert.deepEqual(JSON.parse(call.function.arguments), { filePath: "a.txt" });
  assert.ok(r1.usage.prompt_tokens > 0 && r1.usage.completion_tokens > 0);

  const r2 = await (
    await post({
      messages: [
        { role: "user", content: "hi" },
        { role: "assistant", content: null, tool_calls: [call] },
        { role: "tool", tool_call_id: call.id, content: "file" },
      ],
    })
  ).json();
  assert.equal(r2.choices[0].message.content, "ok");
  assert.equal(r2.choices[0].finish_reason, "stop");
  assert.deepEqual(r2.usage, { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 });
  assert.deepEqual(server.problems, []);
  assert.equal(server.remaining(), 0);
});

test("streaming: text deltas, tool call deltas, finish and usage chunks", async () => {
  server.setScript([{ text: "two words", reasoning: "hmm", toolCalls: [{ name: "bash", args: { command: "ls" } }] }]);
  const res = await post({ stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "x" }] });
  assert.match(res.headers.get("content-type"), /text\/event-stream/);
  const chunks = await sseChunks(res);
  assert.ok(chunks.every((c) => c.object === "chat.completion.chunk"));
  const deltas = chunks.flatMap((c) => c.choices.map((ch) => ch.delta));
  assert.equal(deltas.map((d) => d.content ?? "").join(""), "two words");
  assert.equal(deltas.map((d) => d.reasoning_content ?? "").join(""), "hmm");
  const args = deltas.flatMap((d) => d.tool_calls ?? []).map((t) => t.function?.arguments ?? "").join("");
  assert.deepEqual(JSON.parse(args), { command: "ls" });
  assert.equal(chunks.flatMap((c) => c.choices).find((ch) => ch.finish_reason)?.finish_reason, "tool_calls");
  assert.ok(chunks.at(-1).usage.completion_tokens > 0);
});

test("title requests are answered from `title` and consume no step", async () => {
  server.setScript([{ text: "the step" }]);
  const body = {
    stream: true,
    messages: [
      { role: "system", content: "You are a title generator. You output ONLY a thread title." },
      { role: "user", content: "Generate a title for this conversation:\n" },
    ],
  };
  assert.equal(isTitleRequest(body), true);
  const chunks = await sseChunks(await post(body));
  assert.equal(chunks.flatMap((c) => c.choices.map((ch) => ch.delta.content ?? "")).join(""), "A title");
  assert.equal(server.remaining(), 1);
  assert.equal(server.titleRequests().length, 1);
});

test("exhausted script and scripted errors are reported", async () => {
  server.setScript([{ status: 500, error: "boom" }]);
  const r = await post({ messages: [{ role: "user", content: "x" }] });
  assert.equal(r.status, 500);
  assert.equal((await r.json()).error.message, "boom");
  const r2 = await (await post({ messages: [{ role: "user", content: "x" }] })).json();
  assert.equal(r2.choices[0].message.content, "(script exhausted)");
  assert.equal(server.problems.length, 1);
  assert.match(server.problems[0], /script exhausted/);
});
