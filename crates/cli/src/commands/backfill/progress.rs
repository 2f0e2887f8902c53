//! Progress on stderr while a backfill sends: a bar with counts and rate on a terminal,
//! a plain line every few seconds otherwise (logs, CI), nothing for `--json` or a dry run.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Plain progress lines (when stderr is not a terminal) at most this often.
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Counts and rate, on a progress bar (terminal) or as plain lines.
pub(super) struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    started: Instant,
    last_line: Instant,
    pub(super) sessions: u64,
    total: u64,
    pub(super) messages: u64,
    pub(super) tools: u64,
}

impl Progress {
    pub(super) fn new(total: usize, json: bool, dry_run: bool) -> Self {
        let tty = std::io::stderr().is_terminal();
        let bar = (tty && !dry_run).then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(total as u64),
                ProgressDrawTarget::stderr_with_hz(10),
            );
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} sessions  {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        let now = Instant::now();
        Self {
            bar,
            plain: !tty && !json && !dry_run,
            started: now,
            last_line: now,
            sessions: 0,
            total: total as u64,
            messages: 0,
            tools: 0,
        }
    }

    fn rate(&self) -> f64 {
        let secs = self.started.elapsed().as_secs_f64();
        if secs > 0.0 {
            self.messages as f64 / secs
        } else {
            0.0
        }
    }

    fn text(&self) -> String {
        format!(
            "{} messages, {} tool calls, {:.0} messages/s",
            self.messages,
            self.tools,
            self.rate()
        )
    }

    pub(super) fn update(&mut self) {
        if let Some(bar) = &self.bar {
            bar.set_position(self.sessions);
            bar.set_message(self.text());
        } else if self.plain && self.last_line.elapsed() >= PLAIN_PROGRESS_EVERY {
            self.last_line = Instant::now();
            eprintln!(
                "sync: {}/{} sessions, {}",
                self.sessions,
                self.total,
                self.text()
            );
        }
    }

    pub(super) fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    pub(super) fn status(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(text.to_owned()),
            None if self.plain => eprintln!("sync: {text}"),
            None => {}
        }
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
