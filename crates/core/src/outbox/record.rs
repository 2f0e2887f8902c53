//! What is in a record file: the upsert, when it was queued and its delivery
//! history; encoded as one JSON object and decoded strictly (a corrupt file is an
//! error, never a guess).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::names::name_of;
use crate::api::{Endpoint, Request, Route};
use crate::engine::Upsert;

/// The record format version.
const VERSION: u32 = 1;

/// One queued upsert and its delivery history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    #[serde(rename = "v")]
    pub version: u32,
    pub queued_at: i64,
    pub attempts: u32,
    /// Not to be sent before this time (ms since the epoch).
    pub not_before: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub upsert: Upsert,
}

impl Record {
    pub fn new(upsert: Upsert, now: i64) -> Self {
        Self {
            version: VERSION,
            queued_at: now,
            attempts: 0,
            not_before: 0,
            last_error: None,
            upsert,
        }
    }

    /// The file's text.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a record file. A torn or corrupt file is an error to skip, never a panic.
    pub fn decode(text: &str) -> Result<Self, OutboxError> {
        let record: Self =
            serde_json::from_str(text).map_err(|e| OutboxError::Corrupt(e.to_string()))?;
        if record.version != VERSION {
            return Err(OutboxError::Corrupt(format!(
                "unknown record version {}",
                record.version
            )));
        }
        Ok(record)
    }
}

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

/// An upsert serialized once: its payload's JSON is both the request body and, verbatim,
/// the payload of its record ([`Prepared::record`] writes what [`Record::encode`]
/// writes). A record read back with [`Prepared::decode`] is checked like
/// [`Record::decode`] checks it, except that the payload is only required to be JSON
/// with its ids: it is never parsed into the payload types (what the server makes of it
/// decides, as for any request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub kind: Kind,
    pub session_id: String,
    /// Its own id (session or message id).
    pub id: String,
    /// The payload as JSON.
    pub payload: String,
}

impl Prepared {
    pub fn new(upsert: &Upsert) -> Self {
        let (kind, payload) = match upsert {
            Upsert::Session(s) => (Kind::Session, serde_json::to_string(s)),
            Upsert::Message(m) => (Kind::Message, serde_json::to_string(m)),
        };
        Self {
            kind,
            session_id: upsert.session_id().to_owned(),
            id: upsert.id().to_owned(),
            payload: payload.unwrap_or_else(|_| "{}".to_owned()),
        }
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

    /// As [`file_name`].
    pub fn file_name(&self, queued_at: i64, writer: &str, counter: u64) -> String {
        name_of(
            self.kind.as_str(),
            &self.session_id,
            &self.id,
            queued_at,
            writer,
            counter,
        )
    }

    /// As [`draft_file_name`].
    pub fn draft_file_name(&self, queued_at: i64, writer: &str, counter: u64) -> String {
        name_of(
            "draft",
            &self.session_id,
            &self.id,
            queued_at,
            writer,
            counter,
        )
    }

    /// The record file's text: exactly [`Record::encode`] of a record of this upsert
    /// queued at `queued_at` with these attempts and error (and no `notBefore`).
    pub fn record(&self, queued_at: i64, attempts: u32, last_error: Option<&str>) -> String {
        self.record_with(&History {
            queued_at,
            attempts,
            not_before: 0,
            last_error: last_error.map(str::to_owned),
        })
    }

    /// The record file's text with its delivery history: exactly [`Record::encode`] of
    /// a record of this upsert with that history.
    pub fn record_with(&self, history: &History) -> String {
        let History {
            queued_at,
            attempts,
            not_before,
            last_error,
        } = history;
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

    /// Reads a record file (see the type's docs). A torn or corrupt file is an error.
    /// The fields it does not use are still checked as [`Record::decode`] checks them
    /// (required, of their type, not repeated), so that what one calls corrupt is
    /// corrupt for the other; the payload is borrowed as raw text, never parsed into
    /// the payload types.
    pub fn decode(text: &str) -> Result<Self, OutboxError> {
        Self::decode_with_history(text).map(|(prepared, _)| prepared)
    }

    /// [`Prepared::decode`], with the record's delivery history.
    pub fn decode_with_history(text: &str) -> Result<(Self, History), OutboxError> {
        let corrupt = |e: serde_json::Error| OutboxError::Corrupt(e.to_string());
        let raw: RawRecord<'_> = serde_json::from_str(text).map_err(corrupt)?;
        if raw.version != VERSION {
            return Err(OutboxError::Corrupt(format!(
                "unknown record version {}",
                raw.version
            )));
        }
        let payload = raw.upsert.payload.get();
        let ids: PayloadIds = serde_json::from_str(payload).map_err(corrupt)?;
        let session_id = match raw.upsert.kind {
            Kind::Session => ids.external_id.clone(),
            Kind::Message => ids.session_external_id.ok_or_else(|| {
                OutboxError::Corrupt("missing field `sessionExternalId`".to_owned())
            })?,
        };
        let prepared = Self {
            kind: raw.upsert.kind,
            session_id,
            id: ids.external_id,
            payload: payload.to_owned(),
        };
        let history = History {
            queued_at: raw.queued_at,
            attempts: raw.attempts,
            not_before: raw.not_before,
            last_error: raw.last_error,
        };
        Ok((prepared, history))
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

/// A record with its payload left as text (see [`Prepared::decode`]).
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
