//! TOML text to a [`Value`] table. TOML 1.0, plus what TOML 1.1 (and so the `toml`
//! crate netbond used before) also accepts: newlines, comments and a trailing comma in
//! inline tables, and the `\e` and `\xHH` escapes. Date-times are refused: no
//! configuration key takes one. Nesting is limited so hostile text cannot exhaust
//! the stack.

use super::value::{Entry, Kind, Origin, Table, Value};
use std::ops::Range;

/// How deep tables and arrays may nest (headers, dotted keys and inline values together).
pub const MAX_DEPTH: usize = 64;

/// A syntax error and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    /// What is wrong.
    pub message: String,
    /// Byte offsets in the text.
    pub span: Range<usize>,
}

type Result<T> = std::result::Result<T, Error>;

/// A key as written, one part of a dotted key.
type Key = (String, Range<usize>);

/// Parse a whole document into its root table.
pub fn parse(text: &str) -> Result<Value> {
    let mut p = Parser {
        s: text,
        // A byte order mark some editors write is not part of the document.
        pos: if text.starts_with('\u{feff}') { 3 } else { 0 },
        depth: 0,
    };
    let mut root = Value {
        kind: Kind::Table(Table::new()),
        span: 0..text.len(),
        origin: Origin::Header,
    };
    // The path of the table the key/value lines go into.
    let mut current: Vec<Key> = Vec::new();
    loop {
        p.skip_blank_lines()?;
        let Some(c) = p.peek() else { break };
        if c == b'[' {
            current = p.header(&mut root)?;
        } else {
            let start = p.pos;
            let keys = p.key()?;
            p.skip_ws();
            if !p.eat(b'=') {
                return Err(p.err_here(
                    "expected `=` after the key (a key and its value are written `key = value`)",
                ));
            }
            p.skip_ws();
            p.depth = current.len() + keys.len();
            if p.depth > MAX_DEPTH {
                return Err(err(
                    format!("tables nest more than {MAX_DEPTH} deep"),
                    start..p.pos,
                ));
            }
            let value = p.value()?;
            let table = table_at(&mut root, &current)
                .ok_or_else(|| err("internal: lost the current table", start..p.pos))?;
            insert_dotted(table, &keys, value)?;
        }
        p.end_of_line()?;
    }
    Ok(root)
}

fn err(message: impl Into<String>, span: Range<usize>) -> Error {
    Error {
        message: message.into(),
        span,
    }
}

fn dotted(keys: &[Key]) -> String {
    keys.iter()
        .map(|k| k.0.as_str())
        .collect::<Vec<_>>()
        .join(".")
}

/// The table at `path` (the last element of an array of tables on the way).
fn table_at<'v>(root: &'v mut Value, path: &[Key]) -> Option<&'v mut Table> {
    let mut v = root;
    for (k, _) in path {
        let Kind::Table(t) = &mut v.kind else {
            return None;
        };
        let next = &mut t.iter_mut().find(|e| e.key == *k)?.value;
        v = if matches!(next.kind, Kind::Array(_)) {
            let Kind::Array(a) = &mut next.kind else {
                return None;
            };
            a.last_mut()?
        } else {
            next
        };
    }
    match &mut v.kind {
        Kind::Table(t) => Some(t),
        _ => None,
    }
}

fn new_table(origin: Origin, span: Range<usize>) -> Value {
    Value {
        kind: Kind::Table(Table::new()),
        span,
        origin,
    }
}

/// Insert `keys = value` into `table`, creating the tables of a dotted key.
/// The index of `key` in `t`, after adding it as an empty table (made by `origin`,
/// spanning `span`) when it is not there yet.
fn find_or_add_table(
    t: &mut Table,
    key: &str,
    key_span: &Range<usize>,
    origin: Origin,
    span: &Range<usize>,
) -> usize {
    if let Some(idx) = t.iter().position(|e| e.key == key) {
        return idx;
    }
    t.push(Entry {
        key: key.to_string(),
        key_span: key_span.clone(),
        value: new_table(origin, span.clone()),
    });
    t.len() - 1
}

fn insert_dotted(table: &mut Table, keys: &[Key], value: Value) -> Result<()> {
    let Some(((last, last_span), prefix)) = keys.split_last() else {
        return Ok(());
    };
    let mut t = table;
    for (i, (k, span)) in prefix.iter().enumerate() {
        let idx = find_or_add_table(t, k, span, Origin::Dotted, span);
        let v = &mut t[idx].value;
        match (&mut v.kind, v.origin) {
            (Kind::Table(inner), Origin::Dotted | Origin::Implicit) => t = inner,
            _ => {
                return Err(err(
                    format!(
                        "`{}` is already defined above: a dotted key cannot add to it",
                        dotted(&keys[..=i])
                    ),
                    span.clone(),
                ))
            }
        }
    }
    if t.iter().any(|e| e.key == *last) {
        return Err(err(
            format!("duplicate key `{}`: it is set twice", dotted(keys)),
            last_span.clone(),
        ));
    }
    t.push(Entry {
        key: last.clone(),
        key_span: last_span.clone(),
        value,
    });
    Ok(())
}

/// Apply a `[table]` or `[[array]]` header: create what it names, return its path.
fn define(root: &mut Value, keys: &[Key], array: bool, span: Range<usize>) -> Result<()> {
    let Some(((last, last_span), prefix)) = keys.split_last() else {
        return Ok(());
    };
    let mut v = root;
    for (i, (k, kspan)) in prefix.iter().enumerate() {
        let Kind::Table(t) = &mut v.kind else {
            return Err(err("internal: not a table", kspan.clone()));
        };
        let idx = find_or_add_table(t, k, kspan, Origin::Implicit, &span);
        let next = &mut t[idx].value;
        let extensible = matches!(
            (&next.kind, next.origin),
            (
                Kind::Table(_),
                Origin::Implicit | Origin::Header | Origin::Dotted
            ) | (Kind::Array(_), Origin::ArrayOfTables)
        );
        if !extensible {
            return Err(err(
                format!(
                    "`{}` is a value, not a table: it cannot have the sub-table [{}]",
                    dotted(&keys[..=i]),
                    dotted(keys)
                ),
                kspan.clone(),
            ));
        }
        v = if matches!(next.kind, Kind::Array(_)) {
            let Kind::Array(a) = &mut next.kind else {
                return Err(err("internal: not an array", kspan.clone()));
            };
            a.last_mut()
                .ok_or_else(|| err("internal: empty array of tables", kspan.clone()))?
        } else {
            next
        };
    }
    let Kind::Table(t) = &mut v.kind else {
        return Err(err("internal: not a table", last_span.clone()));
    };
    let name = dotted(keys);
    let existing = t.iter_mut().find(|e| e.key == *last).map(|e| &mut e.value);
    match (existing, array) {
        (None, false) => t.push(Entry {
            key: last.clone(),
            key_span: last_span.clone(),
            value: new_table(Origin::Header, span),
        }),
        (None, true) => t.push(Entry {
            key: last.clone(),
            key_span: last_span.clone(),
            value: Value {
                kind: Kind::Array(vec![new_table(Origin::Header, span.clone())]),
                span,
                origin: Origin::ArrayOfTables,
            },
        }),
        (Some(v), false) if v.origin == Origin::Implicit => {
            v.origin = Origin::Header;
            v.span = span;
        }
        (Some(v), true) if v.origin == Origin::ArrayOfTables => {
            if let Kind::Array(a) = &mut v.kind {
                a.push(new_table(Origin::Header, span));
            }
        }
        (Some(v), _) => {
            let what = match v.origin {
                Origin::ArrayOfTables => format!("[[{name}]] is an array of tables: write [[{name}]] for another element"),
                Origin::Value if !array => format!("`{name}` is already set to a value: it cannot also be the table [{name}]"),
                _ if array => format!("`{name}` is already defined above and is not an array of tables"),
                Origin::Dotted => format!("`{name}` was made a table by dotted keys above: it cannot also be written [{name}]"),
                _ => format!("the table [{name}] is defined twice"),
            };
            return Err(err(what, last_span.clone()));
        }
    }
    Ok(())
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
    /// How deep the value being parsed is nested.
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<u8> {
        self.s.as_bytes().get(self.pos + n).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn err_here(&self, message: impl Into<String>) -> Error {
        err(
            message,
            self.pos..(self.pos + 1).min(self.s.len()).max(self.pos),
        )
    }

    /// Spaces and tabs.
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// A `#` comment up to (not including) the end of the line.
    fn skip_comment(&mut self) -> Result<()> {
        if self.peek() != Some(b'#') {
            return Ok(());
        }
        while let Some(c) = self.peek() {
            match c {
                b'\n' => break,
                b'\r' if self.peek_at(1) == Some(b'\n') => break,
                b'\t' => {}
                c if c < 0x20 || c == 0x7f => {
                    return Err(self.err_here("a control character in a comment"))
                }
                _ => {}
            }
            self.pos += 1;
        }
        Ok(())
    }

    /// A line break (`\n` or `\r\n`), if one is next.
    fn eat_newline(&mut self) -> Result<bool> {
        match self.peek() {
            Some(b'\n') => {
                self.pos += 1;
                Ok(true)
            }
            Some(b'\r') if self.peek_at(1) == Some(b'\n') => {
                self.pos += 2;
                Ok(true)
            }
            Some(b'\r') => Err(self.err_here("a carriage return not followed by a line feed")),
            _ => Ok(false),
        }
    }

    /// Blank lines, whitespace and comments.
    fn skip_blank_lines(&mut self) -> Result<()> {
        loop {
            self.skip_ws();
            self.skip_comment()?;
            if !self.eat_newline()? {
                return Ok(());
            }
        }
    }

    /// Whitespace, newlines and comments inside an array (or an inline table).
    fn skip_ws_multiline(&mut self) -> Result<()> {
        self.skip_blank_lines()
    }

    /// After a key/value or a header: only a comment may follow on the line.
    fn end_of_line(&mut self) -> Result<()> {
        self.skip_ws();
        self.skip_comment()?;
        if self.pos < self.s.len() && !self.eat_newline()? {
            return Err(self.err_here(
                "unexpected text after the value: put each `key = value` on its own line",
            ));
        }
        Ok(())
    }

    /// `[a.b]` or `[[a.b]]`, applied to `root`; returns its path.
    fn header(&mut self, root: &mut Value) -> Result<Vec<Key>> {
        let start = self.pos;
        self.pos += 1;
        let array = self.eat(b'[');
        self.skip_ws();
        let keys = self.key()?;
        if keys.len() > MAX_DEPTH {
            return Err(err(
                format!("tables nest more than {MAX_DEPTH} deep"),
                start..self.pos,
            ));
        }
        self.skip_ws();
        if !self.eat(b']') || (array && !self.eat(b']')) {
            let close = if array { "]]" } else { "]" };
            return Err(self.err_here(format!("expected `{close}` to close the table header")));
        }
        define(root, &keys, array, start..self.pos)?;
        Ok(keys)
    }

    /// A key, dotted or not: `a`, `"a b".c`, `'x'`.
    fn key(&mut self) -> Result<Vec<Key>> {
        let mut keys = Vec::new();
        loop {
            self.skip_ws();
            let start = self.pos;
            let name = match self.peek() {
                Some(q @ (b'"' | b'\'')) => {
                    if self.s.as_bytes()[self.pos..].starts_with(&[q; 3]) {
                        return Err(self.err_here("a key cannot be a multi-line string"));
                    }
                    self.string(q, false)?
                }
                Some(c) if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' => {
                    while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
                    {
                        self.pos += 1;
                    }
                    self.s[start..self.pos].to_string()
                }
                _ => {
                    return Err(self.err_here(
                        "expected a key (letters, digits, `_` and `-`, or a quoted string)",
                    ))
                }
            };
            keys.push((name, start..self.pos));
            if keys.len() > MAX_DEPTH {
                return Err(err(
                    format!("a key has more than {MAX_DEPTH} parts"),
                    start..self.pos,
                ));
            }
            self.skip_ws();
            if !self.eat(b'.') {
                return Ok(keys);
            }
        }
    }

    /// Any value.
    fn value(&mut self) -> Result<Value> {
        let start = self.pos;
        let kind = match self.peek() {
            Some(q @ (b'"' | b'\'')) => {
                let multiline = self.s.as_bytes()[self.pos..].starts_with(&[q; 3]);
                Kind::String(self.string(q, multiline)?)
            }
            Some(b'[') => Kind::Array(self.nested(Self::array)?),
            Some(b'{') => Kind::Table(self.nested(Self::inline_table)?),
            Some(b't') if self.s[self.pos..].starts_with("true") => {
                self.pos += 4;
                Kind::Boolean(true)
            }
            Some(b'f') if self.s[self.pos..].starts_with("false") => {
                self.pos += 5;
                Kind::Boolean(false)
            }
            Some(c) if c.is_ascii_alphanumeric() || c == b'+' || c == b'-' => self.number()?,
            Some(b'\n' | b'\r' | b'#') | None => {
                return Err(self.err_here("expected a value after `=`"))
            }
            Some(_) => {
                return Err(self.err_here(
                    "expected a value: a \"string\", a number, true, false, [an, array] or { an = \"inline table\" }",
                ))
            }
        };
        Ok(Value::at(kind, start..self.pos))
    }

    /// Parse a nested array or inline table one level deeper.
    fn nested<T>(&mut self, f: fn(&mut Self) -> Result<T>) -> Result<T> {
        if self.depth >= MAX_DEPTH {
            return Err(self.err_here(format!("values nest more than {MAX_DEPTH} deep")));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    /// `[a, b, ]` (newlines and comments allowed between elements).
    fn array(&mut self) -> Result<Vec<Value>> {
        let start = self.pos;
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_ws_multiline()?;
            if self.eat(b']') {
                return Ok(items);
            }
            items.push(self.value()?);
            self.skip_ws_multiline()?;
            if self.eat(b']') {
                return Ok(items);
            }
            if self.peek().is_none() {
                return Err(err("the array is not closed with `]`", start..start + 1));
            }
            if !self.eat(b',') {
                return Err(self.err_here("expected `,` or `]` in the array"));
            }
        }
    }

    /// `{ a = 1, b.c = 2 }`.
    fn inline_table(&mut self) -> Result<Table> {
        let start = self.pos;
        self.pos += 1;
        let mut table = Table::new();
        loop {
            self.skip_ws_multiline()?;
            if self.eat(b'}') {
                return Ok(table);
            }
            let keys = self.key()?;
            self.skip_ws();
            if !self.eat(b'=') {
                return Err(self.err_here("expected `=` after the key"));
            }
            self.skip_ws();
            let saved = self.depth;
            self.depth += keys.len() - 1;
            if self.depth > MAX_DEPTH {
                return Err(self.err_here(format!("values nest more than {MAX_DEPTH} deep")));
            }
            let value = self.value()?;
            self.depth = saved;
            insert_dotted(&mut table, &keys, value)?;
            self.skip_ws_multiline()?;
            if self.eat(b'}') {
                return Ok(table);
            }
            if self.peek().is_none() {
                return Err(err(
                    "the inline table is not closed with `}`",
                    start..start + 1,
                ));
            }
            if !self.eat(b',') {
                return Err(self.err_here("expected `,` or `}` in the inline table"));
            }
        }
    }
}

#[path = "scalar.rs"]
mod scalar;
