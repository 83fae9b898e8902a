//! The bond: its name (`DefaultInstance=` of `master@.service`), its primary (`PRI=`
//! in `/etc/primary.conf` or the unit) and the bonding module options
//! (`/etc/modprobe.d/bonding.conf`), written as `[bond]`.

use super::lex::text_lines;
use super::render::Out;
use super::units::{split_words, unit_key, unquote};
use super::{at, Inputs, NoteKind, Notes, Sourced};
use crate::net::ifname::valid_ifname;

/// What the bond sources set, each with where.
#[derive(Debug, Default)]
pub(super) struct BondFound {
    /// The bond's name (`DefaultInstance=`).
    pub(super) name: Option<Sourced<String>>,
    primary: Option<Sourced<String>>,
    /// bonding.conf was read.
    options_read: bool,
    mode_ok: bool,
    miimon: Option<Sourced<u32>>,
    fail_over_mac: Option<Sourced<String>>,
    primary_reselect: Option<Sourced<String>>,
}

/// Read the bond sources. `None` when none of them was read (no `[bond]`).
pub(super) fn parse(inputs: &Inputs, notes: &mut Notes) -> Option<BondFound> {
    if inputs.primary.is_none() && inputs.master_unit.is_none() && inputs.bonding.is_none() {
        return None;
    }
    let mut bond = BondFound::default();
    let unit_primary = inputs.master_unit.as_ref().and_then(|(file, bytes)| {
        let primary_file = inputs.primary.as_ref().map(|(p, _)| p.as_str());
        master_unit(bytes, file, primary_file, &mut bond, notes)
    });
    let file_primary = inputs
        .primary
        .as_ref()
        .and_then(|(file, bytes)| primary_file(bytes, file, notes));
    if let Some((file, bytes)) = &inputs.bonding {
        bond.options_read = true;
        bonding_options(bytes, file, &mut bond, notes);
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
    Some(bond)
}

/// The bond's name: `DefaultInstance=`, else the reference's `bond0`.
pub(super) fn name(bond: Option<&BondFound>) -> String {
    bond.and_then(|b| b.name.as_ref())
        .map_or("bond0".to_string(), |n| n.value.clone())
}

/// `master@.service`: the bond's name, and the unit's `PRI` (returned: the primary
/// file overrides it).
fn master_unit(
    bytes: &[u8],
    file: &str,
    primary_file: Option<&str>,
    bond: &mut BondFound,
    notes: &mut Notes,
) -> Option<Sourced<String>> {
    let lines = text_lines(bytes, file, notes);
    if let Some((v, l)) = unit_key(&lines, "DefaultInstance") {
        let here = at(file, l);
        if let Some(n) = checked_ifname(&v, &here, "DefaultInstance", file, notes) {
            bond.name = Some(Sourced { value: n, at: here });
        }
    }
    let unit_primary = primary_from(&lines).and_then(|(v, l)| {
        let here = at(file, l);
        checked_ifname(&v, &here, "PRI", file, notes).map(|p| Sourced { value: p, at: here })
    });
    if let Some((v, l)) = unit_key(&lines, "EnvironmentFile") {
        let v = v.trim_start_matches('-');
        if primary_file.is_none_or(|p| p != v) {
            notes.push(
                NoteKind::Found,
                format!(
                    "{}: the unit also reads PRI from EnvironmentFile={v}, which was not the primary file read; pass --primary {v} if it holds PRI",
                    at(file, l)
                ),
            );
        }
    }
    unit_primary
}

/// `/etc/primary.conf`: its `PRI`.
fn primary_file(bytes: &[u8], file: &str, notes: &mut Notes) -> Option<Sourced<String>> {
    let lines = text_lines(bytes, file, notes);
    match primary_from(&lines) {
        Some((v, l)) => {
            let here = at(file, l);
            checked_ifname(&v, &here, "PRI", file, notes).map(|p| Sourced { value: p, at: here })
        }
        None => {
            notes.push(
                NoteKind::Warning,
                format!("{file}: no `PRI=ifname` line; nothing imported from it"),
            );
            None
        }
    }
}

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

/// `value` when it is a valid interface name, else `None` and a warning.
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

/// modprobe.d/bonding.conf: `options bonding KEY=VALUE ...` lines.
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
                    bonding_option(k, v, &here, file, bond, notes);
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

/// One `key=value` of `options bonding`.
fn bonding_option(
    k: &str,
    v: &str,
    here: &str,
    file: &str,
    bond: &mut BondFound,
    notes: &mut Notes,
) {
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
                    at: here.to_string(),
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
                        at: here.to_string(),
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
            if let Some(p) = checked_ifname(v, here, "primary", file, notes) {
                bond.primary = Some(Sourced {
                    value: p,
                    at: here.to_string(),
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

/// The `[bond]` keys, or the warning that there is no bond.
pub(super) fn write(bond: Option<&BondFound>, out: &mut Out, notes: &mut Notes) {
    let Some(bond) = bond else {
        notes.push(
            NoteKind::Warning,
            "no bond setup found (primary file, master unit, modprobe options): no [bond] section; set `interface = \"NAME\"` or add [bond]".into(),
        );
        return;
    };
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
        crate::config::toml::Value::from(
            defaults.ports.iter().map(|p| crate::config::toml::Value::from(p.as_str())).collect::<Vec<_>>(),
        ),
        Some("the reference hard-linked slave@.service per port (enp3s0@, wlp2s0@); netbond enslaves matching ports as they appear".into()),
    );
    if !bond.mode_ok && bond.options_read {
        notes.push(
            NoteKind::Found,
            "bonding.conf sets no mode: netbond uses active-backup".into(),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::tools::import::testutil::*;

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
}
