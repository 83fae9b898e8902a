//! A parsed TOML value with the byte span it came from, and the TOML text of a value
//! (for `netbond import`, which writes `key = value` lines).

use std::fmt;
use std::ops::Range;

/// A value and where it is in the text (an empty span when it did not come from text).
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    /// What the value is.
    pub kind: Kind,
    /// Byte offsets in the parsed text.
    pub span: Range<usize>,
    /// How a table or array came to be, which decides whether a later header or key
    /// may extend it (TOML forbids defining a table twice).
    pub(super) origin: Origin,
}

/// The TOML types netbond's configuration uses (date-times are refused by the parser).
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A string.
    String(String),
    /// An integer.
    Integer(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Boolean(bool),
    /// An array.
    Array(Vec<Value>),
    /// A table, keys in the order written.
    Table(Table),
    /// JSON `null`, only from [`Value::from_json`]: an absent optional value.
    Absent,
}

/// The entries of a table in the order written.
pub type Table = Vec<Entry>;

/// One `key = value` of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key, unquoted.
    pub key: String,
    /// Where the key is written (what an unknown-key error points at).
    pub key_span: Range<usize>,
    /// The value.
    pub value: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    /// A value written in full (`x = ...`, inline tables, arrays): sealed.
    Value,
    /// A table created by the header of a sub-table (`[a.b]` creates `a`).
    Implicit,
    /// A table defined by its own `[header]`.
    Header,
    /// A table created by a dotted key (`a.b = 1` creates `a`).
    Dotted,
    /// An array of tables (`[[a]]`).
    ArrayOfTables,
}

impl Value {
    /// A value not taken from text.
    pub fn new(kind: Kind) -> Value {
        Value::at(kind, 0..0)
    }

    pub(super) fn at(kind: Kind, span: Range<usize>) -> Value {
        Value {
            kind,
            span,
            origin: Origin::Value,
        }
    }

    /// The value for `key` when this is a table that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match &self.kind {
            Kind::Table(t) => t.iter().find(|e| e.key == key).map(|e| &e.value),
            _ => None,
        }
    }

    /// A JSON value as a TOML value (`null` becomes [`Kind::Absent`]), so that what
    /// was serialized to JSON deserializes through the one TOML deserializer.
    pub fn from_json(j: serde_json::Value) -> Value {
        use serde_json::Value as J;
        Value::new(match j {
            J::Null => Kind::Absent,
            J::Bool(b) => Kind::Boolean(b),
            J::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Kind::Integer(i),
                (None, Some(f)) if n.is_f64() => Kind::Float(f),
                // A u64 above i64::MAX: no configuration key takes one; keep it out of range.
                (None, f) => Kind::Float(f.unwrap_or(f64::MAX)),
            },
            J::String(s) => Kind::String(s),
            J::Array(a) => Kind::Array(a.into_iter().map(Value::from_json).collect()),
            J::Object(o) => Kind::Table(
                o.into_iter()
                    .map(|(key, v)| Entry {
                        key,
                        key_span: 0..0,
                        value: Value::from_json(v),
                    })
                    .collect(),
            ),
        })
    }

    /// The TOML type name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::String(_) => "string",
            Kind::Integer(_) => "integer",
            Kind::Float(_) => "float",
            Kind::Boolean(_) => "boolean",
            Kind::Array(_) => "array",
            Kind::Table(_) => "table",
            Kind::Absent => "nothing",
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::new(Kind::String(s.to_string()))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::new(Kind::String(s))
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::new(Kind::Boolean(b))
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::new(Kind::Integer(i))
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::new(Kind::Float(f))
    }
}

impl From<Vec<Value>> for Value {
    fn from(a: Vec<Value>) -> Value {
        Value::new(Kind::Array(a))
    }
}

/// The value as it is written on the right of `key = `: strings in the plainest form
/// that needs no escape, floats always with a fraction or exponent, arrays and tables
/// inline on one line.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::String(s) => write_string(f, s),
            Kind::Integer(i) => write!(f, "{i}"),
            Kind::Float(x) => write_float(f, *x),
            Kind::Boolean(b) => write!(f, "{b}"),
            Kind::Array(a) => {
                f.write_str("[")?;
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Kind::Table(t) => {
                f.write_str("{")?;
                for (i, e) in t.iter().enumerate() {
                    f.write_str(if i > 0 { ", " } else { " " })?;
                    write_key(f, &e.key)?;
                    write!(f, " = {}", e.value)?;
                }
                f.write_str(if t.is_empty() { "}" } else { " }" })
            }
            // Not representable: an empty inline table is the closest "nothing".
            Kind::Absent => f.write_str("{}"),
        }
    }
}

fn write_float(f: &mut fmt::Formatter<'_>, x: f64) -> fmt::Result {
    if x.is_nan() {
        f.write_str("nan")
    } else if x == 0.0 {
        f.write_str(if x.is_sign_negative() { "-0.0" } else { "0.0" })
    } else if x % 1.0 == 0.0 {
        write!(f, "{x}.0")
    } else {
        write!(f, "{x}")
    }
}

fn is_bare(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn write_key(f: &mut fmt::Formatter<'_>, k: &str) -> fmt::Result {
    if !k.is_empty() && k.bytes().all(is_bare) {
        f.write_str(k)
    } else {
        let controls = k.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f);
        if !controls && !k.contains('"') && !k.contains('\\') {
            write_escaped(f, k, false)
        } else if !controls && !k.contains('\'') {
            write!(f, "'{k}'")
        } else {
            write_escaped(f, k, false)
        }
    }
}

/// What a string holds, to choose how to write it.
struct Shape {
    controls: bool,
    backslash: bool,
    newline: bool,
    max_single: usize,
    max_double: usize,
}

fn shape(s: &str) -> Shape {
    let mut sh = Shape {
        controls: false,
        backslash: false,
        newline: false,
        max_single: 0,
        max_double: 0,
    };
    let (mut single, mut double) = (0, 0);
    for b in s.bytes() {
        single = if b == b'\'' { single + 1 } else { 0 };
        double = if b == b'"' { double + 1 } else { 0 };
        sh.max_single = sh.max_single.max(single);
        sh.max_double = sh.max_double.max(double);
        match b {
            b'\\' => sh.backslash = true,
            b'\t' => {}
            b'\n' => sh.newline = true,
            c if c <= 0x1f || c == 0x7f => sh.controls = true,
            _ => {}
        }
    }
    sh
}

/// In order of preference: "basic" without escapes, 'literal', """multi-line""" without
/// escapes, '''multi-line literal''', then a basic string with escapes.
fn write_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    if s.bytes()
        .all(|b| is_bare(b) || matches!(b, b'.' | b'/' | b' ' | b':'))
    {
        return write!(f, "\"{s}\"");
    }
    let sh = shape(s);
    let nl = if sh.newline { "\n" } else { "" };
    if sh.controls {
        write_escaped(f, s, sh.newline)
    } else if !sh.backslash && sh.max_double == 0 && !sh.newline {
        write_escaped(f, s, false)
    } else if sh.max_single == 0 && !sh.newline {
        write!(f, "'{s}'")
    } else if !sh.backslash && sh.max_double <= 2 {
        write_escaped(f, s, true)
    } else if sh.max_single <= 2 {
        write!(f, "'''{nl}{s}'''")
    } else {
        write_escaped(f, s, sh.newline)
    }
}

/// A basic string, multi-line when `multi_line` (then newlines stay as they are).
fn write_escaped(f: &mut fmt::Formatter<'_>, s: &str, multi_line: bool) -> fmt::Result {
    let quote = if multi_line { "\"\"\"" } else { "\"" };
    f.write_str(quote)?;
    if multi_line && s.contains('\n') {
        f.write_str("\n")?;
    }
    write_escaped_body(f, s, multi_line)?;
    f.write_str(quote)
}

fn write_escaped_body(f: &mut fmt::Formatter<'_>, s: &str, multi_line: bool) -> fmt::Result {
    let max_quotes = if multi_line { 2 } else { 0 };
    let mut quotes = 0;
    for c in s.chars() {
        if c == '"' {
            quotes += 1;
            if quotes > max_quotes {
                f.write_str("\\\"")?;
                quotes = 0;
                continue;
            }
        } else {
            quotes = 0;
        }
        match c {
            '\u{8}' => f.write_str("\\b")?,
            '\t' => f.write_str("\\t")?,
            '\n' if !multi_line => f.write_str("\\n")?,
            '\u{c}' => f.write_str("\\f")?,
            '\r' => f.write_str("\\r")?,
            '\\' => f.write_str("\\\\")?,
            c if c != '\n' && (c <= '\u{1f}' || c == '\u{7f}') => write!(f, "\\u{:04X}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    Ok(())
}
