//! A serde `Deserializer` over a [`Value`]: the only one the configuration structs are
//! deserialized through (the file, and the reload's merged configuration). An error
//! carries the span of the innermost value (or key) that failed.

use super::value::{Entry, Kind, Value};
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use std::fmt;
use std::ops::Range;

/// A value that does not fit the configuration, and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    /// What is wrong (serde's words: "unknown field `x`, expected one of ...").
    pub message: String,
    /// Byte offsets in the text, when the value came from text.
    pub span: Option<Range<usize>>,
}

impl Error {
    /// Point the error at `span` unless it already points somewhere more precise.
    fn within(mut self, span: &Range<usize>) -> Error {
        if self.span.is_none() && !span.is_empty() {
            self.span = Some(span.clone());
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error {
            message: msg.to_string(),
            span: None,
        }
    }
}

impl<'de> de::Deserializer<'de> for Value {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let span = self.span;
        let r = match self.kind {
            Kind::String(s) => visitor.visit_string(s),
            Kind::Integer(i) => visitor.visit_i64(i),
            Kind::Float(f) => visitor.visit_f64(f),
            Kind::Boolean(b) => visitor.visit_bool(b),
            Kind::Array(a) => visitor.visit_seq(Seq {
                items: a.into_iter(),
            }),
            Kind::Table(t) => visitor.visit_map(Map {
                entries: t.into_iter(),
                value: None,
            }),
            Kind::Absent => visitor.visit_unit(),
        };
        r.map_err(|e| e.within(&span))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.kind {
            Kind::Absent => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    /// Enums are written as the name of a unit variant: `mode = "stateful"`.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let span = self.span;
        let r = match self.kind {
            Kind::String(s) => visitor.visit_enum(s.into_deserializer()),
            _ => Err(de::Error::custom(format!(
                "expected a string (one of the names), found {}",
                Value::at(self.kind, 0..0).type_name()
            ))),
        };
        r.map_err(|e: Error| e.within(&span))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

struct Seq {
    items: std::vec::IntoIter<Value>,
}

impl<'de> de::SeqAccess<'de> for Seq {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.items.next() {
            Some(v) => {
                let span = v.span.clone();
                seed.deserialize(v).map(Some).map_err(|e| e.within(&span))
            }
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Map {
    entries: std::vec::IntoIter<Entry>,
    value: Option<Value>,
}

impl<'de> de::MapAccess<'de> for Map {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some(e) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(e.value);
        let key: de::value::StringDeserializer<Error> = e.key.into_deserializer();
        seed.deserialize(key)
            .map(Some)
            .map_err(|err| err.within(&e.key_span))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let v = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("a value was asked for before its key"))?;
        let span = v.span.clone();
        seed.deserialize(v).map_err(|e| e.within(&span))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}
