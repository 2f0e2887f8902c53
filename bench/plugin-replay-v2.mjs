// Benchmark: OpenCode 2's event stream, >= 10,000 events, through the BUILT plugin
// (npm/ + wasm) loaded as the V2 service loads it: the `file://<repo>/npm` directory entry
// resolved and its default export decoded by the V2 test host's loader
// (tests/e2e/lib/v2-host.mjs), `setup(ctx)` awaited, the events handed to the loop it
// starts over `ctx.event.subscribe({signal})`, and its cleanup awaited at the end. The
// events are the shared V2 scenario's (tests/e2e/lib/v2-streams.mjs: two turns with
// reasoning, text, shell/read/failing tools, a subagent child, a turn cut by a shutdown
// and resumed), copied with fresh ids and all in the instance's own location. Prints one
// JSON object of figures (and a table on stderr), in the style of bench/plugin-replay.mjs.
//
//   node bench/plugin-replay-v2.mjs [--copies N]     (bun bench/plugin-replay-v2.mjs)
//
// Figures:
//   handlerMedianUs / handlerP99Us  the synchronous part of handling one event: from the
//                             moment the subscription hands the event over (its `next()`
//                             promise settled) to the plugin's loop asking for the next
//                             one, the `for await` resuming included (harnessHandlerUs /
//                             harnessHandlerP99Us: the same for a loop that does nothing
//                             with its events). OpenCode 2's equivalent of the V1 hook
//                             call: the V2 service does not wait for a plugin's loop, but
//                             it runs in the same thread, so what the loop does per event,
//                             the service waits for. Over the events handed over without
//                             a turn of the event loop before (timedEvents: all but one in
//                             64, see eventFeed).
//   cpuPerEventUs             process CPU (user+system) per event, including the deferred
//                             wasm work, the outbox and the HTTP sends to the contract
//                             server on loopback, until the cleanup resolved, minus
//                             harnessCpuPerEventUs
//   ownCpuPerEventUs          the same through a fresh instance whose fetch is answered in
//                             this process (a Response made at once, no network): the
//                             plugin's own work, outbox included
//   harnessCpuPerEventUs      the same replay and wait through a plugin whose loop does
//                             nothing: what this program itself costs per event
//   sessions / messages       what arrived, in each run: the contract server's store
//                             checked field by field against the scenario's facts
//                             (tests/e2e/lib/v2-compare.mjs); the stand-in's requests
//                             checked for every session and message, and nothing else
//
// Events are handed over as a V2 subscription does when they are already waiting, with the
// event loop turning every 64 events (timers, the plugin's deferred work, its sends), as
// the V1 replay does.
import { rmSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { performance } from "node:perf_hooks";
import { startServer } from "./server.mjs";
import { KEY, cpuSince, inProcessFetch, quantile, runtimeName, scratchHome, untilQuiet } from "./replay-kit.mjs";
import { decodePluginModule, resolvePluginEntry } from "../tests/e2e/lib/v2-host.mjs";
import { v2Scenario } from "../tests/e2e/lib/v2-streams.mjs";
import { assertV2Stored } from "../tests/e2e/lib/v2-compare.mjs";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const copiesArg = Number(args[args.indexOf("--copies") + 1] || 0) || 0;
const serverBin = process.env.OPENCODE_SYNC_SERVER_BIN || join(repo, "target/release/opencode-sync-server");
const realFetch = globalThis.fetch;
/** Events handed over between two turns of the event loop. */
const BURST = 64;

// The instance's location: one project, every session of the scenario in it.
const DIRECTORY = "/home/dev/demo";
const PROJECT_ID = "c77a0d3e5b1f4a2c9e8d7b6a5f4e3d2c1b0a9f8e";
const LOCATION = { directory: DIRECTORY, project: { id: PROJECT_ID, directory: DIRECTORY, canonical: DIRECTORY } };
const APP = { name: "opencode", version: "2.0.26", channel: "latest" };

/**
 * `copies` of the V2 scenario, each with fresh ids (the ids follow its start time), both
 * of its host processes' events in order, in this one instance's location. Returns the
 * events, each session's facts, and the messages that must arrive (a step cut by the
 * shutdown before it said anything is no message).
 */
function buildStream(copies, run) {
  const where = { directory: DIRECTORY, projectID: PROJECT_ID, branch: "main" };
  const events = [];
  const facts = [];
  for (let c = 0; c < copies; c++) {
    const sc = v2Scenario({ a: where, b: where, start: 1_791_500_491_000 + run * 1_000_000_000 + c * 1_000_000 });
    for (const list of sc.processes) events.push(...list);
    facts.push(...Object.values(sc.facts.sessions));
  }
  const sent = (f) => f.messages.filter((m) => !(m.interrupted && !m.text && !m.tools?.length));
  const ids = new Set(facts.map((f) => f.id));
  if (ids.size !== facts.length) throw new Error("two copies share a session id");
  return { events, facts, sent };
}

/**
 * One `ctx.event.subscribe()` stream, fed by the benchmark. The subscription starts empty
 * (as V2's, no replay) and stays open after the stream until its signal aborts. Each
 * event is handed over at once while the next is waiting, and every BURST-th after a
 * turn of the event loop; `samples[i]` gets the µs from event i's handover to the loop's
 * next `next()` call. An event handed over after a turn of the event loop (the first, and
 * one in BURST) is not timed (its sample stays NaN): before the loop resumes, the runtime
 * may first run what other tasks of that turn left queued (in Bun these events took µs
 * more when the plugin's deferred drain ran in the same turn), which is not this event's
 * handling.
 */
function eventFeed() {
  const ns = process.hrtime.bigint;
  let stream = null;
  let samples = null;
  let index = 0;
  let handedAt = 0n;
  let waiting = null;
  let aborted = false;
  let taken = null;
  const later = typeof setImmediate === "function" ? setImmediate : (fn) => setTimeout(fn, 0);

  const next = () => {
    const t = ns();
    if (handedAt !== 0n) {
      samples[index - 1] = Number(t - handedAt) / 1000;
      handedAt = 0n;
    }
    if (aborted) return Promise.resolve({ value: undefined, done: true });
    if (stream === null || index >= stream.length) {
      if (stream !== null) taken?.();
      return new Promise((resolve) => (waiting = resolve));
    }
    const value = stream[index++];
    if (index % BURST === 0) return new Promise((resolve) => later(() => resolve({ value, done: false })));
    handedAt = ns();
    return Promise.resolve({ value, done: false });
  };
  return {
    subscribe({ signal } = {}) {
      const abort = () => {
        aborted = true;
        const w = waiting;
        waiting = null;
        w?.({ value: undefined, done: true });
      };
      if (signal?.aborted) abort();
      else signal?.addEventListener("abort", abort, { once: true });
      return {
        [Symbol.asyncIterator]: () => ({
          next,
          return: () => {
            abort();
            return Promise.resolve({ value: undefined, done: true });
          },
        }),
      };
    },
    /** Hands `events` to the waiting loop; resolves once it asked for the one after the last. */
    run(events, into) {
      stream = events;
      samples = into;
      index = 0;
      return new Promise((resolve) => {
        taken = resolve;
        const w = waiting;
        waiting = null;
        if (w) w({ value: stream[index++], done: false });
        else if (events.length === 0) resolve();
      });
    },
  };
}

/** The V2 ctx of one instance (the parts the plugin reads; as lib/v2-host.mjs makes it). */
function context(feed, sessions) {
  const storage = new Map();
  return {
    app: { ...APP },
    location: structuredClone(LOCATION),
    options: {},
    event: { subscribe: (options) => feed.subscribe(options) },
    session: {
      get: async ({ sessionID } = {}) => {
        const info = sessions.get(sessionID);
        if (!info) throw Object.assign(new Error(`Session not found: ${sessionID}`), { name: "NotFoundError" });
        return structuredClone(info);
      },
    },
    storage: {
      get: async (key) => structuredClone(storage.get(key)),
      set: async (key, value) => void storage.set(key, JSON.parse(JSON.stringify(value))),
      remove: async (key) => void storage.delete(key),
      scan: async () => ({ entries: [...storage].map(([key, value]) => ({ key, value })) }),
    },
  };
}

/** A plugin whose loop takes every event and does nothing with it: the harness. */
const idle = {
  id: "bench-idle",
  setup(ctx) {
    const controller = new AbortController();
    const loop = (async () => {
      for await (const _event of ctx.event.subscribe({ signal: controller.signal })) {
        // nothing
      }
    })();
    return async () => {
      controller.abort();
      await loop;
    };
  },
};

/**
 * Sets up one instance of `definition`, hands it `events` (timing each handover into
 * `samples`), waits until `count()` stops growing (its sends are over), then runs its
 * cleanup. Returns the process CPU (µs) and wall time from the first event to the end of
 * the cleanup.
 */
async function replay(definition, events, samples, count) {
  const feed = eventFeed();
  const cleanup = await definition.setup(context(feed, new Map()));
  if (typeof cleanup !== "function") throw new Error(`${definition.id}: setup returned no cleanup (inactive?)`);
  await new Promise((r) => setTimeout(r, 50)); // what setup started off the call settles first
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  await feed.run(events, samples);
  await untilQuiet(count);
  await cleanup();
  return { ...cpuSince(cpu0), wallMs: performance.now() - wall0 };
}

/** The timed samples (see `eventFeed`), ascending. */
function timed(samples) {
  return Array.from(samples).filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
}

/** Of the stand-in's requests: sessions and messages posted, checked against `facts`. */
function checkSent(requests, facts, sent) {
  const sessions = new Set();
  const messages = new Set();
  let messagePosts = 0;
  for (const [url, body] of requests) {
    const path = new URL(url).pathname;
    if (path === "/sync/session") sessions.add(JSON.parse(body).externalId);
    else if (path === "/sync/message") {
      messagePosts += 1;
      messages.add(JSON.parse(body).externalId);
    }
  }
  const wantMessages = facts.flatMap(sent).map((m) => m.id);
  const missing = facts.filter((f) => !sessions.has(f.id)).length + wantMessages.filter((id) => !messages.has(id)).length;
  const extra = sessions.size + messages.size - facts.length - wantMessages.length + missing;
  return { sessions: sessions.size, messages: messages.size, messagePosts, all: missing === 0 && extra === 0, missing, extra };
}

const server = await startServer(serverBin, KEY);
const home = scratchHome(server.url);
try {
  const serverCount = async () => (await realFetch(`${server.controlUrl}/control/requests/count`).then((r) => r.json())).count;
  // The plugin as the V2 service loads a `file://<repo>/npm` entry.
  const entry = resolvePluginEntry(pathToFileURL(join(repo, "npm")).href, { configDir: repo });
  const t0 = performance.now();
  const plugin = decodePluginModule(await import(pathToFileURL(entry.file).href));
  const importMs = performance.now() - t0;
  if (plugin.kind !== "setup") throw new Error(`the plugin decoded as ${plugin.kind}`);

  const perCopy = v2Scenario().processes.flat().length;
  const copies = Math.max(copiesArg, Math.ceil(10_000 / perCopy));
  const network = buildStream(copies, 1);

  // The harness alone first: the same replay and wait through a loop that does nothing.
  const harnessSamples = new Float64Array(network.events.length).fill(NaN);
  const harness = await replay(idle, buildStream(copies, 0).events, harnessSamples, serverCount);
  const harnessSorted = timed(harnessSamples);

  // To the contract server on loopback.
  const samples = new Float64Array(network.events.length).fill(NaN);
  const cpu = await replay(plugin.definition, network.events, samples, serverCount);
  const dump = await realFetch(`${server.controlUrl}/control/dump`).then((r) => r.json());
  const requests = dump.requests.filter((r) => r.path.startsWith("/sync/"));
  const rejected = requests.filter((r) => r.status >= 300).length;
  const storedSessions = dump.users.flatMap((u) => u.sessions ?? []);
  let stored = "every session and message, field by field";
  try {
    assertV2Stored(dump, network.facts, network.sent);
  } catch (error) {
    stored = `NOT ALL: ${error.message.split("\n")[0]}`;
  }

  // The plugin's own work: a fresh instance, fresh sessions, its fetch answered in this
  // process. The wait polls the server as the others do (its cost is the harness's).
  const own = buildStream(copies, 2);
  const standIn = inProcessFetch({ record: true });
  globalThis.fetch = standIn.fetch;
  let ownRun;
  try {
    ownRun = await replay(plugin.definition, own.events, new Float64Array(own.events.length), async () => (await serverCount()) + standIn.requests.length);
  } finally {
    globalThis.fetch = realFetch;
  }
  const ownSent = checkSent(standIn.requests, own.facts, own.sent);

  const sorted = timed(samples);
  const events = network.events.length;
  const result = {
    runtime: runtimeName(),
    events,
    timedEvents: sorted.length,
    sessions: storedSessions.length,
    messages: storedSessions.reduce((n, s) => n + (s.messages?.length ?? 0), 0),
    stored,
    handlerMedianUs: +quantile(sorted, 0.5).toFixed(3),
    handlerP99Us: +quantile(sorted, 0.99).toFixed(3),
    harnessHandlerUs: +quantile(harnessSorted, 0.5).toFixed(3),
    harnessHandlerP99Us: +quantile(harnessSorted, 0.99).toFixed(3),
    cpuPerEventUs: +((cpu.us - harness.us) / events).toFixed(2),
    ownCpuPerEventUs: +((ownRun.us - harness.us) / own.events.length).toFixed(2),
    harnessCpuPerEventUs: +(harness.us / events).toFixed(2),
    ownSessions: ownSent.sessions,
    ownMessages: ownSent.messages,
    ownMessagePosts: ownSent.messagePosts,
    ownAllSent: ownSent.all,
    requestsPerSession: +(requests.length / Math.max(1, storedSessions.length)).toFixed(2),
    rejectedRequests: rejected,
    importMs: +importMs.toFixed(2),
    wallMs: Math.round(cpu.wallMs),
    ownWallMs: Math.round(ownRun.wallMs),
  };
  const wantMessages = own.facts.flatMap(own.sent).length;
  console.error(
    [
      `runtime                ${result.runtime}`,
      `events replayed        ${result.events} OpenCode 2 events (${copies} copies of the V2 scenario), ${result.sessions} sessions, ${result.messages} messages`,
      `arrived                ${result.stored}; ${result.rejectedRequests} requests rejected`,
      `event handler          median ${result.handlerMedianUs} µs, p99 ${result.handlerP99Us} µs over ${result.timedEvents} events   (goal as a V1 hook call: <= 0.2 / 3.3 µs; a loop doing nothing: ${result.harnessHandlerUs} / ${result.harnessHandlerP99Us} µs)`,
      `CPU per event          ${result.cpuPerEventUs} µs incl. deferred work and HTTP   (harness alone ${result.harnessCpuPerEventUs} µs, not counted)`,
      `  own work             ${result.ownCpuPerEventUs} µs with fetch answered in this process (no network)   (goal: <= ~48 µs, 20% over V1's 22-40 µs)`,
      `  own run sent         ${ownSent.sessions}/${own.facts.length} sessions, ${ownSent.messages}/${wantMessages} messages (${ownSent.messagePosts} message posts): ${ownSent.all ? "all, nothing else" : `NOT ALL (${ownSent.missing} missing, ${ownSent.extra} unexpected)`}`,
      `requests per session   ${result.requestsPerSession}`,
      `import + instantiate   ${result.importMs} ms, once in this process (bench/plugin-replay.mjs: the median of 5 fresh processes)`,
    ].join("\n"),
  );
  console.log(JSON.stringify(result));
  if (!ownSent.all || !stored.startsWith("every")) process.exitCode = 1;
} finally {
  server.child.kill("SIGTERM");
  rmSync(home, { recursive: true, force: true });
}
