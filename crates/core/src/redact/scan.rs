//! The scanner: one pass over the text, left to right, deciding at each byte whether a
//! secret starts there (a prefixed token, a JWT, a private key body, a password in a URL,
//! a value assigned to a secret name, an `Authorization` header, a credential passed to
//! `mysql -p`, `curl -u` or `--token`). What it masks it skips; what it does not mask it
//! moves past one byte at a time.
//!
//! Linear by construction: every look-ahead is either bounded (names, flags, exact-length
//! tokens), or starts only where the previous token-like run ended (open-ended tokens,
//! JWTs), or goes through a [`Seek`] that remembers how far it already looked (the end of
//! a value), so no byte is looked at more than a fixed number of times whatever the input
//! (see the proptest in [`super`] with long runs of `=`, `:`, `-` and `eyJ`).

use super::MASK;
use super::names::{self, NameKind};
use super::rules::{self, TOKEN_RULES};

/// Returns `text` with every secret replaced by [`MASK`], or `None` when nothing was.
pub(super) fn mask(text: &str) -> Option<String> {
    let mut scanner = Scanner::new(text);
    scanner.run();
    scanner.finish()
}

/// A byte a token is made of: a token must not start right after one.
fn is_tokenish(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

/// Where an unquoted value ends.
fn is_bare_stop(b: u8) -> bool {
    b.is_ascii_whitespace()
        || matches!(
            b,
            b'"' | b'\'' | b'`' | b',' | b';' | b'&' | b'}' | b')' | b']' | b'\\'
        )
}

/// Where a header value ends (the line, or the quotes around it).
fn is_line_stop(b: u8) -> bool {
    matches!(b, b'\n' | b'\r' | b'"' | b'\'' | b'`' | b'\\')
}

/// Authorization schemes whose credentials follow a space.
const AUTH_SCHEMES: &[&str] = &[
    "bearer",
    "basic",
    "token",
    "digest",
    "bot",
    "negotiate",
    "ntlm",
    "apikey",
    "api-key",
    "key",
    "sso-key",
    "ssws",
    "splunk",
    "oauth",
    "hmac",
    "aws4-hmac-sha256",
];

/// A remembered forward search: no stop byte lies in `from..at`.
#[derive(Debug, Default)]
struct Seek {
    from: usize,
    at: usize,
    valid: bool,
}

impl Seek {
    /// The first stop byte at or after `from` (or the end).
    fn find(&mut self, bytes: &[u8], from: usize, stop: fn(u8) -> bool) -> usize {
        if self.valid && from >= self.from && from <= self.at {
            return self.at;
        }
        let at = bytes[from..]
            .iter()
            .position(|&b| stop(b))
            .map_or(bytes.len(), |p| from + p);
        *self = Self {
            from,
            at,
            valid: true,
        };
        at
    }
}

/// A range to mask.
#[derive(Debug, Clone, Copy)]
struct Hit {
    from: usize,
    to: usize,
}

/// How a value was written.
#[derive(Debug, Clone, Copy)]
struct ValueSpan {
    start: usize,
    end: usize,
    quoted: bool,
}

#[derive(Debug)]
struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    out: String,
    /// Bytes of `text` already in `out`.
    copied: usize,
    line_start: usize,
    /// Where the last `mysql`/`mariadb`, `curl`, `sshpass` and `redis-cli` started
    /// (their flags carry passwords).
    mysql_at: Option<usize>,
    curl_at: Option<usize>,
    sshpass_at: Option<usize>,
    redis_at: Option<usize>,
    double_quote: Seek,
    single_quote: Seek,
    backtick: Seek,
    bare: Seek,
    line: Seek,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            bytes: text.as_bytes(),
            out: String::new(),
            copied: 0,
            line_start: 0,
            mysql_at: None,
            curl_at: None,
            sshpass_at: None,
            redis_at: None,
            double_quote: Seek::default(),
            single_quote: Seek::default(),
            backtick: Seek::default(),
            bare: Seek::default(),
            line: Seek::default(),
        }
    }

    fn run(&mut self) {
        let bytes = self.bytes;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            let token_start = i == 0 || !is_tokenish(bytes[i - 1]);
            let hit = match b {
                b'\n' => {
                    self.line_start = i + 1;
                    None
                }
                b'=' => self.assignment(i),
                b':' if bytes[i + 1..].starts_with(b"//") => self.url_password(i),
                b':' => self.assignment(i),
                b'-' => self.dash(i),
                _ if token_start => self.word(i),
                b'0'..=b'9' if !bytes[i - 1].is_ascii_digit() => self.telegram(i),
                _ => None,
            };
            match hit {
                Some(hit) => {
                    self.replace(hit);
                    i = hit.to.max(i + 1);
                }
                None => i += 1,
            }
        }
    }

    fn replace(&mut self, hit: Hit) {
        if self.out.capacity() == 0 {
            self.out.reserve(self.text.len());
        }
        self.out.push_str(&self.text[self.copied..hit.from]);
        self.out.push_str(MASK);
        self.copied = hit.to;
    }

    fn finish(mut self) -> Option<String> {
        if self.copied == 0 && self.out.is_empty() {
            return None;
        }
        self.out.push_str(&self.text[self.copied..]);
        Some(self.out)
    }

    fn on_line(&self, command: Option<usize>) -> bool {
        command.is_some_and(|at| at >= self.line_start)
    }

    /// At the start of a word: a command whose flags matter, an auth scheme, a token.
    fn word(&mut self, i: usize) -> Option<Hit> {
        let bytes = self.bytes;
        let rest = &bytes[i..];
        let b = bytes[i];
        match b {
            b'm' if rest.starts_with(b"mysql") || rest.starts_with(b"mariadb") => {
                self.mysql_at = Some(i);
            }
            b'c' if rest.starts_with(b"curl") => self.curl_at = Some(i),
            b's' if rest.starts_with(b"sshpass") => self.sshpass_at = Some(i),
            b'r' if rest.starts_with(b"redis-cli") => self.redis_at = Some(i),
            _ => {}
        }
        if b == b's'
            && rest.starts_with(b"set ")
            && let Some(hit) = self.set_command(i + 4)
        {
            return Some(hit);
        }
        if (b | 0x20) == b'b'
            && let Some(hit) = self.auth_scheme(i)
        {
            return Some(hit);
        }
        if rules::FIRST_BYTES[usize::from(b)] {
            for &r in rules::rules_starting_with(b) {
                let rule = &TOKEN_RULES[usize::from(r)];
                if let Some(end) = rules::match_rule(rule, bytes, i) {
                    let from = if rule.keep_prefix {
                        i + rule.prefix.len()
                    } else {
                        i
                    };
                    return Some(Hit { from, to: end });
                }
            }
        }
        if b == b'e'
            && let Some(hit) = jwt(bytes, i)
        {
            return Some(hit);
        }
        if b.is_ascii_digit()
            && let Some(hit) = self.telegram(i)
        {
            return Some(hit);
        }
        azure_client_secret(bytes, i)
            .or_else(|| mailchimp(bytes, i))
            .or_else(|| terraform(bytes, i))
            .map(|to| Hit { from: i, to })
    }

    /// `… set <secret name> <value>` (`aws configure set aws_secret_access_key …`).
    fn set_command(&mut self, at: usize) -> Option<Hit> {
        let bytes = self.bytes;
        let ns = skip_blanks(bytes, at);
        let mut ne = ns;
        while ne < bytes.len()
            && ne - ns <= 64
            && (bytes[ne].is_ascii_alphanumeric() || matches!(bytes[ne], b'_' | b'.' | b'-'))
        {
            ne += 1;
        }
        if ne == ns || ne - ns > 64 || bytes.get(ne) != Some(&b' ') {
            return None;
        }
        let name = &self.text[ns..ne];
        let kind = names::name_kind(name);
        if kind == NameKind::Plain {
            return None;
        }
        let span = self.value_at(skip_blanks(bytes, ne))?;
        self.judge(span, name, kind, true)
    }

    /// `Bearer <token>` / `Basic <base64>` anywhere (any case).
    fn auth_scheme(&self, i: usize) -> Option<Hit> {
        let bytes = self.bytes;
        let word_len = if bytes[i..].len() >= 6 && bytes[i..i + 6].eq_ignore_ascii_case(b"bearer") {
            6
        } else if bytes[i..].len() >= 5 && bytes[i..i + 5].eq_ignore_ascii_case(b"basic") {
            5
        } else {
            return None;
        };
        let mut t = i + word_len;
        let spaces = t;
        while t < bytes.len() && t - spaces < 4 && matches!(bytes[t], b' ' | b'\t') {
            t += 1;
        }
        if t == spaces {
            return None;
        }
        let basic = word_len == 5;
        let mut end = t;
        while end < bytes.len()
            && (bytes[end].is_ascii_alphanumeric()
                || matches!(bytes[end], b'+' | b'/' | b'=')
                || (!basic && matches!(bytes[end], b'.' | b'_' | b'~' | b'-')))
        {
            end += 1;
        }
        let token = &bytes[t..end];
        if token.len() < 8 || bytes.get(end).is_some_and(|&b| is_tokenish(b)) {
            return None;
        }
        let has_digit = token.iter().any(u8::is_ascii_digit);
        let inner_upper = token[1..].iter().any(u8::is_ascii_uppercase);
        let has_lower = token.iter().any(u8::is_ascii_lowercase);
        let has_symbol = token.iter().any(|b| !b.is_ascii_alphanumeric());
        let random = if basic {
            token.len().is_multiple_of(4) && (has_digit || has_symbol || (inner_upper && has_lower))
        } else {
            has_digit || has_symbol || (token.len() >= 20 && inner_upper && has_lower)
        };
        random.then_some(Hit { from: t, to: end })
    }

    /// `123456789:AA...` (a Telegram bot token), also right after `bot`.
    fn telegram(&self, i: usize) -> Option<Hit> {
        let bytes = self.bytes;
        let mut d = i;
        while d < bytes.len() && d - i <= 16 && bytes[d].is_ascii_digit() {
            d += 1;
        }
        if !(5..=16).contains(&(d - i))
            || bytes.get(d) != Some(&b':')
            || bytes.get(d + 1) != Some(&b'A')
        {
            return None;
        }
        let mut end = d + 1;
        while end < bytes.len() && end - d <= 41 && rules::Body::WordDash.allows(bytes[end]) {
            end += 1;
        }
        (30..=40)
            .contains(&(end - d - 1))
            .then_some(Hit { from: i, to: end })
    }

    /// At `-`: a private key block, or a command-line flag carrying a credential.
    fn dash(&mut self, i: usize) -> Option<Hit> {
        let bytes = self.bytes;
        if bytes[i..].starts_with(b"-----BEGIN ") {
            return pem_body(bytes, i);
        }
        let after_space = i == 0 || matches!(bytes[i - 1], b' ' | b'\t' | b'\n' | b'"' | b'\'');
        if !after_space {
            return None;
        }
        match bytes.get(i + 1) {
            Some(b'-') => self.long_flag(i),
            Some(&c @ (b'p' | b'u' | b'a')) => self.short_flag(i, c),
            _ => None,
        }
    }

    /// `--token X`, `--password X`, and curl's `--user name:password`.
    fn long_flag(&mut self, i: usize) -> Option<Hit> {
        let bytes = self.bytes;
        let ns = i + 2;
        let mut ne = ns;
        while ne < bytes.len()
            && ne - ns <= 64
            && (bytes[ne].is_ascii_alphanumeric() || matches!(bytes[ne], b'_' | b'-'))
        {
            ne += 1;
        }
        if ne == ns || ne - ns > 64 {
            return None;
        }
        let name = &self.text[ns..ne];
        let next = bytes.get(ne).copied();
        if name == "user" && self.on_line(self.curl_at) && matches!(next, Some(b' ' | b'=')) {
            let v = skip_blanks(bytes, ne + 1);
            return self.user_password(v);
        }
        let kind = names::name_kind(name);
        if kind == NameKind::Plain || next != Some(b' ') {
            return None;
        }
        let v = skip_blanks(bytes, ne);
        if bytes.get(v) == Some(&b'-') {
            return None;
        }
        let span = self.value_at(v)?;
        self.judge(span, "", kind, true)
    }

    /// `mysql -pSECRET`, `sshpass -p SECRET`, `redis-cli -a SECRET`, `curl -u name:pw`.
    fn short_flag(&mut self, i: usize, flag: u8) -> Option<Hit> {
        let bytes = self.bytes;
        let attached = i + 2;
        let next = *bytes.get(attached)?;
        let spaced = next == b' ';
        if !spaced && (next.is_ascii_whitespace() || next == b'-') {
            return None;
        }
        let v = if spaced {
            skip_blanks(bytes, attached)
        } else {
            attached
        };
        if bytes.get(v).is_none_or(|&b| b == b'-') {
            return None;
        }
        match flag {
            b'p' if !spaced && self.on_line(self.mysql_at) => {}
            b'p' if self.on_line(self.sshpass_at) => {}
            b'a' if self.on_line(self.redis_at) => {}
            b'u' if self.on_line(self.curl_at) => return self.user_password(v),
            _ => return None,
        }
        let span = self.value_at(v)?;
        self.judge(span, "", NameKind::Password, true)
    }

    /// The password of a `name:password` value at `v`.
    fn user_password(&mut self, v: usize) -> Option<Hit> {
        let span = self.value_at(v)?;
        let value = &self.bytes[span.start..span.end];
        let colon = value.iter().position(|&b| b == b':')?;
        let span = ValueSpan {
            start: span.start + colon + 1,
            ..span
        };
        self.judge(span, "", NameKind::Password, true)
    }

    /// `scheme://user:password@host`: the password.
    fn url_password(&self, i: usize) -> Option<Hit> {
        let bytes = self.bytes;
        let authority = i + 3;
        let mut end = authority;
        while end < bytes.len()
            && !matches!(
                bytes[end],
                b'/' | b'?'
                    | b'#'
                    | b' '
                    | b'\n'
                    | b'\r'
                    | b'\t'
                    | b'"'
                    | b'\''
                    | b'<'
                    | b'>'
                    | b'\\'
                    | b'`'
            )
        {
            end += 1;
        }
        let auth = &bytes[authority..end];
        let at = auth.iter().rposition(|&b| b == b'@')?;
        let colon = auth[..at].iter().position(|&b| b == b':')?;
        let (start, stop) = (authority + colon + 1, authority + at);
        let password = &self.text[start..stop];
        let stand_in = password.is_empty()
            || password == MASK
            || password.starts_with(['$', '{', '<', '%', '['])
            || names::is_placeholder(password, "");
        (!stand_in).then_some(Hit {
            from: start,
            to: stop,
        })
    }

    /// At `=` or `:`: a value assigned to a secret name.
    fn assignment(&mut self, i: usize) -> Option<Hit> {
        let bytes = self.bytes;
        let next = bytes.get(i + 1).copied();
        let prev = i.checked_sub(1).map(|p| bytes[p]);
        let (sep_start, after) = if bytes[i] == b'=' {
            if next == Some(b'=') {
                return None;
            }
            match prev {
                Some(
                    b'=' | b'!' | b'<' | b'>' | b':' | b'+' | b'-' | b'*' | b'/' | b'%' | b'|'
                    | b'&' | b'^' | b'~',
                ) => return None,
                Some(b'?') => (i - 1, i + 1),
                _ if next == Some(b'>') => (i, i + 2),
                _ => (i, i + 1),
            }
        } else {
            if next == Some(b':') || prev == Some(b':') {
                return None;
            }
            (i, if next == Some(b'=') { i + 2 } else { i + 1 })
        };
        // The name: skip closing quotes, brackets and blanks, then name characters.
        let mut ne = sep_start;
        while ne > 0
            && sep_start - ne < 4
            && matches!(
                bytes[ne - 1],
                b' ' | b'\t' | b'"' | b'\'' | b'`' | b'\\' | b']'
            )
        {
            ne -= 1;
        }
        let mut ns = ne;
        while ns > 0
            && ne - ns <= 64
            && (bytes[ns - 1].is_ascii_alphanumeric()
                || matches!(bytes[ns - 1], b'_' | b'.' | b'-'))
        {
            ns -= 1;
        }
        if ns == ne || ne - ns > 64 {
            return None;
        }
        let name = &self.text[ns..ne];
        let kind = names::name_kind(name);
        if kind == NameKind::Plain {
            return None;
        }
        let env_style = bytes[i] == b'='
            && ne == sep_start
            && bytes.get(after).is_some_and(|b| !b.is_ascii_whitespace());
        let v = skip_blanks(bytes, after);
        if bytes.get(v).is_none_or(|&b| b == b'\n' || b == b'\r') {
            return None;
        }
        match kind {
            NameKind::Authorization | NameKind::Cookie => self.header_value(v, kind),
            _ => {
                let span = self.value_at(v)?;
                self.judge(span, name, kind, env_style)
            }
        }
    }

    /// The value starting at `v`: quoted (`"…"`, `'…'`, `` `…` ``, or JSON-escaped
    /// `\"…\"` inside text), or bare up to a delimiter. A quote not closed on its line
    /// is no value.
    fn value_at(&mut self, v: usize) -> Option<ValueSpan> {
        let bytes = self.bytes;
        let first = *bytes.get(v)?;
        // JSON text inside JSON text escapes its quotes once per level (`\"`, `\\\"`).
        let escapes = bytes[v..]
            .iter()
            .take(8)
            .take_while(|&&b| b == b'\\')
            .count();
        let (quote, start) = match bytes.get(v + escapes) {
            Some(&q @ (b'"' | b'\'')) if escapes > 0 => (q, v + escapes + 1),
            _ if matches!(first, b'"' | b'\'' | b'`') => (first, v + 1),
            _ => {
                let end = self.bare.find(bytes, v, is_bare_stop);
                return Some(ValueSpan {
                    start: v,
                    end,
                    quoted: false,
                });
            }
        };
        let seek = match quote {
            b'"' => &mut self.double_quote,
            b'\'' => &mut self.single_quote,
            _ => &mut self.backtick,
        };
        let stop: fn(u8) -> bool = match quote {
            b'"' => |b| b == b'"' || b == b'\n',
            b'\'' => |b| b == b'\'' || b == b'\n',
            _ => |b| b == b'`' || b == b'\n',
        };
        let close = seek.find(bytes, start, stop);
        if bytes.get(close) != Some(&quote) {
            return None;
        }
        let end = close.checked_sub(escapes).filter(|&e| e >= start)?;
        if !bytes[end..close].iter().all(|&b| b == b'\\') {
            return None;
        }
        Some(ValueSpan {
            start,
            end: end.max(start),
            quoted: true,
        })
    }

    /// Whether a value assigned to a secret name is a secret, as a hit.
    fn judge(&self, span: ValueSpan, name: &str, kind: NameKind, env_style: bool) -> Option<Hit> {
        let value = &self.text[span.start..span.end];
        if value.is_empty() || value.starts_with(MASK) || is_public_key(value) {
            return None;
        }
        let secret = if span.quoted {
            !is_template(value) && !names::is_placeholder(value, name)
        } else if names::is_reference(value) || names::is_placeholder(value, name) {
            false
        } else if value.bytes().all(|b| b.is_ascii_digit()) {
            kind == NameKind::Password
        } else {
            env_style || names::bare_value_is_secret(value)
        };
        secret.then_some(Hit {
            from: span.start,
            to: span.end,
        })
    }

    /// `Authorization: <scheme> <credentials>` and `Cookie: <pairs>`.
    fn header_value(&mut self, v: usize, kind: NameKind) -> Option<Hit> {
        let span = match self.bytes[v] {
            b'"' | b'\'' | b'`' | b'\\' => self.value_at(v)?,
            _ => ValueSpan {
                start: v,
                end: self.line.find(self.bytes, v, is_line_stop),
                quoted: false,
            },
        };
        let value = self.text[span.start..span.end].trim_end();
        let end = span.start + value.len();
        if value.is_empty() || value.starts_with(MASK) || value.starts_with(['$', '{', '<']) {
            return None;
        }
        if kind == NameKind::Cookie {
            return value.contains('=').then_some(Hit {
                from: span.start,
                to: end,
            });
        }
        match value.split_once([' ', '\t']) {
            Some((scheme, rest)) => {
                let known = AUTH_SCHEMES.iter().any(|s| scheme.eq_ignore_ascii_case(s));
                let rest = rest.trim_start();
                let from = end - rest.len();
                let stand_in = rest.is_empty()
                    || rest.starts_with(MASK)
                    || rest.starts_with(['$', '{', '<'])
                    || names::is_placeholder(rest, "");
                (known && !stand_in).then_some(Hit { from, to: end })
            }
            None => (value.len() >= 8 && !names::is_placeholder(value, "")).then_some(Hit {
                from: span.start,
                to: end,
            }),
        }
    }
}

/// Skips up to 16 spaces and tabs.
fn skip_blanks(bytes: &[u8], mut at: usize) -> usize {
    let from = at;
    while at < bytes.len() && at - from < 16 && matches!(bytes[at], b' ' | b'\t') {
        at += 1;
    }
    at
}

/// `${X}`, `{{ x }}`, `$(cmd)`, `<token>`, `%X%` inside quotes: not a literal.
fn is_template(value: &str) -> bool {
    value.starts_with("${")
        || value.starts_with("{{")
        || value.starts_with("$(")
        || value.starts_with("#{")
        || (value.starts_with('<') && value.ends_with('>'))
        || (value.starts_with('%') && value.ends_with('%') && value.len() > 2)
        || (value.starts_with('$')
            && value[1..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_'))
}

/// Publishable keys are public by design (Stripe's `pk_`, Mapbox's `pk.`).
fn is_public_key(value: &str) -> bool {
    value.starts_with("pk_live_") || value.starts_with("pk_test_") || value.starts_with("pk.")
}

/// `eyJ….eyJ….sig`: three or more dot-separated base64url segments.
fn jwt(bytes: &[u8], i: usize) -> Option<Hit> {
    if !bytes[i..].starts_with(b"eyJ") {
        return None;
    }
    let mut end = i;
    while end < bytes.len()
        && (bytes[end].is_ascii_alphanumeric() || matches!(bytes[end], b'_' | b'-' | b'.'))
    {
        end += 1;
    }
    while end > i && bytes[end - 1] == b'.' {
        end -= 1;
    }
    let mut segments = bytes[i..end].split(|&b| b == b'.');
    let header = segments.next()?;
    let payload = segments.next()?;
    let signature = segments.next();
    (header.len() >= 10 && payload.len() >= 10 && signature.is_some())
        .then_some(Hit { from: i, to: end })
}

/// A private key block's body: the base64 lines after `-----BEGIN … PRIVATE KEY-----`
/// (and its `Name: value` headers), up to the END line or the first line that is not
/// base64. The BEGIN and END lines stay; a block without its END line masks no more
/// than its body. Line breaks may be real or JSON-escaped (`\n`).
fn pem_body(bytes: &[u8], i: usize) -> Option<Hit> {
    let label_start = i + 11;
    let window = &bytes[label_start..bytes.len().min(label_start + 100)];
    let close = window.windows(5).position(|w| w == b"-----")?;
    let label = &window[..close];
    if label.contains(&b'\n') || !label.windows(11).any(|w| w == b"PRIVATE KEY") {
        return None;
    }
    let mut at = line_break(bytes, label_start + close + 5)?;
    // Encryption headers (`Proc-Type: 4,ENCRYPTED`, `DEK-Info: …`, `Version: …`) and the
    // blank line after them.
    for _ in 0..4 {
        let line_end = bytes[at..]
            .iter()
            .position(|&b| b == b'\n' || b == b'\\')
            .map_or(bytes.len(), |p| at + p);
        let line = &bytes[at..line_end];
        if line.first().is_some_and(u8::is_ascii_alphabetic)
            && line.contains(&b':')
            && line.len() < 200
        {
            at = line_break(bytes, line_end).unwrap_or(line_end);
        } else {
            break;
        }
    }
    if let Some(next) = line_break(bytes, at) {
        at = next;
    }
    let body_start = at;
    let mut body_end = at;
    loop {
        let mut end = at;
        while end < bytes.len()
            && (bytes[end].is_ascii_alphanumeric() || matches!(bytes[end], b'+' | b'/' | b'='))
        {
            end += 1;
        }
        // A body line is base64 from its start to its break (or the end of the text).
        let next = line_break(bytes, end);
        if end == at || (next.is_none() && end < bytes.len()) {
            break;
        }
        body_end = end;
        match next {
            Some(next) => at = next,
            None => break,
        }
    }
    (body_end > body_start).then_some(Hit {
        from: body_start,
        to: body_end,
    })
}

/// The position after a line break at `at` (`\n`, `\r\n`, or escaped `\n` / `\r\n`).
fn line_break(bytes: &[u8], at: usize) -> Option<usize> {
    let rest = &bytes[at.min(bytes.len())..];
    [&b"\r\n"[..], b"\n", b"\\r\\n", b"\\n"]
        .iter()
        .find(|brk| rest.starts_with(brk))
        .map(|brk| at + brk.len())
}

/// Azure AD client secrets: three characters, a digit, `Q~`, then 31-34 more.
fn azure_client_secret(bytes: &[u8], i: usize) -> Option<usize> {
    let head = bytes.get(i..i + 6)?;
    let secret_char = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'~' | b'.');
    if !(head[..3].iter().all(|&b| secret_char(b))
        && head[3].is_ascii_digit()
        && &head[4..] == b"Q~")
    {
        return None;
    }
    let mut end = i + 6;
    while end < bytes.len() && end - i <= 41 && (secret_char(bytes[end]) || bytes[end] == b'-') {
        end += 1;
    }
    (37..=40).contains(&(end - i)).then_some(end)
}

/// Mailchimp API keys: 32 hex digits, `-us`, a data-centre number.
fn mailchimp(bytes: &[u8], i: usize) -> Option<usize> {
    let hex = bytes.get(i..i + 32)?;
    if !hex
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        || !bytes[i + 32..].starts_with(b"-us")
    {
        return None;
    }
    let mut end = i + 35;
    while end < bytes.len() && end - i < 37 && bytes[end].is_ascii_digit() {
        end += 1;
    }
    (end > i + 35 && !bytes.get(end).is_some_and(u8::is_ascii_alphanumeric)).then_some(end)
}

/// Terraform Cloud tokens: 14 characters, `.atlasv1.`, 60-70 more.
fn terraform(bytes: &[u8], i: usize) -> Option<usize> {
    let head = bytes.get(i..i + 23)?;
    if !head[..14].iter().all(u8::is_ascii_alphanumeric) || &head[14..] != b".atlasv1." {
        return None;
    }
    let mut end = i + 23;
    while end < bytes.len() && end - i <= 94 && rules::Body::Dotted.allows(bytes[end]) {
        end += 1;
    }
    (end - i >= 83).then_some(end)
}
