//! Property tests: hostile input never panics the core. The plugin runs the engine inside
//! OpenCode (a panic poisons the wasm module and syncing stops for the rest of the
//! process), and the outbox is a directory any process, crash or user can leave
//! anything in.
//!
//! - `Engine::handle` / `Engine::handle_json` get random JSON, real recorded events with
//!   parts replaced by values of the wrong type or removed, truncated real event text,
//!   and event types it knows with random properties, interleaved with the real stream
//!   so that malformed input meets real state; with random options (tiny output limits
//!   included). Everything it emits must survive the outbox record round trip.
//! - `outbox::parse_entry` / `plan` / `Record::decode` get random names, names built from
//!   hostile pieces, random clocks, and real records truncated or with wrong types.

mod support;

use opencode_sync_core::config::Options;
use opencode_sync_core::engine::{Engine, Hook, Upsert};
use opencode_sync_core::outbox::{self, Entry, Record};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use support::{RECORDED, mutate};

/// The recorded hook calls: (hook name, input).
fn recorded() -> Vec<(String, Value)> {
    RECORDED
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| {
            (
                v["hook"].as_str().unwrap_or_default().to_owned(),
                v["input"].clone(),
            )
        })
        .collect()
}

fn hook_of(name: &str) -> Option<Hook> {
    match name {
        "tool.before" => Some(Hook::ToolBefore),
        "tool.after" => Some(Hook::ToolAfter),
        other => Hook::from_name(other),
    }
}

/// Key names the model reads, so random objects often reach the parsing paths.
const KEYS: &[&str] = &[
    "type",
    "properties",
    "info",
    "part",
    "id",
    "sessionID",
    "messageID",
    "role",
    "time",
    "created",
    "completed",
    "updated",
    "tokens",
    "input",
    "output",
    "reasoning",
    "cache",
    "read",
    "write",
    "cost",
    "state",
    "status",
    "text",
    "synthetic",
    "tool",
    "callID",
    "metadata",
    "exit",
    "error",
    "title",
    "modelID",
    "providerID",
    "model",
    "directory",
    "parentID",
    "branch",
    "i",
    "o",
    "message",
    "parts",
];

const EVENT_TYPES: &[&str] = &[
    "session.created",
    "session.updated",
    "session.status",
    "session.idle",
    "message.updated",
    "message.part.updated",
    "message.removed",
    "vcs.branch.updated",
    "session.deleted",
    "message.part.delta",
];

fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,24}",
        prop::sample::select(KEYS).prop_map(str::to_owned),
        prop::sample::select(EVENT_TYPES).prop_map(str::to_owned),
        Just("ses_deff965d2ffeduqkQGf3GHnCPe".to_owned()),
        Just("msg_2100699c3001".to_owned()),
        Just("assistant".to_owned()),
        Just("user".to_owned()),
        Just("completed".to_owned()),
        Just("tool".to_owned()),
        // Multi-byte text around truncation limits.
        "[é✓😀a]{0,40}",
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        arb_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        prop::sample::select(KEYS).prop_map(str::to_owned),
                        "\\PC{0,8}"
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// An event of a type the engine acts on, with random properties.
fn arb_known_event() -> impl Strategy<Value = Value> {
    (prop::sample::select(EVENT_TYPES), arb_json(), arb_json()).prop_map(|(kind, info, extra)| {
        json!({
            "id": "evt_fuzz",
            "type": kind,
            "properties": {
                "sessionID": "ses_deff965d2ffeduqkQGf3GHnCPe",
                "info": info,
                "part": extra.clone(),
                "messageID": extra,
                "status": {"type": "busy"},
            }
        })
    })
}

/// One hostile hook call.
#[derive(Debug, Clone)]
enum Call {
    /// A real recorded call, unchanged (builds real state).
    Real(usize),
    /// A real call with the value at a path replaced (`Some`) or removed (`None`).
    Mutated(usize, Vec<usize>, Option<Value>),
    /// A real call's JSON text cut at a byte offset (only `handle_json` sees text).
    Truncated(usize, usize),
    /// A random value for a random hook.
    Random(u8, Value),
}

fn arb_call(n: usize) -> impl Strategy<Value = Call> {
    prop_oneof![
        3 => (0..n).prop_map(Call::Real),
        3 => (0..n, prop::collection::vec(any::<usize>(), 1..6), prop::option::of(arb_json()))
            .prop_map(|(i, path, r)| Call::Mutated(i, path, r)),
        2 => (0..n, any::<usize>()).prop_map(|(i, cut)| Call::Truncated(i, cut)),
        1 => (0u8..4, arb_json()).prop_map(|(h, v)| Call::Random(h, v)),
        1 => arb_known_event().prop_map(|v| Call::Random(0, v)),
    ]
}

fn arb_options() -> impl Strategy<Value = Options> {
    (any::<bool>(), 0u64..400, any::<bool>(), any::<bool>()).prop_map(
        |(sync_tool_output, max_tool_output_bytes, sync_reasoning, redact)| Options {
            enabled: true,
            sync_tool_output,
            max_tool_output_bytes,
            sync_reasoning,
            redact,
        },
    )
}

/// Every upsert the engine emits must be a record the outbox can store and read back.
fn check_upserts(upserts: &[Upsert]) -> Result<(), TestCaseError> {
    for (i, u) in upserts.iter().enumerate() {
        let record = Record::new(u, 1_795_000_000_000);
        let text = record.encode();
        prop_assert!(!text.is_empty(), "an upsert did not encode: {u:?}");
        let back = Record::decode(&text);
        prop_assert_eq!(back.as_ref().ok(), Some(&record), "for {}", text);
        prop_assert_eq!(
            back.ok().and_then(|r| r.upsert().ok()).map(|b| b.key()),
            Some(u.key())
        );
        prop_assert_eq!(record.key(), u.key());
        let name = outbox::file_name(u, 1_795_000_000_000, "fuzzfuzz", i as u64);
        prop_assert!(
            matches!(outbox::parse_entry(&name), Entry::Queued(_)),
            "the name {name} of an emitted upsert does not parse back"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn engine_survives_hostile_hook_input(
        options in arb_options(),
        init in prop::option::of(arb_json()),
        calls in prop::collection::vec(arb_call(127), 0..60),
    ) {
        let real = recorded();
        let init_input = init.unwrap_or_else(|| real[0].1.clone());
        let mut engine = Engine::new(&init_input, options);
        let mut emitted = Vec::new();
        for call in calls {
            match call {
                Call::Real(i) => {
                    let (name, input) = &real[i % real.len()];
                    if let Some(hook) = hook_of(name) {
                        emitted.extend(engine.handle(hook, input));
                    }
                }
                Call::Mutated(i, path, replacement) => {
                    let (name, input) = &real[i % real.len()];
                    let mut input = input.clone();
                    mutate(&mut input, &path, replacement);
                    if let Some(hook) = hook_of(name) {
                        emitted.extend(engine.handle(hook, &input));
                    }
                }
                Call::Truncated(i, cut) => {
                    let (name, input) = &real[i % real.len()];
                    let text = input.to_string();
                    let mut at = cut % (text.len() + 1);
                    while !text.is_char_boundary(at) {
                        at -= 1;
                    }
                    if let Some(hook) = hook_of(name) {
                        emitted.extend(engine.handle_json(hook, &text[..at]));
                    }
                }
                Call::Random(h, value) => {
                    let hook = [Hook::Event, Hook::ChatMessage, Hook::ToolBefore, Hook::ToolAfter][usize::from(h % 4)];
                    emitted.extend(engine.handle(hook, &value));
                    emitted.extend(engine.handle_json(hook, &value.to_string()));
                }
            }
        }
        emitted.extend(engine.flush());
        check_upserts(&emitted)?;
    }

    #[test]
    fn engine_survives_arbitrary_text(hook in 0u8..4, text in "\\PC{0,200}") {
        let hook = [Hook::Event, Hook::ChatMessage, Hook::ToolBefore, Hook::ToolAfter][usize::from(hook % 4)];
        let mut engine = Engine::new(&Value::Null, Options::default());
        let out = engine.handle_json(hook, &text);
        check_upserts(&out)?;
        check_upserts(&engine.flush())?;
    }

    #[test]
    fn parse_entry_survives_any_name(name in "\\PC{0,160}") {
        let _ = outbox::parse_entry(&name);
    }

    #[test]
    fn parse_entry_survives_hostile_pieces(
        pieces in prop::collection::vec(
            prop_oneof![
                "[0-9]{0,25}",
                "-?[0-9]{1,20}",
                Just("session".to_owned()),
                Just("message".to_owned()),
                Just("json".to_owned()),
                Just("claim-".to_owned()),
                Just(".claim-".to_owned()),
                Just(String::new()),
                "\\PC{0,6}",
            ],
            0..9,
        ),
        sep in prop::sample::select(vec![".", "-", ".claim-", ""]),
    ) {
        let name = pieces.join(sep);
        let _ = outbox::parse_entry(&name);
        let _ = outbox::parse_entry(&format!("{name}.json"));
        let _ = outbox::parse_entry(&format!("{name}.json.claim-{name}"));
    }

    #[test]
    fn plan_survives_any_listing(
        names in prop::collection::vec(
            prop_oneof![
                "\\PC{0,60}",
                ("[0-9]{1,19}", "[a-z_]{1,6}", prop::sample::select(vec!["session", "message", "x"]), "[a-z_]{1,6}")
                    .prop_map(|(o, s, k, i)| format!("{o}-w-000001.{s}.{k}.{i}.json")),
                ("[0-9]{1,19}", "[a-z_]{1,6}", "[a-z_]{1,6}", "[0-9]{1,20}", "\\PC{0,8}")
                    .prop_map(|(o, s, i, at, w)| format!("{o}-w-000001.{s}.message.{i}.json.claim-{at}-{w}")),
            ],
            0..40,
        ),
        now in any::<i64>(),
    ) {
        let p = outbox::plan(&names, now, &outbox::AssumeAlive);
        // Whatever the listing, what it sends or keeps is a subset of it, each key once.
        let mut keys: Vec<&str> = p.sendable.iter().map(|n| n.key.as_str()).collect();
        let n = keys.len();
        keys.sort_unstable();
        keys.dedup();
        prop_assert_eq!(keys.len(), n);
        for name in p.queued.iter().chain(&p.sendable) {
            prop_assert!(names.contains(&name.file));
        }
        prop_assert!(p.queued.len() + p.superseded.len() <= names.len());
    }

    #[test]
    fn decode_survives_any_text(text in "\\PC{0,400}") {
        let _ = Record::decode(&text);
    }

    #[test]
    fn decode_survives_damaged_real_records(
        call in 0usize..127,
        cut in any::<usize>(),
        path in prop::collection::vec(any::<usize>(), 1..6),
        replacement in prop::option::of(arb_json()),
    ) {
        // A real record: what the engine emits for the recorded stream.
        let real = recorded();
        let mut engine = Engine::new(&real[0].1, Options::default());
        let mut upserts = Vec::new();
        for (name, input) in &real[..=call.min(real.len() - 1)] {
            if let Some(hook) = hook_of(name) {
                upserts.extend(engine.handle(hook, input));
            }
        }
        upserts.extend(engine.flush());
        let Some(upsert) = upserts.get(cut % upserts.len().max(1)).cloned() else {
            return Ok(());
        };
        let text = Record::new(&upsert, 1).encode();
        // Truncated, as a crash mid-write would leave it (the plugin writes atomically,
        // but anything can be found in a directory).
        let mut at = cut % (text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let _ = Record::decode(&text[..at]);
        // With a value replaced by one of a wrong type, or removed.
        let mut value: Value = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        mutate(&mut value, &path, replacement);
        let _ = Record::decode(&value.to_string());
    }

    /// The plan keeps a session's record ahead of its messages whatever order the files
    /// were written in (the server keeps `createdAt` only when a session is created).
    #[test]
    fn plan_puts_each_session_record_before_its_messages(
        ops in prop::collection::vec((0u8..3, 0u8..4, any::<bool>()), 0..40),
    ) {
        use opencode_sync_core::api::{MessagePayload, SessionPayload};
        let files: Vec<String> = ops
            .iter()
            .enumerate()
            .map(|(t, (s, m, is_session))| {
                let sid = format!("s{s}");
                let u = if *is_session {
                    Upsert::Session(SessionPayload { external_id: sid, ..Default::default() })
                } else {
                    Upsert::Message(MessagePayload {
                        session_external_id: sid,
                        external_id: format!("m{s}{m}"),
                        ..Default::default()
                    })
                };
                outbox::file_name(&u, t as i64, "w", t as u64)
            })
            .collect();
        let p = outbox::plan(&files, 0, &outbox::AssumeAlive);
        for (i, name) in p.queued.iter().enumerate() {
            if name.key.starts_with("session:") {
                let earlier = p.queued[..i].iter().any(|n| n.session_id == name.session_id);
                prop_assert!(!earlier, "{:?}", p.queued);
                prop_assert!(
                    p.sendable.iter().any(|n| n.file == name.file),
                    "the session record is its session's first to go"
                );
            }
        }
    }
}
