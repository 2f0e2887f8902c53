//! Masks secrets in text and in JSON values before they leave the machine: every synced
//! string (text, reasoning, titles, tool arguments, outputs and errors) passes through
//! [`redact`], and tool arguments through [`redact_value`], which also judges a value by
//! the key it is stored under.
//!
//! What it masks: 150-odd token formats known by their prefix (after gitleaks' rules), JWTs,
//! private key bodies, passwords in URLs, `Authorization`/`Cookie` header values,
//! credentials on command lines (`mysql -p…`, `curl -u name:pw`, `--token X`) and values
//! assigned to secret-looking names in any notation (`.env`, shell, YAML, JSON, code).
//! What it leaves alone: publishable keys, placeholders (`your-api-key-here`), and code
//! that names a secret without holding one (`apiKey = getKey()`, `password: string`).
//!
//! Parts:
//! - [`rules`]: the table of prefixed token formats and how one is matched.
//! - [`names`]: which names are secret, and which values are placeholders or references.
//! - [`scan`]: the one-pass scanner over text.
//! - [`value`]: key-aware redaction of JSON values.
//!
//! Hand-written rather than built on a crate, measured: in an optimised wasm build
//! (`wasm-opt -Oz`), `regex` costs ~765 KB and `aho-corasick` ~100 KB, against a budget
//! of ~150 KB for the whole plugin's growth, while a prefix table indexed by first byte
//! finds the same tokens in one pass. Every look-ahead is bounded or remembered, so the
//! cost stays linear in the text (see `scan`).

mod names;
mod rules;
mod scan;
mod value;

use std::borrow::Cow;

pub use names::is_secret_name;
pub use value::redact_value;

/// What replaces a secret.
pub const MASK: &str = "[REDACTED]";

/// Returns `text` with secrets masked; borrows when there was nothing to mask.
pub fn redact(text: &str) -> Cow<'_, str> {
    if text.len() < 8 {
        return Cow::Borrowed(text);
    }
    match scan::mask(text) {
        Some(masked) => Cow::Owned(masked),
        None => Cow::Borrowed(text),
    }
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
                "a\n-----BEGIN RSA PRIVATE KEY-----\n[REDACTED]\n-----END RSA PRIVATE KEY-----\nb",
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

    /// A random-looking body of `n` characters (built, so no literal here looks like a
    /// real secret).
    fn body(n: usize) -> String {
        "Zq8Xw3Lm0Pk7Rt2Vn5Bc9Hd4Jf6Gs1"
            .chars()
            .cycle()
            .take(n)
            .collect()
    }

    fn hex(n: usize) -> String {
        "3f9a0c7be21d5846".chars().cycle().take(n).collect()
    }

    /// The leaks of issue 14: each `(text, secret)` must lose its secret.
    #[test]
    fn masks_what_leaked_before() {
        let b20 = body(20);
        let b40 = body(40);
        let cases: Vec<(String, String)> = vec![
            (format!("export SECRET_KEY={b20}"), b20.clone()),
            (format!("SECRET_KEY = '{b20}'"), b20.clone()),
            (format!("{{\"SecretAccessKey\": \"{b40}\"}}"), b40.clone()),
            (
                format!(
                    "DefaultEndpointsProtocol=https;AccountName=dev;AccountKey={b40}+/==;EndpointSuffix=core"
                ),
                b40.clone(),
            ),
            (
                format!("https://acct.blob.core/c?sv=2022-11-02&sig={b40}%3D&se=2030"),
                b40.clone(),
            ),
            (format!("Cookie: sessionid={b20}; csrftoken=x"), b20.clone()),
            (format!("mysql -uroot -p{b20} app"), b20.clone()),
            (format!("curl -u admin:{b20} https://h/x"), b20.clone()),
            (format!("gh api --token {b40} /user"), b40.clone()),
            (format!("{{\\\"password\\\": \\\"{b20}\\\"}}"), b20.clone()),
            (
                format!("{}{}", "https://hooks.slack.com/services/T0/B0/", b20),
                b20.clone(),
            ),
            (
                format!("{}{}", "https://discord.com/api/webhooks/1234567/", b40),
                b40.clone(),
            ),
            (format!("key SK{}", hex(32)), hex(32)),
            (format!("{}{}", "whsec_", b40), b40.clone()),
            (format!("{}{}", "hvs.", b40), b40.clone()),
            (format!("{}{}", "dop_v1_", hex(64)), hex(64)),
            (format!("{}{}", "shpat_", hex(32)), hex(32)),
            (format!("{}{}", "pypi-AgEIcHlwaS5vcmc", body(60)), body(60)),
            (
                format!(
                    "{}{}",
                    "AGE-SECRET-KEY-1",
                    "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L".repeat(2)[..58].to_owned()
                ),
                "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L".repeat(2)[..58].to_owned(),
            ),
            (format!("{}{}", "xoxs-", b20), b20.clone()),
            (
                "Authorization: Basic dXNlcjpwYXNzd29yZA==".to_owned(),
                "dXNlcjpwYXNzd29yZA==".to_owned(),
            ),
            (format!("authorization: bearer {b40}"), b40.clone()),
        ];
        for (text, secret) in &cases {
            let out = redact(text);
            assert!(!out.contains(secret.as_str()), "{text}\n  -> {out}");
        }
    }

    /// The mangling of issue 14: each of these must come through unchanged.
    #[test]
    fn keeps_what_was_mangled_before() {
        let publishable = format!("{}{}", "pk_live_", body(24));
        for text in [
            "const apiKey = getKey();".to_owned(),
            "const apiKey = process.env.OPENAI_API_KEY;".to_owned(),
            "  password: string;".to_owned(),
            "  password: hashedPassword;".to_owned(),
            "const token = await fetchToken()".to_owned(),
            format!("stripe.setPublishableKey('{publishable}')"),
            format!("STRIPE_PUBLISHABLE_KEY={publishable}"),
            "API_KEY=your-api-key-here".to_owned(),
            "OPENAI_API_KEY=<your key>".to_owned(),
            "password: ${DB_PASSWORD}".to_owned(),
            "The password: is required".to_owned(),
            "max_tokens=4096".to_owned(),
            "Use a bearer token in the Authorization header.".to_owned(),
            "basic features only".to_owned(),
            "Authorization: the process of granting access".to_owned(),
            "mkdir -p build/out".to_owned(),
            "git push -u origin main".to_owned(),
            "postgres://localhost:5432/app".to_owned(),
        ] {
            assert_eq!(redact(&text), text);
        }
    }

    #[test]
    fn a_private_key_without_its_end_masks_only_its_body() {
        let text = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n{}\nthen ordinary text\nmore\n-----END CERTIFICATE-----",
            body(64),
            body(20)
        );
        assert_eq!(
            redact(&text),
            "-----BEGIN PRIVATE KEY-----\n[REDACTED]\nthen ordinary text\nmore\n-----END CERTIFICATE-----"
        );
        // Escaped line breaks (a key inside JSON text) and encryption headers.
        let text = format!(
            "-----BEGIN RSA PRIVATE KEY-----\\nProc-Type: 4,ENCRYPTED\\nDEK-Info: AES-128-CBC,{}\\n\\n{}\\n-----END RSA PRIVATE KEY-----",
            hex(32),
            body(64)
        );
        assert!(!redact(&text).contains(&body(64)), "{}", redact(&text));
    }

    proptest! {
        #[test]
        fn never_panics_and_is_idempotent(text in "\\PC{0,200}") {
            let once = redact(&text).into_owned();
            prop_assert_eq!(redact(&once).into_owned(), once);
        }

        /// Long runs of what starts a secret finish (nothing is asserted on time: a
        /// quadratic scan would make the suite hang).
        #[test]
        fn adversarial_runs_finish(
            unit in prop::sample::select(vec!["=", ":", "-", "eyJ", "password=", "token: \"", "://a:", "-----BEGIN ", "ghp_", "eyJ.", "--token ", "Bearer "]),
            count in 1usize..40_000,
        ) {
            let text = unit.repeat(count);
            let _ = redact(&text);
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
