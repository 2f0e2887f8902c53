//! Fills an outbox directory with records exactly as the plugin writes them (the core's
//! file names and record format), for the `sync --flush` drain benchmark
//! (`bench/outbox-flush.mjs`, run by `scripts/bench`).
//!
//! ```text
//! cargo run --release -p opencode-sync-core --example outbox-fill -- DIR [SESSIONS] [RECORDS_PER_SESSION]
//! ```
//!
//! Each session gets one session record and `RECORDS_PER_SESSION - 1` messages
//! (alternating user prompts and assistant answers with a tool call and its result, ~1.5
//! KB each), queued in the order OpenCode produces them. Prints `{"records": N, "bytes":
//! B}`.

use std::fs;
use std::path::PathBuf;

use opencode_sync_core::api::{MessagePayload, Part, Role, SessionPayload};
use opencode_sync_core::engine::Upsert;
use opencode_sync_core::outbox::{Record, file_name};
use serde_json::json;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first().map(PathBuf::from) else {
        eprintln!("usage: outbox-fill DIR [SESSIONS] [RECORDS_PER_SESSION]");
        std::process::exit(2);
    };
    let sessions: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200);
    let per_session: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(50);
    if let Err(e) = fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        std::process::exit(1);
    }
    let start: i64 = 1_795_000_000_000;
    let writer = "benchfil";
    let mut counter = 0u64;
    let mut bytes = 0usize;
    let mut write = |upsert: Upsert, at: i64| {
        let name = file_name(&upsert, at, writer, counter);
        counter += 1;
        let text = Record::new(&upsert, at).encode();
        bytes += text.len();
        if let Err(e) = fs::write(dir.join(&name), text) {
            eprintln!("cannot write {name}: {e}");
            std::process::exit(1);
        }
    };
    let answer = "Here is what I found in the repository. ".repeat(12);
    let output = "src/main.rs:12: fn main() {\n".repeat(20);
    for s in 0..sessions {
        let sid = format!("ses_bench{s:06}");
        let t0 = start + (s as i64) * 60_000;
        write(
            Upsert::Session(SessionPayload {
                external_id: sid.clone(),
                title: Some(format!("Benchmark session {s}")),
                project_path: Some(format!("/home/dev/project-{}", s % 7)),
                project_name: Some(format!("project-{}", s % 7)),
                model: Some("mock-1".into()),
                provider: Some("mock".into()),
                source: Some("opencode".into()),
                prompt_tokens: Some(12_000),
                completion_tokens: Some(900),
                cost: Some(0.0495),
                created_at: Some(t0),
                ..Default::default()
            }),
            t0,
        );
        for m in 1..per_session {
            let at = t0 + (m as i64) * 500;
            let mid = format!("msg_bench{s:06}x{m:05}");
            let payload = if m % 2 == 1 {
                MessagePayload {
                    session_external_id: sid.clone(),
                    external_id: mid,
                    role: Role::User,
                    text_content: Some(format!("Prompt number {m}: look at the code and fix it")),
                    model: Some("mock-1".into()),
                    source: Some("opencode".into()),
                    created_at: Some(at),
                    ..Default::default()
                }
            } else {
                MessagePayload {
                    session_external_id: sid.clone(),
                    external_id: mid,
                    role: Role::Assistant,
                    text_content: Some(answer.clone()),
                    model: Some("mock-1".into()),
                    source: Some("opencode".into()),
                    prompt_tokens: Some(1200),
                    completion_tokens: Some(90),
                    duration_ms: Some(2100),
                    created_at: Some(at),
                    parts: Some(vec![
                        Part {
                            kind: "text".into(),
                            content: json!(answer),
                        },
                        Part {
                            kind: "tool-call".into(),
                            content: json!({"toolName": "bash", "callID": format!("call_{m}"), "status": "completed", "args": {"command": "grep -rn main src"}, "title": "grep -rn main src"}),
                        },
                        Part {
                            kind: "tool-result".into(),
                            content: json!({"callID": format!("call_{m}"), "output": output, "exit": 0}),
                        },
                    ]),
                }
            };
            write(Upsert::Message(payload), at);
        }
    }
    println!("{}", json!({"records": counter, "bytes": bytes}));
}
