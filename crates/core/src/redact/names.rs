//! Judging names and values: whether a name (`API_KEY`, `apiKey`, `X-Auth-Token`,
//! `SecretAccessKey`) says its value is a secret, and whether a value assigned to such a
//! name is a real secret or something else (a placeholder like `your-api-key-here`, a
//! variable or type in code like `process.env.KEY` or `string`, a template `${TOKEN}`).
//! Shared by the text scanner and the key-aware object redaction.

/// What a name says about its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NameKind {
    /// Not a secret name.
    Plain,
    /// A secret (`token`, `api_key`, `client_secret`, ...).
    Secret,
    /// A password: even an all-digit value is masked.
    Password,
    /// `Authorization`: the value may start with a scheme word kept in clear.
    Authorization,
    /// `Cookie` / `Set-Cookie`: the whole header value is masked.
    Cookie,
}

/// Last words that make a name secret on their own (`db_password`, `x-auth`).
const SECRET_WORDS: &[&str] = &[
    "secret",
    "secrets",
    "token",
    "apikey",
    "apitoken",
    "accesskey",
    "secretkey",
    "privatekey",
    "accountkey",
    "auth",
    "credential",
    "credentials",
    "creds",
    "sig",
];
const PASSWORD_WORDS: &[&str] = &["password", "passwd", "passphrase", "pass", "pwd"];
/// Endings of a one-word name that count too (`dbpassword`, `authtoken`,
/// `clientsecret`, `xapikey`).
const SECRET_SUFFIXES: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "secretkey",
    "privatekey",
];
/// `<word> key` / `<word> keys` pairs that are secrets (`api_key`, `SecretAccessKey`,
/// `Ocp-Apim-Subscription-Key`); a bare `key` is not (`primary_key`, `sort_key`).
const KEY_QUALIFIERS: &[&str] = &[
    "api",
    "access",
    "secret",
    "private",
    "account",
    "master",
    "encryption",
    "signing",
    "subscription",
    "app",
    "auth",
    "shared",
    "storage",
    "webhook",
    "admin",
    "consumer",
    "client",
    "license",
    "service",
    "session",
];

/// Lower-case ASCII words of a name: split at `_`, `-`, `.`, spaces and camel-case humps
/// (`SecretAccessKey` → secret, access, key; `XAuthToken` → x, auth, token). At most
/// eight words are kept (the last ones).
fn name_words(name: &str) -> Vec<String> {
    let bytes = name.as_bytes();
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    for (i, &b) in bytes.iter().enumerate() {
        if !b.is_ascii_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            continue;
        }
        let hump = b.is_ascii_uppercase()
            && i > 0
            && (bytes[i - 1].is_ascii_lowercase()
                || (bytes[i - 1].is_ascii_uppercase()
                    && bytes.get(i + 1).is_some_and(u8::is_ascii_lowercase)));
        if hump && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        current.push(b.to_ascii_lowercase() as char);
    }
    if !current.is_empty() {
        words.push(current);
    }
    let skip = words.len().saturating_sub(8);
    words.split_off(skip)
}

/// What `name` says about its value (case- and separator-insensitive).
pub(super) fn name_kind(name: &str) -> NameKind {
    if name.is_empty() || name.len() > 64 {
        return NameKind::Plain;
    }
    let words = name_words(name);
    let Some(last) = words.last().map(String::as_str) else {
        return NameKind::Plain;
    };
    let before = words.len().checked_sub(2).map(|i| words[i].as_str());
    match last {
        "authorization" => return NameKind::Authorization,
        "cookie" | "cookies" => return NameKind::Cookie,
        _ => {}
    }
    if PASSWORD_WORDS.contains(&last) {
        return NameKind::Password;
    }
    if SECRET_WORDS.contains(&last) {
        return NameKind::Secret;
    }
    if matches!(last, "key" | "keys") && before.is_some_and(|w| KEY_QUALIFIERS.contains(&w)) {
        return NameKind::Secret;
    }
    // Rails' `secret_key_base`.
    if last == "base"
        && words.len() >= 3
        && words[words.len() - 3..words.len() - 1] == ["secret", "key"]
    {
        return NameKind::Secret;
    }
    if words.len() == 1 {
        if last.ends_with("password") || last.ends_with("passwd") {
            return NameKind::Password;
        }
        if SECRET_SUFFIXES.iter().any(|s| last.ends_with(s)) {
            return NameKind::Secret;
        }
    }
    NameKind::Plain
}

/// Whether a field or variable named `name` holds a secret.
pub fn is_secret_name(name: &str) -> bool {
    name_kind(name) != NameKind::Plain
}

/// Words a value of code can be without being a secret: types, keywords, literals.
const CODE_WORDS: &[&str] = &[
    "string",
    "str",
    "&str",
    "&'static",
    "number",
    "int",
    "integer",
    "float",
    "double",
    "bool",
    "boolean",
    "any",
    "unknown",
    "undefined",
    "null",
    "nil",
    "none",
    "void",
    "object",
    "bytes",
    "true",
    "false",
    "yes",
    "no",
    "on",
    "off",
    "required",
    "optional",
    "await",
    "new",
    "self",
    "this",
    "env",
    "process",
    "function",
    "lambda",
    "fn",
    "const",
    "let",
    "var",
    "return",
];

/// Pieces of text that mark a value as a placeholder (`your-api-key-here`,
/// `<token>`, `xxxx`, `changeme`, `sk-...`).
const PLACEHOLDER_MARKS: &[&str] = &[
    "your",
    "example",
    "placeholder",
    "changeme",
    "change_me",
    "change-me",
    "replace",
    "dummy",
    "redacted",
    "xxxx",
    "***",
    "...",
    "…",
    "<",
    ">",
    "fake",
    "sample",
    "insert",
    "todo",
    "fixme",
];
/// Whole values that are placeholders.
const PLACEHOLDER_VALUES: &[&str] = &[
    "secret", "password", "passwd", "pass", "token", "apikey", "api_key", "key", "changeit",
    "test", "n/a", "na", "tbd", "foo", "bar", "foobar", "-", "none", "null", "nil",
];

/// Whether `value` is a stand-in rather than a secret: placeholder words, one repeated
/// character, a bare secret word, or the name it is assigned to.
pub(super) fn is_placeholder(value: &str, name: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    if PLACEHOLDER_MARKS.iter().any(|m| lower.contains(m)) || PLACEHOLDER_VALUES.contains(&&*lower)
    {
        return true;
    }
    let mut bytes = value.bytes();
    if let Some(first) = bytes.next()
        && value.len() >= 3
        && bytes.all(|b| b == first)
    {
        return true;
    }
    !name.is_empty() && name_words(value) == name_words(name)
}

/// Whether `value` (unquoted) refers to something else rather than being a value:
/// `$VAR`, `${VAR}`, `%VAR%`, `{{ var }}`, `<token>`, a call `getKey()`, an index,
/// a dotted path `process.env.KEY`, a type or keyword (`string`, `None`), or a variable
/// named like a secret (`userPassword`, `API_KEY`).
pub(super) fn is_reference(value: &str) -> bool {
    let Some(&first) = value.as_bytes().first() else {
        return true;
    };
    if matches!(
        first,
        b'$' | b'%' | b'{' | b'<' | b'[' | b'(' | b'@' | b'&' | b'*' | b'#' | b'!'
    ) {
        return true;
    }
    if value.contains(['(', '[']) {
        return true;
    }
    if CODE_WORDS.iter().any(|w| value.eq_ignore_ascii_case(w)) {
        return true;
    }
    let is_ident = |s: &str| {
        let mut b = s.bytes();
        b.next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b'$')
            && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'$')
    };
    // `process.env.KEY`, `self.token`, `config.apiKey` (every segment an identifier,
    // the first one starting with a letter: not `v1.2`).
    if value.contains('.') && value.split('.').all(is_ident) {
        return true;
    }
    is_ident(value) && is_secret_name(value)
}

/// Whether an unquoted value that is not a reference looks like a secret in code or
/// prose (`password: hunter2` does, `password: string` and `token: the` do not).
pub(super) fn bare_value_is_secret(value: &str) -> bool {
    let bytes = value.as_bytes();
    let ident_like = bytes
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b == b'_');
    if !ident_like {
        // Symbols inside: a secret unless it is a path or a URL.
        return !(value.starts_with(['/', '~', '.']) || value.contains("://"));
    }
    let has_digit = bytes.iter().any(u8::is_ascii_digit);
    let has_letter = bytes.iter().any(u8::is_ascii_alphabetic);
    has_letter && (has_digit || value.len() >= 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_in_every_spelling() {
        for name in [
            "password",
            "DB_PASSWORD",
            "passwd",
            "api_key",
            "apiKey",
            "API-KEY",
            "x-api-key",
            "X-Auth-Token",
            "X-Auth",
            "SecretAccessKey",
            "aws_secret_access_key",
            "AccountKey",
            "SharedAccessKey",
            "client_secret",
            "GITHUB_TOKEN",
            "private_key",
            "access_key",
            "credentials",
            "Ocp-Apim-Subscription-Key",
            "SECRET_KEY",
            "secret_key_base",
            "sig",
            "authToken",
            "dbpassword",
            "--password",
            "spring.datasource.password",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        assert_eq!(name_kind("Authorization"), NameKind::Authorization);
        assert_eq!(name_kind("proxy-authorization"), NameKind::Authorization);
        assert_eq!(name_kind("Cookie"), NameKind::Cookie);
        assert_eq!(name_kind("Set-Cookie"), NameKind::Cookie);
    }

    #[test]
    fn ordinary_names() {
        for name in [
            "max_tokens",
            "token_count",
            "tokens",
            "primary_key",
            "sort_key",
            "key",
            "author",
            "oauth",
            "passwordless",
            "password_hash",
            "token_type",
            "private_key_id",
            "sessionID",
            "command",
            "filePath",
            "description",
            "bypass",
            "time",
            "https",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn references_and_placeholders() {
        for value in [
            "process.env.API_KEY",
            "getKey()",
            "$TOKEN",
            "${TOKEN}",
            "string",
            "None",
            "userPassword",
            "API_KEY",
            "self.token",
        ] {
            assert!(is_reference(value), "{value}");
        }
        for value in ["s3cr3t", "hunter2", "abc-def-123", "AKIA1234"] {
            assert!(!is_reference(value), "{value}");
        }
        for value in [
            "your-api-key-here",
            "<token>",
            "xxxxxxxx",
            "changeme",
            "sk-...",
            "********",
        ] {
            assert!(is_placeholder(value, "API_KEY"), "{value}");
        }
        assert!(is_placeholder("apiKey", "API_KEY"));
        assert!(!is_placeholder("q8Zr2LmPx0", "API_KEY"));
    }
}
