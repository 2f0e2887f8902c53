//! The table of token formats recognised by their prefix, after gitleaks' rules
//! (`config/gitleaks.toml`), each as a prefix, the alphabet of what follows and its
//! length. A token is masked whole wherever it stands, whatever name it is assigned to.
//! Formats without a prefix of their own (AWS secret keys, Cloudflare tokens, ...) are
//! caught by the name they are assigned to instead (see [`super::names`]).

/// The characters a token's body is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Body {
    /// `[A-Za-z0-9]`
    Alnum,
    /// `[A-Za-z0-9_-]`
    WordDash,
    /// `[A-Za-z0-9_.=-]`
    Dotted,
    /// `[0-9a-fA-F]`
    Hex,
    /// `[0-9a-fA-F-]` (UUIDs and dashed hex)
    HexDash,
    /// `[a-z0-9]`
    LowerAlnum,
    /// `[A-Z0-9]`
    UpperAlnum,
    /// `[A-Z0-9-]`
    UpperAlnumDash,
    /// `[A-Za-z0-9+/=_-]` (base64 and base64url)
    Base64,
    /// Bech32's upper-case alphabet (age keys).
    Bech32Upper,
    /// `[A-Za-z0-9/_-]` (a URL path)
    UrlPath,
    /// `[a-z0-9$]` (Braintree's `access_token$production$...`)
    Dollar,
}

impl Body {
    pub(super) fn allows(self, b: u8) -> bool {
        match self {
            Self::Alnum => b.is_ascii_alphanumeric(),
            Self::WordDash => b.is_ascii_alphanumeric() || b == b'_' || b == b'-',
            Self::Dotted => b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'='),
            Self::Hex => b.is_ascii_hexdigit(),
            Self::HexDash => b.is_ascii_hexdigit() || b == b'-',
            Self::LowerAlnum => b.is_ascii_lowercase() || b.is_ascii_digit(),
            Self::UpperAlnum => b.is_ascii_uppercase() || b.is_ascii_digit(),
            Self::UpperAlnumDash => b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-',
            Self::Base64 => {
                b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'_' | b'-')
            }
            Self::Bech32Upper => b"QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L".contains(&b),
            Self::UrlPath => b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'),
            Self::Dollar => b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'$',
        }
    }
}

/// One token format.
#[derive(Debug, Clone, Copy)]
pub(super) struct TokenRule {
    pub prefix: &'static str,
    pub body: Body,
    /// Fewest body characters.
    pub min: u16,
    /// Most body characters (0: no limit). A bounded token must not run on into more
    /// letters or digits.
    pub max: u16,
    /// The body must hold a digit and a letter (for short prefixes that words share).
    pub strict: bool,
    /// The prefix stays in clear (a webhook URL's host): only the body is masked.
    pub keep_prefix: bool,
}

const fn open(prefix: &'static str, body: Body, min: u16) -> TokenRule {
    TokenRule {
        prefix,
        body,
        min,
        max: 0,
        strict: false,
        keep_prefix: false,
    }
}

const fn strict(prefix: &'static str, body: Body, min: u16, max: u16) -> TokenRule {
    TokenRule {
        prefix,
        body,
        min,
        max,
        strict: true,
        keep_prefix: false,
    }
}

const fn url(prefix: &'static str, min: u16) -> TokenRule {
    TokenRule {
        prefix,
        body: UrlPath,
        min,
        max: 0,
        strict: false,
        keep_prefix: true,
    }
}

use Body::*;

/// Every prefixed token format, grouped by family (the README lists the families).
pub(super) const TOKEN_RULES: &[TokenRule] = &[
    // AI providers.
    open("sk-ant-api03-", WordDash, 32),
    open("sk-ant-admin01-", WordDash, 32),
    open("sk-ant-oat01-", WordDash, 32),
    open("sk-ant-", WordDash, 32),
    open("sk-proj-", WordDash, 20),
    open("sk-svcacct-", WordDash, 20),
    open("sk-admin-", WordDash, 20),
    open("sk-or-v1-", Hex, 32),
    strict("sk-", Alnum, 20, 0),
    open("gsk_", Alnum, 40),
    open("xai-", Alnum, 40),
    open("pplx-", Alnum, 40),
    open("hf_", Alnum, 30),
    open("api_org_", Alnum, 30),
    strict("r8_", Alnum, 30, 40),
    open("lsv2_pt_", WordDash, 30),
    open("lsv2_sk_", WordDash, 30),
    open("tvly-", WordDash, 20),
    open("nvapi-", WordDash, 40),
    strict("fw_", Alnum, 20, 40),
    // OpenSync's own key.
    open("osk_", WordDash, 16),
    // Cloud providers.
    strict("AKIA", UpperAlnum, 16, 16),
    strict("ASIA", UpperAlnum, 16, 16),
    strict("ABIA", UpperAlnum, 16, 16),
    strict("ACCA", UpperAlnum, 16, 16),
    strict("A3T", UpperAlnum, 17, 17),
    open("AIza", WordDash, 30),
    open("GOCSPX-", WordDash, 24),
    open("ya29.", Dotted, 30),
    strict("dop_v1_", Hex, 64, 64),
    strict("doo_v1_", Hex, 64, 64),
    strict("dor_v1_", Hex, 64, 64),
    strict("LTAI", Alnum, 12, 30),
    open("HRKU-", WordDash, 40),
    open("fo1_", WordDash, 40),
    open("fm1r_", Base64, 64),
    open("fm1a_", Base64, 64),
    open("fm2_", Base64, 64),
    open("v1.0-", HexDash, 150),
    strict("dapi", Hex, 32, 32),
    strict("pul-", Hex, 40, 40),
    strict("sbp_", Hex, 40, 40),
    open("nfp_", Alnum, 30),
    open("rnd_", Alnum, 24),
    // Version control.
    open("ghp_", Alnum, 30),
    open("gho_", Alnum, 30),
    open("ghu_", Alnum, 30),
    open("ghs_", Alnum, 30),
    open("ghr_", Alnum, 30),
    open("github_pat_", WordDash, 40),
    open("glpat-", WordDash, 20),
    open("gldt-", WordDash, 20),
    open("glft-", WordDash, 20),
    open("glrt-", WordDash, 20),
    open("glsoat-", WordDash, 20),
    open("glffct-", WordDash, 20),
    open("glcbt-", WordDash, 20),
    open("glimt-", WordDash, 25),
    open("glagent-", WordDash, 50),
    open("gloas-", WordDash, 64),
    strict("glptt-", Hex, 40, 40),
    open("GR1348941", WordDash, 20),
    open("ATBB", Alnum, 28),
    open("ATATT3", Base64, 150),
    open("ATCTT3", Base64, 150),
    // Chat.
    open("xoxb-", WordDash, 10),
    open("xoxp-", WordDash, 10),
    open("xoxa-", WordDash, 10),
    open("xoxr-", WordDash, 10),
    open("xoxs-", WordDash, 10),
    open("xoxo-", WordDash, 10),
    open("xoxe-", WordDash, 10),
    open("xoxe.xoxp-", WordDash, 10),
    open("xoxe.xoxb-", WordDash, 10),
    open("xapp-", WordDash, 10),
    url("hooks.slack.com/services/", 20),
    url("hooks.slack.com/workflows/", 20),
    url("hooks.slack.com/triggers/", 20),
    url("discord.com/api/webhooks/", 20),
    url("discordapp.com/api/webhooks/", 20),
    url("webhook.office.com/webhookb2/", 40),
    // Payments and commerce.
    open("sk_live_", Alnum, 10),
    open("sk_test_", Alnum, 10),
    open("sk_prod_", Alnum, 10),
    open("rk_live_", Alnum, 10),
    open("rk_test_", Alnum, 10),
    open("rk_prod_", Alnum, 10),
    open("whsec_", Alnum, 24),
    open("sq0atp-", WordDash, 22),
    open("sq0csp-", WordDash, 40),
    strict("EAAA", WordDash, 40, 80),
    open("access_token$production$", Dollar, 40),
    open("access_token$sandbox$", Dollar, 40),
    strict("shpat_", Hex, 32, 32),
    strict("shpca_", Hex, 32, 32),
    strict("shppa_", Hex, 32, 32),
    strict("shpss_", Hex, 32, 32),
    open("FLWSECK_TEST-", HexDash, 12),
    open("FLWSECK-", HexDash, 12),
    strict("access-production-", HexDash, 36, 36),
    strict("access-sandbox-", HexDash, 36, 36),
    strict("shippo_live_", Hex, 40, 40),
    strict("shippo_test_", Hex, 40, 40),
    strict("EZAK", Alnum, 54, 54),
    strict("EZTK", Alnum, 54, 54),
    open("duffel_live_", Dotted, 40),
    open("duffel_test_", Dotted, 40),
    // Package registries.
    strict("npm_", Alnum, 36, 36),
    open("pypi-AgE", WordDash, 50),
    strict("rubygems_", Hex, 48, 48),
    strict("oy2", LowerAlnum, 43, 43),
    open("dckr_pat_", WordDash, 20),
    open("dckr_oat_", WordDash, 20),
    open("AKCp", Alnum, 60),
    strict("cmVmd", Alnum, 55, 64),
    open("CLOJARS_", Alnum, 60),
    strict("cio", Alnum, 32, 32),
    // Email and messaging.
    strict("SK", Hex, 32, 32),
    open("SG.", Dotted, 60),
    strict("key-", Hex, 32, 32),
    open("xkeysib-", WordDash, 64),
    open("xsmtpsib-", WordDash, 64),
    // Secret managers and key files.
    open("hvs.", WordDash, 24),
    open("hvb.", WordDash, 24),
    open("hvr.", WordDash, 24),
    strict("s.", Alnum, 24, 24),
    open("dp.pt.", Alnum, 40),
    open("dp.st.", Alnum, 40),
    open("dp.ct.", Alnum, 40),
    open("dp.sa.", Alnum, 40),
    open("dp.scim.", Alnum, 40),
    open("dp.audit.", Alnum, 40),
    open("ops_eyJ", Base64, 100),
    strict("A3-", UpperAlnumDash, 30, 44),
    strict("AGE-SECRET-KEY-1", Bech32Upper, 58, 58),
    // Developer tools and observability.
    open("lin_api_", Alnum, 40),
    open("ntn_", Alnum, 40),
    strict("secret_", Alnum, 43, 43),
    open("PMAK-", HexDash, 50),
    open("sntrys_", Base64, 60),
    strict("sntryu_", Hex, 64, 64),
    open("glc_", Base64, 32),
    open("glsa_", WordDash, 32),
    open("eyJrIjoi", Base64, 70),
    strict("NRAK-", UpperAlnum, 27, 27),
    open("NRII-", WordDash, 32),
    strict("NRJS-", Hex, 19, 19),
    open("dt0c01.", Dotted, 80),
    open("pscale_tkn_", Dotted, 32),
    open("pscale_pw_", Dotted, 32),
    open("pscale_oauth_", Dotted, 32),
    open("pnu_", Alnum, 36),
    open("rdme_", Alnum, 64),
    open("tk-us-", WordDash, 48),
    strict("ico-", Alnum, 32, 32),
    open("sgp_", WordDash, 40),
    open("fio-u-", Dotted, 64),
];

/// For each byte, the rules whose prefix starts with it.
pub(super) fn rules_starting_with(b: u8) -> &'static [u16] {
    use std::sync::OnceLock;
    static INDEX: OnceLock<Vec<Vec<u16>>> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let mut index = vec![Vec::new(); 256];
        for (i, rule) in TOKEN_RULES.iter().enumerate() {
            index[usize::from(rule.prefix.as_bytes()[0])].push(i as u16);
        }
        index
    });
    &index[usize::from(b)]
}

/// Bytes that start some rule's prefix (a one-load check before the index).
pub(super) const FIRST_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < TOKEN_RULES.len() {
        table[TOKEN_RULES[i].prefix.as_bytes()[0] as usize] = true;
        i += 1;
    }
    table
};

/// The end of the token of `rule` starting at `i`, if there is one.
pub(super) fn match_rule(rule: &TokenRule, bytes: &[u8], i: usize) -> Option<usize> {
    let prefix = rule.prefix.as_bytes();
    if !bytes[i..].starts_with(prefix) {
        return None;
    }
    let start = i + prefix.len();
    let limit = if rule.max == 0 {
        bytes.len()
    } else {
        bytes.len().min(start + usize::from(rule.max) + 1)
    };
    let mut end = start;
    while end < limit && rule.body.allows(bytes[end]) {
        end += 1;
    }
    let n = end - start;
    if n < usize::from(rule.min) || (rule.max != 0 && n > usize::from(rule.max)) {
        return None;
    }
    if rule.max != 0 && bytes.get(end).is_some_and(u8::is_ascii_alphanumeric) {
        return None;
    }
    if rule.strict {
        let body = &bytes[start..end];
        if !body.iter().any(u8::is_ascii_digit) || !body.iter().any(u8::is_ascii_alphabetic) {
            return None;
        }
    }
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_least_a_hundred_formats_with_distinct_prefixes() {
        assert!(TOKEN_RULES.len() >= 100, "{}", TOKEN_RULES.len());
        let mut seen = std::collections::BTreeSet::new();
        for rule in TOKEN_RULES {
            assert!(seen.insert(rule.prefix), "duplicate {}", rule.prefix);
            assert!(rule.max == 0 || rule.max >= rule.min, "{}", rule.prefix);
        }
    }

    #[test]
    fn exact_lengths_do_not_run_on() {
        let rule = TOKEN_RULES.iter().find(|r| r.prefix == "SK").unwrap();
        let body = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            match_rule(rule, format!("SK{body} ").as_bytes(), 0),
            Some(34)
        );
        assert_eq!(match_rule(rule, format!("SK{body}0").as_bytes(), 0), None);
        assert_eq!(match_rule(rule, format!("SK{body}g").as_bytes(), 0), None);
        assert_eq!(match_rule(rule, b"SKIP_TESTS=1", 0), None);
    }
}
