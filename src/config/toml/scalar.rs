//! Strings and numbers.

use super::{err, Kind, Parser, Result};

/// Digits of `radix` with single `_` between them.
fn digits_ok(s: &str, radix: u32) -> bool {
    !s.is_empty()
        && !s.starts_with('_')
        && !s.ends_with('_')
        && !s.contains("__")
        && s.chars().all(|c| c == '_' || c.is_digit(radix))
}

/// A decimal integer part: an optional sign, no leading zero.
fn decimal_ok(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    digits_ok(digits, 10) && (digits == "0" || !digits.starts_with('0'))
}

fn float_ok(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    (frac.is_some() || exponent.is_some())
        && decimal_ok(int)
        && frac.is_none_or(|f| digits_ok(f, 10))
        && exponent.is_none_or(|e| digits_ok(e.strip_prefix(['+', '-']).unwrap_or(e), 10))
}

fn is_date_like(t: &str) -> bool {
    let b = t.as_bytes();
    t.contains(':') || (b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-')
}

fn push_char(out: &mut String, code: u32) -> bool {
    match char::from_u32(code) {
        Some(c) => {
            out.push(c);
            true
        }
        None => false,
    }
}

impl Parser<'_> {
    /// An integer, a float, `inf` or `nan` (dates are refused).
    pub(super) fn number(&mut self) -> Result<Kind> {
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'+' | b'-' | b'.' | b':'))
        {
            self.pos += 1;
        }
        let token = &self.s[start..self.pos];
        let span = start..self.pos;
        if is_date_like(token) {
            return Err(err(
                "dates and times are not supported: netbond's configuration has no date values",
                span,
            ));
        }
        let unsigned = token.strip_prefix(['+', '-']).unwrap_or(token);
        let negative = token.starts_with('-');
        match unsigned {
            "inf" => {
                return Ok(Kind::Float(if negative {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                }))
            }
            "nan" => return Ok(Kind::Float(if negative { -f64::NAN } else { f64::NAN })),
            _ => {}
        }
        for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
            if let Some(digits) = token.strip_prefix(prefix) {
                if !digits_ok(digits, radix) {
                    return Err(err(format!("{token:?} is not a valid number"), span));
                }
                return i64::from_str_radix(&digits.replace('_', ""), radix)
                    .map(Kind::Integer)
                    .map_err(|_| err(format!("{token} does not fit in a 64-bit integer"), span));
            }
        }
        let plain = token.replace('_', "");
        if decimal_ok(token) {
            return plain
                .parse()
                .map(Kind::Integer)
                .map_err(|_| err(format!("{token} does not fit in a 64-bit integer"), span));
        }
        if float_ok(token) {
            if let Ok(f) = plain.parse() {
                return Ok(Kind::Float(f));
            }
        }
        let hint = if token
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            && !token.bytes().all(|c| c.is_ascii_digit())
        {
            " (text must be quoted: \"...\")"
        } else {
            ""
        };
        Err(err(format!("{token:?} is not a valid value{hint}"), span))
    }

    /// Report an unterminated string starting at `start`.
    fn unterminated(&self, start: usize) -> super::Error {
        err("the string is not closed", start..self.pos.max(start + 1))
    }

    /// A character a string may not hold as it is.
    fn check_char(&self, c: char) -> Result<()> {
        if (c < ' ' && c != '\t') || c == '\u{7f}' {
            return Err(self.err_here(format!(
                "the control character {:?} must be written as an escape",
                c
            )));
        }
        Ok(())
    }

    /// A string of any of the four forms: `quote` `"` (basic: `\` escapes) or `'`
    /// (literal: none), `multiline` for the tripled quotes. A multi-line string drops a
    /// line break right after its opening quotes, keeps the others as `\n`, and in
    /// the basic form a `\` at the end of a line drops the break and the whitespace
    /// after it.
    pub(super) fn string(&mut self, quote: u8, multiline: bool) -> Result<String> {
        let start = self.pos;
        let q = char::from(quote);
        let escapes = quote == b'"';
        if multiline {
            self.pos += 3;
            self.eat_newline()?;
        } else {
            self.pos += 1;
        }
        let mut out = String::new();
        loop {
            let Some(c) = self.s[self.pos..].chars().next() else {
                return Err(self.unterminated(start));
            };
            match c {
                c if c == q && !multiline => {
                    self.pos += 1;
                    return Ok(out);
                }
                c if c == q && self.s.as_bytes()[self.pos..].starts_with(&[quote; 3]) => {
                    return self.close_ml(out, quote);
                }
                '\\' if escapes => {
                    if !(multiline && self.line_ending_backslash()?) {
                        self.escape(&mut out)?;
                    }
                }
                '\n' | '\r' if !multiline => return Err(self.unterminated(start)),
                '\n' | '\r' => {
                    self.eat_newline()?;
                    out.push('\n');
                }
                c => {
                    self.check_char(c)?;
                    out.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
    }

    /// At a `\` in a multi-line basic string: when only blanks follow it on its line,
    /// skip it, the line break and all whitespace and line breaks after it.
    fn line_ending_backslash(&mut self) -> Result<bool> {
        let after = self.s[self.pos + 1..].trim_start_matches([' ', '\t']);
        if !(after.starts_with('\n') || after.starts_with("\r\n")) {
            return Ok(false);
        }
        self.pos = self.s.len() - after.len();
        loop {
            self.skip_ws();
            if !self.eat_newline()? {
                return Ok(true);
            }
        }
    }

    /// At three quotes: up to two more belong to the string.
    fn close_ml(&mut self, mut out: String, quote: u8) -> Result<String> {
        let run = self.s.as_bytes()[self.pos..]
            .iter()
            .take_while(|&&b| b == quote)
            .count();
        if run > 5 {
            return Err(err(
                "too many quotes in a row at the end of the string",
                self.pos..self.pos + run,
            ));
        }
        for _ in 3..run {
            out.push(quote as char);
        }
        self.pos += run;
        Ok(out)
    }

    /// `\` and what follows, in a basic string.
    fn escape(&mut self, out: &mut String) -> Result<()> {
        let at = self.pos;
        self.pos += 1;
        let Some(c) = self.peek() else {
            return Err(self.err_here("the string is not closed"));
        };
        self.pos += 1;
        let simple = match c {
            b'b' => Some('\u{8}'),
            b't' => Some('\t'),
            b'n' => Some('\n'),
            b'f' => Some('\u{c}'),
            b'r' => Some('\r'),
            b'e' => Some('\u{1b}'),
            b'"' => Some('"'),
            b'\\' => Some('\\'),
            _ => None,
        };
        if let Some(s) = simple {
            out.push(s);
            return Ok(());
        }
        let len = match c {
            b'x' => 2,
            b'u' => 4,
            b'U' => 8,
            _ => {
                let shown: String = self.s[at..].chars().take(2).collect();
                return Err(err(
                    format!("invalid escape `{shown}` (write `\\\\` for a backslash)"),
                    at..at + shown.len(),
                ));
            }
        };
        let hex = self.s.get(self.pos..self.pos + len).unwrap_or("");
        let code = (hex.len() == len && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u32::from_str_radix(hex, 16).ok())
            .flatten();
        if !code.is_some_and(|code| push_char(out, code)) {
            return Err(err(
                format!(
                    "invalid escape: `\\{}` needs {len} hex digits of a Unicode scalar value",
                    c as char
                ),
                at..(self.pos + len).min(self.s.len()),
            ));
        }
        self.pos += len;
        Ok(())
    }
}
