//! What the import tests share: the reference setup's files, and a scratch directory.

pub(super) use super::{import, import_from, ImportReport, ImportSources, Inputs, NoteKind};
pub(super) use crate::config::Config;
pub(super) use std::path::{Path, PathBuf};

pub(super) const DHCLIENT: &[u8] =
    include_bytes!("../../../integration/fixtures/reference/dhclient.conf");
pub(super) const DHCP6C: &[u8] =
    include_bytes!("../../../integration/fixtures/reference/dhcp6c.conf");
pub(super) const DUID_FILE: &[u8] =
    include_bytes!("../../../integration/fixtures/reference/dhcp6c_duid");
pub(super) const PRIMARY: &[u8] =
    include_bytes!("../../../integration/fixtures/reference/primary.conf");
pub(super) const MASTER: &[u8] =
    include_bytes!("../../../integration/fixtures/reference/master@.service");
pub(super) const BONDING: &[u8] =
    include_bytes!("../../../integration/fixtures/reference/bonding.conf");
pub(super) const WPA: &[u8] =
    include_bytes!("../../../integration/fixtures/reference/wpa_supplicant.conf");
pub(super) const SUPPLICANT: &[u8] =
    include_bytes!("../../../integration/fixtures/reference/supplicant@.service");

pub(super) const REF_DUID: &str = "00:02:00:02:2e:2d:01:bd:c3:92:9a:44:2a:c4";

pub(super) fn src(name: &str, b: &[u8]) -> Option<(String, Vec<u8>)> {
    Some((format!("/etc/{name}"), b.to_vec()))
}

pub(super) fn reference() -> Inputs {
    Inputs {
        dhclient: src("dhclient.conf", DHCLIENT),
        dhcp6c: src("wide-dhcpv6/dhcp6c.conf", DHCP6C),
        dhcp6c_duid: src("dhcp6c_duid", DUID_FILE),
        primary: src("primary.conf", PRIMARY),
        master_unit: src("systemd/system/master@.service", MASTER),
        bonding: src("modprobe.d/bonding.conf", BONDING),
        wpa: src("wpa_supplicant/wpa_supplicant.conf", WPA),
        supplicant_unit: src("systemd/system/supplicant@.service", SUPPLICANT),
        wifi_ifaces: vec![(
            "wlp2s0".into(),
            "/etc/systemd/system/sys-subsystem-net-devices-wlp2s0.device.wants/supplicant@wlp2s0.service".into(),
        )],
    }
}

pub(super) fn has(r: &ImportReport, kind: NoteKind, needle: &str) -> bool {
    r.notes
        .iter()
        .any(|n| n.kind == kind && n.text.contains(needle))
}

/// A scratch directory under the system temp dir, removed on drop.
pub(super) struct Scratch(pub(super) PathBuf);
impl Scratch {
    pub(super) fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "netbond-import-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
    pub(super) fn file(&self, name: &str, content: &[u8]) -> PathBuf {
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
