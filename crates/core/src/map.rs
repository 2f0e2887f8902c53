//! THE mapping from OpenCode's data to OpenSync payloads. The live plugin and the CLI
//! backfill both call it, so a session looks the same on the dashboard whichever path
//! delivered it. Every string that leaves here has been redacted (when enabled) and fits
//! Convex's limits.

use serde_json::{Map, Value, json};

use crate::api::{MessagePayload, Part, Role, SOURCE, SessionPayload};
use crate::config::Options;
use crate::model::{MessageInfo, PartInfo, SessionInfo, Tokens};
use crate::redact::{redact, redact_value};

/// Titles OpenCode gives a session before the real one is generated.
const PLACEHOLDER_PREFIXES: &[&str] = &["New session - ", "Child session - "];
/// Room left for one message document under Convex's 1 MiB limit.
const MESSAGE_BUDGET: usize = 900 * 1024;
/// Longest text kept in `textContent` (and again in the text parts).
const MAX_TEXT_BYTES: usize = 256 * 1024;
/// Entries kept per array/object in tool arguments (Convex allows 8192/1024).
const MAX_ENTRIES: usize = 1000;
const MAX_DEPTH: usize = 16;
/// What a finished tool call without output or error shows.
pub const NO_OUTPUT: &str = "(no output)";

/// Whether `title` is OpenCode's placeholder (`New session - 2026-…`).
pub fn is_placeholder_title(title: &str) -> bool {
    PLACEHOLDER_PREFIXES.iter().any(|p| title.starts_with(p))
}

/// `(prompt, completion)`: prompt counts input plus cache reads and writes (what the
/// model read), completion counts output plus reasoning (what it wrote).
pub fn token_totals(tokens: &Tokens) -> (u64, u64) {
    let prompt = tokens.input + tokens.cache.read + tokens.cache.write;
    let completion = tokens.output + tokens.reasoning;
    (to_u64(prompt), to_u64(completion))
}

fn to_u64(n: f64) -> u64 {
    if n.is_finite() && n > 0.0 {
        n.round() as u64
    } else {
        0
    }
}

fn to_ms(n: f64) -> Option<i64> {
    (n.is_finite() && n > 0.0).then(|| n.round() as i64)
}

/// The last path segment, for `projectName`.
pub fn project_name(path: &str) -> Option<String> {
    path.trim_end_matches(['/', '\\'])
        .rsplit(['/', '\\'])
        .next()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Facts about a session that are not on OpenCode's Session itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionContext {
    /// `(model, provider)` of the latest assistant message, used when the session has
    /// no model of its own.
    pub last_model: Option<(String, Option<String>)>,
    pub git_branch: Option<String>,
    /// Used when the Session has no directory.
    pub fallback_directory: Option<String>,
}

/// Maps a Session. Unknown facts stay `None` (omitted on the wire, so stored values
/// survive), and a placeholder title is never sent.
pub fn session_payload(
    info: &SessionInfo,
    ctx: &SessionContext,
    options: &Options,
) -> SessionPayload {
    let clean = |s: &str| scrub(s, options, MAX_TEXT_BYTES);
    let directory = info
        .directory
        .clone()
        .or_else(|| ctx.fallback_directory.clone());
    let (model, provider) = match &info.model {
        Some(m) if m.id.is_some() => (m.id.clone(), m.provider_id.clone()),
        _ => match &ctx.last_model {
            Some((m, p)) => (Some(m.clone()), p.clone()),
            None => (None, None),
        },
    };
    let (prompt, completion) = info.tokens.as_ref().map(token_totals).unwrap_or_default();
    let created = to_ms(info.time.created);
    let duration = match (created, info.time.updated.and_then(to_ms)) {
        (Some(c), Some(u)) if u >= c => Some((u - c) as u64),
        _ => None,
    };
    SessionPayload {
        external_id: info.id.clone(),
        title: info
            .title
            .as_deref()
            .filter(|t| !is_placeholder_title(t) && !t.trim().is_empty())
            .map(clean),
        project_name: directory
            .as_deref()
            .and_then(project_name)
            .map(|n| clean(&n)),
        project_path: directory.as_deref().map(clean),
        model,
        provider,
        source: Some(SOURCE.to_owned()),
        prompt_tokens: (prompt > 0).then_some(prompt),
        completion_tokens: (completion > 0).then_some(completion),
        cost: info.cost.filter(|c| c.is_finite() && *c >= 0.0),
        duration_ms: duration,
        created_at: created,
        git_branch: ctx.git_branch.clone(),
        parent_external_id: info.parent_id.clone(),
    }
}

/// Maps a message and its parts (in display order).
pub fn message_payload(
    info: &MessageInfo,
    parts: &[PartInfo],
    options: &Options,
) -> MessagePayload {
    // Shrink tool outputs until the document fits.
    let mut limit = options.max_tool_output_bytes as usize;
    loop {
        let payload = message_payload_with_limit(info, parts, options, limit);
        let size = serde_json::to_string(&payload).map_or(0, |s| s.len());
        if size <= MESSAGE_BUDGET || limit <= 1024 {
            return payload;
        }
        limit /= 2;
    }
}

fn message_payload_with_limit(
    info: &MessageInfo,
    parts: &[PartInfo],
    options: &Options,
    output_limit: usize,
) -> MessagePayload {
    let role = match info.role.as_str() {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "system" => Role::System,
        "tool" => Role::Tool,
        _ => Role::Unknown,
    };
    let texts: Vec<&str> = parts
        .iter()
        .filter(|p| p.kind == "text" && p.synthetic != Some(true))
        .filter_map(|p| p.text.as_deref())
        .filter(|t| !t.is_empty())
        .collect();
    let text = texts.join("\n\n");
    let mut out_parts = Vec::new();
    for part in parts {
        match part.kind.as_str() {
            "text" if part.synthetic != Some(true) => {
                if let Some(text) = part.text.as_deref().filter(|t| !t.is_empty()) {
                    out_parts.push(Part {
                        kind: "text".into(),
                        content: Value::String(scrub(text, options, MAX_TEXT_BYTES)),
                    });
                }
            }
            "reasoning" if options.sync_reasoning => {
                if let Some(text) = part.text.as_deref().filter(|t| !t.is_empty()) {
                    out_parts.push(Part {
                        kind: "reasoning".into(),
                        content: Value::String(scrub(text, options, MAX_TEXT_BYTES)),
                    });
                }
            }
            "tool" => out_parts.extend(tool_parts(part, options, output_limit)),
            _ => {}
        }
    }
    let (model, _) = info.model_and_provider();
    let (prompt, completion) = info.tokens.as_ref().map(token_totals).unwrap_or_default();
    let created = to_ms(info.time.created);
    let duration = match (created, info.time.completed.and_then(to_ms)) {
        (Some(c), Some(done)) if done >= c => Some((done - c) as u64),
        _ => None,
    };
    MessagePayload {
        session_external_id: info.session_id.clone(),
        external_id: info.id.clone(),
        role,
        text_content: (!text.is_empty()).then(|| scrub(&text, options, MAX_TEXT_BYTES)),
        model,
        source: Some(SOURCE.to_owned()),
        prompt_tokens: (prompt > 0).then_some(prompt),
        completion_tokens: (completion > 0).then_some(completion),
        duration_ms: duration,
        created_at: created,
        parts: Some(out_parts),
    }
}

/// A tool part becomes a `tool-call` and, once finished, a `tool-result`.
fn tool_parts(part: &PartInfo, options: &Options, output_limit: usize) -> Vec<Part> {
    let state = part.state.clone().unwrap_or_default();
    let tool = part.tool.clone().unwrap_or_else(|| "unknown".to_owned());
    let mut call = Map::new();
    call.insert("toolName".into(), Value::String(tool));
    call.insert(
        "callID".into(),
        Value::String(part.call_id.clone().unwrap_or_default()),
    );
    // Redacted first (a value is judged with its key), then bounded: a cut must not
    // leave half a secret that is no longer recognised.
    let args = if options.redact {
        redact_value(None, &state.input)
    } else {
        state.input.clone()
    };
    call.insert("args".into(), bound(&args, output_limit, 0));
    call.insert("status".into(), Value::String(state.status.clone()));
    if let Some(title) = &state.title {
        call.insert("title".into(), Value::String(scrub(title, options, 4096)));
    }
    let mut parts = vec![Part {
        kind: "tool-call".into(),
        content: Value::Object(call),
    }];
    if !matches!(state.status.as_str(), "completed" | "error") {
        return parts;
    }
    let mut result = Map::new();
    if options.sync_tool_output {
        // A failed call has no output; its error is what the dashboard should show.
        // An empty output would show as the raw result object on the dashboard.
        let output = state
            .output
            .as_deref()
            .filter(|o| !o.is_empty())
            .or(state.error.as_deref().filter(|e| !e.is_empty()))
            .unwrap_or(NO_OUTPUT);
        result.insert(
            "output".into(),
            Value::String(scrub(output, options, output_limit)),
        );
        if output.len() > output_limit {
            result.insert("truncated".into(), Value::Bool(true));
        }
    } else {
        result.insert(
            "output".into(),
            Value::String("(tool output not synced)".into()),
        );
    }
    if let Some(error) = &state.error {
        result.insert(
            "error".into(),
            Value::String(scrub(error, options, output_limit)),
        );
    }
    if let Some(exit) = state.metadata.exit.as_ref().filter(|e| e.is_number()) {
        result.insert("exit".into(), exit.clone());
    }
    if let (Some(start), Some(end)) = (state.time.start, state.time.end)
        && end >= start
    {
        result.insert("durationMs".into(), json!((end - start).round() as u64));
    }
    parts.push(Part {
        kind: "tool-result".into(),
        content: Value::Object(result),
    });
    parts
}

/// Redacts (when enabled) and truncates to `max_bytes`, saying so in the text.
pub fn scrub(text: &str, options: &Options, max_bytes: usize) -> String {
    let text = if options.redact {
        redact(text)
    } else {
        text.into()
    };
    truncate(&text, max_bytes)
}

fn truncate(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    let mut cut = max_bytes;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}\n… [truncated: showing {cut} of {} bytes]",
        &text[..cut],
        text.len()
    )
}

/// Tool arguments (already redacted) made safe for Convex: strings bounded, arrays and
/// objects capped, nesting limited, and field names made valid (see [`field_name`]).
fn bound(value: &Value, max_bytes: usize, depth: usize) -> Value {
    if depth >= MAX_DEPTH {
        return Value::String("…".into());
    }
    match value {
        Value::String(s) => Value::String(truncate(s, max_bytes)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .take(MAX_ENTRIES)
                .map(|v| bound(v, max_bytes, depth + 1))
                .collect(),
        ),
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map.iter().take(MAX_ENTRIES) {
                let mut key = field_name(k);
                // Two names may map to one (`ü` and `u00fc`): number the later ones.
                if out.contains_key(&key) {
                    let base = key;
                    key = (2..)
                        .map(|n| format!("{base}_{n}"))
                        .find(|candidate| !out.contains_key(candidate))
                        .unwrap_or_default();
                }
                out.insert(key, bound(v, max_bytes, depth + 1));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// A field name Convex accepts: non-empty printable ASCII, not starting with `$` or `_`
/// (Convex refuses anything else with a 500 that no retry mends). Other characters are
/// spelled as their code point (`ü` → `u00fc`, a tab → `u0009`), and a reserved or empty
/// name gets an `arg` prefix.
fn field_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_graphic() || c == ' ' {
            out.push(c);
        } else {
            out.push_str(&format!("u{:04x}", u32::from(c)));
        }
    }
    if out.is_empty() || out.starts_with(['$', '_']) {
        out.insert_str(0, "arg");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(v: Value) -> SessionInfo {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn session_fields() {
        let info = session(json!({
            "id": "ses_1", "directory": "/home/dev/demo", "title": "Notes review ✓",
            "model": {"id": "mock-1", "providerID": "mock"}, "cost": 0.00072,
            "tokens": {"input": 600, "output": 60, "reasoning": 5, "cache": {"read": 10, "write": 2}},
            "time": {"created": 1000, "updated": 4500}, "parentID": "ses_0"
        }));
        let ctx = SessionContext {
            git_branch: Some("main".into()),
            ..Default::default()
        };
        let p = session_payload(&info, &ctx, &Options::default());
        assert_eq!(p.title.as_deref(), Some("Notes review ✓"));
        assert_eq!(p.project_path.as_deref(), Some("/home/dev/demo"));
        assert_eq!(p.project_name.as_deref(), Some("demo"));
        assert_eq!(
            (p.model.as_deref(), p.provider.as_deref()),
            (Some("mock-1"), Some("mock"))
        );
        assert_eq!(
            (p.prompt_tokens, p.completion_tokens),
            (Some(612), Some(65))
        );
        assert_eq!(p.cost, Some(0.00072));
        assert_eq!((p.created_at, p.duration_ms), (Some(1000), Some(3500)));
        assert_eq!(p.git_branch.as_deref(), Some("main"));
        assert_eq!(p.parent_external_id.as_deref(), Some("ses_0"));
        assert_eq!(p.source.as_deref(), Some("opencode"));
    }

    #[test]
    fn placeholder_title_and_unknowns_are_omitted() {
        let info = session(
            json!({"id": "s", "title": "New session - 2026-11-25T00:06:37.869Z",
                                   "tokens": {"input": 0, "output": 0}, "time": {"created": 5}}),
        );
        let ctx = SessionContext {
            last_model: Some(("m2".into(), Some("p2".into()))),
            ..Default::default()
        };
        let p = session_payload(&info, &ctx, &Options::default());
        assert_eq!(p.title, None);
        assert_eq!(p.prompt_tokens, None);
        assert_eq!(p.model.as_deref(), Some("m2"));
        let wire = serde_json::to_value(&p).unwrap();
        assert!(
            wire.as_object().unwrap().values().all(|v| !v.is_null()),
            "{wire}"
        );
    }

    fn parts(v: Value) -> Vec<PartInfo> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn assistant_message_with_tools() {
        let info: MessageInfo = serde_json::from_value(json!({
            "id": "msg_2", "sessionID": "ses_1", "role": "assistant", "modelID": "mock-1",
            "providerID": "mock", "tokens": {"input": 100, "output": 20, "cache": {"read": 0, "write": 0}},
            "time": {"created": 1000, "completed": 2043}
        }))
        .unwrap();
        let ps = parts(json!([
            {"id": "p1", "type": "step-start"},
            {"id": "p2", "type": "text", "text": "Running it."},
            {"id": "p3", "type": "tool", "tool": "bash", "callID": "call_1",
             "state": {"status": "completed", "input": {"command": "echo token=ghp_abcdefghijklmnopqrstuvwxyz0123456789 && exit 3", "_meta": 1},
                       "output": "token=ghp_abcdefghijklmnopqrstuvwxyz0123456789\n", "title": "echo",
                       "metadata": {"exit": 3}, "time": {"start": 10, "end": 125}}},
            {"id": "p4", "type": "reasoning", "text": "hmm"},
            {"id": "p5", "type": "text", "text": "injected", "synthetic": true}
        ]));
        let m = message_payload(&info, &ps, &Options::default());
        assert_eq!(m.role, Role::Assistant);
        assert_eq!(m.text_content.as_deref(), Some("Running it."));
        assert_eq!(
            (m.prompt_tokens, m.completion_tokens, m.duration_ms),
            (Some(100), Some(20), Some(1043))
        );
        assert_eq!(m.model.as_deref(), Some("mock-1"));
        let wire = serde_json::to_string(&m).unwrap();
        assert!(
            !wire.contains("ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
            "{wire}"
        );
        let parts = m.parts.unwrap();
        let kinds: Vec<_> = parts.iter().map(|p| p.kind.as_str()).collect();
        assert_eq!(kinds, ["text", "tool-call", "tool-result"]);
        assert_eq!(parts[1].content["toolName"], "bash");
        assert_eq!(parts[1].content["callID"], "call_1");
        assert_eq!(parts[1].content["status"], "completed");
        assert_eq!(parts[1].content["args"]["arg_meta"], 1);
        assert_eq!(parts[2].content["exit"], 3);
        assert_eq!(parts[2].content["durationMs"], 115);
    }

    #[test]
    fn long_output_is_truncated_and_marked_and_reasoning_is_opt_in() {
        let info: MessageInfo =
            serde_json::from_value(json!({"id": "m", "sessionID": "s", "role": "assistant"}))
                .unwrap();
        let long = "x".repeat(5000);
        let ps = parts(json!([
            {"id": "a", "type": "reasoning", "text": "thinking"},
            {"id": "b", "type": "tool", "tool": "bash", "callID": "c",
             "state": {"status": "completed", "input": {}, "output": long}}
        ]));
        let options = Options {
            max_tool_output_bytes: 1024,
            sync_reasoning: true,
            ..Options::default()
        };
        let m = message_payload(&info, &ps, &options);
        let parts = m.parts.unwrap();
        assert_eq!(parts[0].kind, "reasoning");
        let out = parts[2].content["output"].as_str().unwrap();
        assert!(out.starts_with(&"x".repeat(1024)));
        assert!(
            out.ends_with("[truncated: showing 1024 of 5000 bytes]"),
            "{out}"
        );
        assert_eq!(parts[2].content["truncated"], true);
    }

    #[test]
    fn huge_messages_shrink_to_fit() {
        let info: MessageInfo =
            serde_json::from_value(json!({"id": "m", "sessionID": "s", "role": "assistant"}))
                .unwrap();
        let calls: Vec<Value> = (0..20)
            .map(|i| json!({"id": format!("p{i}"), "type": "tool", "tool": "read", "callID": format!("c{i}"),
                            "state": {"status": "completed", "input": {}, "output": "y".repeat(300_000)}}))
            .collect();
        let options = Options {
            max_tool_output_bytes: 262_144,
            ..Options::default()
        };
        let m = message_payload(&info, &parts(Value::Array(calls)), &options);
        assert!(serde_json::to_string(&m).unwrap().len() <= MESSAGE_BUDGET);
        assert_eq!(m.parts.unwrap().len(), 40);
    }

    #[test]
    fn a_failed_tool_call_shows_its_error_as_output() {
        let info: MessageInfo =
            serde_json::from_value(json!({"id": "m", "sessionID": "s", "role": "assistant"}))
                .unwrap();
        let ps = parts(
            json!([{"id": "b", "type": "tool", "tool": "read", "callID": "c",
             "state": {"status": "error", "input": {"filePath": "nope"}, "error": "File not found: nope"}}]),
        );
        let m = message_payload(&info, &ps, &Options::default());
        let result = &m.parts.unwrap()[1].content;
        assert_eq!(result["output"], "File not found: nope");
        assert_eq!(result["error"], "File not found: nope");
    }

    fn one_tool_call(state: Value, options: &Options) -> (Value, Value) {
        let info: MessageInfo =
            serde_json::from_value(json!({"id": "m", "sessionID": "s", "role": "assistant"}))
                .unwrap();
        let ps = parts(
            json!([{"id": "b", "type": "tool", "tool": "bash", "callID": "c", "state": state}]),
        );
        let m = message_payload(&info, &ps, options);
        let parts = m.parts.unwrap();
        (parts[0].content.clone(), parts[1].content.clone())
    }

    #[test]
    fn tool_argument_field_names_are_made_convex_safe() {
        let (call, _) = one_tool_call(
            json!({"status": "completed", "output": "ok", "input": {
                "ü": 1, "u00fc": 2, "naïve key": 3, "tab\there": 4, "$ref": 5, "_id": 6, "": 7,
                "emoji😀": 8, "nested": {"ß": {"ok": true}}, "plain": "kept"
            }}),
            &Options::default(),
        );
        let args = call["args"].as_object().unwrap();
        let keys: Vec<&str> = args.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "u00fc",
                "u00fc_2",
                "nau00efve key",
                "tabu0009here",
                "arg$ref",
                "arg_id",
                "arg",
                "emojiu1f600",
                "nested",
                "plain"
            ]
        );
        assert_eq!(args["u00fc"], 1, "the first keeps the plain spelling");
        assert_eq!(args["u00fc_2"], 2);
        assert_eq!(args["nested"]["u00df"]["ok"], true);
        fn all_keys_safe(v: &Value) -> bool {
            match v {
                Value::Object(m) => m.iter().all(|(k, v)| {
                    !k.is_empty()
                        && k.bytes().all(|b| (0x20..0x7f).contains(&b))
                        && !k.starts_with(['$', '_'])
                        && all_keys_safe(v)
                }),
                Value::Array(items) => items.iter().all(all_keys_safe),
                _ => true,
            }
        }
        assert!(all_keys_safe(&call["args"]), "{}", call["args"]);
    }

    #[test]
    fn a_tool_call_without_output_says_so() {
        for state in [
            json!({"status": "completed", "input": {}, "output": ""}),
            json!({"status": "completed", "input": {}}),
            json!({"status": "error", "input": {}, "output": "", "error": ""}),
        ] {
            let (_, result) = one_tool_call(state, &Options::default());
            assert_eq!(result["output"], NO_OUTPUT, "{result}");
        }
        let (_, result) = one_tool_call(
            json!({"status": "completed", "input": {}, "output": "0 files"}),
            &Options::default(),
        );
        assert_eq!(result["output"], "0 files");
    }

    #[test]
    fn tool_arguments_are_judged_with_their_keys() {
        let state = json!({"status": "completed", "output": "ok", "input": {
            "password": "pw", "env": {"API_KEY": "x1", "HOME": "/h"},
            "headers": {"X-Auth": "abc", "Accept": "*/*"}, "count": 2
        }});
        let (call, _) = one_tool_call(state.clone(), &Options::default());
        assert_eq!(
            call["args"],
            json!({"password": "[REDACTED]", "env": {"API_KEY": "[REDACTED]", "HOME": "/h"},
                   "headers": {"X-Auth": "[REDACTED]", "Accept": "*/*"}, "count": 2})
        );
        let off = Options {
            redact: false,
            ..Options::default()
        };
        let (call, _) = one_tool_call(state, &off);
        assert_eq!(call["args"]["password"], "pw", "redact off: verbatim");
    }

    #[test]
    fn names() {
        assert_eq!(project_name("/home/dev/demo/"), Some("demo".into()));
        assert_eq!(project_name("C:\\src\\app"), Some("app".into()));
        assert_eq!(project_name("/"), None);
        assert!(is_placeholder_title("Child session - 2026"));
    }
}
