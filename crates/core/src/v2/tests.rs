//! A V2 stream (the shapes of a real 2.0.26 session) through the translator and the
//! real engine: what comes out is what a V1 session of the same facts gives.

use serde_json::{Value, json};

use super::*;
use crate::api::Role;
use crate::config::Options;
use crate::engine::{Engine, Upsert};

const HERE: &str = "/home/dev/proj";
const ELSEWHERE: &str = "/home/dev/other";

fn ev(kind: &str, created: u64, data: Value, location: Option<&str>) -> String {
    let mut e =
        json!({"id": format!("evt_{created}"), "created": created, "type": kind, "data": data});
    if let Some(dir) = location {
        e["location"] = json!({"directory": dir});
    }
    e.to_string()
}

/// One turn: a prompt, a step with text and a shell call (exit 3), a second step with
/// the answer; the session renamed and its usage updated; the turn ends.
fn turn(session: &str, dir: &str) -> Vec<String> {
    let s = |k: &str, t: u64, d: Value| ev(k, t, d, Some(dir));
    let bare = |k: &str, t: u64, d: Value| ev(k, t, d, None);
    vec![
        s(
            "session.created",
            1000,
            json!({"sessionID": session, "projectID": "prj", "location": {"directory": dir}, "slug": "proud-circuit", "version": "2.0.26"}),
        ),
        s(
            "session.inbox.enqueued",
            1010,
            json!({"sessionID": session, "inboxID": "msg_u1", "item": {"type": "user", "payload": {"text": "print hi"}, "delivery": "queue"}}),
        ),
        s(
            "session.inbox.delivered",
            1011,
            json!({"sessionID": session, "inboxID": "msg_u1"}),
        ),
        s(
            "session.execution.started",
            1012,
            json!({"sessionID": session}),
        ),
        s(
            "session.step.started",
            1100,
            json!({"sessionID": session, "assistantMessageID": "msg_a1", "agent": "build", "model": {"id": "mock-1", "providerID": "mock"}, "started": 1100}),
        ),
        s(
            "session.text.started",
            1110,
            json!({"sessionID": session, "assistantMessageID": "msg_a1", "ordinal": 0}),
        ),
        s(
            "session.text.delta",
            1111,
            json!({"sessionID": session, "assistantMessageID": "msg_a1", "ordinal": 0, "delta": "Run"}),
        ),
        s(
            "session.text.delta",
            1112,
            json!({"sessionID": session, "assistantMessageID": "msg_a1", "ordinal": 0, "delta": "ning."}),
        ),
        s(
            "session.text.ended",
            1113,
            json!({"sessionID": session, "assistantMessageID": "msg_a1", "ordinal": 0, "text": "Running."}),
        ),
        s(
            "session.tool.input.started",
            1120,
            json!({"sessionID": session, "assistantMessageID": "msg_a1", "id": "call_1", "name": "shell"}),
        ),
        s(
            "session.tool.called",
            1130,
            json!({"sessionID": session, "assistantMessageID": "msg_a1", "id": "call_1", "input": {"command": "echo hi && exit 3"}, "executed": true}),
        ),
        // Some events carry no location: attribution by the session already seen.
        bare(
            "session.tool.success",
            1250,
            json!({"sessionID": session, "assistantMessageID": "msg_a1", "id": "call_1", "content": [{"type": "text", "text": "hi\n"}], "metadata": {"exit": 3}, "executed": true}),
        ),
        s(
            "session.step.ended",
            1300,
            json!({"sessionID": session, "assistantMessageID": "msg_a1", "finish": "tool-calls", "cost": 0.001, "tokens": {"input": 100, "output": 20, "reasoning": 0, "cache": {"read": 10, "write": 0}}}),
        ),
        s(
            "session.step.started",
            1400,
            json!({"sessionID": session, "assistantMessageID": "msg_a2", "agent": "build", "model": {"id": "mock-1", "providerID": "mock"}, "started": 1400}),
        ),
        s(
            "session.text.ended",
            1450,
            json!({"sessionID": session, "assistantMessageID": "msg_a2", "ordinal": 0, "text": "Done: it printed hi."}),
        ),
        s(
            "session.step.ended",
            1500,
            json!({"sessionID": session, "assistantMessageID": "msg_a2", "finish": "stop", "cost": 0.002, "tokens": {"input": 150, "output": 10, "reasoning": 0, "cache": {"read": 0, "write": 0}}}),
        ),
        s(
            "session.renamed",
            1510,
            json!({"sessionID": session, "title": "Print hi"}),
        ),
        s(
            "session.usage.updated",
            1520,
            json!({"sessionID": session, "cost": 0.003, "tokens": {"input": 250, "output": 30, "reasoning": 0, "cache": {"read": 10, "write": 0}}}),
        ),
        bare(
            "session.execution.succeeded",
            1530,
            json!({"sessionID": session}),
        ),
    ]
}

fn run(translator: &mut Translator, engine: &mut Engine, stream: &[String]) -> Vec<Upsert> {
    let mut out = Vec::new();
    for json in stream {
        match translator.feed(json) {
            Feed::Events(events) => {
                for event in events {
                    out.extend(engine.handle_event(event));
                }
            }
            Feed::Ask(id) => panic!("asked for {id}"),
        }
    }
    out.extend(engine.release_held());
    out.extend(engine.flush());
    out
}

#[test]
fn a_v2_turn_arrives_as_a_v1_one_would() {
    let mut t = Translator::new(HERE);
    let mut e = Engine::new(&json!({"directory": HERE}), Options::default());
    let upserts = run(&mut t, &mut e, &turn("ses_1", HERE));
    let messages: Vec<_> = upserts
        .iter()
        .filter_map(|u| match u {
            Upsert::Message(m) => Some(m),
            Upsert::Session(_) => None,
        })
        .collect();
    let ids: Vec<&str> = messages.iter().map(|m| m.external_id.as_str()).collect();
    assert_eq!(
        ids,
        ["msg_u1", "msg_a1", "msg_a2"],
        "each message once, in order"
    );
    let user = messages[0];
    assert_eq!(user.role, Role::User);
    assert_eq!(user.text_content.as_deref(), Some("print hi"));
    assert_eq!(user.created_at, Some(1010));
    let step = messages[1];
    assert_eq!(step.text_content.as_deref(), Some("Running."));
    assert_eq!((step.created_at, step.duration_ms), (Some(1100), Some(200)));
    assert_eq!(step.model.as_deref(), Some("mock-1"));
    assert_eq!(
        (step.prompt_tokens, step.completion_tokens),
        (Some(110), Some(20))
    );
    let parts = step.parts.as_ref().unwrap();
    let kinds: Vec<&str> = parts.iter().map(|p| p.kind.as_str()).collect();
    assert_eq!(kinds, ["text", "tool-call", "tool-result"]);
    assert_eq!(parts[1].content["toolName"], "shell");
    assert_eq!(parts[1].content["args"]["command"], "echo hi && exit 3");
    assert_eq!(parts[2].content["output"], "hi\n");
    assert_eq!(parts[2].content["exit"], 3);
    assert_eq!(parts[2].content["durationMs"], 120);
    assert_eq!(
        messages[2].text_content.as_deref(),
        Some("Done: it printed hi.")
    );

    let last_session = upserts
        .iter()
        .rev()
        .find_map(|u| match u {
            Upsert::Session(s) => Some(s),
            Upsert::Message(_) => None,
        })
        .unwrap();
    assert_eq!(last_session.external_id, "ses_1");
    assert_eq!(last_session.title.as_deref(), Some("Print hi"));
    assert_eq!(last_session.project_path.as_deref(), Some(HERE));
    assert_eq!(last_session.project_name.as_deref(), Some("proj"));
    assert_eq!(last_session.cost, Some(0.003));
    assert_eq!(
        (last_session.prompt_tokens, last_session.completion_tokens),
        (Some(260), Some(30))
    );
    assert_eq!(last_session.created_at, Some(1000));
    assert_eq!(t.sessions_kept(), 1, "kept for its next turn");
    // Its next turn's events still know its title.
    let more = ev(
        "session.usage.updated",
        2000,
        json!({"sessionID": "ses_1", "cost": 0.004, "tokens": {"input": 300, "output": 40, "reasoning": 0, "cache": {"read": 10, "write": 0}}}),
        None,
    );
    let Feed::Events(events) = t.feed(&more) else {
        panic!()
    };
    let Some(Event::Session { info }) = events.first() else {
        panic!("{events:?}")
    };
    assert_eq!(
        (info.title.as_deref(), info.time.created),
        (Some("Print hi"), 1000.0)
    );
}

#[test]
fn a_service_that_runs_for_days_keeps_a_bounded_number_of_sessions() {
    let mut t = Translator::new(HERE);
    for i in 0..1_500 {
        let session = format!("ses_{i}");
        for json in [
            ev(
                "session.created",
                i,
                json!({"sessionID": session, "location": {"directory": HERE}}),
                Some(HERE),
            ),
            ev(
                "session.execution.succeeded",
                i + 1,
                json!({"sessionID": session}),
                None,
            ),
        ] {
            t.feed(&json);
        }
    }
    assert!(
        t.sessions_kept() <= MAX_FINISHED_KEPT,
        "{}",
        t.sessions_kept()
    );
}

#[test]
fn another_locations_sessions_are_not_this_instances() {
    let mut t = Translator::new(HERE);
    let mut e = Engine::new(&json!({"directory": HERE}), Options::default());
    let upserts = run(&mut t, &mut e, &turn("ses_2", ELSEWHERE));
    assert!(upserts.is_empty(), "{upserts:?}");
}

#[test]
fn a_session_first_seen_without_location_is_asked_about_and_held() {
    let mut t = Translator::new(HERE);
    let mut e = Engine::new(&json!({"directory": HERE}), Options::default());
    // The instance was loaded mid-turn: its first event of the session has no location.
    let stream: Vec<String> = turn("ses_3", HERE)
        .into_iter()
        .skip(4)
        .map(|json| {
            let mut v: Value = serde_json::from_str(&json).unwrap();
            v.as_object_mut().unwrap().remove("location");
            v.to_string()
        })
        .collect();
    assert_eq!(t.feed(&stream[0]), Feed::Ask("ses_3".into()));
    for json in &stream[1..] {
        assert_eq!(t.feed(json), Feed::Events(Vec::new()), "held meanwhile");
    }
    let mut out = Vec::new();
    let info = json!({"id": "ses_3", "location": {"directory": HERE}, "title": "Resumed", "time": {"created": 900, "updated": 950}}).to_string();
    for event in t.located("ses_3", Some(&info)) {
        out.extend(e.handle_event(event));
    }
    let messages = out
        .iter()
        .filter(|u| matches!(u, Upsert::Message(_)))
        .count();
    assert_eq!(messages, 2, "both steps, once each");
    // Another location's answer: nothing.
    let mut other = Translator::new(HERE);
    assert_eq!(other.feed(&stream[0]), Feed::Ask("ses_3".into()));
    let elsewhere = json!({"id": "ses_3", "location": {"directory": ELSEWHERE}}).to_string();
    assert!(other.located("ses_3", Some(&elsewhere)).is_empty());
    // The host does not know it: not this location's.
    let mut unknown = Translator::new(HERE);
    assert_eq!(unknown.feed(&stream[0]), Feed::Ask("ses_3".into()));
    assert!(unknown.located("ses_3", None).is_empty());
}

#[test]
fn an_interrupted_turn_sends_what_the_step_said_and_garbage_is_ignored() {
    let mut t = Translator::new(HERE);
    let mut e = Engine::new(&json!({"directory": HERE}), Options::default());
    let mut stream = turn("ses_4", HERE);
    stream.truncate(9); // through the first text
    stream.push(ev(
        "session.execution.interrupted",
        1200,
        json!({"sessionID": "ses_4", "reason": "shutdown"}),
        Some(HERE),
    ));
    stream.push("not json".into());
    stream.push(ev("brand.new", 1, json!({"x": 1}), None));
    stream.push(ev(
        "session.tool.success",
        1,
        json!({"sessionID": 5}),
        Some(HERE),
    ));
    let upserts = run(&mut t, &mut e, &stream);
    let texts: Vec<_> = upserts
        .iter()
        .filter_map(|u| match u {
            Upsert::Message(m) => m.text_content.clone(),
            Upsert::Session(_) => None,
        })
        .collect();
    assert_eq!(texts, ["print hi", "Running."]);
}

/// `turn`, with what else a real stream carries between its events: tool input
/// streaming, progress, `step.streamed`, and kinds no sync needs.
fn busy_turn(session: &str) -> Vec<String> {
    let mut stream = turn(session, HERE);
    let s = |k: &str, t: u64, d: Value| ev(k, t, d, Some(HERE));
    let step = json!({"sessionID": session, "assistantMessageID": "msg_a1"});
    let call = json!({"sessionID": session, "assistantMessageID": "msg_a1", "id": "call_1"});
    let with = |base: &Value, extra: Value| {
        let mut v = base.clone();
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    let after_input_started = 10;
    stream.splice(
        after_input_started..after_input_started,
        [
            s(
                "session.tool.input.delta",
                1121,
                with(&call, json!({"delta": "{\"command\":"})),
            ),
            s(
                "session.tool.input.ended",
                1122,
                with(
                    &call,
                    json!({"text": "{\"command\":\"echo hi && exit 3\"}"}),
                ),
            ),
        ],
    );
    stream.insert(
        13,
        s(
            "session.tool.progress",
            1140,
            with(&call, json!({"metadata": {"output": "hi"}})),
        ),
    );
    stream.insert(15, s("session.step.streamed", 1290, step));
    stream.insert(
        3,
        s(
            "permission.asked",
            1013,
            json!({"sessionID": session, "id": "per_1"}),
        ),
    );
    stream.insert(
        4,
        s(
            "session.agent.selected",
            1014,
            json!({"sessionID": session, "agent": "plan"}),
        ),
    );
    stream
}

#[test]
fn events_it_does_not_want_say_nothing() {
    let stream = busy_turn("ses_5");
    let kind = |json: &str| serde_json::from_str::<Value>(json).unwrap()["type"].to_string();
    let mut t = Translator::new(HERE);
    let mut skipped = 0;
    for json in &stream {
        let kind = kind(json);
        let feed = t.feed(json);
        if !wants(kind.trim_matches('"')) {
            skipped += 1;
            assert_eq!(feed, Feed::Events(Vec::new()), "{json}");
        }
    }
    assert_eq!(skipped, 7);
    // The host skips them: the same upserts come out.
    let wanted: Vec<String> = stream
        .iter()
        .filter(|json| wants(kind(json).trim_matches('"')))
        .cloned()
        .collect();
    let mut e = Engine::new(&json!({"directory": HERE}), Options::default());
    let all = run(&mut Translator::new(HERE), &mut e, &stream);
    let mut e = Engine::new(&json!({"directory": HERE}), Options::default());
    assert_eq!(run(&mut Translator::new(HERE), &mut e, &wanted), all);
    assert_eq!(
        all.iter()
            .filter(|u| matches!(u, Upsert::Message(_)))
            .count(),
        3
    );
}

#[test]
fn a_turns_totals_go_with_its_end() {
    let sessions = |stream: &[String]| -> Vec<crate::api::SessionPayload> {
        let mut e = Engine::new(&json!({"directory": HERE}), Options::default());
        run(&mut Translator::new(HERE), &mut e, stream)
            .into_iter()
            .filter_map(|u| match u {
                Upsert::Session(s) => Some(s),
                Upsert::Message(_) => None,
            })
            .collect()
    };
    let usage = |at: u64, cost: f64, input: u64| {
        ev(
            "session.usage.updated",
            at,
            json!({"sessionID": "ses_6", "cost": cost, "tokens": {"input": input, "output": 20, "reasoning": 0, "cache": {"read": 10, "write": 0}}}),
            None,
        )
    };
    let after = |stream: &[String], kind: &str| {
        stream
            .iter()
            .position(|json| json.contains(&format!("\"{kind}\"")))
            .unwrap()
            + 1
    };
    // The usage reported after the first step (which also shows the step's model).
    let mut once = turn("ses_6", HERE);
    once.insert(after(&once, "session.step.ended"), usage(1301, 0.001, 100));
    // And again while the second step runs: its new totals wait for the turn's end.
    let mut twice = once.clone();
    twice.insert(after(&twice, "msg_a2"), usage(1401, 0.002, 200));
    let (once, twice) = (sessions(&once), sessions(&twice));
    assert_eq!(
        twice.len(),
        once.len(),
        "no upsert for totals mid-turn: {twice:#?}"
    );
    assert_eq!(twice.last(), once.last());
    assert_eq!(twice.last().unwrap().cost, Some(0.003));
}
