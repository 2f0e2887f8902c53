//! The engine's tests: hook streams in, upserts out.

use super::*;
use std::collections::BTreeSet;

const RECORDED: &str =
    include_str!("../../../../tests/fixtures/opencode-1.18.33-two-turns-three-tools.jsonl");

/// Replays the recording; each `init` line starts a new OpenCode process, and the
/// previous one is disposed (flushed) first. Returns every upsert in order.
fn replay(options: &Options) -> Vec<Upsert> {
    let mut out = Vec::new();
    let mut engine: Option<Engine> = None;
    for line in RECORDED.lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        let input = &record["input"];
        let hook = match record["hook"].as_str().unwrap() {
            "init" => {
                if let Some(mut old) = engine.take() {
                    out.extend(old.flush());
                }
                let mut e = Engine::new(input, options.clone());
                e.set_git_branch(Some("main".into()));
                engine = Some(e);
                continue;
            }
            "tool.before" => Hook::ToolBefore,
            "tool.after" => Hook::ToolAfter,
            name => Hook::from_name(name).unwrap(),
        };
        out.extend(engine.as_mut().unwrap().handle(hook, input));
    }
    out.extend(engine.unwrap().flush());
    out
}

fn recorded_message_ids() -> BTreeSet<String> {
    RECORDED
        .lines()
        .filter_map(|l| {
            let v: Value = serde_json::from_str(l).ok()?;
            (v["input"]["type"] == "message.updated").then(|| {
                v["input"]["properties"]["info"]["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
        })
        .collect()
}

#[test]
fn recorded_session_arrives_complete() {
    let upserts = replay(&Options::default());
    let messages: Vec<&MessagePayload> = upserts
        .iter()
        .filter_map(|u| match u {
            Upsert::Message(m) => Some(m),
            Upsert::Session(_) => None,
        })
        .collect();
    // Every message once, none twice.
    let ids: Vec<&str> = messages.iter().map(|m| m.external_id.as_str()).collect();
    let unique: BTreeSet<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(ids.len(), unique.len(), "{ids:?}");
    assert_eq!(unique, recorded_message_ids());

    let first_user = messages
        .iter()
        .find(|m| m.role == crate::api::Role::User)
        .unwrap();
    assert_eq!(
        first_user.text_content.as_deref(),
        Some("\"read notes and run two commands\"")
    );
    assert_eq!(first_user.created_at, Some(1_795_565_197_923));

    let tool_calls: Vec<&Value> = messages
        .iter()
        .flat_map(|m| m.parts.iter().flatten())
        .filter(|p| p.kind == "tool-call")
        .map(|p| &p.content)
        .collect();
    assert_eq!(tool_calls.len(), 6, "three tool calls per turn");
    assert!(tool_calls.iter().all(|c| c["status"] == "completed"));
    let results = messages
        .iter()
        .flat_map(|m| m.parts.iter().flatten())
        .filter(|p| p.kind == "tool-result")
        .count();
    assert_eq!(results, 6);
    let failing = messages
        .iter()
        .flat_map(|m| m.parts.iter().flatten())
        .find(|p| p.kind == "tool-result" && p.content["exit"] == 3)
        .unwrap();
    assert_eq!(failing.content["output"], "token=[REDACTED]\n");

    for m in &messages {
        let wire = serde_json::to_string(m).unwrap();
        assert!(
            !wire.contains("ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
            "{wire}"
        );
        if m.role == crate::api::Role::Assistant {
            assert!(m.duration_ms.is_some() && m.model.as_deref() == Some("mock-1"));
            assert!(m.prompt_tokens.is_some(), "{m:?}");
        }
    }

    let sessions: Vec<&SessionPayload> = upserts
        .iter()
        .filter_map(|u| match u {
            Upsert::Session(s) => Some(s),
            Upsert::Message(_) => None,
        })
        .collect();
    let first = sessions[0];
    assert_eq!(first.title, None, "the placeholder title is never sent");
    assert_eq!(first.created_at, Some(1_795_565_197_869));
    let last = sessions.last().unwrap();
    assert_eq!(last.external_id, "ses_deff965d2ffeduqkQGf3GHnCPe");
    assert_eq!(last.title.as_deref(), Some("Notes review ✓"));
    assert_eq!(last.model.as_deref(), Some("mock-1"));
    assert_eq!(last.provider.as_deref(), Some("mock"));
    assert_eq!(last.project_name.as_deref(), Some("demo"));
    assert_eq!(last.git_branch.as_deref(), Some("main"));
    assert!(last.cost.unwrap() > 0.0);
    assert!(
        last.prompt_tokens.unwrap() > 600,
        "totals of both turns: {last:?}"
    );
    // Few requests: a handful of session upserts per process, not one per event.
    assert!(
        sessions.len() <= 6,
        "{} session upserts: {sessions:#?}",
        sessions.len()
    );
}

#[test]
fn reasoning_and_tool_output_follow_options() {
    let options = Options {
        sync_tool_output: false,
        ..Options::default()
    };
    let upserts = replay(&options);
    let outputs: Vec<&Value> = upserts
        .iter()
        .filter_map(|u| match u {
            Upsert::Message(m) => m.parts.as_ref(),
            Upsert::Session(_) => None,
        })
        .flatten()
        .filter(|p| p.kind == "tool-result")
        .map(|p| &p.content["output"])
        .collect();
    assert!(outputs.iter().all(|o| *o == "(tool output not synced)"));
}

#[test]
fn assistant_messages_in_progress_are_drafted_once_per_change() {
    let mut e = Engine::new(&Value::Null, Options::default());
    let message = |completed: Option<i64>| {
        serde_json::json!({"type": "message.updated", "properties": {"info": {
            "id": "msg_2", "sessionID": "ses_1", "role": "assistant", "modelID": "m",
            "providerID": "p", "time": {"created": 10, "completed": completed},
            "tokens": {"input": 1, "output": 2, "reasoning": 0, "cache": {"read": 0, "write": 0}}
        }}})
    };
    let part = |text: &str| {
        serde_json::json!({"type": "message.part.updated", "properties": {"part": {
            "id": "prt_1", "messageID": "msg_2", "sessionID": "ses_1", "type": "text", "text": text
        }}})
    };
    assert!(!e.drafts_due());
    assert!(e.handle(Hook::Event, &message(None)).is_empty());
    assert!(e.drafts_due());
    let drafts = e.drafts();
    assert_eq!(drafts.len(), 1, "a bare assistant message is drafted too");
    assert_eq!(drafts[0].key(), "message:msg_2");
    assert!(
        !e.drafts_due() && e.drafts().is_empty(),
        "nothing changed since"
    );

    assert!(e.handle(Hook::Event, &part("Half an ans")).is_empty());
    let Upsert::Message(draft) = &e.drafts()[0] else {
        panic!()
    };
    assert_eq!(draft.text_content.as_deref(), Some("Half an ans"));

    let done = e.handle(Hook::Event, &message(Some(20)));
    assert_eq!(done.len(), 1, "complete: sent, and never drafted again");
    assert!(!e.drafts_due() && e.drafts().is_empty());
}

#[test]
fn a_turns_totals_wait_for_the_update_after_idle() {
    let session = |cost: f64, input: u64| {
        serde_json::json!({"type": "session.updated", "properties": {"info": {
            "id": "ses_1", "directory": "/p", "title": "Real title", "cost": cost,
            "tokens": {"input": input, "output": 1, "reasoning": 0, "cache": {"read": 0, "write": 0}},
            "time": {"created": 10, "updated": 20}
        }}})
    };
    let status = |kind: &str| serde_json::json!({"type": "session.status", "properties": {"sessionID": "ses_1", "status": {"type": kind}}});
    let idle = serde_json::json!({"type": "session.idle", "properties": {"sessionID": "ses_1"}});
    let totals = |u: &[Upsert]| -> Vec<(Option<u64>, Option<f64>)> {
        u.iter()
            .filter_map(|u| match u {
                Upsert::Session(s) => Some((s.prompt_tokens, s.cost)),
                Upsert::Message(_) => None,
            })
            .collect()
    };
    for then_update in [true, false] {
        let mut e = Engine::new(&Value::Null, Options::default());
        assert_eq!(
            totals(&e.handle(Hook::Event, &session(0.0, 0))),
            [(None, Some(0.0))]
        );
        assert!(e.handle(Hook::Event, &status("busy")).is_empty());
        assert!(
            e.handle(Hook::Event, &session(0.5, 100)).is_empty(),
            "busy: totals wait"
        );
        assert!(e.handle(Hook::Event, &status("idle")).is_empty());
        assert!(
            e.handle(Hook::Event, &idle).is_empty(),
            "idle: held for the final update"
        );
        assert!(e.holds());
        if then_update {
            let out = e.handle(Hook::Event, &session(0.75, 150));
            assert_eq!(
                totals(&out),
                [(Some(150), Some(0.75))],
                "the final totals, once"
            );
            assert!(!e.holds() && e.release_held().is_empty());
        } else {
            assert_eq!(totals(&e.release_held()), [(Some(100), Some(0.5))]);
            assert!(!e.holds() && e.release_held().is_empty());
        }
        assert!(e.flush().is_empty(), "nothing left to send");
    }
}

/// Before OpenCode 1.15 a session carries no totals: at the end of a turn they are the
/// sums over its replies (earlier processes' too), sent at once (1.2-1.14 exit a few ms
/// after `session.idle`), as backfill sums them.
#[test]
fn without_session_totals_the_replies_are_summed_and_sent_at_idle() {
    let session = serde_json::json!({"type": "session.updated", "properties": {"info": {
        "id": "ses_1", "title": "Old release", "time": {"created": 10, "updated": 20}}}});
    let reply = |id: &str, input: u64, cost: f64| {
        serde_json::json!({"id": id, "sessionID": "ses_1", "role": "assistant",
            "modelID": "m", "providerID": "p", "cost": cost,
            "tokens": {"input": input, "output": 5, "reasoning": 1, "cache": {"read": 2, "write": 0}},
            "time": {"created": 11, "completed": 12}})
    };
    let idle = serde_json::json!({"type": "session.idle", "properties": {"sessionID": "ses_1"}});
    // 0.5.x: no `directory` anywhere but `app.path.cwd`.
    let input = serde_json::json!({"app": {"path": {"cwd": "/work/old", "root": "/work/old"}}});
    let mut e = Engine::new(&input, Options::default());
    // A reply of an earlier process, as OpenCode lists it, and one of this process.
    e.note_replies_json(
        &serde_json::json!([{"info": reply("msg_1", 100, 0.25), "parts": []}]).to_string(),
    );
    assert!(!e.handle(Hook::Event, &session).is_empty());
    let done = serde_json::json!({"type": "message.updated", "properties": {"info": reply("msg_2", 200, 0.5)}});
    assert_eq!(e.handle(Hook::Event, &done).len(), 1, "the reply");
    let out = e.handle(Hook::Event, &idle);
    let [Upsert::Session(s)] = out.as_slice() else {
        panic!("the session at idle, not held: {out:?}")
    };
    assert_eq!(s.prompt_tokens, Some(100 + 2 + 200 + 2));
    assert_eq!(s.completion_tokens, Some(12));
    assert_eq!(s.cost, Some(0.75));
    assert_eq!(s.project_path.as_deref(), Some("/work/old"));
    assert!(!e.holds());
    assert!(e.flush().is_empty(), "nothing left to send");
}

/// OpenCode 1.15 sends the session update with the last reply's tokens after it has
/// exited: what is sent at the end is the replies' sum where the session's is behind.
#[test]
fn stale_session_totals_give_way_to_the_replies() {
    let session = |input: u64, cost: f64| {
        serde_json::json!({"type": "session.updated", "properties": {"info": {
            "id": "ses_1", "directory": "/p", "title": "T", "cost": cost,
            "tokens": {"input": input, "output": 10, "reasoning": 0, "cache": {"read": 0, "write": 0}},
            "time": {"created": 10, "updated": 20}}}})
    };
    let reply = |id: &str, input: u64, cost: f64| {
        serde_json::json!({"type": "message.updated", "properties": {"info": {
            "id": id, "sessionID": "ses_1", "role": "assistant", "cost": cost,
            "tokens": {"input": input, "output": 5, "reasoning": 0, "cache": {"read": 0, "write": 0}},
            "time": {"created": 11, "completed": 12}}}})
    };
    let mut e = Engine::new(&Value::Null, Options::default());
    e.handle(Hook::Event, &session(0, 0.0));
    e.handle(Hook::Event, &reply("msg_1", 100, 0.25));
    e.handle(Hook::Event, &session(100, 0.25));
    e.handle(Hook::Event, &reply("msg_2", 120, 0.5));
    e.handle(
        Hook::Event,
        &serde_json::json!({"type": "session.idle", "properties": {"sessionID": "ses_1"}}),
    );
    let out = e.flush();
    let [Upsert::Session(s)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(s.prompt_tokens, Some(220));
    assert_eq!(
        s.completion_tokens,
        Some(10),
        "the session's own where it is ahead"
    );
    assert_eq!(s.cost, Some(0.75));
}

#[test]
fn instance_disposed_sends_what_dispose_would() {
    let mut e = Engine::new(&Value::Null, Options::default());
    let begun = serde_json::json!({"type": "message.updated", "properties": {"info": {
        "id": "msg_1", "sessionID": "ses_1", "role": "assistant", "time": {"created": 1}}}});
    assert!(e.handle(Hook::Event, &begun).is_empty());
    let disposed =
        serde_json::json!({"type": "server.instance.disposed", "properties": {"directory": "/p"}});
    let out = e.handle(Hook::Event, &disposed);
    assert!(
        matches!(out.as_slice(), [Upsert::Message(m)] if m.external_id == "msg_1"),
        "{out:?}"
    );
}

#[test]
fn a_lone_surrogate_costs_one_character_not_the_part() {
    let mut e = Engine::new(&Value::Null, Options::default());
    // As `JSON.stringify` writes a reply holding half of an emoji's surrogate pair.
    let part = r#"{"type": "message.part.updated", "properties": {"part": {"id": "prt_1",
        "messageID": "msg_2", "sessionID": "ses_1", "type": "text", "text": "Done \ud83d!"}}}"#;
    let done = r#"{"type": "message.updated", "properties": {"info": {"id": "msg_2",
        "sessionID": "ses_1", "role": "assistant", "time": {"created": 10, "completed": 20}}}}"#;
    assert!(e.handle_json(Hook::Event, part).is_empty());
    let sent = e.handle_json(Hook::Event, done);
    let [Upsert::Message(message)] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    assert_eq!(message.text_content.as_deref(), Some("Done \u{fffd}!"));
    assert_eq!(message.parts.as_ref().map(Vec::len), Some(1));
}

#[test]
fn garbage_is_ignored() {
    let mut e = Engine::new(&Value::Null, Options::default());
    for input in [
        Value::Null,
        serde_json::json!([1, 2]),
        serde_json::json!({"type": "session.updated", "properties": {"info": 5}}),
        serde_json::json!({"type": "message.part.updated", "properties": {"part": {"id": 1}}}),
        serde_json::json!({"type": "brand.new", "properties": {}}),
    ] {
        assert!(e.handle(Hook::Event, &input).is_empty());
        assert!(e.handle(Hook::ChatMessage, &input).is_empty());
    }
    assert!(e.flush().is_empty());
}
