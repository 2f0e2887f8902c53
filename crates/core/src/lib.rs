//! `opencode-sync-core` holds every decision the plugin and the CLI make, so both front
//! ends behave identically and only move bytes. Nothing here touches the file system,
//! the network, the clock or the process environment: callers pass those facts in.
//!
//! The modules read bottom-up: each uses only modules of the layers below it (no
//! import cycle; check with `grep -rn 'crate::' crates/core/src`).
//!
//! 1. Leaves, using nothing else here:
//!    - [`redact`]: secrets removed from text before it leaves the machine.
//!    - [`json_text`]: JSON text mended before parsing (lone UTF-16 surrogates).
//!    - [`objects`]: JSON read into this crate's types, structs only from objects.
//!    - [`model`]: OpenCode's sessions, messages, parts and events, leniently parsed.
//!    - [`api_key`]: the `osk_` key, validated, and masked whenever it is shown.
//!    - [`paths`]: where the credentials file and the outbox live, from an
//!      environment snapshot.
//!    - [`retry`]: backoff with full jitter and `Retry-After`.
//!    - [`git`]: the branch from `.git/HEAD`.
//! 2. [`endpoint`]: turning what a user typed into the base URL requests go to.
//! 3. What is sent and with which settings:
//!    - [`api`]: the OpenSync wire types, request builders and response classifier.
//!    - [`config`]: the credentials file, its options and environment overrides.
//!    - [`plugin_settings`]: what the plugin needs to run (credentials, options, the
//!      git branch), read through the host's files and environment.
//! 4. [`map`]: OpenCode's model mapped onto the wire types (the one mapping).
//! 5. [`engine`]: hook inputs in, upserts worth sending out (the plugin's logic), and
//!    [`v2`]: OpenCode 2's event stream translated into the events it knows.
//! 6. What is queued:
//!    - [`outbox`]: the durable queue's records, names, order and dispositions.
//!    - [`backfill`]: which stored sessions and messages `sync` sends, and its records.
//! 7. [`delivery`]: the state machine every front end drives to send the outbox.

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
pub mod objects;
pub mod outbox;
pub mod paths;
pub mod plugin_settings;
pub mod redact;
pub mod retry;
pub mod v2;

pub use api_key::ApiKey;
pub use endpoint::SiteUrl;
