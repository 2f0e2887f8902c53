//! What the property tests of this crate share: the recorded OpenCode stream they start
//! from, and the mutation they apply to its JSON.

use serde_json::Value;

/// The hook calls OpenCode 1.18.33 made in a recorded session, one JSON object a line.
pub const RECORDED: &str =
    include_str!("../../../../tests/fixtures/opencode-1.18.33-two-turns-three-tools.jsonl");

/// Replaces (or with `None`, removes) the value at a path chosen by `choices` in `v`.
pub fn mutate(v: &mut Value, choices: &[usize], replacement: Option<Value>) {
    let Some((&c, rest)) = choices.split_first() else {
        if let Some(r) = replacement {
            *v = r;
        }
        return;
    };
    match v {
        Value::Object(map) if !map.is_empty() => {
            let key = map.keys().nth(c % map.len()).cloned().unwrap_or_default();
            if !rest.is_empty() {
                if let Some(child) = map.get_mut(&key) {
                    mutate(child, rest, replacement);
                }
            } else if let Some(r) = replacement {
                map.insert(key, r);
            } else {
                map.remove(&key);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let i = c % items.len();
            if !rest.is_empty() {
                mutate(&mut items[i], rest, replacement);
            } else if let Some(r) = replacement {
                items[i] = r;
            } else {
                items.remove(i);
            }
        }
        _ => {
            if let Some(r) = replacement {
                *v = r;
            }
        }
    }
}
