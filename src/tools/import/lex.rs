//! Reading text: lines (tolerating bytes that are not UTF-8), and a tokenizer and
//! statement parser for the ISC-style grammar shared by dhclient.conf and
//! dhcp6c.conf: `word word "string" ;`, `word { ... };`, `#` comments.

use super::{NoteKind, Notes};

/// Deepest `{ }` nesting parsed (dhcp6c needs 3); deeper blocks are skipped.
const MAX_DEPTH: usize = 8;

/// Split into lines; a line that is not UTF-8 becomes empty (numbering is kept) and
/// is noted unless it is a comment.
pub(super) fn text_lines(bytes: &[u8], file: &str, notes: &mut Notes) -> Vec<String> {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, raw)| {
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            match std::str::from_utf8(raw) {
                Ok(s) => s.to_string(),
                Err(_) => {
                    let is_comment = String::from_utf8_lossy(raw).trim_start().starts_with('#');
                    if !is_comment {
                        notes.file(
                            file,
                            NoteKind::Warning,
                            format!("{file}:{}: not UTF-8 text; line skipped", i + 1),
                        );
                    }
                    String::new()
                }
            }
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Word(String),
    Str(String),
    Semi,
    Open,
    Close,
    Comma,
    Eq,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) line: usize,
}

impl Token {
    pub(super) fn text(&self) -> Option<&str> {
        match &self.tok {
            Tok::Word(s) | Tok::Str(s) => Some(s),
            _ => None,
        }
    }
    pub(super) fn word(&self) -> Option<&str> {
        match &self.tok {
            Tok::Word(s) => Some(s),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Stmt {
    pub(super) args: Vec<Token>,
    pub(super) line: usize,
    pub(super) block: Option<Vec<Stmt>>,
}

impl Stmt {
    pub(super) fn word(&self, i: usize) -> Option<&str> {
        self.args.get(i).and_then(Token::word)
    }
}

/// Statement keywords: a line starting with one of these after an unfinished
/// statement means the `;` was forgotten.
const KEYWORDS: &[&str] = &[
    "send",
    "request",
    "require",
    "also",
    "timeout",
    "retry",
    "reboot",
    "initial-interval",
    "backoff-cutoff",
    "select-timeout",
    "initial-delay",
    "supersede",
    "prepend",
    "append",
    "default",
    "option",
    "interface",
    "profile",
    "id-assoc",
    "keyinfo",
    "authentication",
    "information-only",
    "script",
    "lease",
    "alias",
    "media",
    "reject",
    "prefix-interface",
    "sla-id",
    "sla-len",
    "address",
    "prefix",
    "realm",
    "keyid",
    "secret",
    "expire",
];

fn tokenize(lines: &[String], file: &str, notes: &mut Notes) -> Vec<Token> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let ln = i + 1;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            let tok = match c {
                '#' => break,
                c if c.is_whitespace() => continue,
                ';' => Tok::Semi,
                '{' => Tok::Open,
                '}' => Tok::Close,
                ',' => Tok::Comma,
                '=' => Tok::Eq,
                '"' => {
                    let mut s = String::new();
                    let mut closed = false;
                    while let Some(c) = chars.next() {
                        match c {
                            '\\' => {
                                if let Some(n) = chars.next() {
                                    s.push(n);
                                }
                            }
                            '"' => {
                                closed = true;
                                break;
                            }
                            c => s.push(c),
                        }
                    }
                    if !closed {
                        notes.file(
                            file,
                            NoteKind::Warning,
                            format!("{file}:{ln}: string not closed by '\"' on this line"),
                        );
                    }
                    Tok::Str(s)
                }
                c => {
                    let mut w = String::from(c);
                    while let Some(&n) = chars.peek() {
                        if n.is_whitespace() || ";{},=\"#".contains(n) {
                            break;
                        }
                        w.push(n);
                        chars.next();
                    }
                    Tok::Word(w)
                }
            };
            out.push(Token { tok, line: ln });
        }
    }
    out
}

pub(super) fn parse_file(bytes: &[u8], file: &str, notes: &mut Notes) -> Vec<Stmt> {
    let lines = text_lines(bytes, file, notes);
    let toks = tokenize(&lines, file, notes);
    let mut pos = 0;
    parse_stmts(&toks, &mut pos, 0, None, file, notes)
}

fn flush(cur: &mut Vec<Token>, out: &mut Vec<Stmt>) {
    if !cur.is_empty() {
        let line = cur[0].line;
        out.push(Stmt {
            args: std::mem::take(cur),
            line,
            block: None,
        });
    }
}

fn missing_semi(cur: &[Token], file: &str, notes: &mut Notes) {
    if let Some(last) = cur.last() {
        notes.file(
            file,
            NoteKind::Warning,
            format!(
                "{file}:{}: missing ';' at the end of the statement (the old client would reject the file); read as if it were there",
                last.line
            ),
        );
    }
}

fn parse_stmts(
    toks: &[Token],
    pos: &mut usize,
    depth: usize,
    opened_at: Option<usize>,
    file: &str,
    notes: &mut Notes,
) -> Vec<Stmt> {
    let mut out = Vec::new();
    let mut cur: Vec<Token> = Vec::new();
    while let Some(t) = toks.get(*pos) {
        *pos += 1;
        match &t.tok {
            Tok::Semi => flush(&mut cur, &mut out),
            Tok::Open => {
                let line = cur.first().map_or(t.line, |c| c.line);
                let block = if depth + 1 >= MAX_DEPTH {
                    notes.file(
                        file,
                        NoteKind::Ignored,
                        format!("{file}:{}: blocks nested too deep; skipped", t.line),
                    );
                    skip_block(toks, pos);
                    Vec::new()
                } else {
                    parse_stmts(toks, pos, depth + 1, Some(t.line), file, notes)
                };
                out.push(Stmt {
                    args: std::mem::take(&mut cur),
                    line,
                    block: Some(block),
                });
                if toks.get(*pos).is_some_and(|t| t.tok == Tok::Semi) {
                    *pos += 1;
                }
            }
            Tok::Close => {
                if !cur.is_empty() {
                    missing_semi(&cur, file, notes);
                    flush(&mut cur, &mut out);
                }
                if depth > 0 {
                    return out;
                }
                notes.file(
                    file,
                    NoteKind::Warning,
                    format!("{file}:{}: '}}' without a matching '{{'", t.line),
                );
            }
            _ => {
                if let (Some(last), Some(w)) = (cur.last(), t.word()) {
                    if t.line > last.line
                        && !matches!(last.tok, Tok::Comma | Tok::Eq)
                        && KEYWORDS.contains(&w)
                    {
                        missing_semi(&cur, file, notes);
                        flush(&mut cur, &mut out);
                    }
                }
                cur.push(t.clone());
            }
        }
    }
    if !cur.is_empty() {
        missing_semi(&cur, file, notes);
        flush(&mut cur, &mut out);
    }
    if let Some(l) = opened_at {
        notes.file(
            file,
            NoteKind::Warning,
            format!("{file}:{l}: the block opened here is not closed by '}}'"),
        );
    }
    out
}

fn skip_block(toks: &[Token], pos: &mut usize) {
    let mut depth = 1usize;
    while let Some(t) = toks.get(*pos) {
        *pos += 1;
        match t.tok {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth -= 1;
                if depth == 0 {
                    return;
                }
            }
            _ => {}
        }
    }
}

/// The statement's text from argument `from` on, for messages.
pub(super) fn stmt_text(s: &Stmt, from: usize) -> String {
    let mut out = String::new();
    for t in s.args.iter().skip(from) {
        let piece = match &t.tok {
            Tok::Word(w) => w.clone(),
            Tok::Str(w) => format!("{w:?}"),
            Tok::Comma => ",".into(),
            Tok::Eq => "=".into(),
            _ => continue,
        };
        if !out.is_empty() && piece != "," {
            out.push(' ');
        }
        out.push_str(&piece);
    }
    if out.chars().count() > 80 {
        out.chars().take(79).chain(['…']).collect()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::tools::import::testutil::*;

    #[test]
    fn missing_semicolons_are_noted_and_recovered() {
        let conf = b"initial-interval 3\nreboot 6;\nsend host-name \"box\"\ntimeout 12;\n";
        let r = import_from(&Inputs {
            dhclient: src("dhclient.conf", conf),
            ..Inputs::default()
        })
        .unwrap();
        assert_eq!(r.config.dhcp4.initial_interval, 3.0);
        assert_eq!(r.config.dhcp4.reboot, 6);
        assert_eq!(r.config.dhcp4.hostname.as_deref(), Some("box"));
        assert_eq!(r.config.dhcp4.timeout, 12);
        assert!(has(
            &r,
            NoteKind::Warning,
            "/etc/dhclient.conf:1: missing ';'"
        ));
        assert!(has(
            &r,
            NoteKind::Warning,
            "/etc/dhclient.conf:3: missing ';'"
        ));

        let conf6 = b"profile default {\n send ia-na 1\n send rapid-commit\n}\n";
        let r = import_from(&Inputs {
            dhcp6c: src("dhcp6c.conf", conf6),
            ..Inputs::default()
        })
        .unwrap();
        assert!(r.config.dhcp6.ia_na && r.config.dhcp6.rapid_commit);
        assert!(has(&r, NoteKind::Warning, "dhcp6c.conf:2: missing ';'"));
    }

    #[test]
    fn non_utf8_is_a_note_naming_the_line() {
        let mut conf = b"reboot 7;\n# caf\xe9\nsend host-name \"caf\xe9\";\ntimeout 9;\n".to_vec();
        conf.extend_from_slice(b"\xff\xfe\x00garbage\n");
        let r = import_from(&Inputs {
            dhclient: src("dhclient.conf", &conf),
            ..Inputs::default()
        })
        .unwrap();
        assert_eq!(r.config.dhcp4.reboot, 7);
        assert_eq!(r.config.dhcp4.timeout, 9);
        assert_eq!(r.config.dhcp4.hostname, None);
        assert!(has(&r, NoteKind::Warning, "dhclient.conf:3: not UTF-8"));
        assert!(has(&r, NoteKind::Warning, "dhclient.conf:5: not UTF-8"));
        assert!(
            !has(&r, NoteKind::Warning, "dhclient.conf:2:"),
            "comments are quiet"
        );
    }
}
