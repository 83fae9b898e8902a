//! dhclient's exit hooks (`/etc/dhcp/dhclient-exit-hooks.d`): shell fragments sourced by
//! dhclient-script, so they cannot be converted. Each is named in the notes: Debian's
//! stock ones with why netbond does not need them, others with how to port them to
//! netbond's hooks directory.

use super::files::show;
use super::{NoteKind, Notes, MAX_NOTES_PER_FILE};
use std::path::Path;

/// What netbond does itself in place of one of Debian's stock exit hooks.
fn not_needed(name: &str) -> Option<&'static str> {
    Some(match name {
        "rfc3442-classless-routes" => "netbond applies option 121 itself",
        "chrony" => "netbond writes chrony's sources itself ([ntp] chrony_dir)",
        "timesyncd" => {
            "netbond writes systemd-timesyncd's runtime drop-in itself ([ntp] timesyncd_dir)"
        }
        "ntp" | "ntpsec" => {
            "netbond hands NTP servers to chrony and systemd-timesyncd only ([ntp]); for \
             another time daemon port it as a netbond hook"
        }
        "debug" => "`netbond monitor` shows every event",
        "resolvconf" | "resolved" => "netbond writes DNS itself ([dns] resolv_conf)",
        _ => return None,
    })
}

/// Add a note for every hook in `dir` (none when it cannot be read).
pub(super) fn notes(dir: &Path, notes: &mut Notes) {
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
        match not_needed(&n) {
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

#[cfg(test)]
mod tests {
    use super::super::testutil::{has, Scratch};
    use super::super::{import, ImportSources, NoteKind};

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
            supplicant_unit: None,
            unit_dir: None,
            wifi_ifaces: Vec::new(),
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
}
