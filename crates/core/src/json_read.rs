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
//! with serde_json's own algorithm (see [`Reader::number`]: not always the nearest
//! `f64`, but bit for bit what serde_json gives), and arbitrary JSON (tool arguments,
//! the config file, server answers) becomes a [`Value`] equal to serde_json's, so that
//! the plugin's wasm has no serde_json parser at all (serialization stays serde's).
//! Nothing here panics on bad input, and skipped values allocate nothing (unless nested
//! past 128 levels).

use std::borrow::Cow;

use serde_json::{Map, Number, Value};

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

/// A [`Value`] nests less deep than this (serde_json's recursion limit: its 128th
/// nested container is an error). Skipped values have no limit, as in serde_json.
const MAX_DEPTH: u32 = 128;

/// A JSON number as serde_json's parser classifies it: a non-negative integer that fits
/// a `u64`, a negative one that fits an `i64`, or else (fractions, exponents, `-0`,
/// integers too long for 64 bits) an `f64`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    U64(u64),
    I64(i64),
    F64(f64),
}

/// Whether `acc * 10 + digit` would overflow `max` (serde_json's `overflow!`).
fn overflows<T>(acc: T, digit: T, max: T) -> bool
where
    T: Copy + PartialOrd + std::ops::Div<Output = T> + std::ops::Rem<Output = T> + From<u8>,
{
    let ten = T::from(10);
    acc >= max / ten && (acc > max / ten || digit > max % ten)
}

/// `10^n` as the `f64` nearest to it, ties to even (what serde_json's table of literals
/// `1e0..=1e308` holds), for `n <= 308`. Computed rather than tabled or parsed with
/// `str::parse`, whose tables cost the wasm more than this: `5^n` exactly in 32-bit
/// limbs, its top 64 bits (the lowest one set if anything below them is) converted to
/// `f64` (one correct rounding), times `2^n` and the bits dropped (exact).
fn pow10(n: u32) -> f64 {
    // 5^308 < 2^716.
    let mut limbs = [0u32; 23];
    limbs[0] = 1;
    let mut len = 1;
    for _ in 0..n.min(308) {
        let mut carry = 0u64;
        for limb in &mut limbs[..len] {
            let v = u64::from(*limb) * 5 + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry != 0 && len < limbs.len() {
            limbs[len] = carry as u32;
            len += 1;
        }
    }
    let bit = |i: usize| limbs.get(i / 32).is_some_and(|l| l >> (i % 32) & 1 == 1);
    let top = limbs[len - 1];
    let bits = 32 * len - top.leading_zeros() as usize;
    let dropped = bits.saturating_sub(64);
    let mut high = (dropped..bits)
        .rev()
        .fold(0u64, |acc, i| acc << 1 | u64::from(bit(i)));
    if (0..dropped).any(bit) {
        high |= 1;
    }
    // 2^(n + dropped) <= 2^(308 + 652): a normal f64.
    let scale = f64::from_bits((n.min(308) as u64 + dropped as u64 + 1023) << 52);
    high as f64 * scale
}

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
    pub fn peek(&mut self) -> Option<u8> {
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

    /// The next byte if it is a digit, as its value.
    fn digit(&self) -> Option<u8> {
        self.byte().filter(u8::is_ascii_digit).map(|b| b - b'0')
    }

    /// Reads a number exactly as serde_json does (without its `float_roundtrip`
    /// feature): the digits go into a `u64` significand until it would overflow (later
    /// integer digits only scale it, later fraction digits are dropped), and the result
    /// is the significand times or divided by a power of ten. `1e400` is an error.
    pub fn number(&mut self) -> Result<Num> {
        let positive = match self.peek() {
            Some(b'-') => {
                self.pos += 1;
                false
            }
            Some(b'0'..=b'9') => true,
            _ => return Err(self.error("expected a number")),
        };
        let mut significand: u64 = match self.digit() {
            Some(0) => {
                self.pos += 1;
                if self.digit().is_some() {
                    return Err(self.error("invalid number"));
                }
                0
            }
            Some(d) => {
                self.pos += 1;
                u64::from(d)
            }
            None => return Err(self.error("invalid number")),
        };
        let mut exponent: i32 = 0;
        // Integer digits past what a u64 holds only scale it (serde_json's long integer).
        let mut long = false;
        while let Some(d) = self.digit() {
            self.pos += 1;
            let d = u64::from(d);
            if long || overflows(significand, d, u64::MAX) {
                long = true;
                exponent = exponent.saturating_add(1);
            } else {
                significand = significand * 10 + d;
            }
        }
        let mut float = long;
        if self.byte() == Some(b'.') {
            self.pos += 1;
            float = true;
            if self.digit().is_none() {
                return Err(self.error("invalid number"));
            }
            // Fraction digits past what a u64 holds are dropped.
            let mut full = false;
            while let Some(d) = self.digit() {
                self.pos += 1;
                let d = u64::from(d);
                if full || overflows(significand, d, u64::MAX) {
                    full = true;
                } else {
                    significand = significand * 10 + d;
                    exponent -= 1;
                }
            }
        }
        if let Some(b'e' | b'E') = self.byte() {
            self.pos += 1;
            float = true;
            let positive_exp = match self.byte() {
                Some(b'-') => {
                    self.pos += 1;
                    false
                }
                Some(b'+') => {
                    self.pos += 1;
                    true
                }
                _ => true,
            };
            let Some(first) = self.digit() else {
                return Err(self.error("invalid number"));
            };
            self.pos += 1;
            let mut exp = i32::from(first);
            while let Some(d) = self.digit() {
                self.pos += 1;
                let d = i32::from(d);
                if overflows(exp, d, i32::MAX) {
                    // An exponent past i32: out of range, or zero.
                    if significand != 0 && positive_exp {
                        return Err(self.error("number out of range"));
                    }
                    while self.digit().is_some() {
                        self.pos += 1;
                    }
                    return Ok(Num::F64(if positive { 0.0 } else { -0.0 }));
                }
                exp = exp * 10 + d;
            }
            exponent = if positive_exp {
                exponent.saturating_add(exp)
            } else {
                exponent.saturating_sub(exp)
            };
        }
        if !float {
            if positive {
                return Ok(Num::U64(significand));
            }
            // `-0` and integers below i64::MIN are floats.
            let negated = (significand as i64).wrapping_neg();
            return Ok(if negated >= 0 {
                Num::F64(-(significand as f64))
            } else {
                Num::I64(negated)
            });
        }
        let f = self.f64_from_parts(significand, exponent)?;
        Ok(Num::F64(if positive { f } else { -f }))
    }

    /// serde_json's `f64_from_parts`: `significand * 10^exponent`, one rounding step
    /// per power (so not always the nearest `f64`: the same one serde_json gives).
    fn f64_from_parts(&self, significand: u64, mut exponent: i32) -> Result<f64> {
        let mut f = significand as f64;
        loop {
            let magnitude = exponent.unsigned_abs();
            if magnitude <= 308 {
                let pow = pow10(magnitude);
                if exponent >= 0 {
                    f *= pow;
                    if f.is_infinite() {
                        return Err(self.error("number out of range"));
                    }
                } else {
                    f /= pow;
                }
                return Ok(f);
            }
            if f == 0.0 {
                return Ok(f);
            }
            if exponent >= 0 {
                return Err(self.error("number out of range"));
            }
            f /= 1e308;
            exponent += 308;
        }
    }

    /// Reads a number as `f64`, as serde_json does for an `f64` field (an integer is
    /// converted, rounding past 2^53).
    pub fn f64(&mut self) -> Result<f64> {
        Ok(match self.number()? {
            Num::U64(n) => n as f64,
            Num::I64(n) => n as f64,
            Num::F64(f) => f,
        })
    }

    /// Reads an integer, as serde_json does for an integer field: a number with a
    /// fraction or exponent (even `1.0`), `-0` or one out of `T`'s range is an error.
    pub fn integer<T: TryFrom<u64> + TryFrom<i64>>(&mut self) -> Result<T> {
        let at = self.pos;
        let out = match self.number()? {
            Num::U64(n) => T::try_from(n).ok(),
            Num::I64(n) => T::try_from(n).ok(),
            Num::F64(_) => None,
        };
        out.ok_or(Error {
            what: "expected an integer in range",
            at,
        })
    }

    /// Reads `true` or `false`.
    pub fn bool(&mut self) -> Result<bool> {
        match self.peek() {
            Some(b't') => self.literal("true").map(|()| true),
            Some(b'f') => self.literal("false").map(|()| false),
            _ => Err(self.error("expected a boolean")),
        }
    }

    /// Reads any value as the [`Value`] serde_json would make of it (same numbers,
    /// same key order, a repeated key keeping its first place and its last value, and
    /// no more than 127 nested containers).
    pub fn value(&mut self) -> Result<Value> {
        self.value_within(MAX_DEPTH)
    }

    /// A [`Value`] inside `depth - 1` more containers at most.
    fn value_within(&mut self, depth: u32) -> Result<Value> {
        Ok(match self.peek() {
            Some(b'{' | b'[') if depth <= 1 => return Err(self.error("nested too deep")),
            Some(b'{') => {
                let mut map = Map::new();
                self.object_keys(&mut |r, key| {
                    let value = r.value_within(depth - 1)?;
                    map.insert(key.to_owned(), value);
                    Ok(())
                })?;
                Value::Object(map)
            }
            Some(b'[') => {
                let mut items = Vec::new();
                self.array(&mut |r| {
                    items.push(r.value_within(depth - 1)?);
                    Ok(())
                })?;
                Value::Array(items)
            }
            Some(b'"') => Value::String(self.str()?.into_owned()),
            Some(b't' | b'f') => Value::Bool(self.bool()?),
            Some(b'n') => {
                self.literal("null")?;
                Value::Null
            }
            _ => match self.number()? {
                Num::U64(n) => Value::from(n),
                Num::I64(n) => Value::from(n),
                Num::F64(f) => Value::Number(
                    Number::from_f64(f).ok_or_else(|| self.error("number out of range"))?,
                ),
            },
        })
    }

    /// Skips any value and returns its text, as serde_json's `RawValue` does (see
    /// [`Reader::skip`]).
    pub fn raw(&mut self) -> Result<&'a str> {
        self.peek();
        let start = self.pos;
        self.skip()?;
        self.slice(start)
    }

    /// Skips any value, checking its syntax as serde_json's `IgnoredAny` does (a lone
    /// surrogate passes, and there is no nesting limit); no recursion, and no
    /// allocation unless nested past 128 levels.
    pub fn skip(&mut self) -> Result<()> {
        // The open containers, innermost in the lowest bit (1: an object); each further
        // 128 levels push the word on `spilled`.
        let mut open: u128 = 0;
        let mut spilled: Vec<u128> = Vec::new();
        let mut depth = 0u32;
        loop {
            match self.peek() {
                Some(c @ (b'{' | b'[')) => {
                    self.pos += 1;
                    let close = if c == b'{' { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.pos += 1;
                    } else {
                        if depth > 0 && depth.is_multiple_of(128) {
                            spilled.push(open);
                        }
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
                if depth > 0 && depth.is_multiple_of(128) {
                    open = spilled.pop().unwrap_or_default();
                }
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

/// Integers, as serde_json reads integer fields (see [`Reader::integer`]).
macro_rules! decode_integers {
    ($($t:ty),*) => {$(
        impl Decode for $t {
            fn decode(r: &mut Reader<'_>) -> Result<Self> {
                r.integer()
            }
        }
    )*};
}
decode_integers!(u32, u64, i64);

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
        // Deep nesting in a skipped value: no recursion, and (as serde_json's
        // `IgnoredAny`) no limit.
        let deep = |n: usize| format!("{{\"x\": {}{}}}", "[".repeat(n), "]".repeat(n));
        type Ignored = std::collections::HashMap<String, serde::de::IgnoredAny>;
        for n in [100, 127, 128, 129, 256, 257, 100_000] {
            assert!(from_str::<Pair>(&deep(n)).is_ok(), "{n}");
            assert!(serde_json::from_str::<Ignored>(&deep(n)).is_ok(), "{n}");
            let cut = deep(n);
            let cut = &cut[..cut.len() - 2];
            assert!(from_str::<Pair>(cut).is_err(), "{n}");
        }
        let mixed = format!("{{\"x\": {}1{}}}", "[{\"k\":".repeat(300), "}]".repeat(300));
        assert!(from_str::<Pair>(&mixed).is_ok());
        let wrong = format!("{{\"x\": {}1{}}}", "[{\"k\":".repeat(300), "]}".repeat(300));
        assert!(from_str::<Pair>(&wrong).is_err());
    }

    /// Both parsers agree on `text`: both fail, or both give the same value, down to
    /// key order, number kinds and float bits (`to_string` shows all three).
    fn same_as_serde(text: &str) -> std::result::Result<(), String> {
        let ours = from_str::<Value>(text).map(|v| v.to_string());
        let theirs = serde_json::from_str::<Value>(text).map(|v| v.to_string());
        match (ours, theirs) {
            (Ok(a), Ok(b)) if a == b => Ok(()),
            (Err(_), Err(_)) => Ok(()),
            (a, b) => Err(format!("{text:?}: ours {a:?}, serde_json {b:?}")),
        }
    }

    #[test]
    fn values_read_as_serde_json_reads_them() {
        for text in [
            r#"{"command": "echo \"hi\"", "n": [1, 2.5, null], "o": {}}"#,
            r#"{"a": 1, "b": 2, "a": 3}"#,
            r#"{"z": {"y": [true, false, null, "x", -1, 18446744073709551615, -9223372036854775808]}}"#,
            r#"[18446744073709551616, -9223372036854775809, -0, 0, 1.0, 1e2, -0.0]"#,
            r#"{"\u00e9": "\ud83d\ude00"}"#,
            r#"["\ud800"]"#,
            "[1,]",
            "{\"a\" 1}",
            "[",
            "nul",
            " [ ] ",
        ] {
            same_as_serde(text).unwrap();
        }
        // serde_json refuses a 128th nested container, and so does this.
        for n in [126, 127, 128, 129] {
            let deep = format!("{}{}", "[".repeat(n), "]".repeat(n));
            same_as_serde(&deep).unwrap();
            let deep = format!("{}1{}", "{\"k\":".repeat(n), "}".repeat(n));
            same_as_serde(&deep).unwrap();
        }
    }

    #[test]
    fn numbers_read_as_serde_json_reads_them() {
        for text in [
            "0",
            "-0",
            "-0.0",
            "0e5",
            "-0e-5",
            "0e999999999999",
            "1e999999999999",
            "-1e-999999999999",
            "5e-324",
            "2e-324",
            "1e-400",
            "4.9e-324",
            "1e308",
            "1.7976931348623157e308",
            "1.7976931348623159e308",
            "1e309",
            "-1e309",
            "2.2250738585072011e-308",
            "2.2250738585072014e-308",
            "123456789012345678901234567890",
            "18446744073709551615",
            "18446744073709551616",
            "18446744073709551616.5",
            "18446744073709551615.5",
            "184467440737095516150",
            "-9223372036854775808",
            "-9223372036854775809",
            "0.1",
            "0.30000000000000004",
            "3.141592653589793238462643383",
            "1E+2",
            "1e-2",
            "12.5E3",
            "9007199254740993",
            "0.000000000000000000000000000001",
            "1e2147483647",
            "1e2147483648",
            "0e2147483648",
            "1e-2147483648",
            "1.5e-2147483647",
            "00",
            "01",
            "-",
            "1.",
            ".1",
            "1e",
            "1e+",
            "+1",
            "1.e3",
            "-a",
        ] {
            same_as_serde(text).unwrap();
        }
        // Every power of ten serde_json keeps in its table.
        for n in 0..=330 {
            same_as_serde(&format!("1e{n}")).unwrap();
            same_as_serde(&format!("-7e-{n}")).unwrap();
            same_as_serde(&format!("[1.25e{n}]")).unwrap();
        }
    }

    proptest::proptest! {
        /// 17 significant digits (enough to round-trip any f64), and the shortest form.
        #[test]
        fn floats_match_serde_json(bits in proptest::prelude::any::<u64>()) {
            let f = f64::from_bits(bits);
            if f.is_finite() {
                same_as_serde(&format!("{f:.16e}")).map_err(TestCaseError::fail)?;
                same_as_serde(&json!(f).to_string()).map_err(TestCaseError::fail)?;
                let ours = number(&format!("{f:.16e}")).map(f64::to_bits);
                let theirs = serde_json::from_str::<f64>(&format!("{f:.16e}")).map(f64::to_bits);
                proptest::prop_assert_eq!(ours.ok(), theirs.ok());
            }
        }

        /// Number-shaped text of every length and exponent.
        #[test]
        fn number_text_matches_serde_json(
            text in "-?(0|[1-9][0-9]{0,24})(\\.[0-9]{1,24})?([eE][+-]?[0-9]{1,4})?"
        ) {
            same_as_serde(&text).map_err(TestCaseError::fail)?;
            let ours = number(&text).map(f64::to_bits);
            let theirs = serde_json::from_str::<f64>(&text).map(f64::to_bits);
            proptest::prop_assert_eq!(ours.ok(), theirs.ok());
        }

        /// Any JSON serde_json writes (compact or pretty), read back as serde_json reads
        /// it (which, for floats, is not always the value written).
        #[test]
        fn arbitrary_values_match_serde_json(v in arb_value()) {
            same_as_serde(&v.to_string()).map_err(TestCaseError::fail)?;
            let pretty = serde_json::to_string_pretty(&v).unwrap_or_default();
            same_as_serde(&pretty).map_err(TestCaseError::fail)?;
        }

        /// Cut or altered JSON: both refuse it, or both read the same value.
        #[test]
        fn damaged_values_match_serde_json(
            v in arb_value(),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
            at in proptest::prelude::any::<proptest::sample::Index>(),
            byte in proptest::sample::select(&b"{}[],:\"\\0-.e nu"[..]),
        ) {
            let text = v.to_string();
            let cut_at = cut.index(text.len() + 1);
            if let Some(prefix) = text.get(..cut_at) {
                same_as_serde(prefix).map_err(TestCaseError::fail)?;
            }
            let mut bytes = text.into_bytes();
            let i = at.index(bytes.len());
            bytes[i] = byte;
            if let Ok(altered) = String::from_utf8(bytes) {
                same_as_serde(&altered).map_err(TestCaseError::fail)?;
            }
        }
    }

    use proptest::prelude::{Strategy, TestCaseError};

    fn arb_value() -> impl Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("JSON numbers are finite", |f| f.is_finite())
                .prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::String),
            "[\\\\\"é😀\u{1}\u{2028}a]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::vec(("[a-c]{0,2}|\\PC{0,4}", inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    #[test]
    fn powers_of_ten_are_the_nearest_floats() {
        for n in 0..=308 {
            let literal: f64 = format!("1e{n}").parse().unwrap();
            assert_eq!(pow10(n).to_bits(), literal.to_bits(), "1e{n}");
        }
    }

    #[test]
    fn integers_read_as_serde_json_reads_integer_fields() {
        assert_eq!(from_str::<u32>("4294967295"), Ok(u32::MAX));
        assert_eq!(from_str::<i64>("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(from_str::<u64>("18446744073709551615"), Ok(u64::MAX));
        for bad in ["4294967296", "-1", "1.0", "1e2", "-0", "\"1\"", "null"] {
            assert!(from_str::<u32>(bad).is_err(), "{bad}");
            assert!(serde_json::from_str::<u32>(bad).is_err(), "{bad}");
        }
        for bad in ["9223372036854775808", "-9223372036854775809", "-0", "0.5"] {
            assert!(from_str::<i64>(bad).is_err(), "{bad}");
            assert!(serde_json::from_str::<i64>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn raw_values_are_their_text_at_any_depth() {
        let mut r = Reader::new(r#"  {"a": [1, "\ud800"]} , 2"#);
        assert_eq!(r.raw().unwrap(), r#"{"a": [1, "\ud800"]}"#);
        let deep = format!("{}1{}", "[{\"k\":".repeat(300), "}]".repeat(300));
        assert_eq!(Reader::new(&deep).raw().unwrap(), deep);
        let mut wrong = deep.clone();
        wrong.insert(deep.len() / 2, ']');
        assert!(Reader::new(&wrong).raw().is_err());
        assert!(Reader::new(&deep[..deep.len() - 1]).raw().is_err());
        assert!(Reader::new("").raw().is_err());
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
