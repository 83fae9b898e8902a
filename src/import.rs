//! `netbond import`: turn the classic bond setup (dhclient, WIDE dhcp6c, the
//! `master@.service` / `/etc/primary.conf` bond units, wpa_supplicant) into a
//! `netbond.toml` that keeps the identity the DHCP servers already know.
//!
//! Everything here is pure except [`import`], which reads the source files. Missing
//! files, unknown statements and malformed lines become [`Note`]s, never errors: the
//! report says what was found, what was not, and what was ignored and why.
//!
//! Identity decisions (the DHCP servers' fixed addresses depend on them):
//!
//! * The DHCPv4 client identifier is kept byte for byte. A bare DUID (the reference
//!   `send dhcp-client-identifier 00:02:...;`) becomes `[identity] duid` with
//!   `[dhcp4] client_id = "duid"`; an RFC 4361 identifier (`ff`, IAID, DUID) becomes
//!   `[identity] duid` + `iaid` with `client_id = "rfc4361"`; anything else is
//!   written as exact hex octets.
//! * DUID: the dhclient identifier's DUID wins over `dhcp6c_duid` when both exist and
//!   differ (IPv4 reservations match the whole client identifier, so changing it loses
//!   the fixed address; a DHCPv6 server only sees a new DUID, which the notes warn
//!   about). `dhcp6c_duid` is used when dhclient sent no DUID.
//! * IAID: netbond uses one IAID for the RFC 4361 client identifier and the IA_NA.
//!   When dhclient sent an RFC 4361 identifier, its IAID wins for the same reason (it
//!   is part of the octets the IPv4 server matches); dhcp6c's `send ia-na N` is used
//!   otherwise. A conflict is a warning note.
//! * Where one side has to change, the note also says how to keep both exactly
//!   (`client_id` as raw hex octets, `[identity]` from the other side).

use crate::config::{valid_ifname, Config};
use netbond_proto::duid::{write_hex, Duid, DuidKind, Iaid};
use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Source files larger than this are not read (configuration files are a few KiB).
pub const MAX_SOURCE_BYTES: u64 = 1 << 20;

/// Notes kept per source file; the rest are counted in one summary note.
const MAX_NOTES_PER_FILE: usize = 20;

/// Deepest `{ }` nesting parsed (dhcp6c needs 3); deeper blocks are skipped.
const MAX_DEPTH: usize = 8;

/// Where the classic setup keeps each piece. `None` skips that source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSources {
    /// ISC dhclient configuration.
    pub dhclient_conf: Option<PathBuf>,
    /// WIDE-DHCPv6 client configuration.
    pub dhcp6c_conf: Option<PathBuf>,
    /// WIDE-DHCPv6 DUID file (2-byte little-endian length, then the DUID).
    pub dhcp6c_duid: Option<PathBuf>,
    /// The bond primary: the reference's `EnvironmentFile=-/etc/primary.conf` holding
    /// `PRI=ifname`. A unit file with `Environment= PRI=ifname`, or a file holding just
    /// an interface name, is accepted too.
    pub primary_conf: Option<PathBuf>,
    /// The reference's `master@.service` (`Environment= PRI=...`,
    /// `DefaultInstance= bond0`). `primary_conf` overrides its `PRI`, as systemd's
    /// `EnvironmentFile=` overrides `Environment=`.
    pub master_unit: Option<PathBuf>,
    /// `/etc/modprobe.d/bonding.conf`: `options bonding miimon=... mode=...`.
    pub bonding_conf: Option<PathBuf>,
    /// wpa_supplicant configuration (only referenced in a comment for now).
    pub wpa_conf: Option<PathBuf>,
    /// dhclient's exit hooks directory: not converted (they are shell fragments sourced
    /// by dhclient-script), but each is named in the notes with what to do about it.
    pub dhclient_hooks: Option<PathBuf>,
}

impl ImportSources {
    /// The reference setup's paths (`/etc/dhcp/dhclient.conf` when `/etc/dhclient.conf`
    /// does not exist).
    pub fn defaults() -> Self {
        let dhclient = ["/etc/dhclient.conf", "/etc/dhcp/dhclient.conf"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("/etc/dhclient.conf");
        ImportSources {
            dhclient_conf: Some(dhclient.into()),
            dhcp6c_conf: Some("/etc/wide-dhcpv6/dhcp6c.conf".into()),
            dhcp6c_duid: Some("/var/lib/dhcpv6/dhcp6c_duid".into()),
            primary_conf: Some("/etc/primary.conf".into()),
            master_unit: Some("/etc/systemd/system/master@.service".into()),
            bonding_conf: Some("/etc/modprobe.d/bonding.conf".into()),
            wpa_conf: Some("/etc/wpa_supplicant/wpa_supplicant.conf".into()),
            dhclient_hooks: Some("/etc/dhcp/dhclient-exit-hooks.d".into()),
        }
    }
}

/// What a note is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    /// A setting was found and imported.
    Found,
    /// A source file does not exist.
    Missing,
    /// Something was read but not imported, with the reason.
    Ignored,
    /// Needs a decision or changes what a server sees.
    Warning,
}

/// One line of the import report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// What kind of note.
    pub kind: NoteKind,
    /// The message, naming `file:line` where there is one.
    pub text: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.kind {
            NoteKind::Found => "found",
            NoteKind::Missing => "missing",
            NoteKind::Ignored => "ignored",
            NoteKind::Warning => "warning",
        };
        write!(f, "{tag}: {}", self.text)
    }
}

/// The result of an import.
#[derive(Debug, Clone)]
pub struct ImportReport {
    /// The netbond.toml text (the notes are repeated in it as comments).
    pub toml: String,
    /// The same text, parsed and validated.
    pub config: Config,
    /// What was found, what was not, what was ignored and why.
    pub notes: Vec<Note>,
}

impl ImportReport {
    /// True when some note is a warning.
    pub fn has_warnings(&self) -> bool {
        self.notes.iter().any(|n| n.kind == NoteKind::Warning)
    }
}

/// Read the sources and build the configuration. Fails only when none of the sources
/// exists (there would be nothing to import) or, as an internal check, when the
/// generated text does not pass `Config::parse`.
pub fn import(src: &ImportSources) -> Result<ImportReport, String> {
    let mut notes = Notes::default();
    let read = |p: &Option<PathBuf>, what: &str, notes: &mut Notes| {
        p.as_deref()
            .and_then(|p| read_source(p, what, notes).map(|b| (show(p), b)))
    };
    let inputs = Inputs {
        dhclient: read(&src.dhclient_conf, "dhclient.conf", &mut notes),
        dhcp6c: read(&src.dhcp6c_conf, "dhcp6c.conf", &mut notes),
        dhcp6c_duid: read(&src.dhcp6c_duid, "dhcp6c DUID", &mut notes),
        primary: read(&src.primary_conf, "bond primary", &mut notes),
        master_unit: read(&src.master_unit, "bond master unit", &mut notes),
        bonding: read(&src.bonding_conf, "bonding module options", &mut notes),
        wpa: read(&src.wpa_conf, "wpa_supplicant.conf", &mut notes),
    };
    if inputs.is_empty() {
        let listed: Vec<String> = [
            &src.dhclient_conf,
            &src.dhcp6c_conf,
            &src.dhcp6c_duid,
            &src.primary_conf,
            &src.master_unit,
            &src.bonding_conf,
            &src.wpa_conf,
        ]
        .into_iter()
        .flatten()
        .map(|p| show(p))
        .collect();
        return Err(format!(
            "nothing to import: none of these could be read: {}",
            listed.join(", ")
        ));
    }
    if let Some(dir) = &src.dhclient_hooks {
        hook_notes(dir, &mut notes);
    }
    convert(&inputs, notes)
}

/// Notes on dhclient exit hooks: Debian's stock ones are not needed (netbond does what
/// they do), others must be ported by hand to `[hooks] dir`.
fn hook_notes(dir: &Path, notes: &mut Notes) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && !n.ends_with('~') && !n.contains(".dpkg-"))
        .collect();
    names.sort();
    let d = show(dir);
    for n in names.into_iter().take(MAX_NOTES_PER_FILE) {
        let known = match n.as_str() {
            "rfc3442-classless-routes" => Some("netbond applies option 121 itself"),
            "chrony" => Some("netbond writes chrony's sources itself ([ntp] chrony_dir)"),
            "ntp" | "ntpsec" | "timesyncd" => Some(
                "netbond hands NTP servers to chrony only ([ntp] chrony_dir); for another \
                 time daemon port it as a netbond hook",
            ),
            "debug" => Some("`netbond monitor` shows every event"),
            "resolvconf" | "resolved" => Some("netbond writes DNS itself ([dns] resolv_conf)"),
            _ => None,
        };
        match known {
            Some(why) => notes.push(
                NoteKind::Ignored,
                format!("{d}/{n}: dhclient exit hook not converted, not needed: {why}"),
            ),
            None => notes.push(
                NoteKind::Warning,
                format!(
                    "{d}/{n}: dhclient exit hook not converted (a shell fragment sourced by \
                     dhclient-script): port it to an executable in [hooks] dir \
                     (/etc/netbond/hooks.d), which gets the same REASON, interface and \
                     new_*/old_* variables (see the README, \"Hooks\"), and set \
                     [hooks] run_as_root = true if it needs root"
                ),
            ),
        }
    }
}

/// `netbond import`: run the import, print the notes on stderr and write the text to
/// `output` (`-` is standard output). An existing file is only replaced with `force`
/// (atomically: temporary file next to it, then rename). Exit status: 0 written,
/// 1 nothing to import or cannot write.
pub fn cli(src: &ImportSources, output: &Path, force: bool) -> std::process::ExitCode {
    use std::process::ExitCode;
    let report = match import(src) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("netbond import: {e}");
            return ExitCode::from(1);
        }
    };
    for n in &report.notes {
        eprintln!("netbond import: {n}");
    }
    eprintln!(
        "netbond import: DUID {}{}",
        report
            .config
            .identity
            .duid
            .as_deref()
            .unwrap_or("none found (netbond will generate one)"),
        if report.has_warnings() {
            "; review the warnings above before enabling netbond.service"
        } else {
            ""
        }
    );
    if output == Path::new("-") {
        print!("{}", report.toml);
        return ExitCode::SUCCESS;
    }
    match write_config(output, &report.toml, force) {
        Ok(()) => {
            eprintln!(
                "netbond import: wrote {}; check it with `netbond check-config {}`",
                show(output),
                show(output)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("netbond import: {e}");
            ExitCode::from(1)
        }
    }
}

/// Write `text` to `path` with mode 0644. Without `force` an existing file (or
/// symlink) is never touched; with it, the file is replaced atomically.
pub fn write_config(path: &Path, text: &str, force: bool) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let shown = show(path);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", show(dir)))?;
    }
    let open = |p: &Path| {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(p)
    };
    let write = |mut f: std::fs::File, p: &Path| {
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| format!("cannot write {}: {e}", show(p)))
    };
    if !force {
        return match open(path) {
            Ok(f) => write(f, path),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(format!(
                "{shown} exists; not overwritten (use --force, or --output - to print)"
            )),
            Err(e) => Err(format!("cannot create {shown}: {e}")),
        };
    }
    let name = path
        .file_name()
        .ok_or_else(|| format!("{shown} is not a file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".import.{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let f = open(&tmp).map_err(|e| format!("cannot create {}: {e}", show(&tmp)))?;
    if let Err(e) = write(f, &tmp).and_then(|()| {
        std::fs::rename(&tmp, path).map_err(|e| format!("cannot replace {shown}: {e}"))
    }) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// The raw bytes of each source that could be read, with its display name.
#[derive(Debug, Default, Clone)]
pub struct Inputs {
    /// dhclient.conf.
    pub dhclient: Option<(String, Vec<u8>)>,
    /// dhcp6c.conf.
    pub dhcp6c: Option<(String, Vec<u8>)>,
    /// dhcp6c_duid.
    pub dhcp6c_duid: Option<(String, Vec<u8>)>,
    /// primary.conf.
    pub primary: Option<(String, Vec<u8>)>,
    /// master@.service.
    pub master_unit: Option<(String, Vec<u8>)>,
    /// modprobe.d/bonding.conf.
    pub bonding: Option<(String, Vec<u8>)>,
    /// wpa_supplicant.conf.
    pub wpa: Option<(String, Vec<u8>)>,
}

impl Inputs {
    fn is_empty(&self) -> bool {
        [
            &self.dhclient,
            &self.dhcp6c,
            &self.dhcp6c_duid,
            &self.primary,
            &self.master_unit,
            &self.bonding,
            &self.wpa,
        ]
        .iter()
        .all(|i| i.is_none())
    }
}

/// The pure part of [`import`]: source contents in, configuration text out (for
/// tests and fuzzing; the command reads the files with [`import`]).
#[cfg_attr(not(test), allow(dead_code))]
pub fn import_from(inputs: &Inputs) -> Result<ImportReport, String> {
    convert(inputs, Notes::default())
}

// ---------------------------------------------------------------------------------
// Notes with a per-file cap, so a hostile file cannot produce a million of them.

#[derive(Default)]
struct Notes {
    list: Vec<Note>,
    per_file: HashMap<String, usize>,
}

impl Notes {
    fn push(&mut self, kind: NoteKind, text: String) {
        self.list.push(Note { kind, text });
    }

    /// A note about one file; past the cap it is only counted.
    fn file(&mut self, file: &str, kind: NoteKind, text: String) {
        let n = self.per_file.entry(file.to_string()).or_insert(0);
        *n += 1;
        if *n <= MAX_NOTES_PER_FILE {
            self.push(kind, text);
        }
    }

    fn finish(mut self) -> Vec<Note> {
        let mut over: Vec<(String, usize)> = self
            .per_file
            .iter()
            .filter(|(_, n)| **n > MAX_NOTES_PER_FILE)
            .map(|(f, n)| (f.clone(), n - MAX_NOTES_PER_FILE))
            .collect();
        over.sort();
        for (f, n) in over {
            self.push(
                NoteKind::Warning,
                format!("{f}: {n} more notes about this file were left out"),
            );
        }
        self.list
    }
}

// ---------------------------------------------------------------------------------
// Reading.

fn show(p: &Path) -> String {
    p.display().to_string()
}

fn read_source(path: &Path, what: &str, notes: &mut Notes) -> Option<Vec<u8>> {
    let shown = show(path);
    let too_big = |notes: &mut Notes| {
        notes.push(
            NoteKind::Ignored,
            format!(
                "{what}: {shown} is larger than {} KiB, which no configuration file is; nothing was read from it",
                MAX_SOURCE_BYTES / 1024
            ),
        )
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            notes.push(
                NoteKind::Missing,
                format!("{what}: {shown} does not exist; nothing imported from it"),
            );
            return None;
        }
        Err(e) => {
            notes.push(
                NoteKind::Warning,
                format!("{what}: cannot read {shown}: {e}"),
            );
            return None;
        }
    };
    if !meta.is_file() {
        notes.push(
            NoteKind::Ignored,
            format!("{what}: {shown} is not a regular file"),
        );
        return None;
    }
    if meta.len() > MAX_SOURCE_BYTES {
        too_big(notes);
        return None;
    }
    let mut buf = Vec::new();
    let read =
        std::fs::File::open(path).and_then(|f| f.take(MAX_SOURCE_BYTES + 1).read_to_end(&mut buf));
    if let Err(e) = read {
        notes.push(
            NoteKind::Warning,
            format!("{what}: cannot read {shown}: {e}"),
        );
        return None;
    }
    if buf.len() as u64 > MAX_SOURCE_BYTES {
        too_big(notes);
        return None;
    }
    Some(buf)
}

/// Split into lines; a line that is not UTF-8 becomes empty (numbering is kept) and
/// is noted unless it is a comment.
fn text_lines(bytes: &[u8], file: &str, notes: &mut Notes) -> Vec<String> {
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

// ---------------------------------------------------------------------------------
// A tokenizer and statement parser for the ISC-style grammar shared by dhclient.conf
// and dhcp6c.conf: `word word "string" ;`, `word { ... };`, `#` comments.

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Semi,
    Open,
    Close,
    Comma,
    Eq,
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    tok: Tok,
    line: usize,
}

impl Token {
    fn text(&self) -> Option<&str> {
        match &self.tok {
            Tok::Word(s) | Tok::Str(s) => Some(s),
            _ => None,
        }
    }
    fn word(&self) -> Option<&str> {
        match &self.tok {
            Tok::Word(s) => Some(s),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
struct Stmt {
    args: Vec<Token>,
    line: usize,
    block: Option<Vec<Stmt>>,
}

impl Stmt {
    fn word(&self, i: usize) -> Option<&str> {
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

fn parse_file(bytes: &[u8], file: &str, notes: &mut Notes) -> Vec<Stmt> {
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
fn stmt_text(s: &Stmt, from: usize) -> String {
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

// ---------------------------------------------------------------------------------
// What was imported, with where it came from.

#[derive(Debug, Clone)]
struct Sourced<T> {
    value: T,
    at: String,
}

fn at(file: &str, line: usize) -> String {
    format!("{file}:{line}")
}

#[derive(Debug, Default)]
struct V4 {
    client_id: Option<Sourced<Vec<u8>>>,
    hostname: Option<Sourced<String>>,
    initial_interval: Option<Sourced<f64>>,
    max_interval: Option<Sourced<f64>>,
    timeout: Option<Sourced<u64>>,
    retry: Option<Sourced<u64>>,
    reboot: Option<Sourced<u64>>,
}

#[derive(Debug, Default)]
struct V6 {
    /// Which block was used, for comments.
    block: String,
    ia_na: Option<Sourced<u32>>,
    ia_pd: Option<Sourced<u32>>,
    rapid_commit: bool,
    request_ntp: bool,
    information_only: bool,
}

#[derive(Debug, Default)]
struct BondFound {
    name: Option<Sourced<String>>,
    primary: Option<Sourced<String>>,
    mode_ok: bool,
    miimon: Option<Sourced<u32>>,
    fail_over_mac: Option<Sourced<String>>,
    primary_reselect: Option<Sourced<String>>,
}

/// How the dhclient identifier's octets map onto netbond's settings.
#[derive(Debug, Clone, PartialEq)]
enum V4Id {
    Rfc4361(Iaid, Duid),
    Bare(Duid),
    Raw(Vec<u8>),
}

fn classify_client_id(bytes: &[u8]) -> V4Id {
    if bytes.first() == Some(&0xff) && bytes.len() >= 8 {
        if let Ok(d) = Duid::from_bytes(bytes[5..].to_vec()) {
            let iaid = Iaid(u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]));
            return V4Id::Rfc4361(iaid, d);
        }
        return V4Id::Raw(bytes.to_vec());
    }
    match Duid::from_bytes(bytes.to_vec()) {
        Ok(d) if !matches!(d.kind(), DuidKind::Other(_)) => V4Id::Bare(d),
        _ => V4Id::Raw(bytes.to_vec()),
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::new();
    let _ = write_hex(&mut s, bytes);
    s
}

// ---------------------------------------------------------------------------------
// dhclient.conf

fn parse_u64(s: &Stmt, file: &str, notes: &mut Notes) -> Option<u64> {
    let v = s.word(1).and_then(|w| w.parse::<u64>().ok());
    if v.is_none() || s.args.len() != 2 {
        notes.file(
            file,
            NoteKind::Warning,
            format!(
                "{}: `{}` needs one whole number of seconds; ignored",
                at(file, s.line),
                stmt_text(s, 0)
            ),
        );
        return None;
    }
    v
}

fn dhclient(bytes: &[u8], file: &str, bond_name: &str, notes: &mut Notes) -> V4 {
    let stmts = parse_file(bytes, file, notes);
    // Top-level statements, then the `interface "NAME" { }` block's, which override
    // them in dhclient: the bond's block if there is one, else the only one.
    let blocks: Vec<&Stmt> = stmts
        .iter()
        .filter(|s| s.word(0) == Some("interface") && s.block.is_some())
        .collect();
    let chosen = blocks
        .iter()
        .find(|s| s.args.get(1).and_then(Token::text) == Some(bond_name))
        .or(if blocks.len() == 1 {
            blocks.first()
        } else {
            None
        })
        .copied();
    for b in &blocks {
        let name = b.args.get(1).and_then(Token::text).unwrap_or("?");
        if chosen.is_some_and(|c| std::ptr::eq(*b, c)) {
            notes.push(
                NoteKind::Found,
                format!(
                    "{}: interface {name:?} block: its statements override the global ones",
                    at(file, b.line)
                ),
            );
        } else {
            notes.file(
                file,
                NoteKind::Ignored,
                format!(
                    "{}: interface {name:?} block: netbond runs DHCP on the bond ({bond_name:?}) only",
                    at(file, b.line)
                ),
            );
        }
    }
    let mut v4 = V4::default();
    let top = stmts.iter().filter(|s| s.word(0) != Some("interface"));
    let inner = chosen
        .and_then(|c| c.block.as_deref())
        .unwrap_or_default()
        .iter();
    for s in top.chain(inner) {
        dhclient_stmt(s, file, &mut v4, notes);
    }
    v4
}

fn dhclient_stmt(s: &Stmt, file: &str, v4: &mut V4, notes: &mut Notes) {
    let here = at(file, s.line);
    let Some(kw) = s.word(0) else {
        if s.args.is_empty() && s.block.is_some() {
            notes.file(
                file,
                NoteKind::Ignored,
                format!("{here}: a block without a statement name"),
            );
        } else {
            notes.file(
                file,
                NoteKind::Warning,
                format!("{here}: cannot read `{}`; ignored", stmt_text(s, 0)),
            );
        }
        return;
    };
    let ignore = |why: &str, notes: &mut Notes| {
        notes.file(
            file,
            NoteKind::Ignored,
            format!("{here}: `{}`: {why}", stmt_text(s, 0)),
        )
    };
    match kw {
        "initial-interval" | "backoff-cutoff" => {
            let Some(n) = parse_u64(s, file, notes) else {
                return;
            };
            let from = Sourced {
                value: n as f64,
                at: here.clone(),
            };
            if kw == "initial-interval" {
                v4.initial_interval = Some(from);
            } else {
                v4.max_interval = Some(from);
            }
        }
        "timeout" | "retry" | "reboot" => {
            let Some(n) = parse_u64(s, file, notes) else {
                return;
            };
            let from = Some(Sourced {
                value: n,
                at: here.clone(),
            });
            match kw {
                "timeout" => v4.timeout = from,
                "retry" => v4.retry = from,
                _ => v4.reboot = from,
            }
        }
        "send" => {
            let Some(opt) = s.word(1) else {
                ignore("not understood", notes);
                return;
            };
            let mut vals: Vec<&Token> = s.args[2..].iter().collect();
            if vals.first().is_some_and(|t| t.tok == Tok::Eq) {
                vals.remove(0);
            }
            match opt {
                "dhcp-client-identifier" => send_client_id(&vals, &here, v4, notes, file),
                "host-name" => match vals.as_slice() {
                    [t] if t.text().is_some() => {
                        let name = t.text().unwrap_or_default();
                        match netbond_proto::dhcp4::reply::valid_dns_name(name.as_bytes()) {
                            Some(n) if !name.contains('(') => {
                                v4.hostname = Some(Sourced {
                                    value: n,
                                    at: here.clone(),
                                })
                            }
                            _ if t.word().is_some_and(|w| w.contains('(')) => ignore(
                                "an expression: netbond sends a fixed hostname; set [dhcp4] hostname",
                                notes,
                            ),
                            _ => notes.file(
                                file,
                                NoteKind::Warning,
                                format!(
                                    "{here}: host-name {:?} is not a DNS name (letters, digits, hyphens, dots); not imported",
                                    name.chars().take(64).collect::<String>()
                                ),
                            ),
                        }
                    }
                    _ => ignore("not understood", notes),
                },
                _ => ignore(
                    "netbond sends a fixed set of options (client identifier, host name, vendor class)",
                    notes,
                ),
            }
        }
        "request" | "require" | "also" => ignore(
            "netbond requests its own option list (addresses, routes incl. option 121, DNS, MTU)",
            notes,
        ),
        "supersede" | "prepend" | "append" | "default" => ignore(
            "netbond has no per-option overrides ([dhcp4] use_dns/use_routes/use_mtu, [dns])",
            notes,
        ),
        "option" => ignore(
            "option definitions are not needed: netbond knows the options it uses",
            notes,
        ),
        "script" => ignore(
            "netbond configures addresses, routes and DNS itself; no script",
            notes,
        ),
        "select-timeout" => ignore("netbond takes the first acceptable offer", notes),
        "lease" | "alias" | "media" | "reject" | "interface" => {
            ignore("no netbond equivalent", notes)
        }
        _ => ignore("unknown or unsupported statement", notes),
    }
}

fn send_client_id(vals: &[&Token], here: &str, v4: &mut V4, notes: &mut Notes, file: &str) {
    let bytes = match vals {
        [Token {
            tok: Tok::Str(s), ..
        }] => {
            notes.push(
                NoteKind::Found,
                format!(
                    "{here}: dhcp-client-identifier is a quoted string: kept as its {} octets, as dhclient sent them",
                    s.len()
                ),
            );
            s.as_bytes().to_vec()
        }
        [Token {
            tok: Tok::Word(w), ..
        }] if w == "hardware" => {
            notes.file(
                file,
                NoteKind::Ignored,
                format!("{here}: dhcp-client-identifier = hardware: a MAC-based identifier changes at every bond failover; netbond sends one built from the DUID"),
            );
            return;
        }
        [Token {
            tok: Tok::Word(w), ..
        }] => match netbond_proto::duid::parse_hex_octets(w) {
            Ok(b) => b,
            Err(e) => {
                notes.file(
                    file,
                    NoteKind::Warning,
                    format!("{here}: dhcp-client-identifier: {e}; not imported"),
                );
                return;
            }
        },
        _ => {
            notes.file(
                file,
                NoteKind::Warning,
                format!("{here}: dhcp-client-identifier: expected one hex value or quoted string; not imported"),
            );
            return;
        }
    };
    if bytes.len() < 2 || bytes.len() > 255 {
        notes.file(
            file,
            NoteKind::Warning,
            format!(
                "{here}: dhcp-client-identifier has {} octets; DHCP allows 2 to 255; not imported",
                bytes.len()
            ),
        );
        return;
    }
    v4.client_id = Some(Sourced {
        value: bytes,
        at: here.to_string(),
    });
}

// ---------------------------------------------------------------------------------
// dhcp6c.conf

fn dhcp6c(bytes: &[u8], file: &str, bond_name: &str, notes: &mut Notes) -> Option<V6> {
    let stmts = parse_file(bytes, file, notes);
    let blocks: Vec<&Stmt> = stmts
        .iter()
        .filter(|s| matches!(s.word(0), Some("profile" | "interface")) && s.block.is_some())
        .collect();
    let name_of = |s: &Stmt| {
        s.args
            .get(1)
            .and_then(Token::text)
            .unwrap_or("?")
            .to_string()
    };
    let chosen = blocks
        .iter()
        .find(|s| s.word(0) == Some("profile") && name_of(s) == "default")
        .or_else(|| {
            blocks
                .iter()
                .find(|s| s.word(0) == Some("interface") && name_of(s) == bond_name)
        })
        .or(blocks.first())
        .copied();
    let Some(chosen) = chosen else {
        notes.push(
            NoteKind::Warning,
            format!("{file}: no `profile` or `interface` block: no DHCPv6 settings imported"),
        );
        return None;
    };
    for b in &blocks {
        if !std::ptr::eq(*b, chosen) {
            notes.file(
                file,
                NoteKind::Ignored,
                format!(
                    "{}: {} {:?}: only one block is imported ({} {:?}, line {})",
                    at(file, b.line),
                    b.word(0).unwrap_or_default(),
                    name_of(b),
                    chosen.word(0).unwrap_or_default(),
                    name_of(chosen),
                    chosen.line
                ),
            );
        }
    }
    let mut v6 = V6 {
        block: format!(
            "{} {:?} ({})",
            chosen.word(0).unwrap_or_default(),
            name_of(chosen),
            at(file, chosen.line)
        ),
        ..V6::default()
    };
    notes.push(NoteKind::Found, format!("{file}: using {}", v6.block));
    for s in chosen.block.as_deref().unwrap_or_default() {
        let here = at(file, s.line);
        let ignore = |why: &str, notes: &mut Notes| {
            notes.file(
                file,
                NoteKind::Ignored,
                format!("{here}: `{}`: {why}", stmt_text(s, 0)),
            )
        };
        match (s.word(0), s.word(1)) {
            (Some("send"), Some(ia @ ("ia-na" | "ia-pd"))) => {
                match s.word(2).and_then(|w| w.parse::<u32>().ok()) {
                    Some(n) if s.args.len() == 3 => {
                        let f = Some(Sourced {
                            value: n,
                            at: here.clone(),
                        });
                        if ia == "ia-na" {
                            v6.ia_na = f;
                        } else {
                            v6.ia_pd = f;
                        }
                    }
                    _ => notes.file(
                        file,
                        NoteKind::Warning,
                        format!(
                            "{here}: `{}`: expected `send {ia} NUMBER;`",
                            stmt_text(s, 0)
                        ),
                    ),
                }
            }
            (Some("send"), Some("rapid-commit")) => v6.rapid_commit = true,
            (Some("send"), Some("authentication")) => {
                ignore("DHCPv6 authentication is not supported by netbond", notes)
            }
            (Some("send"), _) => ignore("netbond sends a fixed set of options", notes),
            (Some("request"), _) => {
                if s.args.iter().any(|t| t.word() == Some("ntp-servers")) {
                    v6.request_ntp = true;
                }
                let others: Vec<&str> = s.args[1..]
                    .iter()
                    .filter_map(Token::word)
                    .filter(|w| {
                        !matches!(*w, "ntp-servers" | "domain-name-servers" | "domain-name")
                    })
                    .collect();
                if !others.is_empty() {
                    notes.file(
                        file,
                        NoteKind::Ignored,
                        format!(
                            "{here}: request {}: netbond asks for DNS servers, search domains and (request_ntp) NTP servers only",
                            others.join(", ")
                        ),
                    );
                }
            }
            (Some("information-only"), _) => v6.information_only = true,
            (Some("script"), _) => {
                ignore("netbond applies addresses and DNS itself; no script", notes)
            }
            _ => ignore("unknown or unsupported statement", notes),
        }
    }
    // The IA_NA / IA_PD declarations the send statements refer to.
    let find_ia = |kind: &str, n: u32| {
        stmts.iter().find(|s| {
            s.word(0) == Some("id-assoc")
                && s.word(1) == Some(kind)
                && s.word(2).and_then(|w| w.parse::<u32>().ok()) == Some(n)
        })
    };
    for (kind, send) in [("na", &v6.ia_na), ("pd", &v6.ia_pd)] {
        let Some(send) = send else { continue };
        match find_ia(kind, send.value) {
            None => notes.push(
                NoteKind::Warning,
                format!(
                    "{}: no `id-assoc {kind} {} {{ }}` declaration (dhcp6c requires one); imported anyway",
                    send.at, send.value
                ),
            ),
            Some(decl) => {
                for inner in decl.block.as_deref().unwrap_or_default() {
                    notes.file(
                        file,
                        NoteKind::Ignored,
                        format!(
                            "{}: `{}` inside id-assoc {kind} {}: netbond.toml has no equivalent",
                            at(file, inner.line),
                            stmt_text(inner, 0),
                            send.value
                        ),
                    );
                }
            }
        }
    }
    for s in &stmts {
        match s.word(0) {
            Some("profile" | "interface" | "id-assoc") => {}
            Some("keyinfo") => notes.file(
                file,
                NoteKind::Ignored,
                format!(
                    "{}: keyinfo (for dhcp6ctl): netbond has its own control socket; the secret was not copied",
                    at(file, s.line)
                ),
            ),
            _ => notes.file(
                file,
                NoteKind::Ignored,
                format!(
                    "{}: `{}`: not used by netbond",
                    at(file, s.line),
                    stmt_text(s, 0)
                ),
            ),
        }
    }
    Some(v6)
}

// ---------------------------------------------------------------------------------
// Bond: primary.conf / master@.service / modprobe.d/bonding.conf

/// `PRI=` (EnvironmentFile syntax), `Environment= PRI=x "A=b"` (unit syntax), or a
/// line holding just an interface name. Returns the last value and its line.
fn primary_from(lines: &[String]) -> Option<(String, usize)> {
    let meaningful: Vec<(usize, &str)> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, t)| !t.is_empty() && !t.starts_with('#') && !t.starts_with(';'))
        .collect();
    // A file holding only an interface name.
    if let [(l, t)] = meaningful.as_slice() {
        let plain = t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if plain && valid_ifname(t) {
            return Some((t.to_string(), *l));
        }
    }
    let mut found = None;
    for (l, t) in meaningful {
        let assignments: Vec<String> = match t.split_once('=') {
            Some((k, rest)) if k.trim() == "Environment" => split_words(rest),
            Some(_) => vec![t.to_string()],
            None => continue,
        };
        for a in assignments {
            if let Some((k, v)) = a.split_once('=') {
                if k.trim() == "PRI" {
                    found = Some((unquote(v.trim()), l));
                }
            }
        }
    }
    found
}

/// `DefaultInstance=` of a unit.
fn unit_key(lines: &[String], key: &str) -> Option<(String, usize)> {
    lines.iter().enumerate().rev().find_map(|(i, l)| {
        let (k, v) = l.trim().split_once('=')?;
        (k.trim() == key).then(|| (v.trim().to_string(), i + 1))
    })
}

/// Whitespace-separated words, honouring "double" and 'single' quotes.
fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner.to_string();
        }
    }
    v.to_string()
}

fn checked_ifname(
    value: &str,
    here: &str,
    what: &str,
    file: &str,
    notes: &mut Notes,
) -> Option<String> {
    if valid_ifname(value) {
        Some(value.to_string())
    } else {
        notes.file(
            file,
            NoteKind::Warning,
            format!(
                "{here}: {what} {:?} is not an interface name; not imported",
                value.chars().take(64).collect::<String>()
            ),
        );
        None
    }
}

fn bonding_options(bytes: &[u8], file: &str, bond: &mut BondFound, notes: &mut Notes) {
    let lines = text_lines(bytes, file, notes);
    for (i, line) in lines.iter().enumerate() {
        let here = at(file, i + 1);
        let words: Vec<&str> = line
            .split('#')
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        match words.as_slice() {
            [] => {}
            ["options", "bonding", opts @ ..] => {
                for o in opts {
                    let (k, v) = o.split_once('=').unwrap_or((o, ""));
                    match k {
                        "mode" => {
                            if matches!(v, "active-backup" | "1") {
                                bond.mode_ok = true;
                            } else {
                                notes.push(
                                    NoteKind::Warning,
                                    format!("{here}: mode={v}: netbond supports only active-backup"),
                                );
                            }
                        }
                        "miimon" => match v.parse::<u32>() {
                            Ok(n) if (1..=60_000).contains(&n) => {
                                bond.miimon = Some(Sourced {
                                    value: n,
                                    at: here.clone(),
                                })
                            }
                            _ => notes.push(
                                NoteKind::Warning,
                                format!("{here}: miimon={v}: netbond needs 1 to 60000 ms; default 100 kept"),
                            ),
                        },
                        "fail_over_mac" | "primary_reselect" => {
                            let names: &[&str] = if k == "fail_over_mac" {
                                &["none", "active", "follow"]
                            } else {
                                &["always", "better", "failure"]
                            };
                            let name = v
                                .parse::<usize>()
                                .ok()
                                .and_then(|n| names.get(n).copied())
                                .or_else(|| names.iter().find(|n| **n == v).copied());
                            match name {
                                Some(n) => {
                                    let f = Some(Sourced {
                                        value: n.to_string(),
                                        at: here.clone(),
                                    });
                                    if k == "fail_over_mac" {
                                        bond.fail_over_mac = f;
                                    } else {
                                        bond.primary_reselect = f;
                                    }
                                }
                                None => notes.push(
                                    NoteKind::Warning,
                                    format!("{here}: {k}={v}: not a known value; default kept"),
                                ),
                            }
                        }
                        "primary" => {
                            if let Some(p) = checked_ifname(v, &here, "primary", file, notes) {
                                bond.primary = Some(Sourced {
                                    value: p,
                                    at: here.clone(),
                                });
                            }
                        }
                        "max_bonds" => notes.file(
                            file,
                            NoteKind::Ignored,
                            format!("{here}: max_bonds={v}: keep it; netbond creates the bond itself over netlink"),
                        ),
                        _ => notes.file(
                            file,
                            NoteKind::Ignored,
                            format!("{here}: {k}={v}: no [bond] key for it; the module option still applies"),
                        ),
                    }
                }
            }
            _ => notes.file(
                file,
                NoteKind::Ignored,
                format!("{here}: not an `options bonding` line"),
            ),
        }
    }
}

// ---------------------------------------------------------------------------------
// wpa_supplicant.conf: only summarised (never copying keys).

struct WpaFound {
    ctrl_dir: Option<String>,
    networks: usize,
}

fn wpa(bytes: &[u8], file: &str, notes: &mut Notes) -> WpaFound {
    let lines = text_lines(bytes, file, notes);
    let mut found = WpaFound {
        ctrl_dir: None,
        networks: 0,
    };
    for line in &lines {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("ctrl_interface=") {
            // `DIR=/run/wpa_supplicant GROUP=wheel` or a bare directory.
            let dir = v
                .split_whitespace()
                .find_map(|w| w.strip_prefix("DIR="))
                .unwrap_or(v)
                .trim();
            found.ctrl_dir = Some(dir.to_string());
        } else if t.replace(' ', "").starts_with("network={") {
            found.networks += 1;
        }
    }
    found
}

// ---------------------------------------------------------------------------------
// Putting it together.

struct Entry {
    key: &'static str,
    value: toml::Value,
    comment: Option<String>,
}

#[derive(Default)]
struct Out {
    sections: Vec<(&'static str, Vec<Entry>)>,
}

impl Out {
    fn section(&mut self, name: &'static str) {
        if !self.sections.iter().any(|(n, _)| *n == name) {
            self.sections.push((name, Vec::new()));
        }
    }
    fn set(
        &mut self,
        section: &'static str,
        key: &'static str,
        value: impl Into<toml::Value>,
        comment: Option<String>,
    ) {
        self.section(section);
        let entries = &mut self
            .sections
            .iter_mut()
            .find(|(n, _)| *n == section)
            .expect("section was just added")
            .1;
        entries.retain(|e| e.key != key);
        entries.push(Entry {
            key,
            value: value.into(),
            comment,
        });
    }
}

/// Text safe inside a `#` comment: no line breaks or other control characters.
fn comment_safe(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

fn convert(inputs: &Inputs, mut notes: Notes) -> Result<ImportReport, String> {
    let mut out = Out::default();
    for section in ["identity", "dhcp4", "dhcp6", "bond"] {
        out.section(section);
    }

    // The bond first: its name selects the dhclient / dhcp6c interface blocks.
    let mut bond = BondFound::default();
    let mut unit_primary = None;
    if let Some((file, bytes)) = &inputs.master_unit {
        let lines = text_lines(bytes, file, &mut notes);
        if let Some((v, l)) = unit_key(&lines, "DefaultInstance") {
            let here = at(file, l);
            if let Some(n) = checked_ifname(&v, &here, "DefaultInstance", file, &mut notes) {
                bond.name = Some(Sourced { value: n, at: here });
            }
        }
        if let Some((v, l)) = primary_from(&lines) {
            let here = at(file, l);
            unit_primary = checked_ifname(&v, &here, "PRI", file, &mut notes)
                .map(|p| Sourced { value: p, at: here });
        }
        if let Some((v, l)) = unit_key(&lines, "EnvironmentFile") {
            let v = v.trim_start_matches('-');
            if inputs.primary.as_ref().is_none_or(|(p, _)| p != v) {
                notes.push(
                    NoteKind::Found,
                    format!(
                        "{}: the unit also reads PRI from EnvironmentFile={v}, which was not the primary file read; pass --primary {v} if it holds PRI",
                        at(file, l)
                    ),
                );
            }
        }
    }
    let mut file_primary = None;
    if let Some((file, bytes)) = &inputs.primary {
        let lines = text_lines(bytes, file, &mut notes);
        match primary_from(&lines) {
            Some((v, l)) => {
                let here = at(file, l);
                file_primary = checked_ifname(&v, &here, "PRI", file, &mut notes)
                    .map(|p| Sourced { value: p, at: here });
            }
            None => notes.push(
                NoteKind::Warning,
                format!("{file}: no `PRI=ifname` line; nothing imported from it"),
            ),
        }
    }
    if let Some((file, bytes)) = &inputs.bonding {
        bonding_options(bytes, file, &mut bond, &mut notes);
    }
    match (&file_primary, &unit_primary) {
        (Some(f), Some(u)) if f.value != u.value => notes.push(
            NoteKind::Found,
            format!(
                "{}: PRI={} overrides PRI={} from {}, as systemd's EnvironmentFile= did",
                f.at, f.value, u.value, u.at
            ),
        ),
        _ => {}
    }
    if let Some(p) = file_primary.or(unit_primary) {
        bond.primary = Some(p);
    }
    let have_bond =
        inputs.primary.is_some() || inputs.master_unit.is_some() || inputs.bonding.is_some();
    let bond_name = bond
        .name
        .as_ref()
        .map_or("bond0".to_string(), |n| n.value.clone());

    let v4 = inputs
        .dhclient
        .as_ref()
        .map(|(f, b)| dhclient(b, f, &bond_name, &mut notes));
    let v6 = inputs
        .dhcp6c
        .as_ref()
        .and_then(|(f, b)| dhcp6c(b, f, &bond_name, &mut notes));
    let v6_duid = inputs
        .dhcp6c_duid
        .as_ref()
        .and_then(|(f, b)| match Duid::from_dhcp6c_file(b) {
            Ok(d) => {
                notes.push(NoteKind::Found, format!("{f}: DUID {d}"));
                Some(Sourced {
                    value: d,
                    at: f.clone(),
                })
            }
            Err(e) => {
                notes.push(NoteKind::Warning, format!("{f}: {e}; not imported"));
                None
            }
        });

    // --- identity and client identifier ---
    let v4_id = v4
        .as_ref()
        .and_then(|v| v.client_id.as_ref())
        .map(|c| (classify_client_id(&c.value), c));
    let mut duid: Option<(Duid, String)> = None;
    let mut iaid: Option<(Iaid, String)> = None;
    match &v4_id {
        Some((V4Id::Rfc4361(i, d), c)) => {
            notes.push(
                NoteKind::Found,
                format!(
                    "{}: RFC 4361 client identifier: IAID {} and DUID {d}",
                    c.at, i.0
                ),
            );
            duid = Some((
                d.clone(),
                format!("{}: inside the RFC 4361 client identifier", c.at),
            ));
            iaid = Some((
                *i,
                format!("{}: inside the RFC 4361 client identifier", c.at),
            ));
            out.set(
                "dhcp4",
                "client_id",
                "rfc4361",
                Some(format!(
                    "{}: ff + IAID + DUID, rebuilt from [identity]",
                    c.at
                )),
            );
        }
        Some((V4Id::Bare(d), c)) => {
            notes.push(
                NoteKind::Found,
                format!("{}: the client identifier is a bare DUID {d}: kept as client_id = \"duid\" so the server's fixed addresses still match", c.at),
            );
            duid = Some((
                d.clone(),
                format!("{}: send dhcp-client-identifier (a bare DUID)", c.at),
            ));
            out.set(
                "dhcp4",
                "client_id",
                "duid",
                Some(format!(
                    "{}: the bare DUID, exactly as dhclient sent it",
                    c.at
                )),
            );
        }
        Some((V4Id::Raw(b), c)) => {
            notes.push(
                NoteKind::Found,
                format!("{}: the client identifier is neither a DUID nor RFC 4361: kept as its exact octets", c.at),
            );
            out.set(
                "dhcp4",
                "client_id",
                hex(b),
                Some(format!("{}: exact octets", c.at)),
            );
        }
        None => {
            if v4.is_some() {
                notes.push(
                    NoteKind::Warning,
                    "dhclient sent no client identifier (the server saw only the MAC, which changes at failover); netbond sends an RFC 4361 one built from the DUID".into(),
                );
            }
        }
    }
    if let Some(d6) = &v6_duid {
        match &duid {
            Some((d4, _)) if *d4 == d6.value => notes.push(
                NoteKind::Found,
                format!("{}: the same DUID as the DHCPv4 client identifier, as the reference setup requires", d6.at),
            ),
            Some((d4, from4)) => notes.push(
                NoteKind::Warning,
                format!(
                    "the dhclient DUID {d4} ({from4}) differs from dhcp6c's {} ({}); netbond uses one DUID and keeps dhclient's, so IPv4 fixed addresses still match, but the DHCPv6 server will see a new DUID (update its reservations). To keep both exactly instead: set [identity] duid = \"{}\" and [dhcp4] client_id = \"{}\"",
                    d6.value,
                    d6.at,
                    d6.value,
                    v4_id.as_ref().map_or(String::new(), |(_, c)| hex(&c.value))
                ),
            ),
            None => {
                duid = Some((d6.value.clone(), format!("{}: the dhcp6c DUID", d6.at)));
            }
        }
    }
    if let Some(v6) = &v6 {
        if let Some(na) = &v6.ia_na {
            match &iaid {
                Some((i4, from4)) if i4.0 != na.value => notes.push(
                    NoteKind::Warning,
                    format!(
                        "{}: IA_NA IAID {} differs from the IAID {} in the RFC 4361 client identifier ({from4}); netbond uses one IAID and keeps the IPv4 one (it is part of the octets the IPv4 server matches), so the DHCPv6 server sees a new IA_NA: the address is kept if reserved by DUID, else a new one is leased. To keep both exactly instead: set [identity] iaid = \"{}\" and [dhcp4] client_id = \"{}\"",
                        na.at,
                        na.value,
                        i4.0,
                        na.value,
                        v4_id.as_ref().map_or(String::new(), |(_, c)| hex(&c.value))
                    ),
                ),
                Some(_) => {}
                None => iaid = Some((Iaid(na.value), format!("{}: send ia-na {}", na.at, na.value))),
            }
        }
    }
    match &duid {
        Some((d, from)) => out.set("identity", "duid", d.to_string(), Some(from.clone())),
        None => notes.push(
            NoteKind::Warning,
            "no DUID found: netbond will generate one, and the DHCP servers will see a new client"
                .into(),
        ),
    }
    match &iaid {
        Some((i, from)) => out.set(
            "identity",
            "iaid",
            i.0.to_string(),
            Some(format!("{from} ({i})")),
        ),
        None if v6.is_some() || v4_id.is_some() => notes.push(
            NoteKind::Found,
            "no IAID found: netbond derives a stable one from the bond's name".into(),
        ),
        None => {}
    }

    // --- [dhcp4] ---
    if let Some(v4) = &v4 {
        if let Some(h) = &v4.hostname {
            out.set(
                "dhcp4",
                "hostname",
                h.value.clone(),
                Some(format!("{}: send host-name", h.at)),
            );
        }
        let mut initial = 4.0;
        if let Some(i) = &v4.initial_interval {
            let v = i.value.clamp(0.5, 64.0);
            if v != i.value {
                notes.push(
                    NoteKind::Warning,
                    format!(
                        "{}: initial-interval {} is outside 0.5..64 s; {v} used",
                        i.at, i.value
                    ),
                );
            }
            initial = v;
            out.set(
                "dhcp4",
                "initial_interval",
                v,
                Some(format!("{}: initial-interval", i.at)),
            );
        }
        match &v4.max_interval {
            Some(m) => {
                let v = m.value.clamp(initial, 3600.0);
                if v != m.value {
                    notes.push(NoteKind::Warning, format!("{}: backoff-cutoff {} is outside {initial}..3600 s; {v} used", m.at, m.value));
                }
                out.set("dhcp4", "max_interval", v, Some(format!("{}: backoff-cutoff", m.at)));
            }
            None => notes.push(
                NoteKind::Found,
                "dhclient.conf has no backoff-cutoff (dhclient capped retransmissions at 15 s); netbond's max_interval default is 64 s (RFC 2131)".into(),
            ),
        }
        let mut unset = Vec::new();
        for (key, stmt, val) in [
            ("timeout", "timeout", &v4.timeout),
            ("retry", "retry", &v4.retry),
            ("reboot", "reboot", &v4.reboot),
        ] {
            match val {
                Some(v) => {
                    let n = i64::try_from(v.value).unwrap_or(i64::MAX);
                    out.set("dhcp4", key, n, Some(format!("{}: {stmt}", v.at)));
                }
                None => unset.push(stmt),
            }
        }
        if v4.initial_interval.is_none() {
            unset.push("initial-interval");
        }
        if !unset.is_empty() {
            notes.push(
                NoteKind::Found,
                format!(
                    "dhclient.conf does not set {}: netbond's defaults apply",
                    unset.join(", ")
                ),
            );
        }
    }

    // --- [dhcp6] ---
    if let Some(v6) = &v6 {
        let c = Some(v6.block.clone());
        if v6.information_only {
            out.set(
                "dhcp6",
                "mode",
                "stateless",
                Some(format!("{}: information-only", v6.block)),
            );
            out.set("dhcp6", "ia_na", false, c.clone());
        } else {
            out.set(
                "dhcp6",
                "mode",
                "stateful",
                Some("dhcp6c solicited whatever the router advertisement said; \"auto\" follows its M/O flags".into()),
            );
            out.set(
                "dhcp6",
                "ia_na",
                v6.ia_na.is_some(),
                Some(v6.ia_na.as_ref().map_or_else(
                    || format!("{}: no send ia-na", v6.block),
                    |n| format!("{}: send ia-na {}", n.at, n.value),
                )),
            );
        }
        out.set(
            "dhcp6",
            "ia_pd",
            v6.ia_pd.is_some(),
            Some(v6.ia_pd.as_ref().map_or_else(
                || format!("{}: no (uncommented) send ia-pd", v6.block),
                |n| format!("{}: send ia-pd {}", n.at, n.value),
            )),
        );
        if let Some(pd) = &v6.ia_pd {
            out.set("dhcp6", "iaid_pd", pd.value.to_string(), None);
        }
        out.set(
            "dhcp6",
            "rapid_commit",
            v6.rapid_commit,
            Some(format!(
                "{}: send rapid-commit {}",
                v6.block,
                if v6.rapid_commit { "present" } else { "absent" }
            )),
        );
        out.set(
            "dhcp6",
            "request_ntp",
            v6.request_ntp,
            Some(format!(
                "{}: ntp-servers {}requested",
                v6.block,
                if v6.request_ntp { "" } else { "not " }
            )),
        );
    }

    // --- [bond] ---
    if have_bond {
        let defaults = crate::config::BondConfig::default();
        let name_c = bond.name.as_ref().map_or(
            "default (the reference's DefaultInstance= bond0)".to_string(),
            |n| format!("{}: DefaultInstance", n.at),
        );
        out.set(
            "bond",
            "name",
            bond.name
                .as_ref()
                .map_or(defaults.name.clone(), |n| n.value.clone()),
            Some(name_c),
        );
        out.set("bond", "mode", "active-backup", None);
        out.set(
            "bond",
            "fail_over_mac",
            bond.fail_over_mac
                .as_ref()
                .map_or(defaults.fail_over_mac.clone(), |f| f.value.clone()),
            Some(bond.fail_over_mac.as_ref().map_or(
                "default: the bond takes the active port's MAC (Wi-Fi needs it)".into(),
                |f| format!("{}: fail_over_mac", f.at),
            )),
        );
        out.set(
            "bond",
            "miimon",
            i64::from(bond.miimon.as_ref().map_or(defaults.miimon, |m| m.value)),
            bond.miimon.as_ref().map(|m| format!("{}: miimon", m.at)),
        );
        match &bond.primary {
            Some(p) => {
                notes.push(
                    NoteKind::Found,
                    format!("{}: bond primary {}", p.at, p.value),
                );
                out.set(
                    "bond",
                    "primary",
                    p.value.clone(),
                    Some(format!("{}: PRI", p.at)),
                );
            }
            None => notes.push(
                NoteKind::Found,
                "no bond primary found: netbond prefers the first wired port (en*, eth*)".into(),
            ),
        }
        out.set(
            "bond",
            "primary_reselect",
            bond.primary_reselect
                .as_ref()
                .map_or(defaults.primary_reselect.clone(), |f| f.value.clone()),
            bond.primary_reselect
                .as_ref()
                .map(|f| format!("{}: primary_reselect", f.at)),
        );
        out.set(
            "bond",
            "ports",
            toml::Value::Array(defaults.ports.iter().map(|p| toml::Value::from(p.as_str())).collect()),
            Some("the reference hard-linked slave@.service per port (enp3s0@, wlp2s0@); netbond enslaves matching ports as they appear".into()),
        );
        if !bond.mode_ok && inputs.bonding.is_some() {
            notes.push(
                NoteKind::Found,
                "bonding.conf sets no mode: netbond uses active-backup".into(),
            );
        }
    } else {
        notes.push(
            NoteKind::Warning,
            "no bond setup found (primary file, master unit, modprobe options): no [bond] section; set `interface = \"NAME\"` or add [bond]".into(),
        );
    }

    // --- Wi-Fi: a comment until the section exists ---
    let mut wifi_comment = Vec::new();
    if let Some((file, bytes)) = &inputs.wpa {
        let w = wpa(bytes, file, &mut notes);
        notes.push(
            NoteKind::Found,
            format!(
                "{file}: {} network block(s){}; written as a commented [[wifi]] stanza: the Wi-Fi section of netbond.toml is not designed yet, so keep supplicant@IFACE.service running",
                w.networks,
                w.ctrl_dir.as_ref().map_or(String::new(), |d| format!(", ctrl_interface {d}"))
            ),
        );
        wifi_comment
            .push("Wi-Fi: the [[wifi]] section is not designed yet; this stanza is a".to_string());
        wifi_comment.push(
            "reminder of the classic setup. Keep supplicant@IFACE.service running.".to_string(),
        );
        wifi_comment.push("[[wifi]]".to_string());
        wifi_comment.push(format!("wpa_conf = {}", toml::Value::from(file.as_str())));
        if let Some(d) = &w.ctrl_dir {
            wifi_comment.push(format!(
                "ctrl_interface = {}",
                toml::Value::from(d.as_str())
            ));
        }
    }

    notes.push(
        NoteKind::Found,
        format!(
            "after checking the result: systemctl disable --now master@{b} dhclient@{b} dhcp6c@{b} and the IFACE@{b} port units, then enable netbond.service",
            b = bond_name
        ),
    );
    let notes = notes.finish();
    let text = render(&out, &notes, &wifi_comment);
    let config = Config::parse(&text, None).map_err(|e| {
        format!("internal error: the imported configuration does not validate: {e}\n{text}")
    })?;
    Ok(ImportReport {
        toml: text,
        config,
        notes,
    })
}

fn render(out: &Out, notes: &[Note], wifi: &[String]) -> String {
    let mut s = String::new();
    s.push_str("# netbond configuration generated by `netbond import` from the classic\n");
    s.push_str("# dhclient + dhcp6c + bonding units setup. Keys not written keep their\n");
    s.push_str("# defaults (see the example netbond.toml). Check it with\n");
    s.push_str("# `netbond check-config PATH` before enabling netbond.service.\n#\n");
    s.push_str("# Import notes:\n");
    for n in notes {
        s.push_str("#   ");
        s.push_str(&comment_safe(&n.to_string()));
        s.push('\n');
    }
    for (name, entries) in out.sections.iter().filter(|(_, e)| !e.is_empty()) {
        s.push_str(&format!("\n[{name}]\n"));
        for e in entries {
            if let Some(c) = &e.comment {
                s.push_str("# ");
                s.push_str(&comment_safe(c));
                s.push('\n');
            }
            s.push_str(&format!("{} = {}\n", e.key, e.value));
        }
    }
    if !wifi.is_empty() {
        s.push('\n');
        for l in wifi {
            s.push_str("# ");
            s.push_str(&comment_safe(l));
            s.push('\n');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use netbond_proto::duid::rfc4361_client_id;

    const DHCLIENT: &[u8] = include_bytes!("../integration/fixtures/reference/dhclient.conf");
    const DHCP6C: &[u8] = include_bytes!("../integration/fixtures/reference/dhcp6c.conf");
    const DUID_FILE: &[u8] = include_bytes!("../integration/fixtures/reference/dhcp6c_duid");
    const PRIMARY: &[u8] = include_bytes!("../integration/fixtures/reference/primary.conf");
    const MASTER: &[u8] = include_bytes!("../integration/fixtures/reference/master@.service");
    const BONDING: &[u8] = include_bytes!("../integration/fixtures/reference/bonding.conf");
    const WPA: &[u8] = include_bytes!("../integration/fixtures/reference/wpa_supplicant.conf");

    const REF_DUID: &str = "00:02:00:02:2e:2d:01:bd:c3:92:9a:44:2a:c4";

    fn src(name: &str, b: &[u8]) -> Option<(String, Vec<u8>)> {
        Some((format!("/etc/{name}"), b.to_vec()))
    }

    fn reference() -> Inputs {
        Inputs {
            dhclient: src("dhclient.conf", DHCLIENT),
            dhcp6c: src("wide-dhcpv6/dhcp6c.conf", DHCP6C),
            dhcp6c_duid: src("dhcp6c_duid", DUID_FILE),
            primary: src("primary.conf", PRIMARY),
            master_unit: src("systemd/system/master@.service", MASTER),
            bonding: src("modprobe.d/bonding.conf", BONDING),
            wpa: src("wpa_supplicant/wpa_supplicant.conf", WPA),
        }
    }

    fn has(r: &ImportReport, kind: NoteKind, needle: &str) -> bool {
        r.notes
            .iter()
            .any(|n| n.kind == kind && n.text.contains(needle))
    }

    /// A scratch directory under the system temp dir, removed on drop.
    struct Scratch(PathBuf);
    impl Scratch {
        fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!(
                "netbond-import-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Scratch(p)
        }
        fn file(&self, name: &str, content: &[u8]) -> PathBuf {
            let p = self.0.join(name);
            std::fs::write(&p, content).unwrap();
            p
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn the_fixture_duid_file_holds_the_reference_duid() {
        let d = Duid::from_dhcp6c_file(DUID_FILE).unwrap();
        assert_eq!(d.to_string(), REF_DUID);
        assert_eq!(d.to_dhcp6c_file(), DUID_FILE);
    }

    #[test]
    fn reference_setup_round_trips_through_the_files() {
        let dir = Scratch::new("ref");
        let sources = ImportSources {
            dhclient_conf: Some(dir.file("dhclient.conf", DHCLIENT)),
            dhcp6c_conf: Some(dir.file("dhcp6c.conf", DHCP6C)),
            dhcp6c_duid: Some(dir.file("dhcp6c_duid", DUID_FILE)),
            primary_conf: Some(dir.file("primary.conf", PRIMARY)),
            master_unit: Some(dir.file("master@.service", MASTER)),
            bonding_conf: Some(dir.file("bonding.conf", BONDING)),
            wpa_conf: Some(dir.file("wpa_supplicant.conf", WPA)),
            dhclient_hooks: None,
        };
        let r = import(&sources).unwrap();
        // The text parses on its own and gives the same config.
        let c = Config::parse(&r.toml, None).unwrap();
        assert_eq!(c, r.config);

        // The exact DUID, sent bare on v4 as the reference did.
        assert_eq!(c.identity.duid.as_deref(), Some(REF_DUID));
        assert_eq!(
            c.identity.duid.as_deref().unwrap().parse::<Duid>().unwrap(),
            Duid::from_dhcp6c_file(DUID_FILE).unwrap()
        );
        assert_eq!(c.identity.iaid.as_deref(), Some("1"));
        assert_eq!(
            c.dhcp4_client_id(),
            Ok(crate::config::ClientIdSetting::Duid)
        );
        assert!(has(&r, NoteKind::Found, "the same DUID"));

        assert_eq!(c.dhcp4.hostname.as_deref(), Some("laptop"));
        assert_eq!(c.dhcp4.initial_interval, 2.0);
        assert_eq!(c.dhcp4.reboot, 5);
        assert_eq!(c.dhcp4.timeout, 10);
        assert_eq!(c.dhcp4.retry, 20);
        assert_eq!(c.dhcp4.max_interval, 64.0);

        assert!(c.dhcp6.ia_na);
        assert!(!c.dhcp6.ia_pd, "send ia-pd is commented out");
        assert_eq!(c.dhcp6.iaid_pd, None);
        assert!(c.dhcp6.rapid_commit);
        assert!(c.dhcp6.request_ntp);
        assert_eq!(c.dhcp6.mode, crate::config::Dhcp6Mode::Stateful);

        let b = c.bond.unwrap();
        assert_eq!(b.name, "bond0");
        assert_eq!(b.primary.as_deref(), Some("enp3s0"));
        assert_eq!(b.ports, vec!["en*", "eth*", "wl*"]);
        assert_eq!(b.miimon, 100);
        assert_eq!(b.fail_over_mac, "active");

        assert!(r.toml.contains("# [[wifi]]"));
        assert!(has(&r, NoteKind::Found, "not designed yet"));
        assert!(has(&r, NoteKind::Ignored, "keyinfo"));
        // Nothing secret is copied.
        assert!(!r.toml.contains("404fe69d"));
        assert!(!r.toml.contains("ErEJ0GEz"));
        assert!(!r.has_warnings(), "{:#?}", r.notes);
    }

    #[test]
    fn pure_and_file_imports_agree() {
        let r = import_from(&reference()).unwrap();
        if std::env::var_os("NETBOND_IMPORT_PRINT").is_some() {
            println!("{}", r.toml);
        }
        assert_eq!(r.config.identity.duid.as_deref(), Some(REF_DUID));
        assert!(r
            .toml
            .contains("/etc/dhclient.conf:8: send dhcp-client-identifier"));
        assert!(!r.has_warnings(), "{:#?}", r.notes);
    }

    #[test]
    fn rfc4361_identifier_keeps_its_octets() {
        let d: Duid = REF_DUID.parse().unwrap();
        let id = rfc4361_client_id(Iaid(7), &d);
        let conf = format!("send dhcp-client-identifier {};\n", hex(&id));
        let r = import_from(&Inputs {
            dhclient: src("dhclient.conf", conf.as_bytes()),
            ..Inputs::default()
        })
        .unwrap();
        let c = &r.config;
        assert_eq!(c.dhcp4.client_id, "rfc4361");
        let duid: Duid = c.identity.duid.as_deref().unwrap().parse().unwrap();
        let iaid: Iaid = c.identity.iaid.as_deref().unwrap().parse().unwrap();
        assert_eq!(rfc4361_client_id(iaid, &duid), id);
    }

    #[test]
    fn iaid_conflict_keeps_the_ipv4_one_and_warns() {
        let d: Duid = REF_DUID.parse().unwrap();
        let id = rfc4361_client_id(Iaid(7), &d);
        let conf = format!("send dhcp-client-identifier {};\n", hex(&id));
        let r = import_from(&Inputs {
            dhclient: src("dhclient.conf", conf.as_bytes()),
            dhcp6c: src("dhcp6c.conf", DHCP6C),
            dhcp6c_duid: src("dhcp6c_duid", DUID_FILE),
            ..Inputs::default()
        })
        .unwrap();
        assert_eq!(r.config.identity.iaid.as_deref(), Some("7"));
        assert!(has(&r, NoteKind::Warning, "IA_NA IAID 1 differs"));
    }

    #[test]
    fn duid_conflict_prefers_dhclient_and_dhcp6c_fills_in() {
        let other: Duid = "00:01:00:01:2e:2d:01:bd:52:54:00:12:34:56".parse().unwrap();
        let both = Inputs {
            dhclient: src("dhclient.conf", DHCLIENT),
            dhcp6c_duid: src("dhcp6c_duid", &other.to_dhcp6c_file()),
            ..Inputs::default()
        };
        let r = import_from(&both).unwrap();
        assert_eq!(r.config.identity.duid.as_deref(), Some(REF_DUID));
        assert!(has(
            &r,
            NoteKind::Warning,
            "DHCPv6 server will see a new DUID"
        ));

        let only6 = Inputs {
            dhcp6c_duid: src("dhcp6c_duid", &other.to_dhcp6c_file()),
            ..Inputs::default()
        };
        let r = import_from(&only6).unwrap();
        assert_eq!(
            r.config.identity.duid.as_deref(),
            Some(other.to_string().as_str())
        );
        assert_eq!(r.config.dhcp4.client_id, "rfc4361");
    }

    #[test]
    fn other_identifiers_are_kept_as_raw_octets() {
        for (conf, want) in [
            (
                "send dhcp-client-identifier 1:52:54:0:12:34:56;",
                "01:52:54:00:12:34:56",
            ),
            ("send dhcp-client-identifier \"foo\";", "66:6f:6f"),
            ("send dhcp-client-identifier = ff:00:01;", "ff:00:01"),
        ] {
            let r = import_from(&Inputs {
                dhclient: src("dhclient.conf", conf.as_bytes()),
                ..Inputs::default()
            })
            .unwrap();
            assert_eq!(r.config.dhcp4.client_id, want, "{conf}");
            assert_eq!(r.config.identity.duid, None);
        }
        let r = import_from(&Inputs {
            dhclient: src(
                "dhclient.conf",
                b"send dhcp-client-identifier = hardware;\nsend host-name = gethostname();\n",
            ),
            ..Inputs::default()
        })
        .unwrap();
        assert_eq!(r.config.dhcp4.client_id, "rfc4361");
        assert_eq!(r.config.dhcp4.hostname, None);
        assert!(has(&r, NoteKind::Ignored, "hardware"));
        assert!(has(&r, NoteKind::Ignored, "expression"));
    }

    #[test]
    fn dhcp6c_interface_blocks_pd_and_information_only() {
        let conf = b"interface eth9 { send ia-na 5; };\n\
            interface bond0 {\n  send ia-na 3;\n  send ia-pd 4;\n  request domain-name-servers;\n};\n\
            id-assoc na 3 { };\nid-assoc pd 4 { prefix-interface eth1 { sla-id 1; }; };\n";
        let r = import_from(&Inputs {
            dhcp6c: src("dhcp6c.conf", conf),
            ..Inputs::default()
        })
        .unwrap();
        let d6 = &r.config.dhcp6;
        assert!(d6.ia_na && d6.ia_pd && !d6.rapid_commit && !d6.request_ntp);
        assert_eq!(d6.iaid_pd.as_deref(), Some("4"));
        assert_eq!(r.config.identity.iaid.as_deref(), Some("3"));
        assert!(has(&r, NoteKind::Ignored, "eth9"));
        assert!(has(&r, NoteKind::Ignored, "prefix-interface"));

        let r = import_from(&Inputs {
            dhcp6c: src("dhcp6c.conf", b"profile default { information-only; };"),
            ..Inputs::default()
        })
        .unwrap();
        assert_eq!(r.config.dhcp6.mode, crate::config::Dhcp6Mode::Stateless);
        assert!(!r.config.dhcp6.ia_na);
    }

    #[test]
    fn primary_forms() {
        for (text, want) in [
            ("PRI=wlp2s0\n", Some("wlp2s0")),
            ("# c\nPRI=\"eth1\"\n", Some("eth1")),
            (
                "[Service]\nEnvironment= PRI=enp3s0\n# Environment= PRI=wlp2s0\n",
                Some("enp3s0"),
            ),
            ("Environment=\"A=b c\" PRI=eno1\n", Some("eno1")),
            ("enp0s25\n", Some("enp0s25")),
            ("PRI=../../etc\n", None),
            ("PRI=\n", None),
        ] {
            let r = import_from(&Inputs {
                primary: src("primary.conf", text.as_bytes()),
                ..Inputs::default()
            })
            .unwrap();
            let b = r.config.bond.unwrap();
            assert_eq!(b.primary.as_deref(), want, "{text:?}");
        }
        // primary.conf overrides the unit, as EnvironmentFile= does.
        let r = import_from(&Inputs {
            primary: src("primary.conf", b"PRI=wlp2s0\n"),
            master_unit: src("master@.service", MASTER),
            ..Inputs::default()
        })
        .unwrap();
        assert_eq!(
            r.config.bond.as_ref().unwrap().primary.as_deref(),
            Some("wlp2s0")
        );
        assert!(has(&r, NoteKind::Found, "overrides PRI=enp3s0"));
    }

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

    #[test]
    fn dhclient_exit_hooks_are_named_with_what_to_do() {
        let dir = Scratch::new("hooks");
        let hooks = dir.0.join("dhclient-exit-hooks.d");
        std::fs::create_dir_all(&hooks).unwrap();
        for n in ["rfc3442-classless-routes", "zz-dyndns", ".hidden"] {
            std::fs::write(hooks.join(n), "# hook\n").unwrap();
        }
        let sources = ImportSources {
            dhclient_conf: Some(dir.file("dhclient.conf", b"reboot 3;\n")),
            dhcp6c_conf: None,
            dhcp6c_duid: None,
            primary_conf: None,
            master_unit: None,
            bonding_conf: None,
            wpa_conf: None,
            dhclient_hooks: Some(hooks),
        };
        let r = import(&sources).unwrap();
        assert!(has(
            &r,
            NoteKind::Ignored,
            "rfc3442-classless-routes: dhclient exit hook not converted, not needed"
        ));
        assert!(has(
            &r,
            NoteKind::Warning,
            "zz-dyndns: dhclient exit hook not converted"
        ));
        assert!(!has(&r, NoteKind::Warning, ".hidden"));
        // The generated file says it too.
        assert!(r.toml.contains("zz-dyndns"), "{}", r.toml);
    }

    #[test]
    fn huge_and_special_files_are_not_read() {
        let dir = Scratch::new("huge");
        let mut big = b"reboot 3;\n".to_vec();
        big.resize(MAX_SOURCE_BYTES as usize + 10, b'#');
        let sources = ImportSources {
            dhclient_conf: Some(dir.file("dhclient.conf", &big)),
            dhcp6c_conf: Some(dir.0.clone()),
            dhcp6c_duid: Some(dir.0.join("absent")),
            primary_conf: None,
            master_unit: None,
            bonding_conf: None,
            wpa_conf: None,
            dhclient_hooks: None,
        };
        let e = import(&sources).unwrap_err();
        assert!(e.contains("nothing to import"), "{e}");

        let sources = ImportSources {
            primary_conf: Some(dir.file("primary.conf", b"PRI=eth0\n")),
            ..sources
        };
        let r = import(&sources).unwrap();
        assert_eq!(r.config.dhcp4.reboot, 10, "the big file was not read");
        assert!(has(&r, NoteKind::Ignored, "larger than 1024 KiB"));
        assert!(has(&r, NoteKind::Ignored, "not a regular file"));
        assert!(has(&r, NoteKind::Missing, "absent"));
    }

    #[test]
    fn hostile_structure_does_not_panic_and_output_parses() {
        let deep = "{".repeat(200_000);
        let closes = "};".repeat(1000);
        let many_bad = "send host-name \"bad name\";\n".repeat(5000);
        let cases: Vec<Vec<u8>> = vec![
            deep.clone().into_bytes(),
            closes.into_bytes(),
            many_bad.into_bytes(),
            b"send host-name \"unterminated\nretry 5;\n".to_vec(),
            b"interface \"bond0\" { send dhcp-client-identifier 00:02:00:02:2e:2d:01:bd:c3:92:9a:44:2a:c4;".to_vec(),
            b"timeout 99999999999999999999999;\ninitial-interval 0;\nbackoff-cutoff 1;\n".to_vec(),
            b"send host-name \"x\\\"\\n[daemon]\\nlog_level=1\";\n".to_vec(),
            b"; ; { } } , = = \"\" ;".to_vec(),
            vec![0u8; 4096],
        ];
        let mut seed: u32 = 0x1234_5678;
        let mut fuzz = Vec::new();
        for _ in 0..64 {
            let mut v = Vec::new();
            for _ in 0..512 {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                let alphabet = b"sendhost-namerebot 0123456789:;{}\"#\n=,ff\xc3";
                v.push(alphabet[(seed as usize) % alphabet.len()]);
            }
            fuzz.push(v);
        }
        for case in cases.iter().chain(fuzz.iter()) {
            let inputs = Inputs {
                dhclient: src("dhclient.conf", case),
                dhcp6c: src("dhcp6c.conf", case),
                dhcp6c_duid: src("dhcp6c_duid", case),
                primary: src("primary.conf", case),
                master_unit: src("master@.service", case),
                bonding: src("bonding.conf", case),
                wpa: src("wpa_supplicant.conf", case),
            };
            let r = import_from(&inputs).unwrap();
            Config::parse(&r.toml, None).unwrap();
            assert!(r.notes.len() < 400, "notes are capped: {}", r.notes.len());
            assert!(!r.toml.contains("\nlog_level"), "no injection:\n{}", r.toml);
        }
    }

    #[test]
    fn comments_cannot_inject_lines() {
        let r = import_from(&Inputs {
            primary: Some((
                "/tmp/x\n[daemon]\nlog_level = \"bad\"".into(),
                b"PRI=eth0".to_vec(),
            )),
            ..Inputs::default()
        })
        .unwrap();
        assert!(!r.toml.contains("\n[daemon]"));
        assert_eq!(r.config.daemon.log_level, "info");
    }

    #[test]
    fn output_is_not_overwritten_without_force() {
        let dir = Scratch::new("out");
        let p = dir.0.join("sub/netbond.toml");
        write_config(&p, "a = 1\n", false).unwrap();
        let e = write_config(&p, "b = 2\n", false).unwrap_err();
        assert!(e.contains("--force"), "{e}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a = 1\n");
        write_config(&p, "b = 2\n", true).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "b = 2\n");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o644, 0o644);
        assert_eq!(
            std::fs::read_dir(dir.0.join("sub")).unwrap().count(),
            1,
            "no temp left"
        );
    }

    #[test]
    fn defaults_point_at_the_reference_paths() {
        let d = ImportSources::defaults();
        assert_eq!(
            d.primary_conf.as_deref(),
            Some(Path::new("/etc/primary.conf"))
        );
        assert_eq!(
            d.dhcp6c_duid.as_deref(),
            Some(Path::new("/var/lib/dhcpv6/dhcp6c_duid"))
        );
        assert!(d.dhclient_conf.is_some() && d.wpa_conf.is_some());
    }
}
