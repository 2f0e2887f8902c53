//! The send queue: upserts waiting for the sender, in arrival order, where a newer
//! upsert replaces a queued one with the same key (only the newest state of a session
//! or message is worth sending). Each item names its outbox file, the durable copy.

use std::collections::VecDeque;

use crate::outbox::Record;

/// One upsert waiting to be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Queued {
    pub key: String,
    /// The upsert with its delivery history (written back into its file after a failed
    /// attempt).
    pub record: Record,
    /// Its record in the outbox directory (`None` if writing it failed).
    pub file: Option<String>,
}

/// What [`SendQueue::requeue`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requeue {
    /// Back at the front.
    Requeued,
    /// A newer upsert of the key is queued: this one is done with.
    Superseded,
    /// The very record is queued already (found in the outbox meanwhile).
    AlreadyQueued,
    /// It replaced an older upsert of the key, whose file (if any) is done with.
    Replaced(Option<String>),
}

/// Whether `a` is a newer upsert of its key than `b`: a record kept only in memory is
/// this process's newest; else the later file name (names sort by queue time).
fn is_newer(a: &Queued, b: &Queued) -> bool {
    match (&a.file, &b.file) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(x), Some(y)) => x >= y,
    }
}

/// Upserts waiting for the sender.
#[derive(Debug, Default)]
pub struct SendQueue {
    items: VecDeque<Queued>,
}

impl SendQueue {
    /// Adds an upsert. A queued one with the same key is replaced in place, so the
    /// newest state goes out at the older one's turn; the replaced item's file is
    /// returned for deletion.
    pub fn push(&mut self, record: Record, file: Option<String>) -> Option<String> {
        let key = record.key();
        match self.items.iter_mut().find(|q| q.key == key) {
            Some(queued) => {
                queued.record = record;
                std::mem::replace(&mut queued.file, file)
            }
            None => {
                self.items.push_back(Queued { key, record, file });
                None
            }
        }
    }

    /// Adds records found in the outbox (left by an earlier process, or queued by
    /// another since the last look), ahead of what is queued, in the order given. Of two
    /// upserts of one key the newer wins (a record written in this process but not to
    /// disk counts as the newest; else the later file name, which sorts by time) and
    /// takes the older one's place; the files of the losers are returned for deletion. A
    /// record queued here already is not added twice.
    pub fn push_leftovers(&mut self, leftovers: Vec<(Record, String)>) -> Vec<String> {
        let mut superseded = Vec::new();
        for (record, file) in leftovers.into_iter().rev() {
            let found = Queued {
                key: record.key(),
                record,
                file: Some(file),
            };
            match self.items.iter().position(|q| q.key == found.key) {
                Some(i) => {
                    let Some(queued) = self.items.remove(i) else {
                        continue;
                    };
                    let (winner, loser) = if is_newer(&queued, &found) {
                        (queued, found)
                    } else {
                        (found, queued)
                    };
                    if loser.file != winner.file
                        && let Some(file) = loser.file
                    {
                        superseded.push(file);
                    }
                    self.items.push_front(winner);
                }
                None => self.items.push_front(found),
            }
        }
        superseded
    }

    /// The queued upsert of `key`, if any.
    pub fn get(&self, key: &str) -> Option<&Queued> {
        self.items.iter().find(|q| q.key == key)
    }

    /// The next upsert to send.
    pub fn pop(&mut self) -> Option<Queued> {
        self.items.pop_front()
    }

    /// The first upsert whose session is `ready`: the sender skips sessions it is
    /// sending already, so that each session's upserts still go out in order.
    pub fn pop_where(&mut self, ready: impl Fn(&str) -> bool) -> Option<Queued> {
        let i = self
            .items
            .iter()
            .position(|q| ready(&q.record.session_id))?;
        self.items.remove(i)
    }

    /// Whether some queued upsert's session is `ready`.
    pub fn any(&self, ready: impl Fn(&str) -> bool) -> bool {
        self.items.iter().any(|q| ready(&q.record.session_id))
    }

    /// Puts an upsert that could not be delivered back at the front, unless a newer one
    /// with the same key arrived while it was out: that one supersedes it and moves to
    /// the front in its place (the newest state goes out at the older one's turn; a
    /// session must reach the server before its messages, which create a bare session
    /// otherwise).
    pub fn requeue(&mut self, item: Queued) -> Requeue {
        if let Some(i) = self.items.iter().position(|q| q.key == item.key)
            && let Some(queued) = self.items.remove(i)
        {
            let same = queued.file.is_some() && queued.file == item.file;
            let outcome = if same {
                Requeue::AlreadyQueued
            } else if is_newer(&queued, &item) {
                Requeue::Superseded
            } else {
                // The item is the newer one after all: it takes the place.
                self.items.push_front(item);
                return Requeue::Replaced(queued.file);
            };
            self.items.push_front(queued);
            return outcome;
        }
        self.items.push_front(item);
        Requeue::Requeued
    }

    /// Moves the queued upsert of `key`, if any, to the front: a newer upsert of a
    /// record that went out without it goes at that record's turn.
    pub fn promote(&mut self, key: &str) {
        if let Some(i) = self.items.iter().position(|q| q.key == key)
            && let Some(item) = self.items.remove(i)
        {
            self.items.push_front(item);
        }
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
    use crate::api::{MessagePayload, SessionPayload};
    use crate::engine::Upsert;
    use serde_json::Value;

    fn session(id: &str, title: &str) -> Record {
        Record::new(
            &Upsert::Session(SessionPayload {
                external_id: id.into(),
                title: Some(title.into()),
                ..Default::default()
            }),
            0,
        )
    }

    fn message(id: &str) -> Record {
        Record::new(
            &Upsert::Message(MessagePayload {
                session_external_id: "ses_1".into(),
                external_id: id.into(),
                ..Default::default()
            }),
            0,
        )
    }

    /// A session's title, a message's id.
    fn titles(q: &mut SendQueue) -> Vec<String> {
        std::iter::from_fn(|| q.pop())
            .map(|item| {
                let payload: Value = serde_json::from_str(&item.record.payload).unwrap();
                let shown = payload.get("title").or(payload.get("externalId"));
                shown.and_then(Value::as_str).unwrap().to_owned()
            })
            .collect()
    }

    #[test]
    fn newer_upsert_replaces_queued_one_in_place() {
        let mut q = SendQueue::default();
        q.push(session("ses_1", "first"), None);
        q.push(message("msg_1"), None);
        q.push(session("ses_1", "second"), None);
        q.push(session("ses_2", "other"), None);
        assert_eq!(q.len(), 3);
        assert_eq!(titles(&mut q), ["second", "msg_1", "other"]);
        assert!(q.is_empty());
    }

    #[test]
    fn files_follow_their_upserts() {
        let mut q = SendQueue::default();
        assert_eq!(q.push(session("ses_1", "a"), Some("f1".into())), None);
        assert_eq!(
            q.push(session("ses_1", "b"), Some("f2".into())),
            Some("f1".into())
        );
        let superseded = q.push_leftovers(vec![
            (session("ses_0", "left"), "e0".into()),
            (session("ses_1", "older"), "ex".into()),
        ]);
        assert_eq!(superseded, ["ex"]);
        let order: Vec<Option<String>> = std::iter::from_fn(|| q.pop()).map(|i| i.file).collect();
        assert_eq!(order, [Some("e0".into()), Some("f2".into())]);

        // A newer upsert of a leftover's key goes out at the leftover's turn.
        q.push(message("msg_9"), Some("f9".into()));
        q.push(session("ses_1", "newest"), Some("f3".into()));
        let superseded = q.push_leftovers(vec![
            (session("ses_1", "left"), "e4".into()),
            (message("msg_8"), "e8".into()),
        ]);
        assert_eq!(superseded, ["e4"]);
        let order: Vec<Option<String>> = std::iter::from_fn(|| q.pop()).map(|i| i.file).collect();
        assert_eq!(
            order,
            [Some("f3".into()), Some("e8".into()), Some("f9".into())]
        );
    }

    #[test]
    fn requeue_goes_first_unless_superseded() {
        let mut q = SendQueue::default();
        q.push(message("msg_1"), None);
        q.push(message("msg_2"), None);
        let first = q.pop().unwrap();
        q.requeue(first);
        assert_eq!(titles(&mut q), ["msg_1", "msg_2"]);

        q.push(session("ses_1", "old"), None);
        q.push(message("msg_3"), None);
        let in_flight = q.pop().unwrap();
        q.push(session("ses_1", "new"), None);
        assert_eq!(q.requeue(in_flight), Requeue::Superseded);
        // The newer session upsert goes out at the failed one's turn, before the message.
        assert_eq!(titles(&mut q), ["new", "msg_3"]);
    }

    #[test]
    fn senders_skip_sessions_being_sent_and_keep_each_sessions_order() {
        let of = |session: &str, id: &str| {
            Record::new(
                &Upsert::Message(MessagePayload {
                    session_external_id: session.into(),
                    external_id: id.into(),
                    ..Default::default()
                }),
                0,
            )
        };
        let mut q = SendQueue::default();
        for (session, id) in [
            ("a", "a1"),
            ("a", "a2"),
            ("b", "b1"),
            ("a", "a3"),
            ("c", "c1"),
        ] {
            q.push(of(session, id), None);
        }
        let id = |item: Option<Queued>| item.map(|i| i.record.id);
        assert_eq!(id(q.pop_where(|s| s != "a")), Some("b1".into()));
        assert!(q.any(|s| s == "c") && !q.any(|s| s == "b"));
        assert_eq!(id(q.pop_where(|s| s != "a")), Some("c1".into()));
        assert_eq!(id(q.pop_where(|s| s != "a")), None, "only a's are left");
        let order: Vec<String> = std::iter::from_fn(|| id(q.pop_where(|_| true))).collect();
        assert_eq!(order, ["a1", "a2", "a3"]);
    }
}
