//! The delivery machine with a fake clock and an in-memory file system: unit tests of
//! each rule, and a property test of the whole protocol (two plugin instances and a
//! `sync --flush` sharing one outbox, whatever the server answers).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use serde_json::Value;

use super::mem_fs::MemFs;
use super::*;
use crate::api::{MessagePayload, SessionPayload};
use crate::endpoint::SiteUrl;
use crate::outbox::{AssumeAlive, Record};

const DIR: &str = "/o";

fn endpoint() -> Endpoint {
    Endpoint::new(
        SiteUrl::parse("http://127.0.0.1:9").expect("a loopback URL"),
        crate::ApiKey::parse("osk_0123456789abcdefghijklmnopqrstuv").expect("a key"),
    )
}

fn session(id: &str, title: &str) -> Upsert {
    Upsert::Session(SessionPayload {
        external_id: id.into(),
        title: Some(title.into()),
        ..Default::default()
    })
}

fn message(session: &str, id: &str, text: &str) -> Upsert {
    Upsert::Message(MessagePayload {
        session_external_id: session.into(),
        external_id: id.into(),
        text_content: Some(text.into()),
        ..Default::default()
    })
}

fn sender(writer: &str) -> Delivery {
    Delivery::new(
        Config::default(),
        Some(DiskOutbox::new(DIR.into(), writer.into())),
    )
}

fn retry(after_ms: Option<u64>) -> Outcome {
    Outcome::Retry {
        after_ms,
        reason: "HTTP 503: down".into(),
    }
}

fn delivered() -> Outcome {
    Outcome::Delivered(Value::Null)
}

/// The records queued in the outbox (not claims, spares or quarantine).
fn queued_records(fs: &MemFs) -> Vec<Record> {
    fs.list(DIR)
        .unwrap_or_default()
        .iter()
        .filter(|n| n.ends_with(".json"))
        .filter_map(|n| fs.read(&format!("{DIR}/{n}")))
        .filter_map(|t| Record::decode(&t).ok())
        .collect()
}

fn events(d: &mut Delivery) -> Vec<Event> {
    std::iter::from_fn(|| d.poll_event()).collect()
}

#[test]
fn a_session_goes_before_its_messages_one_request_per_session_at_most_four() {
    let fs = MemFs::default();
    let mut d = sender("aaaaaaaap1");
    let mut upserts = Vec::new();
    for s in 0..6 {
        upserts.push(session(&format!("ses_{s}"), "t"));
        upserts.push(message(&format!("ses_{s}"), &format!("msg_{s}"), "x"));
    }
    d.enqueue(&fs, 1, upserts);
    let sent: Vec<Transmit> = std::iter::from_fn(|| d.poll_transmit(&fs, 2, &endpoint())).collect();
    let keys: Vec<&str> = sent.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "session:ses_0",
            "session:ses_1",
            "session:ses_2",
            "session:ses_3"
        ]
    );
    assert_eq!(d.poll_timeout(2), None, "only an answer can free a place");
    assert_eq!(
        d.handle_answer(&fs, 3, sent[0].id, &delivered(), 0.5),
        Landed::Delivered
    );
    let next = d
        .poll_transmit(&fs, 3, &endpoint())
        .expect("a place is free");
    assert_eq!(next.key, "message:msg_0");
}

#[test]
fn a_newer_upsert_of_a_failed_record_keeps_its_failures() {
    // The session record fails; the session changes meanwhile: its newer record replaces
    // the failed one on disk and must still say why nothing went out (for `status`, even
    // after this process is killed).
    let fs = MemFs::default();
    let mut d = sender("aaaaaaaap1");
    d.enqueue(&fs, 1, vec![session("ses_1", "a")]);
    let first = d.poll_transmit(&fs, 10, &endpoint()).unwrap();
    d.handle_answer(&fs, 20, first.id, &retry(Some(2_000)), 0.5);
    d.enqueue(&fs, 30, vec![session("ses_1", "b")]);
    let records = queued_records(&fs);
    assert_eq!(records.len(), 1, "the newer record replaced the failed one");
    let r = &records[0];
    assert_eq!(r.history.queued_at, 30);
    assert_eq!(r.history.attempts, 1);
    assert_eq!(r.history.last_error.as_deref(), Some("HTTP 503: down"));
    assert_eq!(r.history.not_before, 2_020);

    // The same when the newer upsert arrives while the failing one is being sent.
    let fs = MemFs::default();
    let mut d = sender("aaaaaaaap1");
    d.enqueue(&fs, 1, vec![session("ses_1", "a")]);
    let first = d.poll_transmit(&fs, 10, &endpoint()).unwrap();
    d.handle_answer(&fs, 20, first.id, &retry(None), 0.5);
    let again = d.poll_transmit(&fs, 5_000, &endpoint()).unwrap();
    d.enqueue(&fs, 5_001, vec![session("ses_1", "b")]);
    d.handle_answer(&fs, 5_002, again.id, &retry(None), 0.5);
    let records = queued_records(&fs);
    assert_eq!(records.len(), 1);
    assert!(records[0].history.attempts >= 1, "{:?}", records[0]);
    assert_eq!(
        records[0].history.last_error.as_deref(),
        Some("HTTP 503: down")
    );
}

#[test]
fn a_failure_pauses_every_sender_and_is_written_into_the_record() {
    let fs = MemFs::default();
    let mut d = sender("aaaaaaaap1");
    d.enqueue(&fs, 1, vec![session("ses_1", "a"), session("ses_2", "b")]);
    let first = d.poll_transmit(&fs, 10, &endpoint()).unwrap();
    let second = d.poll_transmit(&fs, 10, &endpoint()).unwrap();
    d.handle_answer(&fs, 20, first.id, &retry(Some(20_000)), 0.5);
    assert_eq!(d.poll_transmit(&fs, 21, &endpoint()), None, "paused");
    assert_eq!(d.poll_timeout(21), Some(20_020), "Retry-After: 20 s");
    // The other request's failure during the pause counts once, and does not shorten it.
    d.handle_answer(&fs, 30, second.id, &retry(None), 0.5);
    assert_eq!(d.poll_timeout(31), Some(20_020));
    // Both records carry the wait the server asked for (the next process honours it).
    let records = queued_records(&fs);
    assert_eq!(records.len(), 2);
    for r in &records {
        assert_eq!(r.history.attempts, 1);
        assert_eq!(r.history.last_error.as_deref(), Some("HTTP 503: down"));
        assert_eq!(r.history.not_before, 20_020, "{r:?}");
    }
    let retrying: Vec<Event> = events(&mut d);
    assert_eq!(
        retrying,
        [Event::Retrying {
            key: "session:ses_1".into(),
            reason: "HTTP 503: down".into(),
            attempt: 1
        }]
    );
    assert!(d.poll_transmit(&fs, 20_020, &endpoint()).is_some());
}

#[test]
fn an_ordinary_backoff_does_not_outlive_the_process() {
    let fs = MemFs::default();
    let mut first = sender("aaaaaaaap1");
    first.enqueue(&fs, 1, vec![session("ses_1", "a")]);
    let t = first.poll_transmit(&fs, 1_000, &endpoint()).unwrap();
    first.handle_answer(&fs, 1_000, t.id, &retry(None), 0.9);
    assert!(first.poll_timeout(1_000).is_some_and(|at| at > 1_000));
    first.close(&fs);
    let record = &queued_records(&fs)[0];
    assert_eq!((record.history.attempts, record.history.not_before), (1, 0));
    let mut next = sender("bbbbbbbbp2");
    next.load_leftovers(&fs, 1_001, &AssumeAlive);
    assert!(
        next.poll_transmit(&fs, 1_001, &endpoint()).is_some(),
        "tried at once"
    );
}

#[test]
fn a_retry_after_outlives_the_process_that_heard_it() {
    let fs = MemFs::default();
    let mut first = sender("aaaaaaaap1");
    first.enqueue(&fs, 1, vec![session("ses_1", "a")]);
    let t = first.poll_transmit(&fs, 1_000, &endpoint()).unwrap();
    first.handle_answer(&fs, 1_000, t.id, &retry(Some(20_000)), 0.5);
    assert_eq!(first.close(&fs), 1);

    // A newer upsert of the same record, queued during the wait, carries it too.
    let mut first = sender("aaaaaaaap1");
    first.load_leftovers(&fs, 1_500, &AssumeAlive);
    first.enqueue(&fs, 1_500, vec![session("ses_1", "newer")]);
    first.close(&fs);
    let records = queued_records(&fs);
    assert_eq!(records.len(), 1, "the newer one supersedes");
    assert_eq!(records[0].history.not_before, 21_000);

    // The next OpenCode, 2.6 s later: nothing goes before the 20 s are up.
    let mut next = sender("bbbbbbbbp2");
    next.load_leftovers(&fs, 3_600, &AssumeAlive);
    next.enqueue(&fs, 3_600, vec![message("ses_2", "msg_1", "new")]);
    assert_eq!(next.poll_transmit(&fs, 3_600, &endpoint()), None);
    assert_eq!(next.poll_timeout(3_600), Some(21_000));
    assert!(next.poll_transmit(&fs, 21_000, &endpoint()).is_some());
}

#[test]
fn a_refused_key_stops_until_resumed_and_is_told_once() {
    let fs = MemFs::default();
    let mut d = sender("aaaaaaaap1");
    d.enqueue(&fs, 1, vec![session("ses_1", "a")]);
    let t = d.poll_transmit(&fs, 1, &endpoint()).unwrap();
    let halted = d.handle_answer(&fs, 2, t.id, &Outcome::AuthFailed("HTTP 401".into()), 0.5);
    assert_eq!(halted, Landed::Halted("HTTP 401".into()));
    assert!(d.auth_failed() && d.settled());
    assert_eq!(d.poll_transmit(&fs, 100_000, &endpoint()), None);
    assert_eq!(d.poll_timeout(3), None);
    assert_eq!(queued_records(&fs).len(), 1, "the record is kept");
    assert_eq!(
        events(&mut d),
        [Event::AuthFailed {
            reason: "HTTP 401".into(),
            first: true
        }]
    );
    d.resume();
    let t = d.poll_transmit(&fs, 5, &endpoint()).unwrap();
    assert_eq!(
        d.handle_answer(&fs, 6, t.id, &delivered(), 0.5),
        Landed::Delivered
    );
    assert!(d.settled());
}

#[test]
fn a_redirect_keeps_the_records_names_itself_once_and_pauses_longest() {
    let fs = MemFs::default();
    let mut d = sender("aaaaaaaap1");
    d.enqueue(&fs, 1, vec![session("ses_1", "a"), session("ses_2", "b")]);
    let a = d.poll_transmit(&fs, 1, &endpoint()).unwrap();
    let b = d.poll_transmit(&fs, 1, &endpoint()).unwrap();
    let reason = crate::api::redirect_reason(307);
    for t in [a, b] {
        d.handle_answer(&fs, 2, t.id, &Outcome::Redirected(reason.clone()), 0.5);
    }
    assert_eq!(d.poll_timeout(3), Some(2 + 60_000));
    let told: Vec<Event> = events(&mut d);
    assert_eq!(told.len(), 1, "{told:?}");
    let records = queued_records(&fs);
    assert_eq!(records.len(), 2);
    assert!(
        records
            .iter()
            .all(|r| r.history.last_error.as_deref() == Some(reason.as_str()))
    );
}

#[test]
fn a_refused_record_is_set_aside_with_its_reason() {
    let fs = MemFs::default();
    let mut d = sender("aaaaaaaap1");
    d.enqueue(&fs, 1, vec![session("ses_1", "a")]);
    let t = d.poll_transmit(&fs, 1, &endpoint()).unwrap();
    let landed = d.handle_answer(&fs, 2, t.id, &Outcome::Rejected("too large".into()), 0.5);
    assert_eq!(landed, Landed::Refused("too large".into()));
    assert!(queued_records(&fs).is_empty());
    let aside = fs.list(&format!("{DIR}/quarantine")).unwrap();
    let kept = fs.read(&format!("{DIR}/quarantine/{}", aside[0])).unwrap();
    let kept = Record::decode(&kept).unwrap();
    assert_eq!(
        (kept.history.attempts, kept.history.last_error.as_deref()),
        (1, Some("too large"))
    );
    assert!(d.settled());
}

/// A file system that refuses every write (read-only, or full).
#[derive(Debug, Default)]
struct ReadOnlyFs(MemFs);

impl Fs for ReadOnlyFs {
    fn read(&self, path: &str) -> Option<String> {
        self.0.read(path)
    }
    fn list(&self, dir: &str) -> Option<Vec<String>> {
        self.0.list(dir)
    }
    fn write(&self, _: &str, _: &str) -> bool {
        false
    }
    fn overwrite(&self, _: &str, _: &str) -> bool {
        false
    }
    fn rename(&self, from: &str, to: &str) -> bool {
        self.0.rename(from, to)
    }
    fn remove(&self, path: &str) -> bool {
        self.0.remove(path)
    }
}

#[test]
fn a_record_that_cannot_be_written_is_kept_in_memory_counted_and_told_once() {
    let fs = ReadOnlyFs::default();
    let mut d = sender("aaaaaaaap1");
    d.enqueue(
        &fs,
        1,
        vec![session("ses_1", "a"), message("ses_1", "m", "x")],
    );
    assert_eq!(d.write_failures(), 2);
    assert_eq!(
        events(&mut d),
        [Event::WriteFailed {
            key: "session:ses_1".into(),
            failures: 1
        }]
    );
    let t = d
        .poll_transmit(&fs, 2, &endpoint())
        .expect("sent from memory");
    d.handle_answer(&fs, 3, t.id, &retry(None), 0.0);
    let t = d.poll_transmit(&fs, 3, &endpoint()).expect("still there");
    assert_eq!(t.key, "session:ses_1");
}

#[test]
fn close_gives_records_in_flight_back_to_the_outbox() {
    let fs = MemFs::default();
    let mut d = sender("aaaaaaaap1");
    d.enqueue(&fs, 1, vec![session("ses_1", "a"), session("ses_2", "b")]);
    let t = d.poll_transmit(&fs, 1, &endpoint()).unwrap();
    assert_eq!(d.close(&fs), 2);
    assert_eq!(queued_records(&fs).len(), 2, "no claim left behind");
    assert_eq!(
        d.handle_answer(&fs, 2, t.id, &delivered(), 0.5),
        Landed::Unknown
    );
    assert_eq!(d.poll_transmit(&fs, 3, &endpoint()), None);
}

// ---------------------------------------------------------------------------------------
// The whole protocol: two plugin instances and a `sync --flush` over one outbox.
// ---------------------------------------------------------------------------------------

/// What the server answers one request with.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Stored,
    Unavailable,
    RateLimited,
    Refused,
    Redirect,
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        6 => Just(Answer::Stored),
        2 => Just(Answer::Unavailable),
        1 => Just(Answer::RateLimited),
        1 => Just(Answer::Refused),
        1 => Just(Answer::Redirect),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    /// Plugin `actor` (0 or 1) writes the next version of a record of its session `s`
    /// (the session record first, then messages 0..3).
    Write {
        actor: usize,
        s: u8,
        m: Option<u8>,
    },
    /// Sender `actor` (0, 1, or 2: the flush) makes the requests it may.
    Poll {
        actor: usize,
    },
    /// The oldest request of `actor` is answered.
    Answer {
        actor: usize,
        answer: Answer,
    },
    /// The flush loads what is in the outbox.
    Load,
    Tick {
        ms: u16,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..2usize, 0..3u8, proptest::option::weighted(0.8, 0..3u8))
            .prop_map(|(actor, s, m)| Op::Write { actor, s, m }),
        3 => (0..3usize).prop_map(|actor| Op::Poll { actor }),
        4 => (0..3usize, answer()).prop_map(|(actor, answer)| Op::Answer { actor, answer }),
        1 => Just(Op::Load),
        1 => (0..20_000u16).prop_map(|ms| Op::Tick { ms }),
    ]
}

/// A record's identity in the simulation: `(key, version)`, carried in its title/text.
type Version = (String, u32);

struct Sim {
    fs: MemFs,
    senders: Vec<Delivery>,
    /// Requests in flight per sender, oldest first, with when they were made.
    pending: Vec<Vec<(Transmit, i64)>>,
    now: i64,
    versions: BTreeMap<String, u32>,
    /// Every record stored by the server, in order.
    stored: Vec<Version>,
    /// Sessions whose session record was written (by their plugin) before any message.
    sessions_started: BTreeSet<u8>,
}

/// A request times out after this: its claim never outlives [`crate::outbox::STALE_CLAIM_MS`].
const REQUEST_TIMEOUT_MS: i64 = 30_000;

impl Sim {
    fn new() -> Self {
        let config = Config {
            // No session waits out another sender's claim here: requests time out first.
            other_sender_wait_ms: i64::MAX / 4,
            ..Config::default()
        };
        let senders = ["aaaaaaaap1", "bbbbbbbbp2", "ccccccccp3"]
            .into_iter()
            .map(|w| Delivery::new(config.clone(), Some(DiskOutbox::new(DIR.into(), w.into()))))
            .collect();
        Self {
            fs: MemFs::default(),
            senders,
            pending: vec![Vec::new(), Vec::new(), Vec::new()],
            now: 1_000_000,
            versions: BTreeMap::new(),
            stored: Vec::new(),
            sessions_started: BTreeSet::new(),
        }
    }

    fn write(&mut self, actor: usize, s: u8, m: Option<u8>) {
        // Each session belongs to one plugin (one OpenCode process): 0 and 2 to the first.
        let s = s * 2 + actor as u8;
        let session_id = format!("ses_{s}");
        if !self.sessions_started.contains(&s) {
            // OpenCode's first event of a session is its creation.
            self.sessions_started.insert(s);
            return self.write(actor, s / 2, None);
        }
        let (key, upsert) = match m {
            None => ("session:".to_owned() + &session_id, None),
            Some(m) => (format!("message:msg_{s}_{m}"), Some(m)),
        };
        let version = self.versions.entry(key.clone()).or_insert(0);
        *version += 1;
        let text = format!("{key}#{version}");
        let upsert = match upsert {
            None => session(&session_id, &text),
            Some(m) => message(&session_id, &format!("msg_{s}_{m}"), &text),
        };
        self.senders[actor].enqueue(&self.fs, self.now, vec![upsert]);
    }

    fn poll(&mut self, actor: usize) {
        while let Some(t) = self.senders[actor].poll_transmit(&self.fs, self.now, &endpoint()) {
            self.pending[actor].push((t, self.now));
        }
    }

    fn answer(&mut self, actor: usize, answer: Answer) {
        if self.pending[actor].is_empty() {
            return;
        }
        let (t, _) = self.pending[actor].remove(0);
        let outcome = match answer {
            Answer::Stored => {
                let body: Value = serde_json::from_str(t.request.body.as_deref().unwrap_or("{}"))
                    .unwrap_or_default();
                let text = body
                    .get("title")
                    .or(body.get("textContent"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let (key, version) = text.split_once('#').expect("a versioned record");
                self.stored
                    .push((key.to_owned(), version.parse().unwrap_or(0)));
                delivered()
            }
            Answer::Unavailable => retry(None),
            Answer::RateLimited => retry(Some(2_000)),
            Answer::Refused => Outcome::Rejected("refused".into()),
            Answer::Redirect => Outcome::Redirected("HTTP 307 redirect".into()),
        };
        self.senders[actor].handle_answer(&self.fs, self.now, t.id, &outcome, 0.5);
    }

    fn tick(&mut self, ms: i64) {
        self.now += ms;
        for actor in 0..3 {
            while self.pending[actor]
                .first()
                .is_some_and(|(_, at)| self.now - at >= REQUEST_TIMEOUT_MS)
            {
                let (t, _) = self.pending[actor].remove(0);
                self.senders[actor].handle_answer(&self.fs, self.now, t.id, &retry(None), 0.5);
            }
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Write { actor, s, m } => self.write(actor, s, m),
            Op::Poll { actor } => self.poll(actor),
            Op::Answer { actor, answer } => self.answer(actor, answer),
            Op::Load => self.senders[2].load_leftovers(&self.fs, self.now, &AssumeAlive),
            Op::Tick { ms } => self.tick(i64::from(ms)),
        }
    }

    /// The server answers everything from now on; every sender (and a flush that loads
    /// the outbox again) goes on until nothing is left.
    fn settle(&mut self) {
        for _ in 0..200 {
            for actor in 0..3 {
                self.senders[actor].resume();
                self.poll(actor);
                while !self.pending[actor].is_empty() {
                    self.answer(actor, Answer::Stored);
                    self.poll(actor);
                }
            }
            self.now += 120_000;
            self.senders[2].load_leftovers(&self.fs, self.now, &AssumeAlive);
            let idle = (0..3).all(|a| self.pending[a].is_empty())
                && (0..3).all(|a| self.senders[a].poll_timeout(self.now).is_none())
                && queued_records(&self.fs).is_empty();
            if idle && (0..3).all(|a| !self.senders[a].has_queued()) {
                return;
            }
        }
    }

    /// The records set aside, by `(key, version)`.
    fn set_aside(&self) -> BTreeSet<Version> {
        self.fs
            .list(&format!("{DIR}/quarantine"))
            .unwrap_or_default()
            .iter()
            .filter_map(|n| self.fs.read(&format!("{DIR}/quarantine/{n}")))
            .filter_map(|t| Record::decode(&t).ok()?.upsert().ok())
            .map(|upsert| {
                let text = match upsert {
                    Upsert::Session(s) => s.title.unwrap_or_default(),
                    Upsert::Message(m) => m.text_content.unwrap_or_default(),
                };
                let (key, version) = text.split_once('#').unwrap_or_default();
                (key.to_owned(), version.parse().unwrap_or(0))
            })
            .collect()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the interleaving and the answers: no record is stored twice, the newest
    /// version of every record is stored or set aside, and no message of a session is
    /// stored before its session record.
    #[test]
    fn two_plugins_and_a_flush_deliver_every_record_once_and_in_order(
        ops in proptest::collection::vec(op(), 1..120)
    ) {
        let mut sim = Sim::new();
        for op in &ops {
            sim.apply(op);
        }
        sim.settle();

        let mut seen = BTreeSet::new();
        for v in &sim.stored {
            prop_assert!(seen.insert(v.clone()), "{v:?} stored twice: {:?}", sim.stored);
        }
        let aside = sim.set_aside();
        for (key, version) in &sim.versions {
            let newest = (key.clone(), *version);
            prop_assert!(
                seen.contains(&newest) || aside.contains(&newest),
                "{newest:?} never arrived: stored {:?}, set aside {aside:?}", sim.stored
            );
        }
        for (i, (key, _)) in sim.stored.iter().enumerate() {
            let Some(rest) = key.strip_prefix("message:msg_") else { continue };
            let s = rest.split('_').next().unwrap_or_default();
            let session_key = format!("session:ses_{s}");
            let session_refused = aside.iter().any(|(k, _)| *k == session_key);
            prop_assert!(
                session_refused || sim.stored[..i].iter().any(|(k, _)| *k == session_key),
                "{key} stored before its session: {:?}", sim.stored
            );
        }
        prop_assert!(queued_records(&sim.fs).is_empty());
    }
}
