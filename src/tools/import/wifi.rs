//! Wi-Fi: `[[wifi]]` tables that make netbond supervise wpa_supplicant as the
//! classic `supplicant@IFACE.service` did. wpa_supplicant.conf is only summarised
//! (its keys are never copied: the tables point at the file); the unit template
//! gives the `-c` file, the `-D` driver list and the `iw` settings, and its enabled
//! instances name the interfaces.

use super::lex::text_lines;
use super::render::{comment_safe, table, Entry};
use super::units::{split_words, unit_lines};
use super::{at, Inputs, NoteKind, Notes, Sourced};
use crate::net::ifname::valid_ifname;

/// What wpa_supplicant.conf holds, for the notes.
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

/// What the classic supplicant unit ran.
#[derive(Debug, Default)]
struct SupplicantUnit {
    /// `-c` of ExecStart.
    config: Option<Sourced<String>>,
    /// `-D` of ExecStart.
    driver: Option<Sourced<String>>,
    /// ExecStart's program when it is not in a standard bin directory.
    binary: Option<Sourced<String>>,
    /// `iw ... set bitrates legacy-2.4` without the 802.11b rates.
    no_legacy_rates: Option<String>,
    /// `iw ... set distance N`.
    distance: Option<Sourced<u32>>,
}

/// The `Exec*=` lines of the supplicant unit: wpa_supplicant's arguments and the
/// `iw` settings around it.
fn supplicant_unit(bytes: &[u8], file: &str, notes: &mut Notes) -> SupplicantUnit {
    let lines = text_lines(bytes, file, notes);
    let mut u = SupplicantUnit::default();
    let mut said_reload = false;
    for (line, l) in unit_lines(&lines) {
        let here = at(file, l);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if !key.starts_with("Exec") {
            continue;
        }
        // systemd's `-`, `@`, `+`, `!` prefixes on the command.
        let value = value.trim().trim_start_matches(['-', '@', '+', '!', ':']);
        let words = split_words(value);
        let program = words.first().map(String::as_str).unwrap_or("");
        if key == "ExecStart" && program.rsplit('/').next() == Some("wpa_supplicant") {
            exec_wpa_supplicant(&words, &here, file, &mut u, notes);
            continue;
        }
        // `iw` settings, also inside `bash -c "..."`: look at the bare words.
        let bare: Vec<&str> = value
            .split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
            .filter(|w| !w.is_empty())
            .collect();
        if bare.iter().any(|w| w.rsplit('/').next() == Some("iw")) {
            exec_iw(key, &bare, &here, file, &mut u, notes);
        } else if matches!(key, "ExecReload" | "ExecStop")
            && !std::mem::replace(&mut said_reload, true)
        {
            notes.file(
                file,
                NoteKind::Found,
                format!("{here}: ExecReload/ExecStop (wpa_cli): netbond does this itself (`netbond wifi IFACE reconfigure|reassociate`; it stops the supplicant it started)"),
            );
        }
    }
    u
}

/// `ExecStart=.../wpa_supplicant ARGS`: `-c`, `-D` and the program's directory.
fn exec_wpa_supplicant(
    words: &[String],
    here: &str,
    file: &str,
    u: &mut SupplicantUnit,
    notes: &mut Notes,
) {
    let program = words.first().map(String::as_str).unwrap_or("");
    let mut ignored = Vec::new();
    let mut i = 1;
    while i < words.len() {
        let w = &words[i];
        // `-cFILE` or `-c FILE`, the same for -D and -i.
        let mut arg = |flag: &str| -> Option<String> {
            let rest = w.strip_prefix(flag)?;
            if rest.is_empty() {
                i += 1;
                words.get(i).cloned()
            } else {
                Some(rest.to_string())
            }
        };
        if let Some(c) = arg("-c") {
            u.config = Some(Sourced {
                value: c,
                at: here.to_string(),
            });
        } else if let Some(d) = arg("-D") {
            u.driver = Some(Sourced {
                value: d,
                at: here.to_string(),
            });
        } else if arg("-i").is_none() {
            ignored.push(w.clone());
        }
        i += 1;
    }
    let dir = program.rsplit_once('/').map_or("", |(d, _)| d);
    let standard = [
        "",
        "/usr/bin",
        "/usr/sbin",
        "/bin",
        "/sbin",
        "/usr/local/bin",
        "/usr/local/sbin",
    ];
    if !standard.contains(&dir) {
        u.binary = Some(Sourced {
            value: program.to_string(),
            at: here.to_string(),
        });
    }
    if !ignored.is_empty() {
        notes.file(
            file,
            NoteKind::Ignored,
            format!(
                "{here}: wpa_supplicant options {} have no [[wifi]] key; netbond runs it with -c, -D and -i only",
                comment_safe(&ignored.join(" ").chars().take(120).collect::<String>())
            ),
        );
    }
}

/// An `Exec*=` line running `iw` (`bare` is its words): `set bitrates` and
/// `set distance`.
fn exec_iw(
    key: &str,
    bare: &[&str],
    here: &str,
    file: &str,
    u: &mut SupplicantUnit,
    notes: &mut Notes,
) {
    let set = bare.windows(2).position(|w| w == ["set", "bitrates"]);
    let dist = bare.windows(2).position(|w| w == ["set", "distance"]);
    if let Some(p) = set {
        let rest = &bare[p + 2..];
        if key == "ExecStopPost" || key == "ExecStop" {
            // The reset at stop: netbond's setting lasts while the radio exists.
            return;
        }
        let legacy = ["1", "2", "5.5", "11"];
        if rest.first() == Some(&"legacy-2.4")
            && rest.len() > 1
            && rest[1..].iter().all(|r| r.parse::<f32>().is_ok())
            && !rest[1..].iter().any(|r| legacy.contains(r))
        {
            u.no_legacy_rates = Some(here.to_string());
        } else {
            notes.file(
                file,
                NoteKind::Warning,
                format!(
                    "{here}: `iw set bitrates {}`: netbond can only turn off the 802.11b rates (disable_legacy_rates); not imported",
                    comment_safe(&rest.join(" ").chars().take(80).collect::<String>())
                ),
            );
        }
    } else if let Some(p) = dist {
        match bare.get(p + 2).and_then(|d| d.parse::<u32>().ok()) {
            Some(d) if d <= 100_000 => {
                u.distance = Some(Sourced {
                    value: d,
                    at: here.to_string(),
                })
            }
            _ => notes.file(
                file,
                NoteKind::Warning,
                format!("{here}: `iw set distance`: not a distance of 0 to 100000 m; not imported"),
            ),
        }
    } else {
        notes.file(
            file,
            NoteKind::Ignored,
            format!("{here}: an iw command with no [[wifi]] key for it"),
        );
    }
}

/// The `[[wifi]]` tables (commented out when no interface is known) and the
/// interfaces whose supplicant netbond now runs.
pub(super) fn write(inputs: &Inputs, notes: &mut Notes) -> (String, Vec<String>) {
    let unit = inputs
        .supplicant_unit
        .as_ref()
        .map(|(f, b)| (f.clone(), supplicant_unit(b, f, notes)));
    let found = inputs
        .wpa
        .as_ref()
        .map(|(f, b)| (f.clone(), wpa(b, f, notes)));
    if let Some((file, w)) = &found {
        notes.push(
            NoteKind::Found,
            format!(
                "{file}: {} network block(s){}; the file stays as it is and netbond runs wpa_supplicant with it",
                w.networks,
                w.ctrl_dir.as_ref().map_or(String::new(), |d| format!(
                    ", ctrl_interface {d} (wpa_cli keeps working there)"
                ))
            ),
        );
    }
    let u = unit.as_ref().map(|(_, u)| u);
    let Some((conf, conf_at)) = config_file(u, found.as_ref().map(|(f, _)| f.as_str()), notes)
    else {
        if let Some((f, _)) = &unit {
            notes.push(
                NoteKind::Warning,
                format!("{f}: the unit names no -c file and no wpa_supplicant.conf was read: no [[wifi]] written; pass --wpa-conf PATH"),
            );
        }
        return (String::new(), Vec::new());
    };
    let entries = entries(u, conf, conf_at);
    if unit.is_none() {
        notes.push(
            NoteKind::Warning,
            "no supplicant unit read: [[wifi]] uses netbond's driver list (nl80211,wext,wired) and no iw settings; pass --supplicant-unit PATH to import them".into(),
        );
    }
    let commented = inputs.wifi_ifaces.is_empty();
    let ifaces: Vec<(String, String)> = if commented {
        notes.push(
            NoteKind::Warning,
            "no enabled supplicant@IFACE.service found (and no --wifi-iface): the [[wifi]] table below is commented out; set iface, uncomment it, or rerun with --wifi-iface IFACE".into(),
        );
        vec![(
            "wlan0".to_string(),
            "an example: no Wi-Fi interface was found".to_string(),
        )]
    } else {
        inputs.wifi_ifaces.clone()
    };
    let mut wifi = String::new();
    let mut supervised = Vec::new();
    for (iface, iface_at) in ifaces {
        if !valid_ifname(&iface) {
            notes.push(
                NoteKind::Warning,
                format!(
                    "{}: {:?} is not an interface name; no [[wifi]] for it",
                    comment_safe(&iface_at),
                    comment_safe(&iface)
                ),
            );
            continue;
        }
        let mut table_entries = vec![Entry {
            key: "iface",
            value: iface.as_str().into(),
            comment: Some(iface_at),
        }];
        table_entries.extend(entries.iter().cloned());
        wifi.push_str(&table("[[wifi]]", &table_entries, commented));
        if !commented {
            supervised.push(iface);
        }
    }
    (wifi, supervised)
}

/// The wpa_supplicant configuration the tables name, with where it came from. The
/// file the unit ran wins: it is what the supplicant really read.
fn config_file(
    unit: Option<&SupplicantUnit>,
    wpa_file: Option<&str>,
    notes: &mut Notes,
) -> Option<(String, String)> {
    if let Some(c) = unit.and_then(|u| u.config.as_ref()) {
        if let Some(f) = wpa_file.filter(|f| *f != c.value) {
            notes.push(
                NoteKind::Warning,
                format!(
                    "{}: the unit ran wpa_supplicant with -c{}, not {f} (which was read); [[wifi]] config uses the unit's file",
                    c.at, c.value
                ),
            );
        }
        return Some((c.value.clone(), format!("{}: -c", c.at)));
    }
    wpa_file.map(|f| {
        (
            f.to_string(),
            format!("{f}: the wpa_supplicant configuration read"),
        )
    })
}

/// The keys every `[[wifi]]` table gets, after `iface`.
fn entries(unit: Option<&SupplicantUnit>, conf: String, conf_at: String) -> Vec<Entry> {
    let mut entries = vec![
        Entry {
            key: "mode",
            value: "supervise".into(),
            comment: Some(
                "netbond starts wpa_supplicant when the interface appears, restarts it if it dies and stops it when the interface goes, as supplicant@IFACE.service did".into(),
            ),
        },
        Entry {
            key: "config",
            value: conf.into(),
            comment: Some(conf_at),
        },
    ];
    let Some(u) = unit else {
        return entries;
    };
    let mut add = |key, value: crate::config::toml::Value, comment| {
        entries.push(Entry {
            key,
            value,
            comment: Some(comment),
        })
    };
    if let Some(d) = &u.driver {
        add("driver", d.value.as_str().into(), format!("{}: -D", d.at));
    }
    if let Some(b) = &u.binary {
        add(
            "binary",
            b.value.as_str().into(),
            format!("{}: ExecStart", b.at),
        );
    }
    if let Some(at) = &u.no_legacy_rates {
        add(
            "disable_legacy_rates",
            true.into(),
            format!("{at}: iw set bitrates legacy-2.4 without 1, 2, 5.5, 11"),
        );
    }
    if let Some(d) = &u.distance {
        add(
            "distance",
            i64::from(d.value).into(),
            format!("{}: iw set distance", d.at),
        );
    }
    entries
}

#[cfg(test)]
mod tests {
    use crate::tools::import::testutil::*;

    #[test]
    fn wifi_without_an_enabled_instance_is_a_commented_table() {
        let r = import_from(&Inputs {
            wifi_ifaces: Vec::new(),
            ..reference()
        })
        .unwrap();
        assert!(r.config.wifi.is_empty());
        assert!(r.toml.contains("\n# [[wifi]]\n"), "{}", r.toml);
        assert!(r.toml.contains("\n# mode = \"supervise\"\n"), "{}", r.toml);
        assert!(has(&r, NoteKind::Warning, "--wifi-iface"));
        assert!(!has(&r, NoteKind::Found, "and supplicant@"));
        // Uncommented, it is a valid table.
        let uncommented: String = r
            .toml
            .lines()
            .skip_while(|l| *l != "# [[wifi]]")
            .map(|l| l.strip_prefix("# ").unwrap_or(l))
            .filter(|l| !l.starts_with(['#', ' ']))
            .map(|l| format!("{l}\n"))
            .collect();
        let c = Config::parse(&uncommented, None).unwrap();
        assert_eq!(c.wifi[0].iface, "wlan0");
        assert_eq!(c.wifi[0].distance, Some(10));
    }

    #[test]
    fn wifi_unit_variants() {
        let unit = b"[Service]\n\
            ExecStartPre=-/usr/sbin/iw %I set bitrates legacy-2.4 1 2 6 9\n\
            ExecStart=/opt/wpa/bin/wpa_supplicant -B -c /etc/wpa/%I.conf -D nl80211 -i%I\n\
            ExecStartPost=/usr/bin/iw phy phy0 set distance 250000\n";
        let r = import_from(&Inputs {
            wpa: src("wpa_supplicant/wpa_supplicant.conf", WPA),
            supplicant_unit: src("supplicant@.service", unit),
            wifi_ifaces: vec![
                ("wlan1".into(), "--wifi-iface".into()),
                ("bad/name".into(), "--wifi-iface".into()),
            ],
            ..Inputs::default()
        })
        .unwrap();
        assert_eq!(r.config.wifi.len(), 1);
        let w = &r.config.wifi[0];
        assert_eq!(w.iface, "wlan1");
        assert_eq!(w.config.as_deref(), Some(Path::new("/etc/wpa/%I.conf")));
        assert_eq!(w.driver, "nl80211");
        assert_eq!(
            w.binary.as_deref(),
            Some(Path::new("/opt/wpa/bin/wpa_supplicant"))
        );
        assert!(!w.disable_legacy_rates, "1 and 2 Mb/s stay on");
        assert_eq!(w.distance, None);
        assert!(has(
            &r,
            NoteKind::Warning,
            "can only turn off the 802.11b rates"
        ));
        assert!(has(&r, NoteKind::Warning, "not a distance"));
        assert!(has(
            &r,
            NoteKind::Warning,
            "the unit ran wpa_supplicant with -c/etc/wpa/%I.conf"
        ));
        assert!(has(
            &r,
            NoteKind::Warning,
            "\"bad/name\" is not an interface name"
        ));
        assert!(has(&r, NoteKind::Ignored, "options -B"));

        // No unit: the wpa_supplicant.conf read, netbond's driver list.
        let r = import_from(&Inputs {
            wpa: src("wpa_supplicant/wpa_supplicant.conf", WPA),
            wifi_ifaces: vec![("wlan0".into(), "--wifi-iface".into())],
            ..Inputs::default()
        })
        .unwrap();
        let w = &r.config.wifi[0];
        assert_eq!(
            w.config.as_deref(),
            Some(Path::new("/etc/wpa_supplicant/wpa_supplicant.conf"))
        );
        assert_eq!(w.driver, "nl80211,wext,wired");
        assert!(has(&r, NoteKind::Warning, "--supplicant-unit"));
    }
}
