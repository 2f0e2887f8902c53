//! Acceptance corpus for redaction (issue 14): generated secrets of every format the
//! redactor claims (after gitleaks' rules) and ordinary text that looks a little like
//! them, each embedded in realistic context (a shell output line, a `.env` file, a JSON
//! config, code, a tool-arguments object), sent through the REAL mapping of both paths:
//! the plugin's engine (hook events as JSON text, then the outbox record text it writes)
//! and the backfill's `map::message_payload` / `map::session_payload`. No secret body may
//! appear anywhere in what would leave the machine; every probe must come through
//! verbatim.
//!
//! Every secret is generated from a seeded RNG (random bodies of the right alphabet and
//! length) and assembled from pieces, so no literal in this file is a real secret or
//! looks like one to a secret scanner.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::collections::BTreeMap;

use opencode_sync_core::config::Options;
use opencode_sync_core::engine::{Engine, Hook, Upsert};
use opencode_sync_core::map::{self, SessionContext};
use opencode_sync_core::model::{MessageInfo, PartInfo, SessionInfo};
use opencode_sync_core::outbox::Record;
use serde_json::{Value, json};

/// SplitMix64: a seeded, dependency-free RNG (the corpus is the same on every run).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// `n` characters of `alphabet`, with at least one digit and one letter when the
    /// alphabet has both (as any real random token of this length has).
    fn string(&mut self, alphabet: &str, n: usize) -> String {
        let chars: Vec<char> = alphabet.chars().collect();
        loop {
            let s: String = (0..n).map(|_| chars[self.below(chars.len())]).collect();
            let wants_digit = chars.iter().any(char::is_ascii_digit);
            let wants_letter = chars.iter().any(char::is_ascii_alphabetic);
            let ok = (!wants_digit || s.chars().any(|c| c.is_ascii_digit()))
                && (!wants_letter || s.chars().any(|c| c.is_ascii_alphabetic()));
            if ok || n < 8 {
                return s;
            }
        }
    }
}

const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const LOWER: &str = "abcdefghijklmnopqrstuvwxyz0123456789";
const HEX: &str = "0123456789abcdef";
const WORD: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BECH32: &str = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L";
const DIGITS: &str = "0123456789";

/// A secret format: how to make one token (the whole of it must not leak).
struct TokenFormat {
    name: &'static str,
    make: fn(&mut Rng) -> String,
}

macro_rules! fmt_rule {
    ($name:literal, $($piece:expr),+) => {
        TokenFormat { name: $name, make: |r: &mut Rng| { let _ = &r; [$($piece(r)),+].concat() } }
    };
}

/// A literal piece (a prefix: never a secret on its own).
fn lit(s: &'static str) -> impl Fn(&mut Rng) -> String {
    move |_| s.to_owned()
}

fn rand(alphabet: &'static str, n: usize) -> impl Fn(&mut Rng) -> String {
    move |r| r.string(alphabet, n)
}

fn token_formats() -> Vec<TokenFormat> {
    vec![
        // AI providers.
        fmt_rule!(
            "openai-project",
            lit("sk-proj-"),
            rand(WORD, 74),
            lit("T3Blbk"),
            lit("FJ"),
            rand(WORD, 74)
        ),
        fmt_rule!("openai-service-account", lit("sk-svcacct-"), rand(WORD, 58)),
        fmt_rule!("openai-admin", lit("sk-admin-"), rand(WORD, 58)),
        fmt_rule!("openai-legacy", lit("sk-"), rand(ALNUM, 48)),
        fmt_rule!("deepseek", lit("sk-"), rand(HEX, 32)),
        fmt_rule!("openrouter", lit("sk-or-v1-"), rand(HEX, 64)),
        fmt_rule!(
            "anthropic-api",
            lit("sk-ant-"),
            lit("api03-"),
            rand(WORD, 93),
            lit("AA")
        ),
        fmt_rule!(
            "anthropic-admin",
            lit("sk-ant-"),
            lit("admin01-"),
            rand(WORD, 93),
            lit("AA")
        ),
        fmt_rule!("groq", lit("gsk_"), rand(ALNUM, 52)),
        fmt_rule!("xai", lit("xai-"), rand(ALNUM, 80)),
        fmt_rule!("perplexity", lit("pplx-"), rand(ALNUM, 48)),
        fmt_rule!("huggingface", lit("hf_"), rand(ALNUM, 34)),
        fmt_rule!("huggingface-org", lit("api_org_"), rand(ALNUM, 34)),
        fmt_rule!("replicate", lit("r8_"), rand(ALNUM, 37)),
        fmt_rule!(
            "langsmith",
            lit("lsv2_pt_"),
            rand(HEX, 32),
            lit("_"),
            rand(HEX, 10)
        ),
        fmt_rule!("nvidia", lit("nvapi-"), rand(WORD, 64)),
        fmt_rule!("google-ai-gcp", lit("AIza"), rand(WORD, 35)),
        // OpenSync.
        fmt_rule!("opensync", lit("osk_"), rand(ALNUM, 32)),
        // Cloud providers.
        fmt_rule!("aws-access-key", lit("AKIA"), rand(UPPER, 16)),
        fmt_rule!("aws-sts-key", lit("ASIA"), rand(UPPER, 16)),
        fmt_rule!("gcp-oauth-secret", lit("GOCSPX-"), rand(WORD, 28)),
        fmt_rule!("gcp-access-token", lit("ya29."), rand(WORD, 120)),
        fmt_rule!(
            "azure-ad-secret",
            rand(ALNUM, 3),
            rand(DIGITS, 1),
            lit("Q~"),
            rand(ALNUM, 31)
        ),
        fmt_rule!("digitalocean-pat", lit("dop_v1_"), rand(HEX, 64)),
        fmt_rule!("digitalocean-oauth", lit("doo_v1_"), rand(HEX, 64)),
        fmt_rule!("alibaba", lit("LTAI"), rand(ALNUM, 20)),
        fmt_rule!("heroku", lit("HRKU-"), lit("AA"), rand(WORD, 58)),
        fmt_rule!("flyio", lit("fo1_"), rand(WORD, 43)),
        fmt_rule!(
            "cloudflare-origin-ca",
            lit("v1.0-"),
            rand(HEX, 24),
            lit("-"),
            rand(HEX, 146)
        ),
        fmt_rule!("databricks", lit("dapi"), rand(HEX, 32)),
        fmt_rule!("pulumi", lit("pul-"), rand(HEX, 40)),
        fmt_rule!("supabase", lit("sbp_"), rand(HEX, 40)),
        fmt_rule!(
            "terraform",
            rand(ALNUM, 14),
            lit(".atlas"),
            lit("v1."),
            rand(WORD, 67)
        ),
        // Version control.
        fmt_rule!("github-pat", lit("ghp_"), rand(ALNUM, 36)),
        fmt_rule!("github-oauth", lit("gho_"), rand(ALNUM, 36)),
        fmt_rule!("github-app", lit("ghs_"), rand(ALNUM, 36)),
        fmt_rule!(
            "github-fine-grained",
            lit("github_pat_"),
            rand(ALNUM, 22),
            lit("_"),
            rand(ALNUM, 59)
        ),
        fmt_rule!("gitlab-pat", lit("glpat-"), rand(WORD, 20)),
        fmt_rule!("gitlab-deploy", lit("gldt-"), rand(WORD, 20)),
        fmt_rule!("gitlab-runner", lit("glrt-"), rand(WORD, 20)),
        fmt_rule!("gitlab-trigger", lit("glptt-"), rand(HEX, 40)),
        fmt_rule!("bitbucket-app-password", lit("ATBB"), rand(ALNUM, 32)),
        fmt_rule!("atlassian", lit("ATATT3"), rand(WORD, 186)),
        // Chat.
        fmt_rule!(
            "slack-bot",
            lit("xoxb-"),
            rand(DIGITS, 12),
            lit("-"),
            rand(DIGITS, 12),
            lit("-"),
            rand(ALNUM, 24)
        ),
        fmt_rule!(
            "slack-user",
            lit("xoxp-"),
            rand(DIGITS, 12),
            lit("-"),
            rand(DIGITS, 12),
            lit("-"),
            rand(ALNUM, 32)
        ),
        fmt_rule!(
            "slack-legacy",
            lit("xoxs-"),
            rand(DIGITS, 10),
            lit("-"),
            rand(DIGITS, 10),
            lit("-"),
            rand(HEX, 32)
        ),
        fmt_rule!(
            "slack-app",
            lit("xapp-"),
            lit("1-"),
            rand(UPPER, 11),
            lit("-"),
            rand(DIGITS, 13),
            lit("-"),
            rand(HEX, 64)
        ),
        fmt_rule!("telegram-bot", rand(DIGITS, 10), lit(":A"), rand(WORD, 34)),
        // Payments.
        fmt_rule!("stripe-secret", lit("sk_live_"), rand(ALNUM, 99)),
        fmt_rule!("stripe-test", lit("sk_test_"), rand(ALNUM, 24)),
        fmt_rule!("stripe-restricted", lit("rk_live_"), rand(ALNUM, 24)),
        fmt_rule!("stripe-webhook", lit("whsec_"), rand(ALNUM, 32)),
        fmt_rule!("square-access", lit("sq0atp-"), rand(WORD, 22)),
        fmt_rule!("square-oauth-secret", lit("sq0csp-"), rand(WORD, 43)),
        fmt_rule!(
            "braintree",
            lit("access_token"),
            lit("$production$"),
            rand(LOWER, 16),
            lit("$"),
            rand(HEX, 32)
        ),
        fmt_rule!("shopify-access", lit("shpat_"), rand(HEX, 32)),
        fmt_rule!("shopify-custom", lit("shpca_"), rand(HEX, 32)),
        fmt_rule!("shopify-shared-secret", lit("shpss_"), rand(HEX, 32)),
        fmt_rule!("shippo", lit("shippo_live_"), rand(HEX, 40)),
        // Package registries.
        fmt_rule!("npm", lit("npm_"), rand(ALNUM, 36)),
        fmt_rule!(
            "pypi",
            lit("pypi-"),
            lit("AgEIcHlwaS5vcmc"),
            rand(WORD, 120)
        ),
        fmt_rule!("rubygems", lit("rubygems_"), rand(HEX, 48)),
        fmt_rule!("nuget", lit("oy2"), rand(LOWER, 43)),
        fmt_rule!("docker-hub", lit("dckr_pat_"), rand(WORD, 27)),
        fmt_rule!("jfrog", lit("AKCp"), rand(ALNUM, 69)),
        fmt_rule!("clojars", lit("CLOJARS_"), rand(LOWER, 60)),
        // Email and messaging.
        fmt_rule!("twilio", lit("SK"), rand(HEX, 32)),
        fmt_rule!(
            "sendgrid",
            lit("SG."),
            rand(WORD, 22),
            lit("."),
            rand(WORD, 43)
        ),
        fmt_rule!("mailgun", lit("key-"), rand(HEX, 32)),
        fmt_rule!("mailchimp", rand(HEX, 32), lit("-us"), rand(DIGITS, 2)),
        fmt_rule!(
            "brevo",
            lit("xkeysib-"),
            rand(HEX, 64),
            lit("-"),
            rand(ALNUM, 16)
        ),
        // Secret managers and keys.
        fmt_rule!("vault-service", lit("hvs."), rand(WORD, 95)),
        fmt_rule!("vault-batch", lit("hvb."), rand(WORD, 140)),
        fmt_rule!("doppler", lit("dp.pt."), rand(ALNUM, 43)),
        fmt_rule!("1password-service", lit("ops_"), lit("eyJ"), rand(B64, 250)),
        fmt_rule!("age", lit("AGE-SECRET-"), lit("KEY-1"), rand(BECH32, 58)),
        // Developer tools.
        fmt_rule!("linear", lit("lin_api_"), rand(ALNUM, 40)),
        fmt_rule!("notion", lit("ntn_"), rand(DIGITS, 11), rand(ALNUM, 35)),
        fmt_rule!(
            "postman",
            lit("PMAK-"),
            rand(HEX, 24),
            lit("-"),
            rand(HEX, 34)
        ),
        fmt_rule!("sentry-user", lit("sntryu_"), rand(HEX, 64)),
        fmt_rule!(
            "grafana-service-account",
            lit("glsa_"),
            rand(ALNUM, 32),
            lit("_"),
            rand(HEX, 8)
        ),
        fmt_rule!("new-relic", lit("NRAK-"), rand(UPPER, 27)),
        fmt_rule!("planetscale", lit("pscale_tkn_"), rand(WORD, 43)),
        fmt_rule!("prefect", lit("pnu_"), rand(ALNUM, 36)),
        fmt_rule!(
            "dynatrace",
            lit("dt0c01."),
            rand(UPPER, 24),
            lit("."),
            rand(UPPER, 64)
        ),
        // Generic structures.
        fmt_rule!(
            "jwt",
            lit("eyJ"),
            rand(WORD, 30),
            lit(".eyJ"),
            rand(WORD, 60),
            lit("."),
            rand(WORD, 43)
        ),
    ]
}

/// A sample: text to embed, and what must not leak from it.
struct Sample {
    format: String,
    /// One line (or block) of text holding the secret.
    line: String,
    needle: String,
    /// Tool arguments holding it.
    args: Value,
}

/// Prefixed tokens, each in four kinds of line and as a tool argument.
fn token_samples(rng: &mut Rng) -> Vec<Sample> {
    let mut out = Vec::new();
    for format in token_formats() {
        for n in 0..2 {
            let token = (format.make)(rng);
            let line = match n {
                0 => format!("SERVICE_VALUE={token}"),
                _ => format!("client.connect(\"{token}\", {{ retries: 3 }});"),
            };
            out.push(Sample {
                format: format.name.to_owned(),
                args: json!({"command": format!("deploy --quiet {token}"), "config": {"value": token}}),
                needle: token,
                line,
            });
        }
    }
    out
}

fn base64(data: &[u8]) -> String {
    const TABLE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Secrets known by what they are assigned to, how they are passed, or their structure.
fn assignment_samples(rng: &mut Rng) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut push = |format: &str, line: String, needle: String, args: Value| {
        out.push(Sample {
            format: format.to_owned(),
            line,
            needle,
            args,
        });
    };
    for _ in 0..2 {
        let v = rng.string(ALNUM, 24);
        let w = rng.string(B64, 40);
        let pem = (0..12).map(|_| rng.string(B64, 64)).collect::<Vec<_>>();
        let cmd = |s: String| json!({"command": s});
        push(
            "env-export",
            format!("export SECRET_KEY={v}"),
            v.clone(),
            cmd(format!("export SECRET_KEY={v}")),
        );
        push(
            "env-file",
            format!("DB_PASSWORD={v}"),
            v.clone(),
            json!({"env": {"DB_PASSWORD": v}}),
        );
        push(
            "django-settings",
            format!("SECRET_KEY = 'django-insecure-{v}'"),
            v.clone(),
            json!({"content": format!("SECRET_KEY = \"{v}\"")}),
        );
        push(
            "aws-secret-json",
            format!("{{\"AccessKeyId\": \"x\", \"SecretAccessKey\": \"{w}\"}}"),
            w.clone(),
            json!({"SecretAccessKey": w}),
        );
        push(
            "aws-credentials-file",
            format!("aws_secret_access_key = {w}"),
            w.clone(),
            cmd(format!("aws configure set aws_secret_access_key {w}")),
        );
        push(
            "azure-storage",
            format!(
                "DefaultEndpointsProtocol=https;AccountName=dev;AccountKey={w}==;EndpointSuffix=core.windows.net"
            ),
            w.clone(),
            json!({"AccountKey": w}),
        );
        push(
            "azure-sas",
            format!(
                "https://dev.blob.core.windows.net/c/f?sv=2022-11-02&se=2030-01-01&sp=r&sig={v}%3D"
            ),
            v.clone(),
            cmd(format!(
                "curl 'https://dev.blob.core.windows.net/c?sp=r&sig={v}'"
            )),
        );
        push(
            "cookie-header",
            format!("Cookie: sessionid={v}; csrftoken=abc"),
            v.clone(),
            json!({"headers": {"Cookie": format!("sessionid={v}")}}),
        );
        push(
            "mysql-p",
            format!("mysql -u root -p{v} app_db"),
            v.clone(),
            cmd(format!("mysqldump -uroot -p{v} app")),
        );
        push(
            "curl-u",
            format!("curl -u admin:{v} https://api.internal/x"),
            v.clone(),
            cmd(format!("curl --user admin:{v} https://h/")),
        );
        push(
            "flag-token",
            format!("gh auth login --token {v}"),
            v.clone(),
            cmd(format!("vault login --token {v}")),
        );
        push(
            "escaped-json",
            format!("{{\\\"user\\\": \\\"dev\\\", \\\"password\\\": \\\"{v}\\\"}}"),
            v.clone(),
            json!({"password": v}),
        );
        push(
            "yaml",
            format!("database:\n  user: app\n  password: {v}\n"),
            v.clone(),
            json!({"database": {"password": v}}),
        );
        push(
            "postgres-url",
            format!("DATABASE_URL=postgres://app:{v}@db.internal:5432/app"),
            v.clone(),
            cmd(format!("psql postgres://app:{v}@db:5432/app")),
        );
        push(
            "mongodb-url",
            format!("mongodb+srv://root:{v}@cluster0.abcde.mongodb.net/test"),
            v.clone(),
            json!({"uri": format!("mongodb://u:{v}@h/db")}),
        );
        push(
            "redis-url",
            format!("redis://:{v}@cache:6379/0"),
            v.clone(),
            json!({"url": format!("redis://:{v}@cache:6379")}),
        );
        let basic = base64(format!("admin:{v}").as_bytes());
        push(
            "basic-auth",
            format!("Authorization: Basic {basic}"),
            basic.clone(),
            json!({"headers": {"Authorization": format!("Basic {basic}")}}),
        );
        push(
            "bearer-lowercase",
            format!("authorization: bearer {v}"),
            v.clone(),
            json!({"X-Auth-Token": v}),
        );
        push(
            "curl-bearer",
            format!("curl -H \"Authorization: Bearer {v}\" https://api/x"),
            v.clone(),
            cmd(format!("curl -H 'Authorization: Bearer {v}' h")),
        );
        push(
            "x-api-key",
            format!("x-api-key: {v}"),
            v.clone(),
            json!({"headers": {"x-api-key": v}}),
        );
        let body = pem.join("\n");
        push(
            "pem-rsa",
            format!("-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----\n"),
            pem[3].clone(),
            json!({"content": format!("-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----")}),
        );
        push(
            "pem-openssh-no-end",
            format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\nthe rest of the file\n"),
            pem[5].clone(),
            json!({"private_key": body}),
        );
        let escaped = pem.join("\\n");
        push(
            "gcp-service-account",
            format!(
                "{{\"type\": \"service_account\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n{escaped}\\n-----END PRIVATE KEY-----\\n\"}}"
            ),
            pem[7].clone(),
            json!({"credentials": {"private_key": "x"}}),
        );
        push(
            "tool-args-password",
            "run the migration".to_owned(),
            "pw1".to_owned(),
            json!({"password": "pw1"}),
        );
        push(
            "tool-args-env",
            "start the server".to_owned(),
            "x1".to_owned(),
            json!({"env": {"API_KEY": "x1"}}),
        );
        push(
            "tool-args-headers",
            "call the API".to_owned(),
            v.clone(),
            json!({"headers": {"X-Auth": v}}),
        );
        push(
            "tool-args-array",
            "rotate keys".to_owned(),
            v.clone(),
            json!({"apiKeys": [v, "second"]}),
        );
    }
    out
}

/// Ordinary text that must come through verbatim.
fn probes(rng: &mut Rng) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for _ in 0..4 {
        out.push(rng.string(HEX, 40)); // git SHA
        out.push(format!("sha256:{}", rng.string(HEX, 64))); // image digest
        let u = rng.string(HEX, 32);
        out.push(format!(
            "{}-{}-4{}-a{}-{}",
            &u[..8],
            &u[8..12],
            &u[13..16],
            &u[17..20],
            &u[20..]
        )); // UUID
        out.push(format!("ses_{}", rng.string(ALNUM, 26)));
        out.push(format!("msg_{}", rng.string(ALNUM, 26)));
        out.push(format!("call_{}", rng.string(ALNUM, 24)));
        out.push(format!("prt_{}", rng.string(ALNUM, 26)));
        out.push(base64(
            format!("ordinary data {} from the build log", rng.string(LOWER, 12)).as_bytes(),
        ));
        out.push(format!("#{}", rng.string(HEX, 6)));
        out.push(format!("{}{}", "pk_live_", rng.string(ALNUM, 24))); // publishable: public
    }
    out.push(base64(br#"{"user":"dev","theme":"dark"}"#));
    out.push(format!("sha512-{}==", rng.string(B64, 86)));
    for text in [
        "const apiKey = getKey();",
        "const apiKey = process.env.OPENAI_API_KEY;",
        "  password: string;",
        "  password: hashedPassword;",
        "let token = req.headers.authorization;",
        "if (password === confirmPassword) {",
        "def get_secret(name: str) -> str:",
        "api_key = os.environ[\"OPENAI_API_KEY\"]",
        "token = None",
        "fn auth(&self) -> Result<Token, Error>",
        "type Credentials = { username: string; password: string }",
        "const secret = await vault.read(path);",
        "headers: { Authorization: `Bearer ${token}` }",
        "API_KEY=your-api-key-here",
        "OPENAI_API_KEY=<your-openai-key>",
        "password: ${DB_PASSWORD}",
        "token: \"{{ secrets.GITHUB_TOKEN }}\"",
        "SECRET_KEY=changeme",
        "The password reset flow sends an email with a link.",
        "The token budget is 200000 tokens per request.",
        "Use the API key from your dashboard settings.",
        "Authorization is handled by the middleware.",
        "Bearer tokens expire after one hour.",
        "basic features only",
        "max_tokens=4096",
        "time: 12:30:45",
        "2026-03-01T12:30:45.123Z",
        "/home/dev/project/src/main.rs",
        "C:\\Users\\dev\\app\\config.json",
        "~/.config/opencode/opencode.json",
        "./node_modules/.bin/tsc --noEmit",
        "https://example.com/docs?page=2&sort=asc",
        "https://github.com/owner/repo/pull/123",
        "http://localhost:3000/api/health",
        "postgres://localhost:5432/app",
        "git@github.com:owner/repo.git",
        "https://deploy@build.example.com/artifacts",
        "rgb(12, 34, 56)",
        "hsl(210, 40%, 96%)",
        "mkdir -p build/out",
        "git push -u origin main",
        "docker run -u 1000:1000 node:20",
        "ls -la /var/log",
        "scikit-learn==1.5.0",
        "v1.2.3-beta.1",
        "Step 3/7 : RUN npm ci --omit=dev",
        "ok 12 - redacts secrets # time=3ms",
    ] {
        out.push(text.to_owned());
    }
    out
}

const SESSION: &str = "ses_corpus";

/// The text contexts a line is embedded in.
fn contexts(line: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "shell output",
            format!("$ ./scripts/deploy.sh\n[info] starting\n{line}\n[info] done in 3.2s\n"),
        ),
        (
            "env file",
            format!("# generated by setup\nNODE_ENV=production\n{line}\nLOG_LEVEL=info\n"),
        ),
        (
            "json config",
            serde_json::to_string_pretty(
                &json!({"service": {"name": "api", "line": line, "port": 8080}}),
            )
            .unwrap(),
        ),
        (
            "code",
            format!("fn main() {{\n    // setup\n    {line}\n    run();\n}}\n"),
        ),
    ]
}

fn tool_part(args: &Value, output: &str) -> Value {
    json!({"id": "prt_2", "messageID": "msg_1", "sessionID": SESSION, "type": "tool", "tool": "bash",
           "callID": "call_1", "state": {"status": "completed", "input": args, "output": output,
           "title": "run", "metadata": {"exit": 0}, "time": {"start": 1, "end": 2}}})
}

fn text_part(text: &str) -> Value {
    json!({"id": "prt_1", "messageID": "msg_1", "sessionID": SESSION, "type": "text", "text": text})
}

fn message_info() -> Value {
    json!({"id": "msg_1", "sessionID": SESSION, "role": "assistant", "modelID": "m", "providerID": "p",
           "time": {"created": 10, "completed": 20}})
}

/// Everything the plugin would send or queue for one message: each upsert's JSON and its
/// outbox record text.
fn plugin_path(text: &str, args: &Value) -> Vec<String> {
    let mut engine = Engine::new(&Value::Null, Options::default());
    let mut upserts = Vec::new();
    for event in [
        json!({"type": "session.updated", "properties": {"info": {"id": SESSION, "title": text, "directory": "/home/dev/app", "time": {"created": 1}}}}),
        json!({"type": "message.part.updated", "properties": {"part": text_part(text)}}),
        json!({"type": "message.part.updated", "properties": {"part": tool_part(args, text)}}),
        json!({"type": "message.updated", "properties": {"info": message_info()}}),
    ] {
        upserts.extend(engine.handle_json(Hook::Event, &event.to_string()));
    }
    upserts.extend(engine.flush());
    assert!(
        upserts.iter().any(|u| matches!(u, Upsert::Message(_))),
        "the plugin sent no message"
    );
    upserts
        .iter()
        .flat_map(|u| {
            [
                serde_json::to_string(u).unwrap(),
                Record::new(u, 1_700_000_000_000).encode(),
            ]
        })
        .collect()
}

/// Everything the backfill would send for the same message and its session.
fn backfill_path(text: &str, args: &Value) -> Vec<String> {
    let info: MessageInfo = serde_json::from_value(message_info()).unwrap();
    let parts: Vec<PartInfo> =
        serde_json::from_value(json!([text_part(text), tool_part(args, text)])).unwrap();
    let session: SessionInfo = serde_json::from_value(
        json!({"id": SESSION, "title": text, "directory": "/home/dev/app", "time": {"created": 1}}),
    )
    .unwrap();
    let options = Options::default();
    vec![
        serde_json::to_string(&map::message_payload(&info, &parts, &options)).unwrap(),
        serde_json::to_string(&map::session_payload(
            &session,
            &SessionContext::default(),
            &options,
        ))
        .unwrap(),
    ]
}

/// How `s` appears inside JSON text.
fn json_escaped(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap();
    quoted[1..quoted.len() - 1].to_owned()
}

#[test]
fn no_secret_leaks_through_either_path() {
    let mut rng = Rng(0x5EED_0014);
    let mut samples = token_samples(&mut rng);
    samples.extend(assignment_samples(&mut rng));
    let formats: std::collections::BTreeSet<&str> =
        samples.iter().map(|s| s.format.as_str()).collect();
    assert!(samples.len() >= 150, "{} samples", samples.len());
    assert!(formats.len() >= 60, "{} formats", formats.len());

    let mut leaks: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for sample in &samples {
        let needles = [sample.needle.clone(), json_escaped(&sample.needle)];
        let mut check = |context: &str, outputs: Vec<String>| {
            if outputs
                .iter()
                .any(|o| needles.iter().any(|n| o.contains(n.as_str())))
            {
                leaks
                    .entry(sample.format.clone())
                    .or_default()
                    .push(context.to_owned());
            }
        };
        for (context, text) in contexts(&sample.line) {
            check(
                &format!("plugin, {context}"),
                plugin_path(&text, &json!({"command": "true"})),
            );
            check(
                &format!("backfill, {context}"),
                backfill_path(&text, &json!({"command": "true"})),
            );
        }
        check("plugin, tool arguments", plugin_path("ok", &sample.args));
        check(
            "backfill, tool arguments",
            backfill_path("ok", &sample.args),
        );
    }
    assert!(
        leaks.is_empty(),
        "{} of {} formats leaked (format: contexts):\n{}",
        leaks.len(),
        formats.len(),
        leaks
            .iter()
            .map(|(f, c)| format!("  {f}: {}", c.join("; ")))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn ordinary_text_comes_through_verbatim() {
    let mut rng = Rng(0x0DD_BA11);
    let probes = probes(&mut rng);
    assert!(probes.len() >= 60, "{} probes", probes.len());
    let mut mangled: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for probe in &probes {
        let want = json_escaped(probe);
        for (context, text) in contexts(probe) {
            // Inside the JSON config the probe is JSON text already.
            let want = if context == "json config" {
                json_escaped(&json_escaped(probe))
            } else {
                want.clone()
            };
            let check =
                |context: &str, outputs: &[String], mangled: &mut BTreeMap<String, Vec<String>>| {
                    if !outputs.iter().all(|o| o.contains(&want)) {
                        mangled
                            .entry(probe.clone())
                            .or_default()
                            .push(context.to_owned());
                    }
                };
            let plugin = plugin_path(&text, &json!({"note": probe}));
            let messages: Vec<String> = plugin
                .into_iter()
                .filter(|o| o.contains("\"msg_1\""))
                .collect();
            check(&format!("plugin, {context}"), &messages, &mut mangled);
            let backfill = backfill_path(&text, &json!({"note": probe}));
            check(
                &format!("backfill, {context}"),
                &backfill[..1],
                &mut mangled,
            );
        }
        let args = json!({"note": probe, "options": {"value": probe}});
        let plugin: Vec<String> = plugin_path("ok", &args)
            .into_iter()
            .filter(|o| o.contains("\"msg_1\""))
            .collect();
        // The message payload and the record made of it hold the text part and the args.
        for (context, outputs) in [
            ("plugin, tool arguments", plugin),
            (
                "backfill, tool arguments",
                backfill_path("ok", &args)[..1].to_vec(),
            ),
        ] {
            if !outputs.iter().all(|o| o.contains(&want)) {
                mangled
                    .entry(probe.clone())
                    .or_default()
                    .push(context.to_owned());
            }
        }
    }
    assert!(
        mangled.is_empty(),
        "{} of {} probes were changed (probe: contexts):\n{}",
        mangled.len(),
        probes.len(),
        mangled
            .iter()
            .map(|(p, c)| format!("  {p}: {}", c.join("; ")))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
