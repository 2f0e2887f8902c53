//! The base URL every request goes to. Users paste the dashboard's deployment URL
//! (`https://NAME.convex.cloud`), the HTTP-actions URL (`https://NAME.convex.site`), a
//! self-hosted server, or a loopback server in tests; this module turns any of those into
//! one canonical base, or explains why it cannot.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

const CONVEX_CLOUD: &str = ".convex.cloud";
const CONVEX_SITE: &str = ".convex.site";

/// A normalised base URL for the OpenSync HTTP API: scheme, lower-case host, optional
/// port and path prefix, never a trailing slash.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SiteUrl {
    url: String,
    host_start: usize,
    host_end: usize,
}

/// Why a URL was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("the URL is empty")]
    Empty,
    /// Never echoed: it would print the secret.
    #[error(
        "that looks like an API key or other secret, not a URL: the URL is your deployment's \
         address (https://NAME.convex.cloud); the key goes in the API key field"
    )]
    LooksLikeASecret,
    #[error("\"{0}\" is not a URL: it must start with https:// (did you mean \"https://{0}\"?)")]
    MissingScheme(String),
    #[error("unsupported scheme \"{0}\": use https://")]
    UnsupportedScheme(String),
    #[error(
        "http:// is only allowed for a server on this machine (localhost, 127.0.0.1, [::1]); \
         use https://{0}"
    )]
    InsecureRemote(String),
    #[error("the URL has no host")]
    MissingHost,
    #[error("invalid host \"{0}\"")]
    InvalidHost(String),
    #[error("invalid port \"{0}\"")]
    InvalidPort(String),
    #[error("the URL must not contain a user name or password")]
    Credentials,
    #[error("the URL must not contain a query (?...) or fragment (#...)")]
    QueryOrFragment,
    #[error("the URL contains whitespace or control characters")]
    Whitespace,
    #[error(
        "a Convex deployment URL has no path: use https://{0} (the part before the first / after the host)"
    )]
    ConvexPath(String),
}

impl SiteUrl {
    /// Normalises what a user typed. See the module docs for the rules.
    pub fn parse(input: &str) -> Result<Self, UrlError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(UrlError::Empty);
        }
        // Before anything that echoes the input: a key pasted into the URL field. (A
        // password in `user:pw@` is refused below, without echoing it.)
        if !input.contains('@') && crate::redact::redact(input) != input {
            return Err(UrlError::LooksLikeASecret);
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UrlError::Whitespace);
        }
        let Some((scheme, rest)) = input.split_once("://") else {
            return Err(UrlError::MissingScheme(input.to_owned()));
        };
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "https" && scheme != "http" {
            return Err(UrlError::UnsupportedScheme(scheme));
        }
        if rest.contains(['?', '#']) {
            return Err(UrlError::QueryOrFragment);
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(UrlError::Credentials);
        }
        let (host, port) = split_host_port(authority)?;
        let host = host.to_ascii_lowercase();
        let path = path.trim_end_matches('/');

        let host = if let Some(name) = host.strip_suffix(CONVEX_CLOUD) {
            format!("{name}{CONVEX_SITE}")
        } else {
            host
        };
        if host.ends_with(CONVEX_SITE) && !path.is_empty() {
            return Err(UrlError::ConvexPath(host));
        }
        if scheme == "http" && !is_loopback(&host) {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            return Err(UrlError::InsecureRemote(format!("{host}{port}{path}")));
        }

        let mut url = format!("{scheme}://");
        let host_start = url.len();
        url.push_str(&host);
        let host_end = url.len();
        if let Some(port) = port {
            url.push_str(&format!(":{port}"));
        }
        url.push_str(path);
        Ok(Self {
            url,
            host_start,
            host_end,
        })
    }

    /// The base URL, e.g. `https://name.convex.site`.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The host (`name.convex.site`, `127.0.0.1`, `[::1]`), for messages.
    pub fn host(&self) -> &str {
        &self.url[self.host_start..self.host_end]
    }

    /// The URL of an API route such as `/sync/session`.
    pub fn join(&self, route: &str) -> String {
        format!("{}{route}", self.url)
    }

    /// Whether this is a server on this machine.
    pub fn is_loopback(&self) -> bool {
        is_loopback(self.host())
    }
}

impl fmt::Display for SiteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

impl fmt::Debug for SiteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SiteUrl({})", self.url)
    }
}

impl std::str::FromStr for SiteUrl {
    type Err = UrlError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), UrlError> {
    if authority.is_empty() {
        return Err(UrlError::MissingHost);
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| UrlError::InvalidHost(authority.to_owned()))?;
        let (v6, after) = (&rest[..end], &rest[end + 1..]);
        if v6.parse::<Ipv6Addr>().is_err() {
            return Err(UrlError::InvalidHost(authority.to_owned()));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| UrlError::InvalidHost(authority.to_owned()))?,
            ),
        };
        (&authority[..end + 2], port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(UrlError::MissingHost);
    }
    if !host.starts_with('[') && !is_valid_host_name(host) {
        return Err(UrlError::InvalidHost(host.to_owned()));
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            Some(p)
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u16>().ok())
                .filter(|&p| p != 0)
                .ok_or_else(|| UrlError::InvalidPort(p.to_owned()))?,
        ),
    };
    Ok((host, port))
}

/// DNS names and IPv4 literals: dot-separated labels of ASCII letters, digits and
/// hyphens, not starting or ending with a hyphen.
fn is_valid_host_name(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn is_loopback(host: &str) -> bool {
    if host == "localhost" {
        return true;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
    }
    host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepted_forms() {
        let table = [
            ("https://x.convex.cloud", "https://x.convex.site"),
            ("https://x.convex.cloud/", "https://x.convex.site"),
            ("https://x.convex.site", "https://x.convex.site"),
            ("https://x.convex.site//", "https://x.convex.site"),
            ("  https://X.Convex.Cloud  ", "https://x.convex.site"),
            (
                "HTTPS://your-project-123.convex.cloud",
                "https://your-project-123.convex.site",
            ),
            ("https://sync.example.com", "https://sync.example.com"),
            ("https://sync.example.com/", "https://sync.example.com"),
            (
                "https://sync.example.com:8443/opensync/",
                "https://sync.example.com:8443/opensync",
            ),
            ("http://127.0.0.1:3210", "http://127.0.0.1:3210"),
            ("http://127.8.9.10:3210/", "http://127.8.9.10:3210"),
            ("http://localhost:7420", "http://localhost:7420"),
            ("http://LOCALHOST", "http://localhost"),
            ("http://[::1]:7420", "http://[::1]:7420"),
            ("https://[2001:db8::1]:443", "https://[2001:db8::1]:443"),
        ];
        for (input, want) in table {
            let got = SiteUrl::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(got.as_str(), want, "{input}");
        }
    }

    #[test]
    fn rejected_forms_say_why() {
        let table: &[(&str, UrlError)] = &[
            ("", UrlError::Empty),
            ("osk_0123456789abcdefghij", UrlError::LooksLikeASecret),
            (
                "https://x.convex.cloud/osk_0123456789abcdefghij",
                UrlError::LooksLikeASecret,
            ),
            ("   ", UrlError::Empty),
            (
                "x.convex.cloud",
                UrlError::MissingScheme("x.convex.cloud".into()),
            ),
            (
                "ftp://x.convex.cloud",
                UrlError::UnsupportedScheme("ftp".into()),
            ),
            (
                "http://x.convex.cloud",
                UrlError::InsecureRemote("x.convex.site".into()),
            ),
            (
                "http://example.com:80/a",
                UrlError::InsecureRemote("example.com:80/a".into()),
            ),
            (
                "http://128.0.0.1",
                UrlError::InsecureRemote("128.0.0.1".into()),
            ),
            ("http://[::2]", UrlError::InsecureRemote("[::2]".into())),
            ("https://", UrlError::MissingHost),
            ("https:///path", UrlError::MissingHost),
            ("https://:443", UrlError::MissingHost),
            ("https://a b.com", UrlError::Whitespace),
            (
                "https://exa_mple.com",
                UrlError::InvalidHost("exa_mple.com".into()),
            ),
            ("https://-x.com", UrlError::InvalidHost("-x.com".into())),
            ("https://x..com", UrlError::InvalidHost("x..com".into())),
            ("https://[::zz]", UrlError::InvalidHost("[::zz]".into())),
            ("https://x.com:99999", UrlError::InvalidPort("99999".into())),
            ("https://x.com:0", UrlError::InvalidPort("0".into())),
            ("https://x.com:+80", UrlError::InvalidPort("+80".into())),
            ("https://x.com:", UrlError::InvalidPort("".into())),
            ("https://user:pw@x.com", UrlError::Credentials),
            ("https://x.com/?a=1", UrlError::QueryOrFragment),
            ("https://x.com#top", UrlError::QueryOrFragment),
            (
                "https://x.convex.cloud/api",
                UrlError::ConvexPath("x.convex.site".into()),
            ),
        ];
        for (input, want) in table {
            assert_eq!(SiteUrl::parse(input).as_ref(), Err(want), "{input:?}");
        }
    }

    #[test]
    fn messages_are_actionable() {
        let e = SiteUrl::parse("http://x.convex.cloud").unwrap_err();
        assert_eq!(
            e.to_string(),
            "http:// is only allowed for a server on this machine (localhost, 127.0.0.1, [::1]); use https://x.convex.site"
        );
    }

    #[test]
    fn join_and_host() {
        let u = SiteUrl::parse("https://x.convex.cloud/").unwrap();
        assert_eq!(
            u.join("/sync/session"),
            "https://x.convex.site/sync/session"
        );
        assert_eq!(u.host(), "x.convex.site");
        let u = SiteUrl::parse("http://[::1]:9/").unwrap();
        assert_eq!(u.host(), "[::1]");
        assert!(u.is_loopback());
    }

    proptest! {
        /// Normalising is idempotent, never panics, never leaves a trailing slash, and the
        /// result is a URL the `url` crate parses to the same host and port.
        #[test]
        fn normalised_urls_are_canonical(input in "\\PC{0,40}") {
            if let Ok(u) = SiteUrl::parse(&input) {
                prop_assert_eq!(SiteUrl::parse(u.as_str()).unwrap(), u.clone());
                prop_assert!(!u.as_str().ends_with('/'));
                let parsed = url::Url::parse(u.as_str()).unwrap();
                prop_assert_eq!(parsed.host_str().unwrap(), u.host());
            }
        }

        #[test]
        fn generated_hosts_round_trip(
            name in "[a-z][a-z0-9-]{0,20}[a-z0-9]",
            cloud in any::<bool>(),
            slash in any::<bool>(),
        ) {
            let suffix = if cloud { "convex.cloud" } else { "convex.site" };
            let input = format!("https://{name}.{suffix}{}", if slash { "/" } else { "" });
            let u = SiteUrl::parse(&input).unwrap();
            prop_assert_eq!(u.as_str(), format!("https://{name}.convex.site"));
        }

        #[test]
        fn http_is_accepted_exactly_for_loopback(a in 0u8..=255, b in 0u8..=255, c in 0u8..=255, d in 1u8..=255, port in 1u16..) {
            let input = format!("http://{a}.{b}.{c}.{d}:{port}");
            let result = SiteUrl::parse(&input);
            if a == 127 {
                prop_assert_eq!(result.unwrap().to_string(), input);
            } else {
                let is_insecure = matches!(result, Err(UrlError::InsecureRemote(_)));
                prop_assert!(is_insecure);
            }
        }
    }
}
