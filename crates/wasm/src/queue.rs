//! The send queue: upserts waiting for the sender, in arrival order, where a newer
//! upsert replaces a queued one with the same key (only the newest state of a session
//! or message is worth sending). Each item names its outbox file, the durable copy.
//! Updates of a session the server already has wait a moment
//! ([`SESSION_UPDATE_HOLD_MS`]) for the next one to replace them.

use std::collections::{BTreeSet, VecDeque};

use opencode_sync_core::outbox::{Kind, Prepared, SESSION_UPDATE_HOLD_MS};

/// One upsert waiting to be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Queued {
    pub key: String,
    pub upsert: Prepared,
    /// Its record in the outbox directory (`None` if writing it failed).
    pub file: Option<String>,
    /// When its key was first queued (ms since the epoch; 0 for leftovers): a newer
    /// upsert of the key keeps it, so a hold never lasts longer than one.
    pub queued_at: f64,
}

/// What the sender should do next.
#[derive(Debug)]
pub enum Next {
    Send(Queued),
    /// Only held session updates are queued: the first is due in this many ms.
    Wait(f64),
    Empty,
}

/// Upserts waiting for the sender.
#[derive(Debug, Default)]
pub struct SendQueue {
    items: VecDeque<Queued>,
    /// Sessions delivered by this process: the server has them, so their updates may wait.
    delivered_sessions: BTreeSet<String>,
}

impl SendQueue {
    /// Adds an upsert queued at `now`. A queued one with the same key is replaced in
    /// place, so the newest state goes out at the older one's turn; the replaced item's
    /// file is returned for deletion.
    pub fn push(&mut self, upsert: Prepared, file: Option<String>, now: f64) -> Option<String> {
        let key = upsert.key();
        match self.items.iter_mut().find(|q| q.key == key) {
            Some(queued) => {
                queued.upsert = upsert;
                std::mem::replace(&mut queued.file, file)
            }
            None => {
                self.items.push_back(Queued {
                    key,
                    upsert,
                    file,
                    queued_at: now,
                });
                None
            }
        }
    }

    /// The next upsert to send at `now`: the first one not held. A session update is
    /// held until [`SESSION_UPDATE_HOLD_MS`] after it was queued when the server has its
    /// session already, unless `hurry` (someone waits for delivery).
    pub fn next(&mut self, now: f64, hurry: bool) -> Next {
        let held = |q: &Queued| {
            !hurry
                && q.upsert.kind == Kind::Session
                && self.delivered_sessions.contains(&q.upsert.id)
                && now < q.queued_at + SESSION_UPDATE_HOLD_MS
        };
        match self.items.iter().position(|q| !held(q)) {
            Some(i) => self.items.remove(i).map_or(Next::Empty, Next::Send),
            None => self
                .items
                .iter()
                .map(|q| q.queued_at + SESSION_UPDATE_HOLD_MS - now)
                .reduce(f64::min)
                .map_or(Next::Empty, Next::Wait),
        }
    }

    /// The server has this upsert now (its session's later updates may wait).
    pub fn delivered(&mut self, item: &Queued) {
        if item.upsert.kind == Kind::Session {
            self.delivered_sessions.insert(item.upsert.id.clone());
        }
    }

    /// Adds records left by an earlier process, ahead of this process's own (they are
    /// older), in the order given. A key already queued here is newer and wins, and
    /// takes the leftover's place.
    pub fn push_leftovers(&mut self, leftovers: Vec<(Prepared, String)>) -> Vec<String> {
        let mut superseded = Vec::new();
        for (upsert, file) in leftovers.into_iter().rev() {
            let key = upsert.key();
            if let Some(i) = self.items.iter().position(|q| q.key == key) {
                if let Some(newer) = self.items.remove(i) {
                    self.items.push_front(newer);
                }
                superseded.push(file);
            } else {
                self.items.push_front(Queued {
                    key,
                    upsert,
                    file: Some(file),
                    queued_at: 0.0,
                });
            }
        }
        superseded
    }

    /// Puts an upsert that could not be delivered back at the front, unless a newer one
    /// with the same key arrived while it was in flight: that one supersedes it and
    /// moves to the front in its place (the newest state goes out at the older one's
    /// turn; a session must reach the server before its messages, which create a bare
    /// session otherwise). Returns whether it was put back.
    pub fn requeue(&mut self, item: Queued) -> bool {
        if let Some(i) = self.items.iter().position(|q| q.key == item.key) {
            if let Some(newer) = self.items.remove(i) {
                self.items.push_front(newer);
            }
            return false;
        }
        self.items.push_front(item);
        true
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencode_sync_core::api::{MessagePayload, SessionPayload};
    use opencode_sync_core::engine::Upsert;
    use serde_json::Value;

    fn session(id: &str, title: &str) -> Prepared {
        Prepared::new(&Upsert::Session(SessionPayload {
            external_id: id.into(),
            title: Some(title.into()),
            ..Default::default()
        }))
    }

    fn message(id: &str) -> Prepared {
        Prepared::new(&Upsert::Message(MessagePayload {
            session_external_id: "ses_1".into(),
            external_id: id.into(),
            ..Default::default()
        }))
    }

    /// The next upsert, holds aside.
    fn pop(q: &mut SendQueue) -> Option<Queued> {
        match q.next(0.0, true) {
            Next::Send(item) => Some(item),
            Next::Wait(_) | Next::Empty => None,
        }
    }

    /// A session's title, a message's id.
    fn titles(q: &mut SendQueue) -> Vec<String> {
        std::iter::from_fn(|| pop(q))
            .map(|item| {
                let payload: Value = serde_json::from_str(&item.upsert.payload).unwrap();
                let shown = payload.get("title").or(payload.get("externalId"));
                shown.and_then(Value::as_str).unwrap().to_owned()
            })
            .collect()
    }

    #[test]
    fn newer_upsert_replaces_queued_one_in_place() {
        let mut q = SendQueue::default();
        q.push(session("ses_1", "first"), None, 0.0);
        q.push(message("msg_1"), None, 0.0);
        q.push(session("ses_1", "second"), None, 0.0);
        q.push(session("ses_2", "other"), None, 0.0);
        assert_eq!(q.len(), 3);
        assert_eq!(titles(&mut q), ["second", "msg_1", "other"]);
        assert!(q.is_empty());
    }

    #[test]
    fn files_follow_their_upserts() {
        let mut q = SendQueue::default();
        assert_eq!(q.push(session("ses_1", "a"), Some("f1".into()), 0.0), None);
        assert_eq!(
            q.push(session("ses_1", "b"), Some("f2".into()), 0.0),
            Some("f1".into())
        );
        let superseded = q.push_leftovers(vec![
            (session("ses_0", "left"), "f0".into()),
            (session("ses_1", "older"), "fx".into()),
        ]);
        assert_eq!(superseded, ["fx"]);
        let order: Vec<Option<String>> =
            std::iter::from_fn(|| pop(&mut q)).map(|i| i.file).collect();
        assert_eq!(order, [Some("f0".into()), Some("f2".into())]);

        // A newer upsert of a leftover's key goes out at the leftover's turn.
        q.push(message("msg_9"), Some("f9".into()), 0.0);
        q.push(session("ses_1", "newest"), Some("f3".into()), 0.0);
        let superseded = q.push_leftovers(vec![
            (session("ses_1", "left"), "f4".into()),
            (message("msg_8"), "f8".into()),
        ]);
        assert_eq!(superseded, ["f4"]);
        let order: Vec<Option<String>> =
            std::iter::from_fn(|| pop(&mut q)).map(|i| i.file).collect();
        assert_eq!(
            order,
            [Some("f3".into()), Some("f8".into()), Some("f9".into())]
        );
    }

    #[test]
    fn requeue_goes_first_unless_superseded() {
        let mut q = SendQueue::default();
        q.push(message("msg_1"), None, 0.0);
        q.push(message("msg_2"), None, 0.0);
        let first = pop(&mut q).unwrap();
        q.requeue(first);
        assert_eq!(titles(&mut q), ["msg_1", "msg_2"]);

        q.push(session("ses_1", "old"), None, 0.0);
        q.push(message("msg_3"), None, 0.0);
        let in_flight = pop(&mut q).unwrap();
        q.push(session("ses_1", "new"), None, 0.0);
        assert!(!q.requeue(in_flight));
        // The newer session upsert goes out at the failed one's turn, before the message.
        assert_eq!(titles(&mut q), ["new", "msg_3"]);
    }

    #[test]
    fn updates_of_a_delivered_session_wait_for_the_next_one() {
        let mut q = SendQueue::default();
        // The first upsert of a session goes at once.
        q.push(session("ses_1", "created"), None, 1000.0);
        let Next::Send(first) = q.next(1000.0, false) else {
            panic!("the first upsert of a session is never held");
        };
        q.delivered(&first);
        // Its updates wait; messages do not, and a newer update replaces a held one
        // without restarting the wait.
        q.push(session("ses_1", "totals"), None, 2000.0);
        q.push(message("msg_1"), None, 2100.0);
        q.push(session("ses_1", "final totals"), None, 2500.0);
        let Next::Send(m) = q.next(2600.0, false) else {
            panic!("a message is never held");
        };
        assert_eq!(m.key, "message:msg_1");
        match q.next(2600.0, false) {
            Next::Wait(ms) => assert_eq!(ms, 400.0),
            other => panic!("expected a wait, got {other:?}"),
        }
        assert_eq!(q.len(), 1);
        let Next::Send(update) = q.next(3000.0, false) else {
            panic!("due after the hold");
        };
        assert!(update.upsert.payload.contains("final totals"));
        assert!(matches!(q.next(3000.0, false), Next::Empty));

        // Someone waiting for delivery ends the hold; another session is not held.
        q.push(session("ses_1", "again"), None, 4000.0);
        q.push(session("ses_2", "new"), None, 4000.0);
        let Next::Send(other) = q.next(4000.0, false) else {
            panic!("a session the server has not seen is not held");
        };
        assert_eq!(other.key, "session:ses_2");
        assert!(matches!(q.next(4000.0, true), Next::Send(_)));
    }
}
