//! dhclient.conf (ISC dhclient): the client identifier, host name and timing.

use super::lex::{parse_file, stmt_text, Stmt, Tok, Token};
use super::render::Out;
use super::{at, NoteKind, Notes, Sourced};

/// What dhclient.conf set, each with where.
#[derive(Debug, Default)]
pub(super) struct V4 {
    /// `send dhcp-client-identifier`: the octets dhclient sent.
    pub(super) client_id: Option<Sourced<Vec<u8>>>,
    hostname: Option<Sourced<String>>,
    initial_interval: Option<Sourced<f64>>,
    max_interval: Option<Sourced<f64>>,
    timeout: Option<Sourced<u64>>,
    retry: Option<Sourced<u64>>,
    reboot: Option<Sourced<u64>>,
}

/// A statement's one whole-number argument (seconds).
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

/// Parse dhclient.conf: the top-level statements, then those of the bond's
/// `interface` block.
pub(super) fn parse(bytes: &[u8], file: &str, bond_name: &str, notes: &mut Notes) -> V4 {
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

/// One statement of dhclient.conf.
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
        "send" => send(s, &here, file, v4, notes),
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

/// `send OPTION VALUE;`: the client identifier and the host name are imported.
fn send(s: &Stmt, here: &str, file: &str, v4: &mut V4, notes: &mut Notes) {
    let ignore = |why: &str, notes: &mut Notes| {
        notes.file(
            file,
            NoteKind::Ignored,
            format!("{here}: `{}`: {why}", stmt_text(s, 0)),
        )
    };
    let Some(opt) = s.word(1) else {
        ignore("not understood", notes);
        return;
    };
    let mut vals: Vec<&Token> = s.args[2..].iter().collect();
    if vals.first().is_some_and(|t| t.tok == Tok::Eq) {
        vals.remove(0);
    }
    match opt {
        "dhcp-client-identifier" => send_client_id(&vals, here, v4, notes, file),
        "host-name" => match vals.as_slice() {
            [t] if t.text().is_some() => {
                let name = t.text().unwrap_or_default();
                match netbond_proto::name::host_name(name.as_bytes()) {
                    Some(n) if !name.contains('(') => {
                        v4.hostname = Some(Sourced {
                            value: n,
                            at: here.to_string(),
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

/// `send dhcp-client-identifier VALUE;`: a hex string or a quoted string.
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

/// The [dhcp4] keys from dhclient.conf (the client identifier is the identity's).
pub(super) fn write(v4: &V4, out: &mut Out, notes: &mut Notes) {
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
