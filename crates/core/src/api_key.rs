//! The OpenSync API key. It is a bearer secret, so the type that holds it never shows it:
//! `Display` and `Debug` both print the masked form (`osk_abcd…wxyz`), and the raw value
//! is only reachable through [`ApiKey::expose`], for the `Authorization` header and the
//! credentials file.

use std::fmt;

/// Every OpenSync key starts with this.
pub const PREFIX: &str = "osk_";
/// Keys from the dashboard carry 32 characters after the prefix; accept a range around it.
const MIN_BODY: usize = 16;
const MAX_BODY: usize = 256;
/// Characters shown at each end of the body in the masked form.
const SHOWN: usize = 4;

/// A syntactically valid API key.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

/// Why a string is not an API key. Messages never include the key itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the API key is empty")]
    Empty,
    #[error(
        "an OpenSync API key starts with \"osk_\" (generate one in the dashboard under Settings)"
    )]
    MissingPrefix,
    #[error("the API key contains whitespace or non-printable characters")]
    BadCharacters,
    #[error(
        "the API key is too short ({0} characters after \"osk_\"; expected at least {MIN_BODY})"
    )]
    TooShort(usize),
    #[error("the API key is too long ({0} characters after \"osk_\"; expected at most {MAX_BODY})")]
    TooLong(usize),
}

impl ApiKey {
    /// Validates a key, ignoring whitespace around it (a pasted trailing newline).
    pub fn parse(input: &str) -> Result<Self, KeyError> {
        let key = input.trim();
        if key.is_empty() {
            return Err(KeyError::Empty);
        }
        if key.chars().any(|c| !c.is_ascii_graphic()) {
            return Err(KeyError::BadCharacters);
        }
        let body = key.strip_prefix(PREFIX).ok_or(KeyError::MissingPrefix)?;
        match body.len() {
            n if n < MIN_BODY => Err(KeyError::TooShort(n)),
            n if n > MAX_BODY => Err(KeyError::TooLong(n)),
            _ => Ok(Self(key.to_owned())),
        }
    }

    /// The secret itself, for the `Authorization` header and the credentials file only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `osk_abcd…wxyz`: enough to tell keys apart, far too little to use one.
    pub fn masked(&self) -> String {
        let body = &self.0[PREFIX.len()..];
        format!("{PREFIX}{}…{}", &body[..SHOWN], &body[body.len() - SHOWN..])
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({})", self.masked())
    }
}

impl std::str::FromStr for ApiKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GOOD: &str = "osk_AbCdEfGhIjKlMnOpQrStUvWxYz012345";

    #[test]
    fn table() {
        let body16 = "a".repeat(16);
        let body256 = "a".repeat(256);
        let accepted = [
            GOOD.to_owned(),
            format!("osk_{body16}"),
            format!("osk_{body256}"),
            format!("  {GOOD}\n"),
            "osk_a-b_c-d_e-f_g-h_".to_owned(),
        ];
        for input in &accepted {
            assert!(ApiKey::parse(input).is_ok(), "{input:?}");
        }
        let rejected: [(&str, KeyError); 8] = [
            ("", KeyError::Empty),
            (" \n", KeyError::Empty),
            ("sk_live_0123456789abcdef", KeyError::MissingPrefix),
            ("OSK_0123456789abcdef0", KeyError::MissingPrefix),
            ("osk_0123456789 abcdef", KeyError::BadCharacters),
            ("osk_0123456789\tabcdef", KeyError::BadCharacters),
            ("osk_0123456789abcdé", KeyError::BadCharacters),
            ("osk_short", KeyError::TooShort(5)),
        ];
        for (input, want) in rejected {
            assert_eq!(ApiKey::parse(input), Err(want), "{input:?}");
        }
        assert_eq!(
            ApiKey::parse(&format!("osk_{}", "a".repeat(257))),
            Err(KeyError::TooLong(257))
        );
    }

    #[test]
    fn masked_everywhere() {
        let key = ApiKey::parse(GOOD).unwrap();
        assert_eq!(key.masked(), "osk_AbCd…2345");
        assert_eq!(key.to_string(), "osk_AbCd…2345");
        assert_eq!(format!("{key:?}"), "ApiKey(osk_AbCd…2345)");
        assert_eq!(key.expose(), GOOD);
    }

    proptest! {
        #[test]
        fn masked_form_never_reveals_the_key(body in "[A-Za-z0-9_-]{16,64}") {
            let raw = format!("osk_{body}");
            let key = ApiKey::parse(&raw).unwrap();
            let shown = [key.masked(), key.to_string(), format!("{key:?}")];
            for s in shown {
                prop_assert!(!s.contains(&raw));
                // At most 8 of the secret's characters are ever visible.
                prop_assert!(s.chars().filter(|c| c.is_ascii_alphanumeric()).count() <= 3 + 8 + 6);
            }
        }

        #[test]
        fn errors_never_echo_the_key(body in "\\PC{6,300}") {
            let secret = body.trim();
            if let (Err(e), true) = (ApiKey::parse(&format!("osk_{body}")), secret.len() >= 6) {
                prop_assert!(!e.to_string().contains(secret));
            }
        }
    }
}
