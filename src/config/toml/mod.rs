//! netbond's own TOML reader (and the writer `netbond import` uses): a parser to a
//! [`Value`] that keeps each value's byte span, and the one serde `Deserializer` the
//! configuration structs go through, so their `Deserialize` code exists once in the
//! binary and errors point at the line and column of the value or key at fault.

mod de;
mod parse;
mod value;

pub use de::Error as DeError;
pub use parse::{Error as ParseError, MAX_DEPTH};
pub use value::{Entry, Kind, Table, Value};

use std::ops::Range;

/// Why a text is not a valid configuration document, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    /// What is wrong.
    pub message: String,
    /// Byte offsets in the text, when known.
    pub span: Option<Range<usize>>,
}

impl From<ParseError> for Error {
    fn from(e: ParseError) -> Error {
        Error {
            message: e.message,
            span: Some(e.span),
        }
    }
}

impl From<DeError> for Error {
    fn from(e: DeError) -> Error {
        Error {
            message: e.message,
            span: e.span,
        }
    }
}

/// Parse TOML text into a [`Value`] (a table).
pub fn parse(text: &str) -> Result<Value, ParseError> {
    parse::parse(text)
}

/// Parse TOML text and deserialize it into `T`.
pub fn from_str<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Error> {
    Ok(T::deserialize(parse::parse(text)?)?)
}

/// Deserialize `T` from a value (for instance one made by [`Value::from_json`]).
pub fn from_value<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, DeError> {
    T::deserialize(v)
}

#[cfg(test)]
mod tests;
