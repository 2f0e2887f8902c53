//! What is in a record file: the upsert, when it was queued and its delivery
//! history; encoded as one JSON object and decoded strictly (a corrupt file is an
//! error, never a guess).

use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::names::name_of;
use crate::api::{Endpoint, Request, Route};
use crate::engine::Upsert;
use crate::objects;

/// The record format version.
const VERSION: u32 = 1;

/// Which kind of upsert a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Session,
    Message,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Message => "message",
        }
    }
}

/// One queued upsert and its delivery history: the one record type of every sender
/// (the plugin, `sync --flush`, backfill's outbox) and of `status`.
///
/// The upsert is serialized once: its payload's JSON is the request body and, verbatim,
/// the payload in the record file. Reading a record back checks every field of the file
/// (required, of its type, not repeated) but only the ids of the payload: it is never
/// parsed into the payload types on the way to the server (what the server makes of it
/// decides, as for any request); [`Record::upsert`] parses it where it is looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: Kind,
    pub session_id: String,
    /// Its own id (session or message id).
    pub id: String,
    /// The payload as JSON.
    pub payload: String,
    pub history: History,
}

impl Record {
    /// A record of `upsert` queued at `queued_at` (ms since the epoch), never tried.
    pub fn new(upsert: &Upsert, queued_at: i64) -> Self {
        let (kind, payload) = match upsert {
            Upsert::Session(s) => (Kind::Session, serde_json::to_string(s)),
            Upsert::Message(m) => (Kind::Message, serde_json::to_string(m)),
        };
        Self {
            kind,
            session_id: upsert.session_id().to_owned(),
            id: upsert.id().to_owned(),
            payload: payload.unwrap_or_else(|_| "{}".to_owned()),
            history: History {
                queued_at,
                ..History::default()
            },
        }
    }

    /// The same record with this delivery history.
    pub fn with_history(mut self, history: History) -> Self {
        self.history = history;
        self
    }

    /// As [`Upsert::key`].
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.id)
    }

    /// As [`Upsert::request`].
    pub fn request(&self, endpoint: &Endpoint) -> Request {
        let route = match self.kind {
            Kind::Session => Route::Session,
            Kind::Message => Route::Message,
        };
        endpoint.post_json(route, self.payload.clone())
    }

    /// Its file name in the queue (see [`super::file_name`]).
    pub fn file_name(&self, writer: &str, counter: u64) -> String {
        name_of(
            self.kind.as_str(),
            &self.session_id,
            &self.id,
            self.history.queued_at,
            writer,
            counter,
        )
    }

    /// Its file name as a draft (see [`super::draft_file_name`]).
    pub fn draft_file_name(&self, writer: &str, counter: u64) -> String {
        name_of(
            "draft",
            &self.session_id,
            &self.id,
            self.history.queued_at,
            writer,
            counter,
        )
    }

    /// The upsert, parsed from the payload (for those who look at what is queued).
    pub fn upsert(&self) -> Result<Upsert, OutboxError> {
        let corrupt = |e: serde_json::Error| OutboxError::Corrupt(e.to_string());
        Ok(match self.kind {
            Kind::Session => Upsert::Session(objects::from_str(&self.payload).map_err(corrupt)?),
            Kind::Message => Upsert::Message(objects::from_str(&self.payload).map_err(corrupt)?),
        })
    }

    /// The file's text.
    pub fn encode(&self) -> String {
        let History {
            queued_at,
            attempts,
            not_before,
            last_error,
        } = &self.history;
        let mut text = String::with_capacity(self.payload.len() + 128);
        let _ = write!(
            text,
            r#"{{"v":{VERSION},"queuedAt":{queued_at},"attempts":{attempts},"notBefore":{not_before},"#
        );
        if let Some(error) = last_error {
            text.push_str(r#""lastError":"#);
            text.push_str(&serde_json::to_string(error).unwrap_or_default());
            text.push(',');
        }
        let _ = write!(
            text,
            r#""upsert":{{"kind":"{}","payload":{}}}}}"#,
            self.kind.as_str(),
            self.payload
        );
        text
    }

    /// Reads a record file (see the type's docs). A torn or corrupt file is an error to
    /// skip, never a panic.
    pub fn decode(text: &str) -> Result<Self, OutboxError> {
        let corrupt = |e: serde_json::Error| OutboxError::Corrupt(e.to_string());
        let raw: RawRecord<'_> = objects::from_str(text).map_err(corrupt)?;
        if raw.version != VERSION {
            return Err(OutboxError::Corrupt(format!(
                "unknown record version {}",
                raw.version
            )));
        }
        let payload = raw.upsert.payload.get();
        let ids: PayloadIds = objects::from_str(payload).map_err(corrupt)?;
        let session_id = match raw.upsert.kind {
            Kind::Session => ids.external_id.clone(),
            Kind::Message => ids.session_external_id.ok_or_else(|| {
                OutboxError::Corrupt("missing field `sessionExternalId`".to_owned())
            })?,
        };
        Ok(Self {
            kind: raw.upsert.kind,
            session_id,
            id: ids.external_id,
            payload: payload.to_owned(),
            history: History {
                queued_at: raw.queued_at,
                attempts: raw.attempts,
                not_before: raw.not_before,
                last_error: raw.last_error,
            },
        })
    }
}

/// A record's delivery history: when it was queued, how often sending it failed, the
/// last failure, and when it may go again (ms since the epoch; 0: at once).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    pub queued_at: i64,
    pub attempts: u32,
    pub not_before: i64,
    pub last_error: Option<String>,
}

/// A record file with its payload left as text (see [`Record::decode`]).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRecord<'a> {
    #[serde(rename = "v")]
    version: u32,
    queued_at: i64,
    attempts: u32,
    not_before: i64,
    #[serde(default)]
    last_error: Option<String>,
    #[serde(borrow)]
    upsert: RawUpsert<'a>,
}

#[derive(Deserialize)]
struct RawUpsert<'a> {
    kind: Kind,
    #[serde(borrow)]
    payload: &'a RawValue,
}

/// The ids in a payload: `externalId` required, `sessionExternalId` optional.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PayloadIds {
    external_id: String,
    #[serde(default)]
    session_external_id: Option<String>,
}

/// Problems with one record file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboxError {
    #[error("corrupt outbox record: {0}")]
    Corrupt(String),
}
