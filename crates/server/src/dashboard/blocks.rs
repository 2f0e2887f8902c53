//! A stored message as the session page shows it: its parts turned into
//! display blocks in order (text and reasoning rendered from markdown, tool
//! calls paired with their results, other parts as JSON).

use serde_json::{Map, Value, json};

use super::markdown::render_markdown;

/// The text of a `text`/`reasoning` part: a string, or `{text}` / `{content}`.
fn part_text(content: &Value) -> Option<String> {
    let v = match content {
        Value::Object(o) => o.get("text").or_else(|| o.get("content"))?,
        other => other,
    };
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::String(_) | Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// A JSON value as display text: strings as they are, the rest pretty-printed.
fn display_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

fn first<'a>(o: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| o.get(*k).filter(|v| !v.is_null()))
}

/// A tool call as a display block (its result is merged in later).
fn tool_block(content: &Value) -> Map<String, Value> {
    let mut b = Map::new();
    b.insert("kind".into(), json!("tool"));
    let empty = Map::new();
    let o = content.as_object().unwrap_or(&empty);
    let name = first(o, &["toolName", "name", "tool"])
        .and_then(Value::as_str)
        .unwrap_or("tool");
    b.insert("name".into(), json!(name));
    for (from, to) in [
        ("callID", "callId"),
        ("status", "status"),
        ("title", "title"),
    ] {
        if let Some(v) = o.get(from).and_then(Value::as_str) {
            b.insert(to.into(), json!(v));
        }
    }
    if let Some(args) = first(o, &["args", "arguments", "input"]) {
        b.insert("args".into(), args.clone());
    }
    b
}

/// Merges a `tool-result` part into its call's block.
fn merge_result(block: &mut Map<String, Value>, content: &Value) {
    match content {
        Value::Object(o) => {
            if let Some(out) = first(o, &["output", "result"]) {
                block.insert("output".into(), json!(display_text(out)));
            }
            if let Some(err) = o.get("error").filter(|e| !e.is_null()) {
                block.insert("error".into(), json!(display_text(err)));
                block.insert("status".into(), json!("error"));
            }
            for key in ["exit", "durationMs", "truncated"] {
                if let Some(v) = o.get(key).filter(|v| !v.is_null()) {
                    block.insert(key.into(), v.clone());
                }
            }
        }
        Value::Null => {}
        other => {
            block.insert("output".into(), json!(display_text(other)));
        }
    }
    block.insert("hasResult".into(), json!(true));
    if !block.contains_key("status") {
        block.insert("status".into(), json!("completed"));
    }
}

/// The blocks a message displays, in part order: text (markdown as HTML),
/// reasoning, tool calls with their results, other parts as JSON. A message
/// without text parts shows its `textContent` first.
fn message_blocks(text_content: Option<&str>, parts: &[Value]) -> Vec<Value> {
    let mut blocks: Vec<Map<String, Value>> = Vec::new();
    for part in parts {
        let kind = part["type"].as_str().unwrap_or_default();
        let content = &part["content"];
        match kind {
            "text" | "reasoning" => {
                if let Some(text) = part_text(content) {
                    let mut b = Map::new();
                    b.insert("kind".into(), json!(kind));
                    b.insert("html".into(), json!(render_markdown(&text)));
                    blocks.push(b);
                }
            }
            "tool-call" => blocks.push(tool_block(content)),
            "tool-result" => {
                let call_id = content.get("callID").and_then(Value::as_str);
                // Its call: the same callID, else the latest call still waiting.
                let target = blocks.iter_mut().rev().find(|b| {
                    b.get("kind") == Some(&json!("tool"))
                        && !b.contains_key("hasResult")
                        && call_id.is_none_or(|id| {
                            b.get("callId")
                                .and_then(Value::as_str)
                                .is_none_or(|c| c == id)
                        })
                });
                match target {
                    Some(b) => merge_result(b, content),
                    None => {
                        let mut b = tool_block(&Value::Null);
                        merge_result(&mut b, content);
                        blocks.push(b);
                    }
                }
            }
            _ => {
                let mut b = Map::new();
                b.insert("kind".into(), json!("part"));
                b.insert("type".into(), json!(kind));
                b.insert("content".into(), json!(display_text(content)));
                blocks.push(b);
            }
        }
    }
    let has_text = blocks.iter().any(|b| b.get("kind") == Some(&json!("text")));
    if let Some(text) = text_content.filter(|t| !t.is_empty() && !has_text) {
        let mut b = Map::new();
        b.insert("kind".into(), json!("text"));
        b.insert("html".into(), json!(render_markdown(text)));
        blocks.insert(0, b);
    }
    for b in &mut blocks {
        b.remove("hasResult");
    }
    blocks.into_iter().map(Value::Object).collect()
}

/// A `getSession` message as the session page shows it.
pub(super) fn message_view(msg: &Value) -> Value {
    let mut m = Map::new();
    for key in [
        "id",
        "externalId",
        "role",
        "model",
        "promptTokens",
        "completionTokens",
        "durationMs",
        "createdAt",
    ] {
        if let Some(v) = msg.get(key) {
            m.insert(key.into(), v.clone());
        }
    }
    let parts = msg["parts"].as_array().map_or(&[][..], Vec::as_slice);
    m.insert(
        "blocks".into(),
        Value::Array(message_blocks(msg["textContent"].as_str(), parts)),
    );
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_calls_pair_with_their_results() {
        let parts = vec![
            json!({"type": "text", "content": "Running **it**."}),
            json!({"type": "tool-call", "content": {"toolName": "bash", "callID": "c1",
                "args": {"command": "ls"}, "status": "completed", "title": "ls"}}),
            json!({"type": "tool-call", "content": {"name": "read", "callID": "c2",
                "arguments": {"filePath": "a"}}}),
            json!({"type": "tool-result", "content": {"callID": "c2", "error": "missing"}}),
            json!({"type": "tool-result", "content": {"output": "a\nb", "exit": 0, "durationMs": 12}}),
            json!({"type": "tool-result", "content": "orphan"}),
            json!({"type": "step-start", "content": {"snapshot": "abc"}}),
        ];
        let blocks = message_blocks(Some("Running **it**."), &parts);
        let kinds: Vec<&str> = blocks
            .iter()
            .map(|b| b["kind"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(kinds, ["text", "tool", "tool", "tool", "part"]);
        assert_eq!(blocks[0]["html"], "<p>Running <strong>it</strong>.</p>\n");
        assert_eq!(blocks[1]["name"], "bash");
        assert_eq!(blocks[1]["args"], json!({"command": "ls"}));
        assert_eq!(blocks[1]["output"], "a\nb");
        assert_eq!(blocks[1]["exit"], 0);
        assert_eq!(blocks[1]["durationMs"], 12);
        assert_eq!(blocks[1]["status"], "completed");
        assert_eq!(blocks[2]["name"], "read");
        assert_eq!(blocks[2]["status"], "error");
        assert_eq!(blocks[2]["error"], "missing");
        assert_eq!(blocks[3]["output"], "orphan");
        assert!(blocks.iter().all(|b| b.get("hasResult").is_none()));
    }

    #[test]
    fn text_content_shows_when_no_text_part_does() {
        let blocks = message_blocks(Some("Hi *there*"), &[]);
        assert_eq!(
            blocks,
            vec![json!({"kind": "text", "html": "<p>Hi <em>there</em></p>\n"})]
        );
        let blocks = message_blocks(
            Some("ignored"),
            &[json!({"type": "text", "content": {"text": "shown"}})],
        );
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0]["html"], "<p>shown</p>\n");
    }
}
