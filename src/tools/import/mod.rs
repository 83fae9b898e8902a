//! `netbond import`: turn the classic bond setup (dhclient, WIDE dhcp6c, the
//! `master@.service` / `/etc/primary.conf` bond units, wpa_supplicant) into a
//! `netbond.toml` that keeps the identity the DHCP servers already know.
//!
//! Everything here is pure except [`import`], which reads the source files (with
//! [`files`], and `units::enabled_instances` for the Wi-Fi interfaces). Missing
//! files, unknown statements and malformed lines become [`Note`]s, never errors: the
//! report says what was found, what was not, and what was ignored and why.
//!
//! Each source has its module: [`dhclient`], [`dhcp6c`], [`bond`] (primary.conf,
//! master@.service, bonding.conf), [`wifi`] (wpa_supplicant.conf, supplicant@.service);
//! [`identity`] decides the DUID, IAID and DHCPv4 client identifier from them (its
//! comment gives the rules); [`lex`] and [`units`] are the two file syntaxes,
//! [`render`] the TOML text and [`files`] the file system.

mod bond;
mod dhclient;
mod dhcp6c;
mod files;
mod hooks;
mod identity;
mod lex;
mod render;
mod units;
mod wifi;

use crate::config::Config;
use files::{read_source, show, write_config};
use render::{render, Out};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Source files larger than this are not read (configuration files are a few KiB).
pub const MAX_SOURCE_BYTES: u64 = 1 << 20;

/// Notes kept per source file; the rest are counted in one summary note.
const MAX_NOTES_PER_FILE: usize = 20;

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
    /// wpa_supplicant configuration. The `[[wifi]]` tables point at it (netbond runs
    /// the supplicant with it); its keys are never copied.
    pub wpa_conf: Option<PathBuf>,
    /// The classic `supplicant@.service` template: its `-c` file, `-D` driver list and
    /// `iw` settings become the `[[wifi]]` keys.
    pub supplicant_unit: Option<PathBuf>,
    /// Where the enabled `supplicant@IFACE.service` instances are linked
    /// (`*.wants/` below it), which name the Wi-Fi interfaces.
    pub unit_dir: Option<PathBuf>,
    /// Wi-Fi interfaces given on the command line; they replace the ones found in
    /// `unit_dir`.
    pub wifi_ifaces: Vec<String>,
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
            supplicant_unit: Some("/etc/systemd/system/supplicant@.service".into()),
            unit_dir: Some("/etc/systemd/system".into()),
            wifi_ifaces: Vec::new(),
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
        supplicant_unit: read(&src.supplicant_unit, "supplicant unit", &mut notes),
        wifi_ifaces: Vec::new(),
    };
    let mut inputs = inputs;
    inputs.wifi_ifaces = if src.wifi_ifaces.is_empty() {
        match (&src.unit_dir, &src.supplicant_unit) {
            (Some(dir), Some(unit)) => units::enabled_instances(dir, unit),
            _ => Vec::new(),
        }
    } else {
        src.wifi_ifaces
            .iter()
            .map(|i| (i.clone(), "--wifi-iface".to_string()))
            .collect()
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
            &src.supplicant_unit,
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
        hooks::notes(dir, &mut notes);
    }
    convert(&inputs, notes)
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
    /// supplicant@.service.
    pub supplicant_unit: Option<(String, Vec<u8>)>,
    /// The Wi-Fi interfaces (enabled supplicant instances or `--wifi-iface`), each with
    /// where it was found.
    pub wifi_ifaces: Vec<(String, String)>,
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
            &self.supplicant_unit,
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
// What was imported, with where it came from.

#[derive(Debug, Clone)]
struct Sourced<T> {
    value: T,
    at: String,
}

fn at(file: &str, line: usize) -> String {
    format!("{file}:{line}")
}

/// The pure part: every source parsed, the settings decided and the text rendered.
fn convert(inputs: &Inputs, mut notes: Notes) -> Result<ImportReport, String> {
    let mut out = Out::default();
    for section in ["identity", "dhcp4", "dhcp6", "bond"] {
        out.section(section);
    }
    // The bond first: its name selects the dhclient / dhcp6c interface blocks.
    let bond = bond::parse(inputs, &mut notes);
    let bond_name = bond::name(bond.as_ref());
    let v4 = inputs
        .dhclient
        .as_ref()
        .map(|(f, b)| dhclient::parse(b, f, &bond_name, &mut notes));
    let v6 = inputs
        .dhcp6c
        .as_ref()
        .and_then(|(f, b)| dhcp6c::parse(b, f, &bond_name, &mut notes));
    let v6_duid = inputs
        .dhcp6c_duid
        .as_ref()
        .and_then(|(f, b)| identity::dhcp6c_duid(f, b, &mut notes));

    identity::write(
        v4.as_ref(),
        v6.as_ref(),
        v6_duid.as_ref(),
        &mut out,
        &mut notes,
    );
    if let Some(v4) = &v4 {
        dhclient::write(v4, &mut out, &mut notes);
    }
    if let Some(v6) = &v6 {
        dhcp6c::write(v6, &mut out);
    }
    bond::write(bond.as_ref(), &mut out, &mut notes);
    let (wifi, supervised) = wifi::write(inputs, &mut notes);

    notes.push(
        NoteKind::Found,
        format!(
            "after checking the result: systemctl disable --now master@{b} dhclient@{b} dhcp6c@{b} and the IFACE@{b} port units{}, then enable netbond.service",
            if supervised.is_empty() {
                String::new()
            } else {
                format!(
                    ", and {} (netbond now runs wpa_supplicant itself; two supplicants on one interface fight)",
                    supervised
                        .iter()
                        .map(|i| format!("supplicant@{i}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            },
            b = bond_name
        ),
    );
    let notes = notes.finish();
    let text = render(&out, &notes, &wifi);
    let config = Config::parse(&text, None).map_err(|e| {
        format!("internal error: the imported configuration does not validate: {e}\n{text}")
    })?;
    Ok(ImportReport {
        toml: text,
        config,
        notes,
    })
}

#[cfg(test)]
mod testutil;

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::write_config;
    use netbond_proto::duid::Duid;

    #[test]
    fn reference_setup_round_trips_through_the_files() {
        let dir = Scratch::new("ref");
        let wpa_conf = dir.file("wpa_supplicant.conf", WPA);
        // The classic unit, run with the scratch copy of the supplicant config, and
        // enabled for wlp2s0 as `systemctl enable supplicant@wlp2s0` links it.
        let unit = String::from_utf8(SUPPLICANT.to_vec()).unwrap().replace(
            "/etc/wpa_supplicant/wpa_supplicant.conf",
            wpa_conf.to_str().unwrap(),
        );
        let units = dir.0.join("units");
        let wants = units.join("sys-subsystem-net-devices-wlp2s0.device.wants");
        std::fs::create_dir_all(&wants).unwrap();
        let template = units.join("supplicant@.service");
        std::fs::write(&template, unit).unwrap();
        std::os::unix::fs::symlink(&template, wants.join("supplicant@wlp2s0.service")).unwrap();
        // Not an instance of this template: not a Wi-Fi port.
        std::os::unix::fs::symlink(&template, wants.join("wpa_supplicant@wlan9.service")).unwrap();
        let sources = ImportSources {
            dhclient_conf: Some(dir.file("dhclient.conf", DHCLIENT)),
            dhcp6c_conf: Some(dir.file("dhcp6c.conf", DHCP6C)),
            dhcp6c_duid: Some(dir.file("dhcp6c_duid", DUID_FILE)),
            primary_conf: Some(dir.file("primary.conf", PRIMARY)),
            master_unit: Some(dir.file("master@.service", MASTER)),
            bonding_conf: Some(dir.file("bonding.conf", BONDING)),
            wpa_conf: Some(wpa_conf.clone()),
            supplicant_unit: Some(template),
            unit_dir: Some(units),
            wifi_ifaces: Vec::new(),
            dhclient_hooks: None,
        };
        let r = import(&sources).unwrap();
        // What `netbond check-config` runs, on the file `netbond import -o` writes.
        let out = dir.0.join("netbond.toml");
        write_config(&out, &r.toml, false).unwrap();
        let c = Config::load(&out).unwrap();
        assert_eq!(c, r.config);

        // Wi-Fi: a real [[wifi]] table, supervised, with the unit's settings.
        assert_eq!(c.wifi.len(), 1, "{}", r.toml);
        let w = &c.wifi[0];
        assert_eq!(w.iface, "wlp2s0");
        assert_eq!(w.mode, "supervise");
        assert_eq!(w.config.as_deref(), Some(wpa_conf.as_path()));
        assert_eq!(w.driver, "nl80211,wext,wired");
        assert!(w.disable_legacy_rates);
        assert_eq!(w.distance, Some(10));
        assert_eq!(w.binary, None, "/usr/bin is found on PATH");
        assert_eq!(w.ctrl_dir, None, "the config file's ctrl_interface applies");
        assert!(has(&r, NoteKind::Found, "disable --now master@bond0"));
        assert!(has(&r, NoteKind::Found, "and supplicant@wlp2s0 (netbond"));
        assert!(!r.toml.contains("not designed"));
        assert!(!r.toml.contains("wpa_conf"));
        assert!(!r.toml.contains("ctrl_interface ="));

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
        assert_eq!(c.dhcp6.mode, netbond_proto::dhcp6::ModeSetting::Stateful);

        let b = c.bond.unwrap();
        assert_eq!(b.name, "bond0");
        assert_eq!(b.primary.as_deref(), Some("enp3s0"));
        assert_eq!(b.ports, vec!["en*", "eth*", "wl*"]);
        assert_eq!(b.miimon, 100);
        assert_eq!(b.fail_over_mac, "active");

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
                supplicant_unit: src("supplicant@.service", case),
                wifi_ifaces: vec![("wlan0".into(), "test".into())],
            };
            let r = import_from(&inputs).unwrap();
            Config::parse(&r.toml, None).unwrap();
            assert!(r.notes.len() < 400, "notes are capped: {}", r.notes.len());
            assert!(!r.toml.contains("\nlog_level"), "no injection:\n{}", r.toml);
        }
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
