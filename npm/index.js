// opencode-sync-plugin: syncs every OpenCode session to an OpenSync dashboard.
//
// This file is glue. Every decision (what to send, when, how to retry) is made by the
// Rust core compiled to wasm (wasm/, built by scripts/build). Here we only:
//   1. load the wasm module once, when OpenCode imports this file;
//   2. give it a small host object (files, environment, clock, toasts, logs);
//   3. return hooks that queue their input and return at once; a single deferred drain
//      hands the queue to the wasm side, off the hook. When the process exits without
//      calling `dispose` (OpenCode 1.2-1.14), an exit handler runs what is queued and writes
//      every record to disk.
// Nothing here may throw into OpenCode: every call into the wasm side is guarded, and
// after any failure the plugin goes quiet for the rest of the process.

import {
  closeSync,
  constants,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { homedir } from "node:os";
import { dirname } from "node:path";

const SERVICE = "opencode-sync";
// The largest file the wasm side reads (the config, outbox records: well under 8 MiB).
const MAX_READ_BYTES = 64 * 1024 * 1024;

let wasm = null;
let loadError = null;
try {
  wasm = await import("./wasm/sync.js");
} catch (error) {
  loadError = error;
}

/** Closes `fd` when one was opened; what was read or written before stands. */
function closeQuietly(fd) {
  if (fd === null) return;
  try {
    closeSync(fd);
  } catch {
    // nothing to undo
  }
}

/** The host object the wasm side reads through. Every method swallows its errors. */
function makeHost(client) {
  const log = (level, message) => {
    try {
      const sent = client?.app?.log?.({ body: { service: SERVICE, level, message } });
      if (sent) {
        sent.catch?.(() => {});
        return;
      }
    } catch {
      // fall through to stderr
    }
    if (level === "warn" || level === "error") {
      try {
        console.error(`[${SERVICE}] ${message}`);
      } catch {
        // nowhere left to report
      }
    }
  };
  let tmpCounter = 0;
  return {
    // Regular files only, and not huge: a FIFO (or /dev/zero) where the config should be
    // would block or fill OpenCode's process. Opened non-blocking, so a FIFO cannot hang it.
    readFile(path) {
      let fd = null;
      try {
        fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
        const stat = fstatSync(fd);
        if (!stat.isFile() || stat.size > MAX_READ_BYTES) return null;
        return readFileSync(fd, "utf8");
      } catch {
        return null;
      } finally {
        closeQuietly(fd);
      }
    },
    listDir(path) {
      try {
        return readdirSync(path);
      } catch {
        return null;
      }
    },
    // Atomic: a private temporary file beside the target, then a rename over it.
    writeFile(path, text) {
      const tmp = `${path}.tmp-${process.pid}-${tmpCounter++}`;
      try {
        try {
          writeFileSync(tmp, text, { mode: 0o600 });
        } catch (error) {
          if (error?.code !== "ENOENT") throw error;
          mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
          writeFileSync(tmp, text, { mode: 0o600 });
        }
        renameSync(tmp, path);
        return true;
      } catch {
        try {
          unlinkSync(tmp);
        } catch {
          // nothing was written
        }
        return false;
      }
    },
    // In place, not atomic: the wasm side uses it only on spare files of its own, which it
    // renames into place once written (rewriting a file costs less than creating one).
    // Written over and then cut to length: truncating to zero first, as writeFileSync
    // does, makes the file system free and allocate the blocks again (5x the CPU in Node).
    overwrite(path, text) {
      let fd = null;
      try {
        fd = openSync(path, "r+");
        const bytes = Buffer.from(text);
        let written = 0;
        while (written < bytes.length) {
          written += writeSync(fd, bytes, written, bytes.length - written, written);
        }
        ftruncateSync(fd, bytes.length);
        return true;
      } catch {
        return false;
      } finally {
        closeQuietly(fd);
      }
    },
    // The target's directory is created only when it is missing (quarantine/ on first
    // use): asking on every rename would double the file system calls.
    rename(from, to) {
      try {
        try {
          renameSync(from, to);
        } catch (error) {
          if (error?.code !== "ENOENT") throw error;
          mkdirSync(dirname(to), { recursive: true, mode: 0o700 });
          renameSync(from, to);
        }
        return true;
      } catch {
        return false;
      }
    },
    remove(path) {
      try {
        unlinkSync(path);
        return true;
      } catch {
        return false;
      }
    },
    env(name) {
      const value = process.env[name];
      return typeof value === "string" && value !== "" ? value : null;
    },
    // As the CLI resolves it (Rust's home_dir): $HOME first except on Windows.
    homedir() {
      const env = process.platform === "win32" ? null : process.env.HOME;
      if (env) return env;
      try {
        return homedir() || null;
      } catch {
        return null;
      }
    },
    pid: () => process.pid,
    // Signal 0 only asks: ESRCH means no such process; EPERM means one runs (not ours).
    processAlive(pid) {
      try {
        process.kill(pid, 0);
        return true;
      } catch (error) {
        return error?.code !== "ESRCH";
      }
    },
    now: () => Date.now(),
    random: () => Math.random(),
    toast(message, variant) {
      try {
        client?.tui?.showToast?.({ body: { message, variant } })?.catch?.(() => {});
      } catch {
        // a toast is a courtesy
      }
    },
    log,
  };
}

/** The input minus the SDK client and the Bun shell (the wasm side reads it as JSON). */
function dataOf(input) {
  const { client: _client, $: _shell, ...rest } = input ?? {};
  return rest;
}

const DONE = Promise.resolve();
// The drain runs in a later macrotask, after OpenCode's own work (setImmediate), but a
// hook only pays for a microtask: arming setImmediate costs more than the whole hook.
const later = typeof setImmediate === "function" ? setImmediate : (fn) => setTimeout(fn, 0);


/**
 * The engines of this process, by instance directory (see `server`): OpenCode may call the
 * plugin more than once for one instance (1.0.x calls every export of the module), and
 * two engines for one directory would send every record twice.
 */
const engines = new Map();
/** Inputs already answered: a loader that calls two exports with one input gets hooks once. */
const answeredInputs = new WeakSet();

/** The directory an instance runs in (0.5.x has it only in `app.path.cwd`). */
function directoryOf(input) {
  const directory = input?.directory ?? input?.app?.path?.cwd;
  return typeof directory === "string" ? directory : "";
}

/** Starts the process's engine and the hooks that feed it, or returns null when sync is off. */
function startEngine(input, options) {
  const host = makeHost(input?.client);
  if (!wasm) {
    host.log("error", `could not load the wasm module, sessions are not synced: ${loadError}`);
    return null;
  }
  const plugin = new wasm.SyncPlugin(host, dataOf(input), options ?? null);
  if (!plugin.active) return null;

  // Hook inputs waiting for the drain, as [name, input, name, input, ...] in the first
  // `length` slots. Two arrays take turns and keep their capacity, so a hook call never
  // pays for growing one.
  let pending = [];
  let spare = [];
  let length = 0;
  let scheduled = false;
  let dead = false;
  const fail = (error) => {
    dead = true;
    pending = [];
    length = 0;
    host.log("error", `stopped after an internal error, sessions are no longer synced: ${error}`);
  };

  const drain = () => {
    scheduled = false;
    const batch = pending;
    const count = length;
    pending = spare;
    length = 0;
    for (let k = 0; k < count && !dead; k += 2) {
      try {
        if (batch[k] === "event") {
          const type = batch[k + 1]?.type;
          if (type === "session.updated" || type === "session.created") askReplies(batch[k + 1]);
        }
        plugin.handle(batch[k], batch[k + 1]);
      } catch (error) {
        fail(error);
      }
    }
    batch.fill(undefined, 0, count);
    spare = batch;
  };
  const arm = () => {
    if (scheduled) later(drain);
  };
  // Returns one settled promise for every call: the hooks are async to OpenCode, and
  // need not cost a promise each. The drain is armed through that promise too: a
  // reaction on it costs less than `queueMicrotask`, which Node wraps for async hooks.
  const push = (name, value) => {
    if (dead) return DONE;
    pending[length++] = name;
    pending[length++] = value;
    if (!scheduled) {
      scheduled = true;
      DONE.then(arm);
    }
    return DONE;
  };
  // Sessions whose earlier replies were asked for (or that began in this process).
  const askedReplies = new Set();
  // Before OpenCode 1.15 a session keeps no totals: they are the sums over its replies (and
  // 1.15's own lag the last one), and a session continued here (`opencode run --session`)
  // had replies in earlier processes. OpenCode lists them off the hook; a turn takes longer
  // than that answer.
  const askReplies = (event) => {
    const info = event.properties?.info;
    const id = info?.id;
    if (typeof id !== "string" || askedReplies.has(id)) return;
    askedReplies.add(id);
    if (event.type === "session.created") return;
    const listed = input?.client?.session?.messages?.({ path: { id } });
    listed
      ?.then?.((answer) => {
        if (!dead && Array.isArray(answer?.data)) plugin.noteReplies(answer.data);
      })
      ?.catch?.(() => {});
  };

  let disposed = false;
  // OpenCode 1.2 to 1.14 end `opencode run` with process.exit() 4-12 ms after the turn's
  // `session.idle`, never calling `dispose`: a drain armed for later never runs. The exit
  // handler runs what is queued and the engine's final flush, synchronously: every record
  // is written to the outbox, where the next start or `opencode-sync sync --flush` finds it.
  // The hooks stay as cheap as before (reading an event's type on every call would cost
  // more than the whole hook; see bench/plugin-replay.mjs).
  const onExit = () => {
    if (dead || disposed) return;
    disposed = true;
    drain();
    try {
      plugin.dispose();
    } catch {
      // the process is ending
    }
  };
  process.once?.("exit", onExit);
  const hooks = {
    // The one hook that reads its argument: a getter that throws must not reach OpenCode.
    event: (arg) => {
      try {
        return push("event", arg?.event);
      } catch {
        return DONE;
      }
    },
    "chat.message": (i, o) => push("chat.message", { i, o }),
    "tool.execute.before": (i, o) => push("tool.execute.before", { i, o }),
    "tool.execute.after": (i, o) => push("tool.execute.after", { i, o }),
    dispose: async () => {
      if (dead || disposed) return;
      disposed = true;
      process.removeListener?.("exit", onExit);
      drain();
      try {
        await plugin.dispose();
      } catch (error) {
        fail(error);
      }
    },
  };
  return { host, hooks, instances: 0 };
}

/**
 * The V1 plugin, `server(input, options)`, as OpenCode 1.x calls it once per instance.
 * Returns no hooks at all when sync is off (not logged in, or `enabled: false`). One engine
 * per instance directory, whatever the loader does: a second call with the same input (a
 * loader calling two exports) gets no hooks, so no event is handled twice; a second live
 * instance of the same directory shares the engine, which is disposed with the last one.
 * Another directory (`opencode serve`) gets its own engine: the branch and the fallback
 * directory are the instance's.
 */
async function server(input, options) {
  try {
    if (input !== null && typeof input === "object") {
      if (answeredInputs.has(input)) return {};
      answeredInputs.add(input);
    }
    const directory = directoryOf(input);
    let engine = engines.get(directory);
    if (engine === undefined) {
      engine = startEngine(input, options);
      if (engine === null) return {};
      engines.set(directory, engine);
    }
    engine.instances += 1;
    const { dispose, ...rest } = engine.hooks;
    return {
      ...rest,
      dispose: async () => {
        engine.instances -= 1;
        if (engine.instances > 0) return;
        if (engines.get(directory) === engine) engines.delete(directory);
        await dispose();
      },
    };
  } catch (error) {
    try {
      makeHost(input?.client).log("error", `could not start, sessions are not synced: ${error}`);
    } catch {
      // nothing may escape into OpenCode
    }
    return {};
  }
}

/**
 * The V2 plugin's `setup(ctx)`. OpenCode 1.18.x also calls it, with a reduced ctx that has
 * no `event` and no `location`: the V1 `server` does the work there, so this returns at
 * once. On OpenCode 2 it hands over to `startV2`.
 */
async function setup(ctx) {
  if (!ctx?.location || !ctx?.event) return undefined;
  return startV2(ctx);
}

/**
 * OpenCode 2: one plugin instance per project location, all in one long-lived service
 * that shows every instance every location's events. The core's V2 translator keeps this
 * location's sessions only; for an event without `location` whose session it has not
 * seen, it asks, and `ctx.session.get` answers. The loop is started, never awaited
 * (activation is sequential and awaited by OpenCode); the cleanup aborts it and flushes.
 * There is no toast and no log API in V2: warnings go to the console.
 */
async function startV2(ctx) {
  const location = ctx.location;
  const host = makeHost(null);
  if (!wasm) {
    host.log("error", `could not load the wasm module, sessions are not synced: ${loadError}`);
    return undefined;
  }
  const project = location.project ?? {};
  const input = {
    directory: location.directory,
    worktree: project.directory ?? location.directory,
    project: { id: project.id, worktree: project.directory ?? location.directory },
  };
  const plugin = new wasm.SyncPlugin(host, input, ctx.options ?? null);
  if (!plugin.active) return undefined;
  const controller = new AbortController();
  let dead = false;
  const fail = (error) => {
    dead = true;
    controller.abort();
    host.log("error", `stopped after an internal error, sessions are no longer synced: ${error}`);
  };
  const locate = (sessionID) => {
    Promise.resolve()
      .then(() => ctx.session?.get?.({ sessionID }))
      .then(
        (info) => plugin.locatedV2(sessionID, info ?? null),
        () => plugin.locatedV2(sessionID, null),
      )
      .catch(() => {});
  };
  // As the V1 hooks do (see startEngine): the loop only queues each event; one deferred
  // drain hands what arrived to the wasm side, in a later macrotask. The service runs
  // every instance's loop on its one JavaScript thread, so whatever a loop does per
  // event, the service waits for. Two arrays take turns and keep their capacity.
  let pending = [];
  let spare = [];
  let length = 0;
  let scheduled = false;
  const drain = () => {
    scheduled = false;
    const batch = pending;
    const count = length;
    pending = spare;
    length = 0;
    for (let k = 0; k < count && !dead; k++) {
      try {
        const ask = plugin.handleV2(batch[k]);
        if (ask) locate(ask);
      } catch (error) {
        fail(error);
      }
    }
    batch.fill(undefined, 0, count);
    spare = batch;
  };
  const loop = (async () => {
    try {
      for await (const event of ctx.event.subscribe({ signal: controller.signal })) {
        if (dead) continue;
        pending[length++] = event;
        if (!scheduled) {
          scheduled = true;
          later(drain);
        }
      }
    } catch (error) {
      if (!controller.signal.aborted) host.log("error", `the event stream ended, sessions are no longer synced: ${error}`);
    }
  })();
  return async () => {
    controller.abort();
    await loop;
    if (dead) return;
    drain();
    try {
      await plugin.dispose();
    } catch {
      // the service is unloading the plugin
    }
  };
}

/**
 * The default export, for every loader at once. OpenCode 1.0 to 1.2 call each export of
 * the module as a plugin function (an object there is "not a function": 1.0 aborts the
 * run), so it is a function, the V1 plugin. It also carries `id`, `server` and `setup`:
 * the documented `{ id, server, setup }` shape, which 1.14+ and OpenCode 2 read. (1.14 and
 * 1.18 take a function default for the legacy form and call it; OpenCode 2 loads
 * `server.js`, this shape as a plain object, from a directory or package entry.)
 */
export const OpenCodeSyncPlugin = (input, options) => server(input, options);
OpenCodeSyncPlugin.id = "opencode-sync";
OpenCodeSyncPlugin.server = server;
OpenCodeSyncPlugin.setup = setup;

export default OpenCodeSyncPlugin;
