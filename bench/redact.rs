//! Measures the redactor's throughput on a ~1 MB mixed tool output (shell logs, JSON,
//! code, a few secrets), built deterministically, as the plugin and the backfill run it
//! on every synced string. Prints the median of several runs in MB/s (run by
//! `scripts/bench`; the README's Benchmarks table records the latest figure).
//!
//! ```text
//! cargo run --release -p opencode-sync-core --example redact-bench
//! ```

use std::hint::black_box;
use std::time::Instant;

use opencode_sync_core::redact::redact;

const TARGET_BYTES: usize = 1 << 20;
const RUNS: usize = 15;

/// A fixed pseudo-random sequence (the input is the same on every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn string(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| alphabet[(self.next() as usize) % alphabet.len()] as char)
            .collect()
    }
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const HEX: &[u8] = b"0123456789abcdef";

/// One chunk of what tools print, in turn.
fn chunk(rng: &mut Lcg, n: usize) -> String {
    let sha = rng.string(HEX, 40);
    match n % 6 {
        0 => format!(
            "$ cargo build --release\n   Compiling serde v1.0.{n}\n   Compiling app v0.1.0 (/home/dev/app)\n    Finished `release` profile [optimized] target(s) in 12.{n}s\ncommit {sha}\nAuthor: Dev <dev@example.com>\nDate:   Mon Mar 2 12:30:45 2026 +0100\n\n    fix: handle empty input (#{n})\n\n"
        ),
        1 => format!(
            "{{\"id\": \"ses_{}\", \"title\": \"Refactor the parser\", \"time\": {{\"created\": 1795565197{n:03}, \"updated\": 1795565199000}}, \"tokens\": {{\"input\": 6000, \"output\": 600, \"cache\": {{\"read\": 10, \"write\": 2}}}}, \"cost\": 0.0042, \"files\": [\"src/main.rs\", \"src/lib.rs\"], \"ok\": true}}\n",
            rng.string(ALNUM, 26)
        ),
        2 => format!(
            "export function handler(req: Request): Response {{\n  const apiKey = process.env.API_KEY;\n  const url = new URL(req.url);\n  if (!url.searchParams.has(\"page\")) {{\n    return json({{ error: \"missing page\", code: {n} }}, 400);\n  }}\n  const items = db.query(\"SELECT * FROM items WHERE id = ?\", [url.searchParams.get(\"page\")]);\n  return json({{ items, next: items.length > 0 ? items[items.length - 1].id : null }});\n}}\n\n"
        ),
        3 => format!(
            "2026-03-02T12:30:{:02}.123Z INFO  server: GET /api/v1/items?page={n}&sort=asc 200 3.2ms user=dev request_id={}\n2026-03-02T12:30:{:02}.125Z WARN  cache: miss key=items:{n} ttl=300\n",
            n % 60,
            rng.string(HEX, 32),
            n % 60
        ),
        4 => format!(
            "diff --git a/src/config.rs b/src/config.rs\nindex {}..{} 100644\n--- a/src/config.rs\n+++ b/src/config.rs\n@@ -{n},7 +{n},8 @@ impl Config {{\n-    let timeout = 30;\n+    let timeout = Duration::from_secs(30);\n+    let retries: u32 = 3;\n     Ok(Self {{ timeout, retries }})\n",
            &sha[..7],
            rng.string(HEX, 7)
        ),
        // A few secrets, as they turn up in output.
        _ => format!(
            "DATABASE_URL=postgres://app:{}@db:5432/app\nGITHUB_TOKEN={}{}\nAuthorization: Bearer {}\n",
            rng.string(ALNUM, 20),
            "ghp_",
            rng.string(ALNUM, 36),
            rng.string(ALNUM, 40)
        ),
    }
}

fn main() {
    let mut rng = Lcg(14);
    let mut text = String::with_capacity(TARGET_BYTES + 4096);
    let mut n = 0;
    while text.len() < TARGET_BYTES {
        text.push_str(&chunk(&mut rng, n));
        n += 1;
    }
    let masked = redact(&text);
    let secrets = masked.matches(opencode_sync_core::redact::MASK).count();
    let mut seconds: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            black_box(redact(black_box(&text)));
            start.elapsed().as_secs_f64()
        })
        .collect();
    seconds.sort_by(f64::total_cmp);
    let median = seconds[RUNS / 2];
    let mb = text.len() as f64 / 1e6;
    println!(
        "redact: {:.2} MB mixed tool output ({secrets} secrets masked), median of {RUNS} runs: {:.2} ms, {:.0} MB/s",
        mb,
        median * 1e3,
        mb / median
    );
}
