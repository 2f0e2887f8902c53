// A small made-up `opencode.db` for suites that need OpenCode's store without running
// OpenCode (the cross-platform smoke tests feed it to each platform's CLI): OpenCode
// 1.18.33's schema (as crates/cli/tests/support/opencode_fixture.rs has it), WAL mode,
// one project and one session of a user prompt and an assistant step that reasons,
// talks and calls a tool. Written with the pinned Bun's bun:sqlite (Node 20 has no
// node:sqlite); read back with readStore() from lib/opencode.mjs to compare.

import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { BUN_BIN } from "./opencode.mjs";

const SCHEMA = `
CREATE TABLE project (id text PRIMARY KEY, worktree text NOT NULL, vcs text, name text, icon_url text,
  icon_url_override text, icon_color text, time_created integer NOT NULL, time_updated integer NOT NULL,
  time_initialized integer, sandboxes text NOT NULL, commands text);
CREATE TABLE session (id text PRIMARY KEY, project_id text NOT NULL, workspace_id text, parent_id text,
  slug text NOT NULL, directory text NOT NULL, path text, title text NOT NULL, version text NOT NULL,
  share_url text, summary_additions integer, summary_deletions integer, summary_files integer,
  summary_diffs text, metadata text, cost real DEFAULT 0 NOT NULL, tokens_input integer DEFAULT 0 NOT NULL,
  tokens_output integer DEFAULT 0 NOT NULL, tokens_reasoning integer DEFAULT 0 NOT NULL,
  tokens_cache_read integer DEFAULT 0 NOT NULL, tokens_cache_write integer DEFAULT 0 NOT NULL,
  revert text, permission text, agent text, model text, time_created integer NOT NULL,
  time_updated integer NOT NULL, time_compacting integer, time_archived integer,
  FOREIGN KEY (project_id) REFERENCES project(id) ON DELETE CASCADE);
CREATE TABLE message (id text PRIMARY KEY, session_id text NOT NULL, time_created integer NOT NULL,
  time_updated integer NOT NULL, data text NOT NULL,
  FOREIGN KEY (session_id) REFERENCES session(id) ON DELETE CASCADE);
CREATE TABLE part (id text PRIMARY KEY, message_id text NOT NULL, session_id text NOT NULL,
  time_created integer NOT NULL, time_updated integer NOT NULL, data text NOT NULL,
  FOREIGN KEY (message_id) REFERENCES message(id) ON DELETE CASCADE);
CREATE INDEX message_session_time_created_id_idx ON message (session_id, time_created, id);
CREATE INDEX part_message_id_id_idx ON part (message_id, id);
CREATE INDEX part_session_idx ON part (session_id);
CREATE INDEX session_project_idx ON session (project_id);
`;

const WRITE_DB = `
import { Database } from "bun:sqlite";
const spec = JSON.parse(process.env.FIXTURE_SPEC);
const db = new Database(process.env.OPENCODE_DB_PATH, { create: true });
db.exec("PRAGMA journal_mode = WAL");
db.exec(spec.schema);
const run = (sql, ...args) => db.query(sql).run(...args);
db.transaction(() => {
  run("INSERT INTO project (id, worktree, vcs, time_created, time_updated, sandboxes) VALUES (?, ?, 'git', 1, 1, '[]')", spec.project.id, spec.project.worktree);
  const s = spec.session;
  run("INSERT INTO session (id, project_id, slug, directory, path, title, version, cost, tokens_input, tokens_output, tokens_reasoning, tokens_cache_read, tokens_cache_write, permission, agent, model, time_created, time_updated) VALUES (?, ?, ?, ?, '', ?, '1.18.33', ?, ?, ?, 0, 0, 0, '[]', 'build', ?, ?, ?)",
    s.id, spec.project.id, "slug-" + s.id, s.directory, s.title, s.cost, s.tokensInput, s.tokensOutput, s.model, s.created, s.updated);
  for (const m of spec.messages) {
    run("INSERT INTO message (id, session_id, time_created, time_updated, data) VALUES (?, ?, ?, ?, ?)", m.id, s.id, m.created, m.updated, JSON.stringify(m.data));
    for (const p of m.parts) run("INSERT INTO part (id, message_id, session_id, time_created, time_updated, data) VALUES (?, ?, ?, ?, ?, ?)", p.id, m.id, s.id, p.created, p.created + 5, JSON.stringify(p.data));
  }
})();
db.close();
`;

/**
 * Writes `<dataDir>/opencode.db` and returns { dbPath, sessionID }. `directory` is the
 * session's project directory as OpenCode recorded it (a Windows path for a Windows CLI).
 */
export function writeOpencodeDb(dataDir, { directory = "/home/u/src/app", sessionID = "ses_platformsmoke0001" } = {}) {
  fs.mkdirSync(dataDir, { recursive: true });
  const dbPath = path.join(dataDir, "opencode.db");
  for (const f of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) fs.rmSync(f, { force: true });
  const t = 1_760_000_000_000;
  const tokens = { total: 1290, input: 1200, output: 80, reasoning: 10, cache: { write: 0, read: 0 } };
  const messages = [
    {
      id: "msg_platformsmoke0001",
      created: t,
      updated: t + 20,
      data: { role: "user", time: { created: t }, agent: "build", model: { providerID: "mock", modelID: "mock-1" }, summary: { diffs: [] } },
      parts: [{ id: "prt_platformsmoke0001", created: t + 1, data: { type: "text", text: "What is in notes.txt?" } }],
    },
    {
      id: "msg_platformsmoke0002",
      created: t + 1000,
      updated: t + 3510,
      data: {
        parentID: "msg_platformsmoke0001", role: "assistant", mode: "build", agent: "build",
        path: { cwd: directory, root: directory }, cost: 0.0048, tokens,
        modelID: "mock-1", providerID: "mock", time: { created: t + 1000, completed: t + 3500 }, finish: "stop",
      },
      parts: [
        { id: "prt_platformsmoke0002", created: t + 1010, data: { type: "step-start", snapshot: "5eed" } },
        { id: "prt_platformsmoke0003", created: t + 1020, data: { type: "reasoning", text: "Let me look.", time: { start: t + 1020, end: t + 1030 } } },
        {
          id: "prt_platformsmoke0004",
          created: t + 1060,
          data: {
            type: "tool", tool: "bash", callID: "call_platformsmoke_0",
            state: { status: "completed", input: { command: "cat notes.txt", description: "Read notes" }, output: "hello from notes\n",
                     metadata: { exit: 0, truncated: false }, title: "cat notes.txt", time: { start: t + 1060, end: t + 1160 } },
          },
        },
        { id: "prt_platformsmoke0005", created: t + 1200, data: { type: "text", text: "The notes say hello.", time: { start: t + 1200, end: t + 1300 } } },
      ],
    },
  ];
  const spec = {
    schema: SCHEMA,
    project: { id: "prj_platformsmoke", worktree: directory },
    session: { id: sessionID, directory, title: "Platform smoke session", cost: 0.0048, tokensInput: 1200, tokensOutput: 90,
               model: JSON.stringify({ id: "mock-1", providerID: "mock", variant: "default" }), created: t, updated: t + 3510 },
    messages,
  };
  const r = spawnSync(BUN_BIN, ["-e", WRITE_DB], {
    encoding: "utf8",
    timeout: 30_000,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0", OPENCODE_DB_PATH: dbPath, FIXTURE_SPEC: JSON.stringify(spec) },
  });
  if (r.status !== 0) throw new Error(`writing ${dbPath} failed (${r.status} ${r.signal ?? ""}): ${r.stderr}${r.error ?? ""}`);
  return { dbPath, sessionID };
}
