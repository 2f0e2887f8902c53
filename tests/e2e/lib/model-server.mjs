// A scripted OpenAI-compatible chat-completions server for driving the real OpenCode
// binary offline. Listens on 127.0.0.1 on a free port.
//
// A script is a list of turns (one per user prompt), each a list of steps; a flat list of
// steps is accepted too. Every model request that is not a title request consumes the
// next step, in order. A step is:
//   { text: "..." }                                  plain answer, finish_reason "stop"
//   { toolCalls: [{ name: "bash", args: {...} }] }   one or several tool calls,
//                                                     finish_reason "tool_calls"
//   optional on any step: text before tool calls, reasoning: "...",
//   usage: { prompt, completion, cached?, reasoning? }, delayMs (before answering), status + error (answer
//   with that HTTP error instead, e.g. { status: 500, error: "boom" }).
// After the tool results come back OpenCode asks again, and the next step answers.
//
// Title generation (OpenCode's "You are a title generator" request, made with the same
// model when no small model is configured) is recognised and answered with `title`;
// it does not consume a step.
//
// Every request is logged in `server.requests`; anything surprising (script exhausted,
// a step after tool calls that did not receive tool results, unknown route) is pushed to
// `server.problems`, so a test can assert it is empty.

import http from "node:http";

const TITLE_MARKERS = ["You are a title generator", "Generate a title for this conversation"];

/** Flatten [[step, ...], ...] or [step, ...] to a list of steps tagged with their turn. */
function flattenScript(script) {
  const steps = [];
  const turns = script.length > 0 && Array.isArray(script[0]) ? script : [script];
  turns.forEach((turn, t) => turn.forEach((step, s) => steps.push({ ...step, turn: t, stepInTurn: s })));
  return steps;
}

function contentText(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((c) => (typeof c === "string" ? c : c?.text ?? "")).join("");
  return "";
}

export function isTitleRequest(body) {
  const msgs = Array.isArray(body?.messages) ? body.messages : [];
  return msgs.some((m) => TITLE_MARKERS.some((k) => contentText(m.content).includes(k)));
}

/** Rough, deterministic token estimate: 1 token per 4 characters, at least 1. */
function estimateTokens(s) {
  return Math.max(1, Math.ceil(s.length / 4));
}

/**
 * Start the server.
 * @param {object} [opts]
 * @param {Array} [opts.script]   turns of steps (see above)
 * @param {string} [opts.title]   answer to title requests
 * @param {string} [opts.model]   model id echoed in responses
 * @returns {Promise<{url: string, baseURL: string, port: number, requests: object[],
 *   problems: string[], setScript(script: Array): void, remaining(): number,
 *   stepRequests(): object[], titleRequests(): object[], close(): Promise<void>}>}
 */
export async function startModelServer({ script = [], title = "Scripted session title", model = "mock-1" } = {}) {
  let steps = flattenScript(script);
  let next = 0;
  let counter = 0;
  const requests = [];
  const problems = [];
  let expectToolResults = null; // tool call ids the previous step asked for

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      handle(req, res, Buffer.concat(chunks).toString("utf8")).catch((err) => {
        problems.push(`handler error: ${err?.stack ?? err}`);
        if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { message: String(err) } }));
      });
    });
  });

  async function handle(req, res, raw) {
    const n = ++counter;
    const url = new URL(req.url, "http://127.0.0.1");
    const entry = { n, method: req.method, path: url.pathname, at: Date.now(), kind: "other", body: null };
    requests.push(entry);

    if (req.method === "GET" && url.pathname.endsWith("/models")) {
      return json(res, 200, { object: "list", data: [{ id: model, object: "model", owned_by: "e2e" }] });
    }
    if (req.method !== "POST" || !url.pathname.endsWith("/chat/completions")) {
      problems.push(`unexpected request ${req.method} ${url.pathname}`);
      return json(res, 404, { error: { message: "not found" } });
    }

    let body;
    try {
      body = JSON.parse(raw);
    } catch {
      problems.push(`request ${n}: body is not JSON`);
      return json(res, 400, { error: { message: "bad json" } });
    }
    entry.body = body;
    entry.stream = body.stream === true;
    const msgs = Array.isArray(body.messages) ? body.messages : [];
    const promptTokens = estimateTokens(JSON.stringify(msgs));

    if (isTitleRequest(body)) {
      entry.kind = "title";
      return answer(res, body, { text: title }, n, promptTokens);
    }

    entry.kind = "step";
    const last = msgs[msgs.length - 1];
    entry.lastRole = last?.role;
    if (expectToolResults) {
      const got = new Set(msgs.filter((m) => m.role === "tool").map((m) => m.tool_call_id));
      const missing = expectToolResults.filter((id) => !got.has(id));
      if (missing.length) problems.push(`request ${n}: tool results missing for ${missing.join(", ")}`);
      expectToolResults = null;
    }
    if (next >= steps.length) {
      problems.push(`request ${n}: script exhausted (${steps.length} steps)`);
      entry.step = null;
      return answer(res, body, { text: "(script exhausted)" }, n, promptTokens);
    }
    const step = steps[next];
    entry.step = next;
    entry.turn = step.turn;
    next += 1;
    if (step.delayMs) await new Promise((r) => setTimeout(r, step.delayMs));
    if (step.status) {
      return json(res, step.status, { error: { message: step.error ?? "scripted error", type: "server_error" } });
    }
    const ids = (step.toolCalls ?? []).map((_, i) => `call_${n}_${i}`);
    if (ids.length) expectToolResults = ids;
    return answer(res, body, step, n, promptTokens, ids);
  }

  function answer(res, body, step, n, promptTokens, ids = []) {
    const id = `chatcmpl-e2e-${n}`;
    const created = Math.floor(Date.now() / 1000);
    const text = step.text ?? "";
    const calls = (step.toolCalls ?? []).map((c, i) => ({
      id: ids[i],
      type: "function",
      function: { name: c.name, arguments: typeof c.args === "string" ? c.args : JSON.stringify(c.args ?? {}) },
    }));
    const finish = calls.length ? "tool_calls" : "stop";
    const completionTokens =
      step.usage?.completion ?? estimateTokens(text + (step.reasoning ?? "") + JSON.stringify(calls));
    const prompt = step.usage?.prompt ?? promptTokens;
    const usage = { prompt_tokens: prompt, completion_tokens: completionTokens, total_tokens: prompt + completionTokens };
    // Optional OpenAI usage details: cached prompt tokens and reasoning tokens (both
    // counted inside prompt_tokens / completion_tokens, as OpenAI reports them).
    if (step.usage?.cached) usage.prompt_tokens_details = { cached_tokens: step.usage.cached };
    if (step.usage?.reasoning) usage.completion_tokens_details = { reasoning_tokens: step.usage.reasoning };

    if (body.stream !== true) {
      const message = { role: "assistant", content: text || null };
      if (step.reasoning) message.reasoning_content = step.reasoning;
      if (calls.length) message.tool_calls = calls;
      return json(res, 200, {
        id,
        object: "chat.completion",
        created,
        model: body.model ?? model,
        choices: [{ index: 0, message, finish_reason: finish }],
        usage,
      });
    }

    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      connection: "keep-alive",
    });
    const base = { id, object: "chat.completion.chunk", created, model: body.model ?? model };
    const send = (choices, extra = {}) => res.write(`data: ${JSON.stringify({ ...base, choices, ...extra })}\n\n`);
    send([{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }]);
    if (step.reasoning) send([{ index: 0, delta: { reasoning_content: step.reasoning }, finish_reason: null }]);
    // Split text into a few pieces so OpenCode sees real streaming deltas.
    for (const piece of text.match(/\S+\s*|\s+/g) ?? []) {
      send([{ index: 0, delta: { content: piece }, finish_reason: null }]);
    }
    calls.forEach((c, i) => {
      send([
        {
          index: 0,
          delta: { tool_calls: [{ index: i, id: c.id, type: "function", function: { name: c.function.name, arguments: "" } }] },
          finish_reason: null,
        },
      ]);
      send([{ index: 0, delta: { tool_calls: [{ index: i, function: { arguments: c.function.arguments } }] }, finish_reason: null }]);
    });
    send([{ index: 0, delta: {}, finish_reason: finish }]);
    // Usage both as its own chunk (what stream_options.include_usage asks for) — the
    // provider reads usage from whichever chunk carries it.
    send([], { usage });
    res.write("data: [DONE]\n\n");
    res.end();
  }

  function json(res, status, obj) {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(obj));
  }

  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address();
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    baseURL: `${url}/v1`,
    port,
    requests,
    problems,
    /** Start a new scenario: replace the script, and clear the request log and problems. */
    setScript(s) {
      steps = flattenScript(s);
      next = 0;
      expectToolResults = null;
      requests.length = 0;
      problems.length = 0;
    },
    /** Steps not yet consumed. */
    remaining: () => steps.length - next,
    stepRequests: () => requests.filter((r) => r.kind === "step"),
    titleRequests: () => requests.filter((r) => r.kind === "title"),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
