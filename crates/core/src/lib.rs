//! `opencode-sync-core` holds every decision the plugin and the CLI make, so both front
//! ends behave identically and only move bytes. Nothing here touches the file system,
//! the network, the clock or the process environment: callers pass those facts in.
//!
//! - [`paths`]: where the credentials file lives, from an environment snapshot.
//! - [`endpoint`]: turning what a user typed into the base URL requests go to.
//! - [`api_key`]: the `osk_` key, validated, and masked whenever it is shown.
//! - [`config`]: the credentials file, its options and environment overrides.
//! - [`api`]: the OpenSync wire types, request builders and response classifier.
//! - [`model`]: OpenCode's sessions, messages, parts and events, leniently parsed.
//! - [`json_text`]: JSON text mended before parsing (lone UTF-16 surrogates).
//! - [`engine`]: hook inputs in, upserts worth sending out (the plugin's logic).
//! - [`outbox`]: the durable queue's records, names, order and dispositions.
//! - [`delivery`]: the state machine every front end drives to send the outbox.
//! - [`retry`]: backoff with full jitter and `Retry-After`.
//! - [`git`]: the branch from `.git/HEAD`.
//! - [`backfill`]: which stored sessions and messages `sync` sends, and its records.

pub mod api;
pub mod api_key;
pub mod backfill;
pub mod config;
pub mod delivery;
pub mod endpoint;
pub mod engine;
pub mod git;
pub mod json_text;
pub mod map;
pub mod model;
pub mod outbox;
pub mod paths;
pub mod redact;
pub mod retry;

pub use api_key::ApiKey;
pub use endpoint::SiteUrl;
