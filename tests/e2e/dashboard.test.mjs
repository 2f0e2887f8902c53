// The server's web dashboard in a real browser: Debian's Chromium, headless, driven by
// playwright-core. Sessions are stored through the real sync API (/sync/session and
// /sync/message with markdown text and tool-call / tool-result parts, as the plugin sends
// them) into the contract server binary (crates/server, with open reads, as `opencode-sync
// serve` runs it on loopback), then the page at `/` is used as a person would: the
// sessions list (title, project and git branch, model, tokens, cost), full-text search, the
// project and branch filters, a click into a session (rendered markdown, raw HTML shown as
// text, the tool calls with their arguments and output, per-message tokens, the branch), the
// export button (a markdown download holding the session's messages), the usage charts, and the
// API-key prompt when the server is opened under a non-loopback name. Screenshots go to
// tests/e2e/artifacts/ (git-ignored). The page must load nothing from outside the server,
// break no CSP rule and log no error.
//
// Needs: `cargo build -p opencode-sync-server` and `bash scripts/setup-e2e` (installs
// /usr/bin/chromium and playwright-core; CHROMIUM_BIN points elsewhere). A missing
// Chromium fails the test: installing it is the setup script's job.
// Run: cd tests/e2e && node --test dashboard.test.mjs

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { E2E_DIR } from "./lib/opencode.mjs";
import { startSyncServer } from "./lib/sync-server.mjs";

const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
const ARTIFACTS = path.join(E2E_DIR, "artifacts");
/** A name that resolves to loopback in the browser only: the page must then ask for a key. */
const OTHER_NAME = "dashboard.test";
const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const API_KEY = `osk_${Array.from(crypto.randomBytes(32), (b) => ALNUM[b % ALNUM.length]).join("")}`;

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const NOW = Date.now();
const SESSION_TIMES = [NOW - 2 * HOUR, NOW - DAY - HOUR, NOW - 3 * DAY];
/** Local days the sessions started on (the browser shares this process's time zone). */
const SEEDED_DAYS = new Set(SESSION_TIMES.map((t) => new Date(t).toDateString())).size;

let server;
let context;
let userDataDir;
const external = []; // requests the page tried to send anywhere but the server
const problems = []; // console errors, page errors, CSP violations

async function post(route, body) {
  const res = await fetch(`${server.url}${route}`, {
    method: "POST",
    headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  assert.equal(res.status, 200, `POST ${route}: ${res.status} ${text}`);
  return JSON.parse(text);
}

const USER_TEXT =
  "Make the **outbox flusher** retry with jittered backoff, and keep `maxToolOutputBytes` as it is.\n\n" +
  "<script>window.__xss = 1</script> <img src=x onerror=\"window.__xss = 2\">";
const BASH_OUTPUT = [
  "   Compiling opencode-sync-core v0.1.0",
  "    Finished `test` profile [unoptimized + debuginfo] target(s) in 4.12s",
  "     Running unittests src/lib.rs",
  "running 12 tests",
  "test outbox::tests::claims_expire ... ok",
  "test outbox::tests::backoff_is_jittered ... ok",
  "test result: ok. 12 passed; 0 failed; 0 ignored",
].join("\n");
const FINAL_TEXT = [
  "## Done",
  "",
  "The flusher now retries with **full jitter**:",
  "",
  "- base delay `250 ms`, doubling up to `30 s`",
  "- a `Retry-After` header wins",
  "",
  "```rust",
  "let delay = rng.between(0, base << attempt.min(7));",
  "```",
  "",
  "All 12 outbox tests pass. [Not a link](javascript:window.__xss=3)",
].join("\n");

/** Three sessions over two projects and three days, stored the way the plugin sends them. */
async function seed() {
  await post("/sync/session", {
    externalId: "ses_outbox",
    title: "Make the outbox flusher retry with jitter",
    projectPath: "/home/dev/src/opencode-sync",
    projectName: "opencode-sync",
    model: "claude-sonnet-4-5",
    provider: "anthropic",
    source: "opencode",
    promptTokens: 18234,
    completionTokens: 2211,
    cost: 0.0832,
    durationMs: 95_000,
    createdAt: NOW - 2 * HOUR,
    gitBranch: "feature/jitter",
  });
  await post("/sync/message", {
    sessionExternalId: "ses_outbox",
    externalId: "msg_outbox_1",
    role: "user",
    source: "opencode",
    textContent: USER_TEXT,
    createdAt: NOW - 2 * HOUR,
    parts: [{ type: "text", content: USER_TEXT }],
  });
  await post("/sync/message", {
    sessionExternalId: "ses_outbox",
    externalId: "msg_outbox_2",
    role: "assistant",
    source: "opencode",
    model: "claude-sonnet-4-5",
    textContent: "Let me run the outbox tests first.",
    promptTokens: 9120,
    completionTokens: 388,
    durationMs: 6400,
    createdAt: NOW - 2 * HOUR + 5000,
    parts: [
      { type: "text", content: "Let me run the outbox tests first." },
      {
        type: "tool-call",
        content: {
          toolName: "bash",
          callID: "call_1_0",
          args: { command: "cargo test -p opencode-sync-core outbox", description: "Run the outbox tests" },
          status: "completed",
          title: "cargo test -p opencode-sync-core outbox",
        },
      },
      { type: "tool-result", content: { output: BASH_OUTPUT, exit: 0, durationMs: 4310 } },
      {
        type: "tool-call",
        content: {
          toolName: "read",
          callID: "call_1_1",
          args: { filePath: "/home/dev/src/opencode-sync/crates/core/src/missing.rs" },
          status: "error",
        },
      },
      {
        type: "tool-result",
        content: {
          output: "File not found: /home/dev/src/opencode-sync/crates/core/src/missing.rs",
          error: "File not found: /home/dev/src/opencode-sync/crates/core/src/missing.rs",
          durationMs: 3,
        },
      },
    ],
  });
  await post("/sync/message", {
    sessionExternalId: "ses_outbox",
    externalId: "msg_outbox_3",
    role: "assistant",
    source: "opencode",
    model: "claude-sonnet-4-5",
    textContent: FINAL_TEXT,
    promptTokens: 9114,
    completionTokens: 1823,
    durationMs: 21_000,
    createdAt: NOW - 2 * HOUR + 40_000,
    parts: [{ type: "text", content: FINAL_TEXT }],
  });

  await post("/sync/session", {
    externalId: "ses_theme",
    title: "Add a dark theme to the settings page",
    projectPath: "/home/dev/src/webapp",
    projectName: "webapp",
    model: "gpt-5",
    provider: "openai",
    source: "opencode",
    promptTokens: 5400,
    completionTokens: 900,
    cost: 0.21,
    createdAt: NOW - DAY - HOUR,
  });
  await post("/sync/message", {
    sessionExternalId: "ses_theme",
    externalId: "msg_theme_1",
    role: "user",
    textContent: "Use prefers-color-scheme for the settings page.",
    createdAt: NOW - DAY - HOUR,
    parts: [{ type: "text", content: "Use prefers-color-scheme for the settings page." }],
  });

  await post("/sync/session", {
    externalId: "ses_ci",
    gitBranch: "main",
    title: "Investigate the flaky CI run",
    projectPath: "/home/dev/src/opencode-sync",
    projectName: "opencode-sync",
    model: "claude-sonnet-4-5",
    provider: "anthropic",
    source: "opencode",
    promptTokens: 30100,
    completionTokens: 4100,
    cost: 0.145,
    createdAt: NOW - 3 * DAY,
  });
}

before(async () => {
  assert.ok(
    fs.existsSync(CHROMIUM),
    `${CHROMIUM} is missing: run \`bash scripts/setup-e2e\` (it installs Debian's chromium), or set CHROMIUM_BIN`,
  );
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const f of fs.readdirSync(ARTIFACTS)) if (f.startsWith("dashboard-")) fs.rmSync(path.join(ARTIFACTS, f));
  // Open reads, as `opencode-sync serve` runs on loopback: the page reads without a key.
  server = await startSyncServer({ apiKey: API_KEY, args: ["--open-reads", API_KEY] });
  await seed();
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "dashboard-chromium-"));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 860 },
    deviceScaleFactor: 1,
    colorScheme: "light",
    acceptDownloads: true,
    timeout: 60_000,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-proxy-server",
      `--host-resolver-rules=MAP ${OTHER_NAME} 127.0.0.1`,
    ],
  });
  const port = new URL(server.url).port;
  const allowed = new Set([`127.0.0.1:${port}`, `${OTHER_NAME}:${port}`]);
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if ((url.protocol === "http:" && allowed.has(url.host)) || url.protocol === "data:") return route.continue();
    external.push(url.href);
    return route.abort();
  });
  context.on("page", watch);
  for (const p of context.pages()) watch(p);
});

function watch(page) {
  page.on("console", (msg) => {
    if (msg.type() === "error" || /Content Security Policy|Refused to/i.test(msg.text())) {
      problems.push(`console ${msg.type()}: ${msg.text()}`);
    }
  });
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
}

after(async () => {
  await context?.close().catch(() => {});
  await server?.stop();
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
});

/** Waits until `fn()` (in the page) is truthy; fails with `what` and the page's text. */
async function waitUntil(page, what, fn, arg) {
  try {
    await page.waitForFunction(fn, arg, { timeout: 15_000 });
  } catch (err) {
    const text = await page.evaluate(() => document.body.innerText).catch(() => "(no page)");
    assert.fail(`${what}: ${err.message.split("\n")[0]}\n--- page text ---\n${text.slice(0, 3000)}`);
  }
}

const rowCount = (page) => page.locator("#sessions tbody tr").count();

/** Checks a PNG on disk: signature, size and dimensions. */
function assertPng(file, { minBytes = 15_000, minWidth = 1000, minHeight = 600 } = {}) {
  assert.ok(fs.existsSync(file), `${file} was not written`);
  const png = fs.readFileSync(file);
  assert.ok(png.length >= minBytes, `${file} is only ${png.length} bytes`);
  assert.equal(png.subarray(0, 8).toString("hex"), "89504e470d0a1a0a", `${file} is not a PNG`);
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  assert.ok(width >= minWidth && height >= minHeight, `${file} is ${width}x${height}`);
}

test("sessions list, search, project and branch filters, session page with tool calls and export, usage charts", { timeout: 180_000 }, async () => {
  const page = await context.newPage();
  await page.goto(`${server.url}/`, { waitUntil: "domcontentloaded" });

  // The list: every session, newest first, with title, project, model, tokens, cost.
  await waitUntil(page, "three session rows", () => document.querySelectorAll("#sessions tbody tr").length === 3);
  const titles = await page.locator("#sessions tbody tr a.session-link").allTextContents();
  assert.deepEqual(titles, [
    "Investigate the flaky CI run",
    "Add a dark theme to the settings page",
    "Make the outbox flusher retry with jitter",
  ]);
  const row = page.locator('#sessions tbody tr[data-external-id="ses_outbox"]');
  const cells = (await row.locator("td").allInnerTexts()).map((t) => t.trim());
  assert.match(cells[0], /^Make the outbox flusher retry with jitter\b/);
  assert.equal(cells[1], "opencode-sync\nfeature/jitter");
  assert.equal(cells[2], "claude-sonnet-4-5");
  assert.equal(cells[3], "3"); // messages
  assert.equal(cells[4], "20k"); // 18,234 + 2,211 tokens
  assert.equal(cells[5], "$0.0832");
  assert.equal(await page.locator("#count").innerText(), "3 sessions");
  const options = await page.locator("#project option").allTextContents();
  assert.deepEqual(options.slice(1).sort(), ["opencode-sync (2)", "webapp (1)"]);
  await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-sessions.png"), fullPage: true });

  // Full-text search finds a word only a message holds, and says where.
  await page.locator("#search").fill("jittered");
  await waitUntil(page, "one search hit", () => document.querySelectorAll("#sessions tbody tr").length === 1);
  assert.equal(await page.locator("#sessions tbody tr").getAttribute("data-external-id"), "ses_outbox");
  assert.match(await page.locator("#sessions tbody tr .snippet").innerText(), /jittered backoff/);
  assert.match(page.url(), /#\/\?q=jittered$/);
  await page.locator("#search").fill("");
  await waitUntil(page, "all rows back", () => document.querySelectorAll("#sessions tbody tr").length === 3);

  // The project filter, alone and with a search.
  await page.locator("#project").selectOption({ label: "webapp (1)" });
  await waitUntil(page, "one webapp row", () => {
    const rows = document.querySelectorAll("#sessions tbody tr");
    return rows.length === 1 && rows[0].dataset.externalId === "ses_theme";
  });
  await page.locator("#project").selectOption({ label: "opencode-sync (2)" });
  await waitUntil(page, "two opencode-sync rows", () => document.querySelectorAll("#sessions tbody tr").length === 2);
  await page.locator("#search").fill("flaky");
  await waitUntil(page, "one flaky row", () => {
    const rows = document.querySelectorAll("#sessions tbody tr");
    return rows.length === 1 && rows[0].dataset.externalId === "ses_ci";
  });
  await page.locator("#search").fill("");
  await page.locator("#project").selectOption("*");
  await waitUntil(page, "all rows again", () => document.querySelectorAll("#sessions tbody tr").length === 3);
  assert.equal(await rowCount(page), 3);

  // The branch filter: the branches sent, and the sessions without one.
  const branches = await page.locator("#branch option").allTextContents();
  assert.deepEqual(branches.slice(1).sort(), ["(no branch) (1)", "feature/jitter (1)", "main (1)"]);
  await page.locator("#branch").selectOption({ label: "main (1)" });
  await waitUntil(page, "one main row", () => {
    const rows = document.querySelectorAll("#sessions tbody tr");
    return rows.length === 1 && rows[0].dataset.externalId === "ses_ci";
  });
  assert.match(page.url(), /#\/\?branch=main$/);
  await page.locator("#branch").selectOption({ label: "(no branch) (1)" });
  await waitUntil(page, "one row without a branch", () => {
    const rows = document.querySelectorAll("#sessions tbody tr");
    return rows.length === 1 && rows[0].dataset.externalId === "ses_theme";
  });
  await page.locator("#branch").selectOption("*");
  await waitUntil(page, "all rows once more", () => document.querySelectorAll("#sessions tbody tr").length === 3);

  // Clicking the row (not only its link) opens the session.
  await row.locator("td.project-cell").click();
  await waitUntil(page, "the session page", () => document.querySelector("#session-title")?.textContent === "Make the outbox flusher retry with jitter");
  assert.match(page.url(), /#\/session\/js[0-9a-z]{30}$/);
  const messages = page.locator("#messages article.msg");
  assert.equal(await messages.count(), 3);
  assert.deepEqual(await page.locator("#messages article.msg .msg-head .pill").allTextContents(), ["user", "assistant", "assistant"]);

  // Markdown rendered; raw HTML shown as text and never run.
  const user = messages.nth(0);
  assert.equal(await user.locator(".md strong").innerText(), "outbox flusher");
  assert.equal(await user.locator(".md p code").innerText(), "maxToolOutputBytes");
  // An HTML block is shown as code, exactly as typed.
  assert.equal(await user.locator(".md pre code").innerText(), '<script>window.__xss = 1</script> <img src=x onerror="window.__xss = 2">');
  assert.equal(await page.locator("#messages script, #messages img").count(), 0);
  assert.equal(await page.evaluate(() => window.__xss), undefined);

  // The tool calls: name, title, status, arguments, output, exit code, error.
  const bash = page.locator('#messages .tool[data-tool="bash"]');
  assert.equal(await bash.count(), 1);
  await bash.scrollIntoViewIfNeeded();
  assert.equal(await bash.locator(".tool-name").innerText(), "bash");
  assert.equal(await bash.locator(".tool-title").innerText(), "cargo test -p opencode-sync-core outbox");
  assert.match(await bash.locator(".tool-head .facts").innerText(), /exit 0[\s\S]*4\.3 s[\s\S]*completed/);
  assert.ok(await bash.locator("pre.args").isVisible());
  assert.deepEqual(JSON.parse(await bash.locator("pre.args").innerText()), {
    command: "cargo test -p opencode-sync-core outbox",
    description: "Run the outbox tests",
  });
  assert.ok(await bash.locator("pre.output-text").isVisible(), "a short output is open");
  assert.equal(await bash.locator("pre.output-text").innerText(), BASH_OUTPUT);
  const read = page.locator('#messages .tool[data-tool="read"]');
  assert.match(await read.locator(".pill").innerText(), /error/);
  assert.match(await read.locator("pre.error").innerText(), /File not found: .*missing\.rs/);

  // Per-message model, tokens and duration; the final answer's markdown.
  const second = messages.nth(1);
  assert.match(await second.locator(".msg-head").innerText(), /claude-sonnet-4-5[\s\S]*6\.4 s[\s\S]*9,120 in · 388 out/);
  const last = messages.nth(2);
  assert.equal(await last.locator(".md h2").innerText(), "Done");
  assert.equal(await last.locator(".md li").count(), 2);
  assert.match(await last.locator(".md pre code").innerText(), /let delay = rng\.between/);
  assert.equal(await last.locator(".md a").count(), 0, "a javascript: link is not a link");
  assert.match(await page.locator(".meta").innerText(), /Tokens 20,445[\s\S]*Cost \$0\.0832[\s\S]*Messages 3/);
  assert.equal(await page.locator("#session-branch").innerText(), "Branch feature/jitter");

  // Export: a markdown download named after the session, holding its messages.
  const [download] = await Promise.all([page.waitForEvent("download"), page.locator("#export-markdown").click()]);
  assert.equal(download.suggestedFilename(), "Make-the-outbox-flusher-retry-with-jitter.md");
  const saved = path.join(ARTIFACTS, "dashboard-export.md");
  await download.saveAs(saved);
  const exported = fs.readFileSync(saved, "utf8");
  assert.match(exported, /^# Make the outbox flusher retry with jitter\n/);
  assert.match(exported, /- \*\*Branch:\*\* feature\/jitter\n/);
  assert.ok(exported.includes(`## User\n\n${USER_TEXT}\n\n`), exported);
  assert.ok(exported.includes(FINAL_TEXT), exported);
  await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-session.png"), fullPage: true });
  // Dark when the system is.
  const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const light = await background();
  await page.emulateMedia({ colorScheme: "dark" });
  assert.notEqual(await background(), light);
  await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-session-dark.png"), fullPage: true });
  await page.emulateMedia({ colorScheme: "light" });

  // Back to the list, then the usage charts.
  await page.locator("a.back").click();
  await waitUntil(page, "the list again", () => document.querySelectorAll("#sessions tbody tr").length === 3);
  await page.locator('[data-nav="usage"]').click();
  await waitUntil(page, "the usage charts", () => document.querySelectorAll("#chart-tokens-day rect.bar").length > 0);
  // One column per day with sessions (three, or two when two fall on one local day):
  // two series (prompt, completion) in the tokens chart.
  assert.equal(await page.locator("#chart-tokens-day rect.bar").count(), 2 * SEEDED_DAYS);
  assert.equal(await page.locator("#chart-cost-day rect.bar").count(), SEEDED_DAYS);
  assert.equal(await page.locator("#chart-tokens-model rect.bar").count(), 2);
  assert.equal(await page.locator("#chart-cost-model rect.bar").count(), 2);
  assert.equal(await page.locator("#chart-tokens-project rect.bar").count(), 2);
  assert.equal(await page.locator("#chart-cost-project rect.bar").count(), 2);
  const heights = await page.locator("#chart-tokens-day rect.bar").evaluateAll((rs) => rs.map((r) => r.getBBox().height));
  assert.ok(heights.every((hgt) => hgt > 0), `bar heights ${heights}`);
  assert.match(await page.locator(".cards").innerText(), /Sessions\s*3[\s\S]*Messages\s*4[\s\S]*Cost\s*\$0\.4382/i);
  await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-usage.png"), fullPage: true });

  for (const name of ["dashboard-sessions.png", "dashboard-session.png", "dashboard-session-dark.png", "dashboard-usage.png"]) {
    assertPng(path.join(ARTIFACTS, name));
  }
  assert.deepEqual(external, [], "the page fetched nothing outside the server");
  assert.deepEqual(problems, [], "no console errors, page errors or CSP violations");
  await page.close();
});

test("opened under another name, the page asks for an API key and then works", { timeout: 120_000 }, async () => {
  const page = await context.newPage();
  const port = new URL(server.url).port;
  await page.goto(`http://${OTHER_NAME}:${port}/`, { waitUntil: "domcontentloaded" });
  await waitUntil(page, "the key prompt", () => document.querySelector("#keyprompt") !== null);
  assert.match(await page.locator("#keyprompt").innerText(), /API key required[\s\S]*opened on this machine/);
  await page.locator("#apikey").fill("osk_wrong_key_0000");
  await page.locator("#keyprompt button[type=submit]").click();
  await waitUntil(page, "the rejected key", () => /API key rejected/.test(document.querySelector("#keyprompt")?.innerText || ""));
  await page.locator("#apikey").fill(API_KEY);
  await page.locator("#keyprompt button[type=submit]").click();
  await waitUntil(page, "the sessions with the key", () => document.querySelectorAll("#sessions tbody tr").length === 3);
  const shown = await page.locator("#keystate").innerText();
  assert.match(shown, /key osk_/);
  assert.ok(!shown.includes(API_KEY), "the key is shown masked");
  // Forgetting the key brings the prompt back.
  await page.locator("#keystate button").click();
  await waitUntil(page, "the prompt again", () => document.querySelector("#keyprompt") !== null);
  // The 401s this flow needs are the browser's own console errors for failed fetches.
  const unexpected = problems.filter((p) => !/status of 401/.test(p));
  assert.deepEqual(unexpected, []);
  assert.deepEqual(external, []);
  await page.close();
});
