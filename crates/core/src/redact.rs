//! Masks secrets in text before it leaves the machine: API keys and tokens with
//! well-known prefixes, JWTs, bearer tokens, private key blocks, passwords in URLs, and
//! values assigned to secret-looking names (`API_KEY=...`, `"password": "..."`). Hand
//! written rather than regex-based to keep the wasm small and the cost linear.

use std::borrow::Cow;

/// What replaces a secret.
pub const MASK: &str = "[REDACTED]";

/// Token prefixes of common providers; the token continues with [`is_token_byte`]s.
const PREFIXES: &[(&str, usize)] = &[
    ("osk_", 16),
    ("sk-ant-", 16),
    ("sk-proj-", 16),
    ("sk-", 20),
    ("sk_live_", 16),
    ("sk_test_", 16),
    ("rk_live_", 16),
    ("pk_live_", 16),
    ("ghp_", 20),
    ("gho_", 20),
    ("ghu_", 20),
    ("ghs_", 20),
    ("ghr_", 20),
    ("github_pat_", 20),
    ("glpat-", 20),
    ("xoxb-", 10),
    ("xoxp-", 10),
    ("xoxa-", 10),
    ("xapp-", 10),
    ("AKIA", 16),
    ("ASIA", 16),
    ("AIza", 30),
    ("npm_", 30),
    ("hf_", 30),
    ("SG.", 30),
];

/// Names whose assigned value is a secret (matched case-insensitively as a suffix of
/// the name, so `OPENAI_API_KEY` and `db_password` both count).
const SECRET_NAMES: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "access_key",
    "private_key",
    "client_secret",
    "auth",
];

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/' | b'+' | b'=')
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Returns `text` with secrets masked; borrows when there was nothing to mask.
pub fn redact(text: &str) -> Cow<'_, str> {
    // Fast path: nothing that could start a secret.
    if !might_contain_secret(text) {
        return Cow::Borrowed(text);
    }
    let masked = if text.contains("-----BEGIN ") {
        mask_scanned(&mask_private_keys(text))
    } else {
        mask_scanned(text)
    };
    if masked == text {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(masked)
    }
}

/// Bytes that can start a provider token or a JWT, for a one-byte check before the
/// prefix table is searched.
const TOKEN_FIRST_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < PREFIXES.len() {
        table[PREFIXES[i].0.as_bytes()[0] as usize] = true;
        i += 1;
    }
    table[b'e' as usize] = true; // eyJ… (JWT)
    table
};

/// Cheap test for text in which nothing can match (most short strings).
fn might_contain_secret(text: &str) -> bool {
    text.len() >= 8
        && text
            .bytes()
            .any(|b| matches!(b, b'=' | b':' | b'-' | b' ') || TOKEN_FIRST_BYTES[b as usize])
}

fn mask_private_keys(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start..];
        let header_end = after[11..].find("-----").map(|i| i + 11 + 5);
        let is_private = header_end.is_some_and(|e| after[..e].contains("PRIVATE KEY"));
        if !is_private {
            out.push_str(&rest[..start + 11]);
            rest = &rest[start + 11..];
            continue;
        }
        out.push_str(&rest[..start]);
        out.push_str("[REDACTED PRIVATE KEY]");
        // Through the END line if there is one, else to the end of the text.
        rest = match after.find("-----END ") {
            Some(end) => {
                let tail = &after[end + 9..];
                match tail.find("-----") {
                    Some(close) => &tail[close + 5..],
                    None => "",
                }
            }
            None => "",
        };
    }
    out.push_str(rest);
    out
}

fn mask_scanned(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0; // bytes of `text` already in `out`
    let mut i = 0;
    while i < bytes.len() {
        let at_word_start = i == 0 || !is_word_byte(bytes[i - 1]);
        // Provider tokens and JWTs.
        if at_word_start && let Some(end) = token_at(bytes, i) {
            out.push_str(&text[copied..i]);
            out.push_str(MASK);
            copied = end;
            i = end;
            continue;
        }
        // Passwords in URLs: scheme://user:password@host
        if bytes[i..].starts_with(b"://") {
            if let Some((pw_start, pw_end)) = url_password(bytes, i + 3) {
                out.push_str(&text[copied..pw_start]);
                out.push_str(MASK);
                copied = pw_end;
                i = pw_end;
                continue;
            }
            i += 3;
            continue;
        }
        // `Bearer <token>`
        if at_word_start && bytes[i..].starts_with(b"Bearer ") {
            let start = i + 7;
            let end = scan(bytes, start, is_token_byte);
            if end - start >= 12 && !text[start..end].starts_with(MASK) {
                out.push_str(&text[copied..start]);
                out.push_str(MASK);
                copied = end;
                i = end;
                continue;
            }
        }
        // NAME=value, NAME: value, "name": "value"
        if (bytes[i] == b'=' || bytes[i] == b':')
            && names_secret(bytes, i)
            && let Some((v_start, v_end)) = assigned_value(bytes, i + 1)
        {
            out.push_str(&text[copied..v_start]);
            out.push_str(MASK);
            copied = v_end;
            i = v_end;
            continue;
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    out
}

fn scan(bytes: &[u8], from: usize, pred: fn(u8) -> bool) -> usize {
    let mut end = from;
    while end < bytes.len() && pred(bytes[end]) {
        end += 1;
    }
    end
}

/// The end of a provider token or JWT starting at `i`.
fn token_at(bytes: &[u8], i: usize) -> Option<usize> {
    if !TOKEN_FIRST_BYTES[bytes[i] as usize] {
        return None;
    }
    let rest = &bytes[i..];
    for (prefix, min_len) in PREFIXES {
        if rest.starts_with(prefix.as_bytes()) {
            let end = scan(bytes, i + prefix.len(), is_token_byte);
            if end - i - prefix.len() >= *min_len {
                return Some(end);
            }
        }
    }
    if rest.starts_with(b"eyJ") {
        let end = scan(bytes, i, |b| {
            b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
        });
        let token = &bytes[i..end];
        let dots = token.iter().filter(|&&b| b == b'.').count();
        if dots == 2 && token.len() >= 24 {
            return Some(end);
        }
    }
    None
}

/// For `scheme://user:password@host`, the byte range of `password`.
fn url_password(bytes: &[u8], authority: usize) -> Option<(usize, usize)> {
    let end = scan(bytes, authority, |b| {
        !matches!(
            b,
            b'/' | b'?' | b'#' | b' ' | b'\n' | b'\t' | b'"' | b'\'' | b'<' | b'>'
        )
    });
    let auth = &bytes[authority..end];
    let at = auth.iter().rposition(|&b| b == b'@')?;
    let colon = auth[..at].iter().position(|&b| b == b':')?;
    let (start, stop) = (authority + colon + 1, authority + at);
    (stop > start && &bytes[start..stop] != MASK.as_bytes()).then_some((start, stop))
}

/// Whether the name before `bytes[sep]` (skipping quotes and spaces) is secret-looking.
fn names_secret(bytes: &[u8], sep: usize) -> bool {
    let mut end = sep;
    while end > 0 && matches!(bytes[end - 1], b' ' | b'"' | b'\'') {
        end -= 1;
    }
    let mut start = end;
    while start > 0 && (is_word_byte(bytes[start - 1]) || bytes[start - 1] == b'-') {
        start -= 1;
    }
    if start == end || end - start > 64 {
        return false;
    }
    let name = String::from_utf8_lossy(&bytes[start..end]).to_ascii_lowercase();
    SECRET_NAMES.iter().any(|s| name.ends_with(s))
}

/// The value after `=`/`:` (quoted or bare), if it looks like a real secret value.
fn assigned_value(bytes: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut start = from;
    while start < bytes.len() && bytes[start] == b' ' {
        start += 1;
    }
    let (start, end) = match bytes.get(start) {
        Some(&q @ (b'"' | b'\'')) => {
            let s = start + 1;
            let e = s + bytes[s..].iter().position(|&b| b == q || b == b'\n')?;
            (s, e)
        }
        Some(_) => (
            start,
            scan(bytes, start, |b| {
                !b.is_ascii_whitespace() && !matches!(b, b',' | b';' | b'}' | b'"' | b'\'')
            }),
        ),
        None => return None,
    };
    let value = &bytes[start..end];
    // Short values, placeholders and references are not secrets worth masking.
    let looks_real = value.len() >= 6
        && value != MASK.as_bytes()
        && !value.starts_with(b"$")
        && !value.starts_with(b"<")
        && !value.starts_with(b"{")
        && !value.iter().any(|b| matches!(b, b'(' | b')'))
        && !value.eq_ignore_ascii_case(b"true")
        && !value.eq_ignore_ascii_case(b"false")
        && !value.eq_ignore_ascii_case(b"null");
    looks_real.then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn masks_known_secrets() {
        let table = [
            (
                "token=ghp_abcdefghijklmnopqrstuvwxyz0123456789",
                "token=[REDACTED]",
            ),
            (
                "key osk_AbCdEfGhIjKlMnOpQrStUv0001 here",
                "key [REDACTED] here",
            ),
            (
                "OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwx",
                "OPENAI_API_KEY=[REDACTED]",
            ),
            ("aws AKIAIOSFODNN7EXAMPLE ok", "aws [REDACTED] ok"),
            (
                "postgres://admin:hunter2secret@db:5432/x",
                "postgres://admin:[REDACTED]@db:5432/x",
            ),
            (
                "Authorization: Bearer abcdef123456789xyz",
                "Authorization: Bearer [REDACTED]",
            ),
            (
                "{\"password\": \"correct horse\"}",
                "{\"password\": \"[REDACTED]\"}",
            ),
            (
                "DB_PASSWORD=s3cr3tvalue\nNEXT=1",
                "DB_PASSWORD=[REDACTED]\nNEXT=1",
            ),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlX2hlcmU end",
                "jwt [REDACTED] end",
            ),
            (
                "a\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\nb",
                "a\n[REDACTED PRIVATE KEY]\nb",
            ),
        ];
        for (input, want) in table {
            assert_eq!(redact(input), want, "{input}");
        }
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        for text in [
            "read notes.txt and run two commands",
            "https://example.com/path?x=1",
            "let token = getToken();",
            "password: $PASSWORD",
            "ask-for-help is a skill",
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
            "time: 12:30:45",
        ] {
            assert_eq!(redact(text), text);
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_is_idempotent(text in "\\PC{0,200}") {
            let once = redact(&text).into_owned();
            prop_assert_eq!(redact(&once).into_owned(), once);
        }

        #[test]
        fn embedded_tokens_are_always_masked(
            before in "[a-z ]{0,20}",
            body in "[A-Za-z0-9]{36}",
            after in "[a-z ]{0,20}",
        ) {
            let secret = format!("ghp_{body}");
            let text = format!("{before} {secret} {after}");
            prop_assert!(!redact(&text).contains(&secret));
        }
    }
}
