//! Mends JSON text before it is parsed: a `\uXXXX` escape of a lone UTF-16 surrogate
//! becomes `\ufffd` (U+FFFD, the replacement character).
//!
//! Why it exists: models sometimes emit half of a surrogate pair (`\ud83d` alone), and
//! JavaScript keeps it. `JSON.stringify` writes it as an escape, and OpenCode stores it
//! so in its database, but Rust strings cannot hold it: serde_json (and any strict
//! parser) refuses the whole document, which lost the message's parts in the plugin and
//! the whole message in backfill. Replacing the escape keeps every other character, as
//! JavaScript's own `TextEncoder` does with a lone surrogate. No JSON crate offers a
//! lossy mode for this, hence the few lines here.
//!
//! Only escapes are mended: raw text is UTF-8 already (`&str`), so it cannot hold a
//! surrogate. An escaped backslash (`\\ud83d`) is not an escape of a surrogate and is
//! left alone.

use std::borrow::Cow;

/// `text` with every escaped lone surrogate replaced by `\ufffd`; borrowed (no copy)
/// when there is none, which a one-pass search decides for most text.
pub fn mend_lone_surrogates(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let Some(first) = first_lone_surrogate(bytes, 0) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = Some(first);
    while let Some(start) = at {
        out.push_str(&text[copied..start]);
        out.push_str("\\ufffd");
        copied = start + 6;
        at = first_lone_surrogate(bytes, copied);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// The offset of the next `\uXXXX` escape at or after `from` that is a surrogate
/// without its other half.
fn first_lone_surrogate(bytes: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(offset) = memchr_backslash(&bytes[i..]) {
        let at = i + offset;
        match bytes.get(at + 1) {
            Some(b'u') => match escaped_unit(bytes, at) {
                Some(0xD800..=0xDBFF) => match escaped_unit(bytes, at + 6) {
                    // A whole pair: both halves stay.
                    Some(0xDC00..=0xDFFF) => i = at + 12,
                    _ => return Some(at),
                },
                Some(0xDC00..=0xDFFF) => return Some(at),
                _ => i = at + 2,
            },
            // Any other escape (`\\` included) is two bytes long.
            Some(_) => i = at + 2,
            None => return None,
        }
    }
    None
}

/// The code unit of a `\uXXXX` escape starting at `at`, if there is one.
fn escaped_unit(bytes: &[u8], at: usize) -> Option<u32> {
    let escape = bytes.get(at..at + 6)?;
    if escape[0] != b'\\' || escape[1] != b'u' {
        return None;
    }
    escape[2..].iter().try_fold(0u32, |unit, &b| {
        Some(unit << 4 | char::from(b).to_digit(16)?)
    })
}

fn memchr_backslash(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_halves_become_the_replacement_character() {
        for (text, want) in [
            (r#""a\ud83d b""#, r#""a\ufffd b""#),
            (r#""\ude00""#, r#""\ufffd""#),
            (r#""\ud83d\ud83d\ude00""#, r#""\ufffd\ud83d\ude00""#),
            (r#""\ud83d\n""#, r#""\ufffd\n""#),
            (r#""\ud83d""#, r#""\ufffd""#),
            (r#"["\uDBFF", "\uDC00x"]"#, r#"["\ufffd", "\ufffdx"]"#),
        ] {
            assert_eq!(mend_lone_surrogates(text), want, "{text}");
            let value: serde_json::Value = serde_json::from_str(&mend_lone_surrogates(text))
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(value.to_string().contains('\u{fffd}'), "{value}");
        }
    }

    #[test]
    fn everything_else_is_borrowed_unchanged() {
        for text in [
            r#""plain ✓""#,
            r#""\ud83d\ude00 pair""#,
            r#""\\ud83d is text""#,
            r#""\u00e9 \n \" \\""#,
            r#""\u12"#,
            "\\",
        ] {
            assert!(
                matches!(mend_lone_surrogates(text), Cow::Borrowed(t) if t == text),
                "{text}"
            );
        }
    }

    #[test]
    fn a_truncated_escape_after_a_high_half_is_mended_without_panicking() {
        assert_eq!(mend_lone_surrogates(r#""\ud83d\u12"#), r#""\ufffd\u12"#);
    }
}
