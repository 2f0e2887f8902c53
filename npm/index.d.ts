// Types of the plugin export. Structural on purpose: no dependency on @opencode-ai/plugin.

/** What OpenCode passes to a plugin function (only the fields this plugin reads are typed). */
export interface PluginInput {
  client?: unknown;
  project?: { id?: string; worktree?: string; vcs?: string; [key: string]: unknown };
  directory?: string;
  worktree?: string;
  serverUrl?: URL | string;
  $?: unknown;
  [key: string]: unknown;
}

/** The tuple form's options: `["opencode-sync-plugin", { ... }]` in opencode.json. They
 * override the same options stored by `opencode-sync config set`. */
export interface SyncOptions {
  /** Sync at all (false pauses the plugin without uninstalling it). Default true. */
  enabled?: boolean;
  /** Include tool results, truncated to maxToolOutputBytes. Default true. */
  syncToolOutput?: boolean;
  /** Longest tool output kept per call, 256 to 262144. Default 16384. */
  maxToolOutputBytes?: number;
  /** Include the model's reasoning text. Default false. */
  syncReasoning?: boolean;
  /** Mask API keys, tokens, private keys and URL passwords before sending. Default true. */
  redact?: boolean;
}

/** The hooks returned; none at all when sync is off. */
export interface Hooks {
  event?: (input: { event: unknown }) => Promise<void>;
  "chat.message"?: (input: unknown, output: unknown) => Promise<void>;
  "tool.execute.before"?: (input: unknown, output: unknown) => Promise<void>;
  "tool.execute.after"?: (input: unknown, output: unknown) => Promise<void>;
  dispose?: () => Promise<void>;
}

export type Plugin = (input: PluginInput, options?: SyncOptions | null) => Promise<Hooks>;

/** The V1 plugin function, also carrying the `{ id, server, setup }` shape OpenCode 1.14+ and 2 read. */
export declare const OpenCodeSyncPlugin: Plugin & {
  id: "opencode-sync";
  server: Plugin;
  /** OpenCode 2's entry; a no-op where `ctx` has no `event`/`location` (1.18.x). */
  setup: (ctx: unknown) => Promise<unknown>;
};
export default OpenCodeSyncPlugin;
