//! One row's JSON read leniently, shared by both stores: lossy UTF-8, lone surrogates
//! mended, a wrong-typed field left out, a row that is no message or part turned into a
//! reason; and the bounded list of notes a session collects.

use std::borrow::Cow;

use opencode_sync_core::backfill::{self, RowNote, decode_leaving_out, notes_left_off, push_note};
use opencode_sync_core::json_text::mend_lone_surrogates;
use opencode_sync_core::model::{MessageInfo, PartInfo};
use serde_json::{Map, Value};

/// Parses a `data` column (or a JSON file) as an object, an escaped lone surrogate read
/// as U+FFFD; else says why it is no object.
pub(super) fn parse_object(text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str(&mend_lone_surrogates(text)) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("is JSON but not an object".to_owned()),
        Err(e) => Err(format!("is not valid JSON ({e})")),
    }
}

/// JSON text from raw bytes: lossy UTF-8 (U+FFFD for what is not), and whether it was.
pub(super) fn text_of(bytes: &[u8]) -> (Cow<'_, str>, bool) {
    let text = String::from_utf8_lossy(bytes);
    let lossy = matches!(text, Cow::Owned(_));
    (text, lossy)
}

/// A `data` column or file as an object, and a note on its text when it was not UTF-8;
/// `Err(why)` when it cannot be read at all.
pub(super) fn data_object(
    what: &str,
    bytes: &[u8],
) -> Result<(Map<String, Value>, Option<String>), String> {
    let (text, lossy) = text_of(bytes);
    let obj = parse_object(&text).map_err(|why| format!("{what} {why}"))?;
    let note = lossy.then(|| format!("{what} is not valid UTF-8: read with U+FFFD in its place"));
    Ok((obj, note))
}

/// A message's data with its ids folded in: `Err(why)` when it is not a message OpenCode
/// writes (which must not be sent: it would land in a session `""`), else the message
/// and the fields left out for their type. The message always belongs to `session_id`,
/// whatever its data says.
pub(super) fn message_of(
    mut obj: Map<String, Value>,
    id: &str,
    session_id: &str,
) -> Result<(MessageInfo, Vec<String>), String> {
    obj.insert("id".into(), Value::String(id.to_owned()));
    obj.insert("sessionID".into(), Value::String(session_id.to_owned()));
    let (info, left_out) = decode_leaving_out::<MessageInfo>(obj)
        .ok_or_else(|| "data is not an OpenCode message".to_owned())?;
    if !backfill::is_message(&info) {
        return Err("data is not an OpenCode message (no user or assistant role)".to_owned());
    }
    Ok((info, left_out))
}

/// A part's data with its ids folded in, and the fields left out for their type.
pub(super) fn part_of(
    mut obj: Map<String, Value>,
    id: &str,
    message_id: &str,
    session_id: &str,
) -> Result<(PartInfo, Vec<String>), String> {
    obj.insert("id".into(), Value::String(id.to_owned()));
    obj.insert("messageID".into(), Value::String(message_id.to_owned()));
    obj.insert("sessionID".into(), Value::String(session_id.to_owned()));
    decode_leaving_out::<PartInfo>(obj).ok_or_else(|| "data is not an OpenCode part".to_owned())
}

/// The reasons a row was read in part, as one note's text.
pub(super) fn left_out_text(left_out: &[String]) -> Option<String> {
    (!left_out.is_empty()).then(|| {
        format!(
            "data field{} {} of the wrong type left out",
            if left_out.len() == 1 { "" } else { "s" },
            left_out.join(", ")
        )
    })
}

/// Collects a session's notes, bounded by [`MAX_NOTES`].
#[derive(Debug, Default)]
pub(super) struct Notes {
    list: Vec<RowNote>,
    pub(super) over: usize,
}

impl Notes {
    pub(super) fn push(&mut self, note: RowNote) {
        push_note(&mut self.list, &mut self.over, note);
    }

    /// A note for a row read in part, when there is anything to say.
    pub(super) fn partly(&mut self, table: &str, id: &str, session_id: &str, reasons: Vec<String>) {
        if !reasons.is_empty() {
            self.push(RowNote::partly_read(
                table,
                Some(id),
                Some(session_id),
                reasons.join("; "),
            ));
        }
    }

    pub(super) fn skipped(
        &mut self,
        table: &str,
        id: Option<&str>,
        session_id: Option<&str>,
        why: String,
    ) {
        self.push(RowNote::skipped(table, id, session_id, why));
    }

    pub(super) fn finish(mut self, session_id: Option<&str>) -> Vec<RowNote> {
        self.list.extend(notes_left_off(self.over, session_id));
        self.list
    }
}
