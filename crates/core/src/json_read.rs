//! A small pull reader for JSON text, and the [`Decode`] trait the types of
//! [`crate::model`] implement with it. It exists for the size of the wasm plugin: serde's
//! derived `Deserialize` compiles one copy of serde_json's parser per type and field type
//! (about a third of the module), where this reader is one copy for every type.
//!
//! It reads exactly what serde_json + `#[derive(Deserialize)]` accepted before (an
//! array of field values for a struct included): a value
//! of the wrong type, a duplicate field, a missing required field, malformed or trailing
//! text is an error (the engine then ignores the input); `null` reads as `None` for an
//! `Option`, and as an error for other types but [`Value`]; unknown fields are skipped,
//! checked for syntax only (as serde_json's `IgnoredAny` does). Strings are unescaped
//! (`\uXXXX` surrogate pairs included; a lone surrogate is an error), numbers are read
//! as `f64` the way serde_json reads them, and arbitrary JSON (tool arguments) becomes a
//! [`Value`] through serde_json itself. Nothing here panics on bad input, and skipped
//! values allocate nothing.

use std::borrow::Cow;

use serde_json::Value;

/// Why JSON text did not decode, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {at}")]
pub struct Error {
    /// What was wrong.
    pub what: &'static str,
    /// Byte offset into the text.
    pub at: usize,
}

pub type Result<T> = std::result::Result<T, Error>;

/// Skipped values nest at most this deep (serde_json's recursion limit).
const MAX_DEPTH: u32 = 128;

/// A type read from JSON text by hand.
pub trait Decode: Sized {
    /// Reads one value of this type at the reader's position.
    fn decode(r: &mut Reader<'_>) -> Result<Self>;
}

/// Decodes a whole JSON text: one value, then nothing but whitespace.
pub fn from_str<T: Decode>(text: &str) -> Result<T> {
    let mut r = Reader::new(text);
    let value = T::decode(&mut r)?;
    match r.peek() {
        None => Ok(value),
        Some(_) => Err(r.error("trailing characters")),
    }
}

/// Decodes a [`Value`] (through its JSON text: the one decoder for every source).
pub fn from_value<T: Decode>(value: &Value) -> Result<T> {
    from_str(&value.to_string())
}

/// A position in JSON text.
#[derive(Debug)]
pub struct Reader<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(text: &'a str) -> Self {
        Self { text, pos: 0 }
    }

    /// An error at the current position.
    pub fn error(&self, what: &'static str) -> Error {
        Error { what, at: self.pos }
    }

    /// Reads a `T`.
    pub fn read<T: Decode>(&mut self) -> Result<T> {
        T::decode(self)
    }

    /// Reads a `T` into `slot` (one copy of this per type, not one per field).
    #[inline(never)]
    pub fn read_into<T: Decode>(&mut self, slot: &mut T) -> Result<()> {
        *slot = T::decode(self)?;
        Ok(())
    }

    fn byte(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.byte() {
            self.pos += 1;
        }
        self.byte()
    }

    /// Consumes `byte` (after whitespace), or fails.
    fn eat(&mut self, byte: u8, what: &'static str) -> Result<()> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    /// Consumes the rest of a literal whose first byte was seen.
    fn literal(&mut self, word: &str) -> Result<()> {
        match self.text.get(self.pos..) {
            Some(rest) if rest.starts_with(word) => {
                self.pos += word.len();
                Ok(())
            }
            _ => Err(self.error("expected a value")),
        }
    }

    /// Consumes a `null` if one comes next.
    pub fn null(&mut self) -> Result<bool> {
        if self.peek() != Some(b'n') {
            return Ok(false);
        }
        self.literal("null")?;
        Ok(true)
    }

    /// Reads an object, calling `field` with each key (the reader then at its value,
    /// which `field` must read or skip). Duplicate keys are the caller's business.
    pub fn object_keys(
        &mut self,
        field: &mut dyn FnMut(&mut Self, &str) -> Result<()>,
    ) -> Result<()> {
        self.eat(b'{', "expected an object")?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            let key = self.str()?;
            self.eat(b':', "expected `:`")?;
            field(self, &key)?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.error("expected `,` or `}`")),
            }
        }
    }

    /// Reads an object whose known keys are `names` (at most 32): `field` gets the
    /// index of each known key present and reads its value; other keys are skipped. A
    /// known key given twice is an error. As serde's derive does, an array is read as
    /// the values of the first fields, in order.
    pub fn object(
        &mut self,
        names: &[&str],
        field: &mut dyn FnMut(&mut Self, usize) -> Result<()>,
    ) -> Result<()> {
        if self.peek() == Some(b'[') {
            let mut i = 0;
            return self.array(&mut |r| {
                if i == names.len() {
                    return Err(r.error("too many elements"));
                }
                i += 1;
                field(r, i - 1)
            });
        }
        let mut seen = 0u32;
        self.object_keys(&mut |r, key| match names.iter().position(|n| *n == key) {
            Some(i) => {
                let bit = 1u32.checked_shl(u32::try_from(i).unwrap_or(u32::MAX));
                let bit = bit.unwrap_or(0);
                if seen & bit != 0 {
                    return Err(r.error("duplicate field"));
                }
                seen |= bit;
                field(r, i)
            }
            None => r.skip(),
        })
    }

    /// Reads an array, calling `item` at each element (which it must read).
    pub fn array(&mut self, item: &mut dyn FnMut(&mut Self) -> Result<()>) -> Result<()> {
        self.eat(b'[', "expected an array")?;
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            item(self)?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.error("expected `,` or `]`")),
            }
        }
    }

    /// Reads a string, unescaped: borrowed from the text unless it has escapes.
    pub fn str(&mut self) -> Result<Cow<'a, str>> {
        self.eat(b'"', "expected a string")?;
        let mut owned: Option<String> = None;
        let mut run = self.pos;
        loop {
            self.skip_plain_text();
            match self.byte() {
                Some(b'"') => {
                    let tail = self.slice(run)?;
                    self.pos += 1;
                    return Ok(match owned {
                        None => Cow::Borrowed(tail),
                        Some(mut s) => {
                            s.push_str(tail);
                            Cow::Owned(s)
                        }
                    });
                }
                Some(b'\\') => {
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(self.slice(run)?);
                    self.pos += 1;
                    s.push(self.escape()?);
                    run = self.pos;
                }
                Some(0..0x20) => return Err(self.error("control character in string")),
                Some(_) => self.pos += 1,
                None => return Err(self.error("unterminated string")),
            }
        }
    }

    /// Moves to the next byte in a string that is not plain text: a quote, a
    /// backslash or a control character (or to the end).
    fn skip_plain_text(&mut self) {
        let rest = self.text.as_bytes().get(self.pos..).unwrap_or_default();
        self.pos += rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
            .unwrap_or(rest.len());
    }

    /// The text from `start` to the current position (both at ASCII bytes).
    fn slice(&self, start: usize) -> Result<&'a str> {
        self.text
            .get(start..self.pos)
            .ok_or_else(|| self.error("invalid position"))
    }

    /// The character of an escape whose backslash was consumed.
    fn escape(&mut self) -> Result<char> {
        let c = self
            .byte()
            .ok_or_else(|| self.error("unterminated string"))?;
        self.pos += 1;
        Ok(match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.hex4()?;
                let code = match hi {
                    0xD800..=0xDBFF => {
                        if self
                            .text
                            .get(self.pos..)
                            .is_some_and(|r| r.starts_with("\\u"))
                        {
                            self.pos += 2;
                        } else {
                            return Err(self.error("lone surrogate in string"));
                        }
                        let lo = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&lo) {
                            return Err(self.error("lone surrogate in string"));
                        }
                        0x1_0000 + (((hi - 0xD800) << 10) | (lo - 0xDC00))
                    }
                    _ => hi,
                };
                return char::from_u32(code).ok_or_else(|| self.error("lone surrogate in string"));
            }
            _ => return Err(self.error("invalid escape")),
        })
    }

    /// Four hex digits, as after `\u`.
    fn hex4(&mut self) -> Result<u32> {
        let digits = self
            .text
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.error("unterminated string"))?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.error("invalid escape"));
        }
        self.pos += 4;
        u32::from_str_radix(digits, 16).map_err(|_| self.error("invalid escape"))
    }

    /// Skips a string (its opening quote consumed), checking escapes as serde_json does
    /// for ignored values (a lone surrogate passes).
    fn skip_str(&mut self) -> Result<()> {
        loop {
            self.skip_plain_text();
            match self.byte() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.byte() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 1;
                        }
                        Some(b'u') => {
                            self.pos += 1;
                            self.hex4()?;
                        }
                        _ => return Err(self.error("invalid escape")),
                    }
                }
                Some(0..0x20) => return Err(self.error("control character in string")),
                Some(_) => self.pos += 1,
                None => return Err(self.error("unterminated string")),
            }
        }
    }

    /// Consumes a number (JSON's grammar), returning where it starts.
    fn skip_number(&mut self) -> Result<usize> {
        let start = self.pos;
        if self.byte() == Some(b'-') {
            self.pos += 1;
        }
        match self.byte() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("invalid number")),
        }
        if self.byte() == Some(b'.') {
            self.pos += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.byte() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.byte() {
                self.pos += 1;
            }
            self.some_digits()?;
        }
        Ok(start)
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.byte() {
            self.pos += 1;
        }
    }

    fn some_digits(&mut self) -> Result<()> {
        if !matches!(self.byte(), Some(b'0'..=b'9')) {
            return Err(self.error("invalid number"));
        }
        self.digits();
        Ok(())
    }

    /// Reads a number as `f64`, the way serde_json does (an integer is exact up to
    /// 2^53, `1e400` is an error).
    pub fn f64(&mut self) -> Result<f64> {
        if !matches!(self.peek(), Some(b'-' | b'0'..=b'9')) {
            return Err(self.error("expected a number"));
        }
        let start = self.skip_number()?;
        let text = self.slice(start)?;
        let (negative, digits) = match text.strip_prefix('-') {
            Some(digits) => (true, digits),
            None => (false, text),
        };
        // Integers of up to 15 digits (timestamps, token counts): exact, no second parse.
        if digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit()) {
            let n = digits
                .bytes()
                .fold(0u64, |n, b| n * 10 + u64::from(b - b'0')) as f64;
            return Ok(if negative { -n } else { n });
        }
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Number(n)) => n.as_f64().ok_or_else(|| self.error("invalid number")),
            _ => Err(self.error("number out of range")),
        }
    }

    /// Reads `true` or `false`.
    pub fn bool(&mut self) -> Result<bool> {
        match self.peek() {
            Some(b't') => self.literal("true").map(|()| true),
            Some(b'f') => self.literal("false").map(|()| false),
            _ => Err(self.error("expected a boolean")),
        }
    }

    /// Reads any value as a [`Value`] (serde_json parses the skipped text).
    pub fn value(&mut self) -> Result<Value> {
        self.peek();
        let start = self.pos;
        self.skip()?;
        serde_json::from_str(self.slice(start)?).map_err(|_| Error {
            what: "invalid value",
            at: start,
        })
    }

    /// Skips any value, checking its syntax; no recursion, no allocation.
    pub fn skip(&mut self) -> Result<()> {
        // The open containers, innermost in the lowest bit (1: an object).
        let mut open: u128 = 0;
        let mut depth = 0u32;
        loop {
            match self.peek() {
                Some(c @ (b'{' | b'[')) => {
                    self.pos += 1;
                    if depth == MAX_DEPTH {
                        return Err(self.error("nested too deep"));
                    }
                    let close = if c == b'{' { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.pos += 1;
                    } else {
                        open = (open << 1) | u128::from(c == b'{');
                        depth += 1;
                        if c == b'{' {
                            self.skip_key()?;
                        }
                        continue;
                    }
                }
                Some(b'"') => {
                    self.pos += 1;
                    self.skip_str()?;
                }
                Some(b'-' | b'0'..=b'9') => {
                    self.skip_number()?;
                }
                Some(b't') => self.literal("true")?,
                Some(b'f') => self.literal("false")?,
                Some(b'n') => self.literal("null")?,
                _ => return Err(self.error("expected a value")),
            }
            // A value ended: close what it ends, or go on to the next one.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                let in_object = open & 1 == 1;
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        if in_object {
                            self.skip_key()?;
                        }
                        break;
                    }
                    Some(b'}') if in_object => {}
                    Some(b']') if !in_object => {}
                    _ => return Err(self.error("expected `,` or the end of a container")),
                }
                self.pos += 1;
                open >>= 1;
                depth -= 1;
            }
        }
    }

    /// Skips `"key":` in an object being skipped.
    fn skip_key(&mut self) -> Result<()> {
        self.eat(b'"', "expected a key")?;
        self.skip_str()?;
        self.eat(b':', "expected `:`")
    }
}

impl Decode for String {
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.str().map(Cow::into_owned)
    }
}

impl Decode for f64 {
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.f64()
    }
}

impl Decode for bool {
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.bool()
    }
}

impl Decode for Value {
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.value()
    }
}

/// `null` is `None`.
impl<T: Decode> Decode for Option<T> {
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        if r.null()? {
            Ok(None)
        } else {
            T::decode(r).map(Some)
        }
    }
}

impl<T: Decode> Decode for Vec<T> {
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let mut items = Vec::new();
        r.array(&mut |r| {
            items.push(T::decode(r)?);
            Ok(())
        })?;
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn string(text: &str) -> Result<String> {
        from_str(text)
    }

    fn number(text: &str) -> Result<f64> {
        from_str(text)
    }

    #[test]
    fn string_escapes() {
        assert_eq!(string(r#""plain""#).unwrap(), "plain");
        assert_eq!(
            string(r#""a\nb\"c\\d\/e\tf\rg\bh\fi""#).unwrap(),
            "a\nb\"c\\d/e\tf\rg\u{8}h\u{c}i"
        );
        assert_eq!(string(r#""\u00e9\u2713 ✓""#).unwrap(), "é✓ ✓");
        assert_eq!(string(r#""\ud83d\ude00!""#).unwrap(), "😀!");
        assert_eq!(string(r#""\uD83D\uDE00""#).unwrap(), "😀");
        assert_eq!(string(r#""\u0000""#).unwrap(), "\0");
        // Lone or reversed surrogates, bad escapes, raw control characters.
        for bad in [
            r#""\ud83d""#,
            r#""\ud83dx""#,
            r#""\ud83d\n""#,
            r#""\ud83d\u0041""#,
            r#""\ude00""#,
            r#""\u12""#,
            r#""\u12g4""#,
            r#""\x""#,
            "\"a\nb\"",
            "\"tab\there\"",
            r#""open"#,
            r#""\"#,
        ] {
            assert!(string(bad).is_err(), "{bad}");
        }
        // Every escape serde_json writes comes back.
        let text = "secret=ghp_0123 \"quoted\" \\ \u{1} \u{1f} é 😀 \u{2028}";
        assert_eq!(string(&json!(text).to_string()).unwrap(), text);
    }

    #[test]
    fn skipped_strings_are_checked_like_serde_json() {
        #[derive(Debug)]
        struct Nothing;
        impl Decode for Nothing {
            fn decode(r: &mut Reader<'_>) -> Result<Self> {
                r.object(&[], &mut |_, _| Ok(())).map(|()| Nothing)
            }
        }
        // A lone surrogate in an ignored value passes (as with `IgnoredAny`).
        assert!(from_str::<Nothing>(r#"{"x": "\ud800", "y": ["\ude00"]}"#).is_ok());
        assert!(from_str::<Nothing>(r#"{"x": "\q"}"#).is_err());
        assert!(from_str::<Nothing>(r#"{"x": "\u12"}"#).is_err());
        assert!(from_str::<Nothing>("{\"x\": \"a\u{1}\"}").is_err());
    }

    #[test]
    fn numbers() {
        for (text, want) in [
            ("0", 0.0_f64),
            ("-0", -0.0),
            ("7", 7.0),
            ("-12", -12.0),
            ("1780000000000", 1_780_000_000_000.0),
            ("123456789012345678", 123_456_789_012_345_680.0),
            ("18446744073709551616", 18_446_744_073_709_552_000.0),
            ("0.5", 0.5),
            ("-0.00072", -0.00072),
            ("1e3", 1000.0),
            ("1E+3", 1000.0),
            ("2.5e-3", 0.0025),
            ("1e-400", 0.0),
            (" 42 ", 42.0),
        ] {
            let got = number(text).unwrap();
            assert_eq!(got.to_bits(), want.to_bits(), "{text}");
            let serde: f64 = serde_json::from_str(text).unwrap();
            assert_eq!(
                got.to_bits(),
                serde.to_bits(),
                "{text} as serde_json reads it"
            );
        }
        for bad in [
            "", "-", "+1", "1.", ".5", "1e", "1e+", "01", "1e400", "NaN", "\"1\"", "null", "1 2",
            "0x10",
        ] {
            assert!(number(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn null_is_none_only_for_options() {
        assert_eq!(from_str::<Option<String>>("null").unwrap(), None);
        assert_eq!(from_str::<Option<f64>>(" null ").unwrap(), None);
        assert_eq!(from_str::<Option<bool>>("true").unwrap(), Some(true));
        assert_eq!(from_str::<Option<Value>>("null").unwrap(), None);
        assert_eq!(from_str::<Value>("null").unwrap(), Value::Null);
        assert!(from_str::<String>("null").is_err());
        assert!(from_str::<f64>("null").is_err());
        assert!(from_str::<Option<String>>("nul").is_err());
    }

    #[test]
    fn wrong_types_are_errors() {
        assert!(from_str::<String>("5").is_err());
        assert!(from_str::<f64>("\"5\"").is_err());
        assert!(from_str::<bool>("1").is_err());
        assert!(from_str::<Vec<f64>>("{}").is_err());
        assert!(from_str::<Vec<f64>>("[1, \"2\"]").is_err());
        assert_eq!(from_str::<Vec<f64>>(" [ 1 , 2 ] ").unwrap(), [1.0, 2.0]);
        assert_eq!(from_str::<Vec<f64>>("[]").unwrap(), Vec::<f64>::new());
        assert!(from_str::<Vec<f64>>("[1,]").is_err());
        assert!(from_str::<Vec<f64>>("[1 2]").is_err());
    }

    #[derive(Debug, Default, PartialEq)]
    struct Pair {
        a: Option<String>,
        b: f64,
    }

    impl Decode for Pair {
        fn decode(r: &mut Reader<'_>) -> Result<Self> {
            let mut v = Self::default();
            r.object(&["a", "b"], &mut |r, i| {
                match i {
                    0 => v.a = r.read()?,
                    _ => v.b = r.read()?,
                }
                Ok(())
            })?;
            Ok(v)
        }
    }

    #[test]
    fn objects_skip_unknown_fields_at_any_depth() {
        let text = r#"{"x": {"a": [1, {"b": "\"}"}], "c": {}}, "a": "A", "y": [[], [[null, true, false, -1.5e2]]], "b": 2, "z": "}"}"#;
        assert_eq!(
            from_str::<Pair>(text).unwrap(),
            Pair {
                a: Some("A".into()),
                b: 2.0
            }
        );
        assert_eq!(from_str::<Pair>("{}").unwrap(), Pair::default());
        // serde's derive reads a struct from an array of its fields too.
        assert_eq!(from_str::<Pair>("[]").unwrap(), Pair::default());
        assert_eq!(
            from_str::<Pair>(r#"["x", 3]"#).unwrap(),
            Pair {
                a: Some("x".into()),
                b: 3.0
            }
        );
        assert_eq!(from_str::<Pair>(r#"{"a": null}"#).unwrap(), Pair::default());
        assert_eq!(
            from_str::<Pair>(r#"{"\u0061": "esc"}"#).unwrap().a.unwrap(),
            "esc"
        );
        for bad in [
            r#"{"a": "x", "a": "y"}"#,
            r#"{"b": null}"#,
            r#"{"a": 1}"#,
            r#"{"x": [1, 2}"#,
            r#"{"x": {"k" 1}}"#,
            r#"{"x": {1: 1}}"#,
            r#"{"x": tru}"#,
            r#"{"x": 1,}"#,
            r#"{"x": [1,]}"#,
            r#"{"x": 1} {}"#,
            r#"["a", 1, 2]"#,
            r#"[1]"#,
            "null",
        ] {
            assert!(from_str::<Pair>(bad).is_err(), "{bad}");
        }
        // Deep nesting in a skipped value: no recursion, an error past serde_json's limit.
        let deep = |n: usize| format!("{{\"x\": {}{}}}", "[".repeat(n), "]".repeat(n));
        assert!(from_str::<Pair>(&deep(100)).is_ok());
        assert!(from_str::<Pair>(&deep(100_000)).is_err());
    }

    #[test]
    fn values_are_read_by_serde_json() {
        let text = r#"{"command": "echo \"hi\"", "n": [1, 2.5, null], "o": {}}"#;
        assert_eq!(
            from_str::<Value>(text).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
    }

    #[test]
    fn truncated_input_never_panics() {
        let text = r#"{"a": "x\u00e9\ud83d\ude00y\n", "b": -1.5e3, "z": [true, false, null, {"k": "v"}], "w": {"q": [1]}}"#;
        assert!(from_str::<Pair>(text).is_ok());
        for end in 0..text.len() {
            if let Some(prefix) = text.get(..end) {
                assert!(from_str::<Pair>(prefix).is_err(), "{prefix}");
                let _ = from_str::<Value>(prefix);
                let _ = from_str::<String>(prefix);
            }
        }
    }
}
