//! Key-aware redaction of JSON values (tool arguments): a value under a secret-named key
//! (`password`, `apiKey`, `X-Auth-Token`, `env.API_KEY`, ...) is masked whatever it looks
//! like, however short, and everything inside it too; any other string goes through the
//! text scanner. `{"name": "API_KEY", "value": "…"}` pairs (Kubernetes, CI and parameter
//! store listings) count as the key they name.

use serde_json::{Map, Value};

use super::names::is_secret_name;
use super::{MASK, redact};

/// Deeper than this, a value is masked whole (nothing the plugin reads nests this deep:
/// its JSON reader refuses more than 128 levels).
const MAX_DEPTH: usize = 128;

/// `value` with its secrets masked, judged with the `key` it is stored under (`None`
/// for a top-level value or an array item). Strings under a secret key become
/// [`MASK`] (empty strings stay empty); numbers, booleans and `null` are kept.
pub fn redact_value(key: Option<&str>, value: &Value) -> Value {
    redact_within(key.is_some_and(is_secret_name), value, 0)
}

fn redact_within(secret: bool, value: &Value, depth: usize) -> Value {
    if depth >= MAX_DEPTH {
        return Value::String(MASK.to_owned());
    }
    match value {
        Value::String(s) if secret && !s.is_empty() => Value::String(MASK.to_owned()),
        Value::String(s) => Value::String(redact(s).into_owned()),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| redact_within(secret, item, depth + 1))
                .collect(),
        ),
        Value::Object(map) => {
            let named_secret = !secret && names_a_secret(map);
            Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let masked = secret
                            || is_secret_name(k)
                            || (named_secret && k.eq_ignore_ascii_case("value"));
                        (k.clone(), redact_within(masked, v, depth + 1))
                    })
                    .collect(),
            )
        }
        other => other.clone(),
    }
}

/// Whether the object is a `{"name"|"key": "<secret name>", "value": …}` pair.
fn names_a_secret(map: &Map<String, Value>) -> bool {
    map.keys().any(|k| k.eq_ignore_ascii_case("value"))
        && map.iter().any(|(k, v)| {
            ["name", "key", "parametername"]
                .iter()
                .any(|n| k.eq_ignore_ascii_case(n))
                && v.as_str().is_some_and(is_secret_name)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_keys_mask_their_values_whatever_they_look_like() {
        let input = json!({
            "password": "x1",
            "env": {"API_KEY": "short", "HOME": "/home/dev", "PORT": 8080},
            "headers": {"X-Auth": "abc", "X-Auth-Token": "t", "Accept": "text/plain"},
            "apiKey": ["one", "two"],
            "api-key": {"nested": {"deep": "value"}},
            "token": "",
            "secret": true,
            "credentials": null,
            "count": 3,
            "env_list": [{"name": "DB_PASSWORD", "value": "pw"}, {"name": "MODE", "value": "dev"}],
            "command": "echo ok"
        });
        let want = json!({
            "password": MASK,
            "env": {"API_KEY": MASK, "HOME": "/home/dev", "PORT": 8080},
            "headers": {"X-Auth": MASK, "X-Auth-Token": MASK, "Accept": "text/plain"},
            "apiKey": [MASK, MASK],
            "api-key": {"nested": {"deep": MASK}},
            "token": "",
            "secret": true,
            "credentials": null,
            "count": 3,
            "env_list": [{"name": "DB_PASSWORD", "value": MASK}, {"name": "MODE", "value": "dev"}],
            "command": "echo ok"
        });
        assert_eq!(redact_value(None, &input), want);
        assert_eq!(redact_value(Some("password"), &json!("p")), json!(MASK));
        assert_eq!(redact_value(Some("name"), &json!("p")), json!("p"));
    }

    #[test]
    fn other_strings_go_through_the_text_scanner() {
        let token = format!("{}{}", "ghp_", "a1B2".repeat(9));
        let input = json!({"command": format!("git push https://x:{token}@example.com")});
        let out = redact_value(None, &input).to_string();
        assert!(!out.contains(&token), "{out}");
    }
}
