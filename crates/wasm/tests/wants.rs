//! The plugin skips converting hook calls the engine cannot act on (`Hook::wants`). That
//! must never change what is sent: replaying the recorded session with and without the
//! filter gives the same upserts.

use opencode_sync_core::config::Options;
use opencode_sync_core::engine::{Engine, Hook, Upsert};
use serde_json::Value;

const RECORDING: &str =
    include_str!("../../../tests/fixtures/opencode-1.18.33-two-turns-three-tools.jsonl");

fn replay(filtered: bool) -> (Vec<Upsert>, usize) {
    let mut engine: Option<Engine> = None;
    let mut out = Vec::new();
    let mut skipped = 0;
    for line in RECORDING.lines().filter(|l| !l.trim().is_empty()) {
        let line: Value = serde_json::from_str(line).expect("recording line");
        let input = &line["input"];
        let hook = match line["hook"].as_str() {
            Some("init") => {
                if let Some(mut done) = engine.take() {
                    out.extend(done.flush());
                }
                engine = Some(Engine::new(input, Options::default()));
                continue;
            }
            Some("tool.before") => Hook::ToolBefore,
            Some("tool.after") => Hook::ToolAfter,
            Some(name) => Hook::from_name(name).expect("known hook"),
            None => continue,
        };
        if filtered && !hook.wants(input["type"].as_str()) {
            skipped += 1;
            continue;
        }
        out.extend(engine.as_mut().expect("init first").handle(hook, input));
    }
    if let Some(mut done) = engine.take() {
        out.extend(done.flush());
    }
    (out, skipped)
}

#[test]
fn filtering_what_the_engine_cannot_use_changes_nothing() {
    let (all, _) = replay(false);
    let (filtered, skipped) = replay(true);
    assert!(!all.is_empty());
    assert!(
        skipped >= 20,
        "deltas, diffs and tool hooks are skipped ({skipped})"
    );
    assert_eq!(all, filtered);
}
