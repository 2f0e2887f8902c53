//! The part of the Convex platform that a sync payload meets before any
//! OpenSync code runs: argument validators and value limits.
//!
//! The real backend's mutations declare `v.object(...)` style validators; a value
//! of the wrong type, a `null` where a field is `v.optional`, a missing required
//! field or (in objects validated whole) an unknown field fails the call, and the
//! HTTP route turns that into a 500 whose message says `ArgumentValidationError`.
//! Values themselves are limited (string and document size, array length, object
//! width, reserved field names). Reproducing both here is what makes a client that
//! passes against this server safe against the real one.

use std::fmt;

use serde_json::{Map, Value};

/// Largest single string, and largest stored document, in bytes (UTF-8).
pub(crate) const MAX_VALUE_BYTES: usize = 1 << 20;
/// Most values in one array.
pub(crate) const MAX_ARRAY_LEN: usize = 8192;
/// Most entries in one object.
pub(crate) const MAX_OBJECT_FIELDS: usize = 1024;
/// Largest argument object one mutation call accepts, in bytes of JSON.
pub(crate) const MAX_ARGS_BYTES: usize = 8 << 20;

/// A Convex validator, enough of `v.*` to describe the sync mutations.
#[derive(Debug)]
pub(crate) enum V {
    /// `v.string()`
    Str,
    /// `v.number()`
    Num,
    /// `v.any()`
    Any,
    /// `v.literal("...")`
    Lit(&'static str),
    /// `v.union(...)`
    Union(&'static [V]),
    /// `v.array(...)`
    Array(&'static V),
    /// `v.object({...})`: every key must be declared.
    Object(&'static [Field]),
}

/// One field of a `v.object`.
#[derive(Debug)]
pub(crate) struct Field {
    name: &'static str,
    validator: V,
    optional: bool,
}

const fn req(name: &'static str, validator: V) -> Field {
    Field {
        name,
        validator,
        optional: false,
    }
}

const fn opt(name: &'static str, validator: V) -> Field {
    Field {
        name,
        validator,
        optional: true,
    }
}

/// `role` of a message.
pub(crate) const ROLE: V = V::Union(&[
    V::Lit("user"),
    V::Lit("assistant"),
    V::Lit("system"),
    V::Lit("tool"),
    V::Lit("unknown"),
]);

/// One message part: exactly `type` and `content`, both required.
pub(crate) const PART: V = V::Object(&[req("type", V::Str), req("content", V::Any)]);

/// Arguments of `sessions:upsert`, as `/sync/session` builds them.
pub(crate) const SESSION_UPSERT: V = V::Object(&[
    req("externalId", V::Str),
    opt("title", V::Str),
    opt("projectPath", V::Str),
    opt("projectName", V::Str),
    opt("model", V::Str),
    opt("provider", V::Str),
    opt("source", V::Str),
    opt("promptTokens", V::Num),
    opt("completionTokens", V::Num),
    opt("cost", V::Num),
    opt("durationMs", V::Num),
    opt("createdAt", V::Num),
]);

/// Arguments of `messages:upsert`, as `/sync/message` builds them.
pub(crate) const MESSAGE_UPSERT: V = V::Object(&[
    req("sessionExternalId", V::Str),
    req("externalId", V::Str),
    req("role", ROLE),
    opt("textContent", V::Str),
    opt("model", V::Str),
    opt("promptTokens", V::Num),
    opt("completionTokens", V::Num),
    opt("durationMs", V::Num),
    opt("source", V::Str),
    opt("createdAt", V::Num),
    opt("parts", V::Array(&PART)),
]);

/// One element of `sessions:batchUpsert`'s `sessions` (no `createdAt`).
pub(crate) const SESSION_BATCH_ITEM: V = V::Object(&[
    req("externalId", V::Str),
    opt("title", V::Str),
    opt("projectPath", V::Str),
    opt("projectName", V::Str),
    opt("model", V::Str),
    opt("provider", V::Str),
    opt("source", V::Str),
    opt("promptTokens", V::Num),
    opt("completionTokens", V::Num),
    opt("cost", V::Num),
    opt("durationMs", V::Num),
]);

/// One element of `messages:batchUpsert`'s `messages` (no `createdAt`).
pub(crate) const MESSAGE_BATCH_ITEM: V = V::Object(&[
    req("sessionExternalId", V::Str),
    req("externalId", V::Str),
    req("role", ROLE),
    opt("textContent", V::Str),
    opt("model", V::Str),
    opt("promptTokens", V::Num),
    opt("completionTokens", V::Num),
    opt("durationMs", V::Num),
    opt("source", V::Str),
    opt("parts", V::Array(&PART)),
]);

/// Arguments of `sessions:batchUpsert` (besides the user).
pub(crate) const SESSION_BATCH: V = V::Object(&[req("sessions", V::Array(&SESSION_BATCH_ITEM))]);

/// Arguments of `messages:batchUpsert` (besides the user).
pub(crate) const MESSAGE_BATCH: V = V::Object(&[req("messages", V::Array(&MESSAGE_BATCH_ITEM))]);

impl fmt::Display for V {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            V::Str => f.write_str("v.string()"),
            V::Num => f.write_str("v.float64()"),
            V::Any => f.write_str("v.any()"),
            V::Lit(s) => write!(f, "v.literal({s:?})"),
            V::Union(members) => {
                f.write_str("v.union(")?;
                for (i, m) in members.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{m}")?;
                }
                f.write_str(")")
            }
            V::Array(item) => write!(f, "v.array({item})"),
            V::Object(fields) => {
                f.write_str("v.object({")?;
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if field.optional {
                        write!(f, "{}: v.optional({})", field.name, field.validator)?;
                    } else {
                        write!(f, "{}: {}", field.name, field.validator)?;
                    }
                }
                f.write_str("})")
            }
        }
    }
}

/// A failed Convex call, rendered the way `String(e)` shows it to the route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConvexError(pub(crate) String);

impl ConvexError {
    /// An error thrown while the mutation `function` ran (or was being called).
    pub(crate) fn in_function(function: &str, message: &str) -> Self {
        Self(format!("Error: [CONVEX M({function})] {message}"))
    }
}

impl fmt::Display for ConvexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks `args` the way Convex does before running `function`: value limits
/// first, then the validator.
pub(crate) fn check_args(function: &str, validator: &V, args: &Value) -> Result<(), ConvexError> {
    let size = serde_json::to_string(args).map_or(0, |s| s.len());
    if size > MAX_ARGS_BYTES {
        return Err(ConvexError::in_function(
            function,
            &format!(
                "Uncaught Error: Arguments are too large ({} > maximum size 8 MiB)",
                human_bytes(size)
            ),
        ));
    }
    check_value_limits(args).map_err(|m| ConvexError::in_function(function, &m))?;
    validate(validator, args, "")
        .map_err(|m| ConvexError::in_function(function, &format!("ArgumentValidationError: {m}")))
}

/// Value rules of the platform: string length, array length, object width and
/// reserved field names, at any depth.
pub(crate) fn check_value_limits(value: &Value) -> Result<(), String> {
    match value {
        Value::String(s) if s.len() > MAX_VALUE_BYTES => Err(format!(
            "Uncaught Error: String is too long ({} > maximum size 1 MiB)",
            human_bytes(s.len())
        )),
        Value::Array(items) => {
            if items.len() > MAX_ARRAY_LEN {
                return Err(format!(
                    "Uncaught Error: Array length is too long ({} > maximum length {MAX_ARRAY_LEN})",
                    items.len()
                ));
            }
            items.iter().try_for_each(check_value_limits)
        }
        Value::Object(map) => {
            if map.len() > MAX_OBJECT_FIELDS {
                return Err(format!(
                    "Uncaught Error: Object has too many fields ({} > maximum number {MAX_OBJECT_FIELDS})",
                    map.len()
                ));
            }
            for (key, item) in map {
                if let Some(first @ ('$' | '_')) = key.chars().next() {
                    return Err(format!(
                        "Uncaught Error: Field name {key} starts with a '{first}', which is reserved."
                    ));
                }
                check_value_limits(item)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn validate(validator: &V, value: &Value, path: &str) -> Result<(), String> {
    let matches = match validator {
        V::Str => value.is_string(),
        V::Num => value.is_number(),
        V::Any => true,
        V::Lit(lit) => value.as_str() == Some(lit),
        V::Union(members) => members.iter().any(|m| validate(m, value, path).is_ok()),
        V::Array(item) => {
            let Some(items) = value.as_array() else {
                return Err(mismatch(validator, value, path));
            };
            for (i, v) in items.iter().enumerate() {
                validate(item, v, &format!("{path}[{i}]"))?;
            }
            true
        }
        V::Object(fields) => {
            let Some(map) = value.as_object() else {
                return Err(mismatch(validator, value, path));
            };
            return validate_object(validator, fields, map, path);
        }
    };
    if matches {
        Ok(())
    } else {
        Err(mismatch(validator, value, path))
    }
}

fn validate_object(
    validator: &V,
    fields: &[Field],
    map: &Map<String, Value>,
    path: &str,
) -> Result<(), String> {
    for field in fields {
        match map.get(field.name) {
            None if !field.optional => {
                return Err(format!(
                    "Object is missing the required field `{}`. Consider wrapping the field \
                     validator in `v.optional(...)` if this is expected.\n\n{}Object: {}\nValidator: {}",
                    field.name,
                    path_line(path),
                    render(&Value::Object(map.clone())),
                    validator
                ));
            }
            None => {}
            Some(v) => validate(&field.validator, v, &format!("{path}.{}", field.name))?,
        }
    }
    if let Some(extra) = map
        .keys()
        .find(|k| !fields.iter().any(|f| f.name == k.as_str()))
    {
        return Err(format!(
            "Object contains extra field `{extra}` that is not in the validator.\n\n{}Object: {}\nValidator: {}",
            path_line(path),
            render(&Value::Object(map.clone())),
            validator
        ));
    }
    Ok(())
}

fn path_line(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("Path: {path}\n")
    }
}

fn mismatch(validator: &V, value: &Value, path: &str) -> String {
    format!(
        "Value does not match validator.\n{}Value: {}\nValidator: {}",
        path_line(path),
        render(value),
        validator
    )
}

/// A value for an error message: compact JSON, cut short when long.
fn render(value: &Value) -> String {
    const MAX: usize = 400;
    let text = serde_json::to_string(value).unwrap_or_default();
    if text.len() <= MAX {
        return text;
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// "1.25 MiB" / "512 KiB" / "12 B", for limit messages.
pub(crate) fn human_bytes(n: usize) -> String {
    // Precision loss is irrelevant for a message.
    #[allow(clippy::cast_precision_loss)]
    let f = n as f64;
    if n >= 1 << 20 {
        format!("{:.2} MiB", f / f64::from(1u32 << 20))
    } else if n >= 1 << 10 {
        format!("{:.2} KiB", f / 1024.0)
    } else {
        format!("{n} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn null_in_optional_field_fails() {
        let err = check_args(
            "sessions:upsert",
            &SESSION_UPSERT,
            &json!({"externalId": "s", "title": null}),
        )
        .unwrap_err();
        assert!(err.0.contains("ArgumentValidationError"), "{err}");
        assert!(err.0.contains("Path: .title"), "{err}");
    }

    #[test]
    fn part_with_extra_key_fails() {
        let args = json!({"sessionExternalId": "s", "externalId": "m", "role": "user",
            "parts": [{"type": "text", "content": "x", "id": "p1"}]});
        let err = check_args("messages:upsert", &MESSAGE_UPSERT, &args).unwrap_err();
        assert!(err.0.contains("extra field `id`"), "{err}");
        assert!(err.0.contains("Path: .parts[0]"), "{err}");
    }

    #[test]
    fn part_without_content_fails() {
        let args = json!({"sessionExternalId": "s", "externalId": "m", "role": "user",
            "parts": [{"type": "text"}]});
        let err = check_args("messages:upsert", &MESSAGE_UPSERT, &args).unwrap_err();
        assert!(
            err.0.contains("missing the required field `content`"),
            "{err}"
        );
    }

    #[test]
    fn role_must_be_known() {
        let args = json!({"sessionExternalId": "s", "externalId": "m", "role": "bot"});
        let err = check_args("messages:upsert", &MESSAGE_UPSERT, &args).unwrap_err();
        assert!(err.0.contains("Path: .role"), "{err}");
        let ok = json!({"sessionExternalId": "s", "externalId": "m", "role": "tool",
            "parts": [{"type": "x", "content": null}]});
        check_args("messages:upsert", &MESSAGE_UPSERT, &ok).unwrap();
    }

    #[test]
    fn batch_item_rejects_created_at() {
        let args = json!({"sessions": [{"externalId": "s", "createdAt": 1}]});
        let err = check_args("sessions:batchUpsert", &SESSION_BATCH, &args).unwrap_err();
        assert!(err.0.contains("extra field `createdAt`"), "{err}");
        assert!(err.0.contains("Path: .sessions[0]"), "{err}");
    }

    #[test]
    fn limits() {
        assert!(check_value_limits(&json!({"$x": 1})).is_err());
        assert!(check_value_limits(&json!({"a": {"_id": 1}})).is_err());
        assert!(check_value_limits(&json!(vec![0; MAX_ARRAY_LEN])).is_ok());
        assert!(check_value_limits(&json!(vec![0; MAX_ARRAY_LEN + 1])).is_err());
        let wide: Map<String, Value> = (0..=MAX_OBJECT_FIELDS)
            .map(|i| (format!("k{i}"), json!(i)))
            .collect();
        assert!(check_value_limits(&Value::Object(wide)).is_err());
        assert!(check_value_limits(&json!("x".repeat(MAX_VALUE_BYTES))).is_ok());
        assert!(check_value_limits(&json!("x".repeat(MAX_VALUE_BYTES + 1))).is_err());
    }

    #[test]
    fn validator_display() {
        assert_eq!(
            PART.to_string(),
            "v.object({type: v.string(), content: v.any()})"
        );
    }
}
