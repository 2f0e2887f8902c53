//! JSON read into this crate's types as `serde_json` reads it, except that a struct is
//! read only from a JSON object: an array where an object belongs is a value of the
//! wrong type, as it is for every other type here (see [`crate::model`]), not a list of
//! the struct's fields in declaration order.
//!
//! Why it exists: serde's derived structs also accept that positional form, so
//! `serde_json` compiles a second reader into every struct's parser (half of it, none of
//! which OpenCode or the OpenSync API ever needs): 25 KB of the plugin's wasm. The parser
//! stays `serde_json`'s and the types stay declared through serde's derives; [`Objects`]
//! only asks the deserializer for a map wherever a struct asks for a struct, at every
//! depth (through `Option`, sequences, map values), and passes everything else on
//! unchanged.
//!
//! Every front end reads OpenCode's data and the records through here (live sync and
//! backfill read the same facts). `serde_json::Value` needs none of it: it never asks
//! for a struct.

use serde::Deserialize;
use serde::de::{
    DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use serde_json::Value;

/// `text` read as `T`, as `serde_json::from_str` reads it but for structs from arrays.
pub fn from_str<'a, T: Deserialize<'a>>(text: &'a str) -> serde_json::Result<T> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = T::deserialize(Objects(&mut de))?;
    de.end()?;
    Ok(value)
}

/// `value` read as `T`, as `serde_json::from_value` reads it but for structs from arrays.
pub fn from_value<T: DeserializeOwned>(value: Value) -> serde_json::Result<T> {
    T::deserialize(Objects(value))
}

/// A deserializer whose structs are read from maps only (see the module docs); what it
/// hands on (map values, sequence elements, an `Option`'s content) is read the same way.
#[derive(Debug)]
pub struct Objects<D>(pub D);

/// A visitor, seed or access handed on, with every deserializer it meets in [`Objects`].
#[derive(Debug)]
struct Inside<T>(T);

macro_rules! forward_deserialize {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            self.0.$method(Inside(visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Objects<D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_option deserialize_unit deserialize_seq deserialize_map
        deserialize_identifier deserialize_ignored_any
    }

    /// The one change: a struct is a map.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_map(Inside(visitor))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_unit_struct(name, Inside(visitor))
    }

    /// Also how `serde_json::value::RawValue` asks for its text (by its name).
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_newtype_struct(name, Inside(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple(len, Inside(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple_struct(name, len, Inside(visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, Inside(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty))*) => {$(
        fn $method<E: serde::de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.0.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Inside<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.expecting(f)
    }

    forward_visit! {
        visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64)
        visit_i128(i128) visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64)
        visit_u128(u128) visit_f32(f32) visit_f64(f64) visit_char(char) visit_str(&str)
        visit_borrowed_str(&'de str) visit_string(String) visit_bytes(&[u8])
        visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_none()
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.visit_some(Objects(d))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.visit_newtype_struct(Objects(d))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.0.visit_seq(Inside(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(Inside(map))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.0.visit_enum(Inside(data))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Inside<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Objects(d))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Inside<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(Inside(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Inside<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(Inside(seed))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.0.next_value_seed(Inside(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Inside<A> {
    type Error = A::Error;
    type Variant = Inside<A::Variant>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), A::Error> {
        let (value, variant) = self.0.variant_seed(Inside(seed))?;
        Ok((value, Inside(variant)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Inside<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.0.newtype_variant_seed(Inside(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, Inside(visitor))
    }

    /// A struct variant's fields as the deserializer reads them (no type here has one).
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.0.struct_variant(fields, Inside(visitor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, MessageInfo, PartInfo, SessionInfo};
    use serde_json::json;
    use serde_json::value::RawValue;

    #[derive(Debug, Deserialize)]
    struct Borrowed<'a> {
        #[serde(borrow)]
        raw: &'a RawValue,
        #[serde(borrow)]
        name: std::borrow::Cow<'a, str>,
        kind: Kind,
        list: Vec<Inner>,
        maybe: Option<Inner>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Session,
        Message,
    }

    #[derive(Debug, Default, PartialEq, Deserialize)]
    #[serde(default)]
    struct Inner {
        n: u64,
        s: Option<String>,
    }

    /// Every text read here as serde_json reads it: the same value or the same error.
    fn same_as_serde_json<T: DeserializeOwned + PartialEq + std::fmt::Debug>(text: &str) {
        let ours = from_str::<T>(text);
        let theirs = serde_json::from_str::<T>(text);
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{text}"),
            _ => panic!("{text}: {ours:?} vs {theirs:?}"),
        }
        if let Ok(value) = serde_json::from_str::<Value>(text) {
            let ours = from_value::<T>(value.clone());
            let theirs = serde_json::from_value::<T>(value);
            match (&ours, &theirs) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{text}"),
                _ => panic!("{text}: {ours:?} vs {theirs:?}"),
            }
        }
    }

    #[test]
    fn objects_are_read_as_plain_serde_json_would() {
        let text = r#"{"raw": {"a": [1, "x"]}, "name": "n\u00e9", "kind": "message",
            "list": [{"n": 1}, {"s": "x", "extra": [1]}], "maybe": null}"#;
        let ours: Borrowed<'_> = from_str(text).unwrap();
        let theirs: Borrowed<'_> = serde_json::from_str(text).unwrap();
        assert_eq!(ours.raw.get(), r#"{"a": [1, "x"]}"#);
        assert_eq!(
            (
                ours.raw.get(),
                &ours.name,
                &ours.kind,
                &ours.list,
                &ours.maybe
            ),
            (
                theirs.raw.get(),
                &theirs.name,
                &theirs.kind,
                &theirs.list,
                &theirs.maybe
            )
        );
        assert!(
            matches!(from_str::<Borrowed<'_>>(r#"{"raw": 1, "name": "plain", "kind": "session", "list": []}"#),
            Ok(b) if matches!(b.name, std::borrow::Cow::Borrowed("plain")))
        );
        for text in [
            r#"{"id": "s", "title": null, "tokens": {"input": 1, "cache": {"read": 2}}, "x": {}}"#,
            r#"{"id": 5}"#,
            r#"{"id": "s", "cost": "0.1"}"#,
            r#"{"id": "s", "time": {"created": null}}"#,
            r#"{"id": "a", "id": "b"}"#,
            r#"{"id": "s"} x"#,
            r#"{"id": "s""#,
            "5",
            "null",
        ] {
            same_as_serde_json::<SessionInfo>(text);
            same_as_serde_json::<Option<SessionInfo>>(text);
        }
        for text in [
            r#"{"id": "m", "role": "user", "model": {"providerID": "p", "modelID": "m1"}, "error": {"name": "E", "data": [1.5, null]}}"#,
            r#"{"id": "m", "tokens": {"cache": 3}}"#,
        ] {
            same_as_serde_json::<MessageInfo>(text);
        }
        same_as_serde_json::<Vec<PartInfo>>(
            r#"[{"id": "p", "type": "tool", "state": {"status": "completed", "input": {"x": [1]}, "metadata": {"exit": 3}, "time": {"start": null}}}]"#,
        );
        let event = json!({"type": "message.part.updated", "properties": {"part": {"id": "p", "type": "text", "text": "hi"}}});
        same_as_serde_json::<Event>(&event.to_string());
    }

    #[test]
    fn a_struct_is_never_read_from_an_array() {
        assert!(
            serde_json::from_str::<Inner>("[1, \"x\"]").is_ok(),
            "serde's own"
        );
        let err = from_str::<Inner>("[1, \"x\"]").unwrap_err().to_string();
        assert!(
            err.starts_with("invalid type: sequence, expected struct Inner at line 1 "),
            "{err}"
        );
        assert!(from_str::<Vec<Inner>>("[[1]]").is_err());
        assert!(from_str::<Option<Inner>>("[1]").is_err());
        assert!(from_value::<SessionInfo>(json!(["s", null])).is_err());
        assert!(
            from_str::<Event>(r#"{"type": "session.updated", "properties": {"info": ["s"]}}"#)
                .is_err()
        );
        assert_eq!(from_str::<Vec<u64>>("[1, 2]").unwrap(), [1, 2]);
    }
}
