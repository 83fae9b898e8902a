//! dhcp6c.conf (WIDE-DHCPv6): one `profile` or `interface` block, its IA_NA and
//! IA_PD, rapid commit, NTP and information-only.

use super::lex::{parse_file, stmt_text, Stmt, Token};
use super::render::Out;
use super::{at, NoteKind, Notes, Sourced};

/// What the chosen dhcp6c.conf block set, each with where.
#[derive(Debug, Default)]
pub(super) struct V6 {
    /// Which block was used, for comments.
    block: String,
    /// `send ia-na N`: its IAID.
    pub(super) ia_na: Option<Sourced<u32>>,
    ia_pd: Option<Sourced<u32>>,
    rapid_commit: bool,
    request_ntp: bool,
    information_only: bool,
}

/// A block's name: `profile default` -> `default`.
fn name_of(s: &Stmt) -> String {
    s.args
        .get(1)
        .and_then(Token::text)
        .unwrap_or("?")
        .to_string()
}

/// Parse dhcp6c.conf. `None` (with a warning) when it has no block to import.
pub(super) fn parse(bytes: &[u8], file: &str, bond_name: &str, notes: &mut Notes) -> Option<V6> {
    let stmts = parse_file(bytes, file, notes);
    let chosen = choose_block(&stmts, file, bond_name, notes)?;
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
        block_stmt(s, file, &mut v6, notes);
    }
    check_id_assoc(&stmts, &v6, file, notes);
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

/// The one block imported: `profile default`, else the bond's `interface` block,
/// else the first. The others are noted as ignored.
fn choose_block<'a>(
    stmts: &'a [Stmt],
    file: &str,
    bond_name: &str,
    notes: &mut Notes,
) -> Option<&'a Stmt> {
    let blocks: Vec<&Stmt> = stmts
        .iter()
        .filter(|s| matches!(s.word(0), Some("profile" | "interface")) && s.block.is_some())
        .collect();
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
    Some(chosen)
}

/// One statement of the chosen block.
fn block_stmt(s: &Stmt, file: &str, v6: &mut V6, notes: &mut Notes) {
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
                .filter(|w| !matches!(*w, "ntp-servers" | "domain-name-servers" | "domain-name"))
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
        (Some("script"), _) => ignore("netbond applies addresses and DNS itself; no script", notes),
        _ => ignore("unknown or unsupported statement", notes),
    }
}

/// The IA_NA / IA_PD declarations the send statements refer to: a missing one is a
/// warning, whatever is inside one has no netbond equivalent.
fn check_id_assoc(stmts: &[Stmt], v6: &V6, file: &str, notes: &mut Notes) {
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
}

/// The [dhcp6] keys from the chosen block.
pub(super) fn write(v6: &V6, out: &mut Out) {
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

#[cfg(test)]
mod tests {
    use crate::tools::import::testutil::*;

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
        assert_eq!(
            r.config.dhcp6.mode,
            netbond_proto::dhcp6::ModeSetting::Stateless
        );
        assert!(!r.config.dhcp6.ia_na);
    }
}
