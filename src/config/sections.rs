//! The sections of the file, one struct each, with their defaults.

use super::OptionValue;
use netbond_proto::dhcp6::ModeSetting;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[hooks]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HooksConfig {
    /// The directory of hook programs, run in name order on each event.
    pub dir: PathBuf,
    /// Run hooks while netbond runs as root (uid 0). Off: hooks run only when netbond
    /// runs as an unprivileged `[daemon] user`, and with root they are refused.
    pub run_as_root: bool,
    /// Seconds a hook may run before it (and its process group) is killed.
    pub timeout: u64,
    /// Hook processes running at once (over all interfaces).
    pub max_concurrent: usize,
}

impl Default for HooksConfig {
    fn default() -> Self {
        HooksConfig {
            dir: PathBuf::from("/etc/netbond/hooks.d"),
            run_as_root: false,
            timeout: 30,
            max_concurrent: 4,
        }
    }
}

/// `[ntp]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NtpConfig {
    /// chrony's `sourcedir`: netbond writes `<dir>/<interface>.sources` there; `"none"`
    /// writes nothing.
    pub chrony_dir: String,
    /// systemd-timesyncd's runtime drop-in directory: netbond writes
    /// `<dir>/netbond-<interface>.conf` (`[Time] NTP=...`) when the directory's parent
    /// exists, and asks a running timesyncd to restart; `"none"` writes nothing.
    pub timesyncd_dir: String,
}

impl Default for NtpConfig {
    fn default() -> Self {
        NtpConfig {
            chrony_dir: "/run/chrony-dhcp".into(),
            timesyncd_dir: "/run/systemd/timesyncd.conf.d".into(),
        }
    }
}

/// `[[wifi]]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WifiConfig {
    /// The wireless interface, e.g. `wlan0`.
    pub iface: String,
    /// `supervise`: netbond starts wpa_supplicant for the interface when it appears,
    /// restarts it when it crashes, stops it when the interface goes. `attach`: someone
    /// else runs it; netbond follows its control socket in `ctrl_dir`.
    #[serde(default = "default_wifi_mode")]
    pub mode: String,
    /// wpa_supplicant's configuration file (`-c`); required with `supervise`.
    pub config: Option<PathBuf>,
    /// Driver list (`-D`), as the classic unit used.
    #[serde(default = "default_wifi_driver")]
    pub driver: String,
    /// The control directory. Default: the config file's `ctrl_interface`, else
    /// `/run/wpa_supplicant`.
    pub ctrl_dir: Option<PathBuf>,
    /// The wpa_supplicant binary.
    pub binary: Option<PathBuf>,
    /// Turn off the legacy 802.11b bitrates (1, 2, 5.5, 11 Mb/s) on 2.4 GHz, like the
    /// classic unit's `iw set bitrates legacy-2.4 6 9 12 18 24 36 48 54`.
    #[serde(default)]
    pub disable_legacy_rates: bool,
    /// Coverage distance in metres (`iw phy set distance`).
    pub distance: Option<u32>,
}

fn default_wifi_mode() -> String {
    "supervise".into()
}

fn default_wifi_driver() -> String {
    "nl80211,wext,wired".into()
}

/// `[control]`
#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    /// A group whose members may run `netbond status` (the socket becomes 0660 with
    /// this group). Commands that change state still need root.
    pub group: Option<String>,
}

/// `[bond]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BondConfig {
    /// The bond's name.
    pub name: String,
    /// Only `active-backup` is supported: one port carries traffic, the rest wait.
    pub mode: String,
    /// `active` (the bond takes the active port's MAC: required for Wi-Fi ports, which
    /// cannot send with another MAC), `none` or `follow`. Only settable at creation.
    pub fail_over_mac: String,
    /// MII link monitoring interval in milliseconds.
    pub miimon: u32,
    /// The preferred port (like the reference setup's PRI / primary.conf). Default: the
    /// first wired port (`en*`, `eth*`) that is enslaved.
    pub primary: Option<String>,
    /// When the primary comes back: `always` (switch back), `better` or `failure`.
    pub primary_reselect: String,
    /// Ports: interface names, globs (`en*`, `wl*`) or MAC addresses.
    pub ports: Vec<String>,
    /// A bond of this name already exists: `adopt` it (differences are logged) or
    /// `refuse` to start.
    pub existing: String,
    /// Leave the bond in place when netbond stops (ports stay enslaved).
    pub keep_on_stop: bool,
}

impl Default for BondConfig {
    fn default() -> Self {
        BondConfig {
            name: "bond0".into(),
            mode: "active-backup".into(),
            fail_over_mac: "active".into(),
            miimon: 100,
            primary: None,
            primary_reselect: "always".into(),
            ports: vec!["en*".into(), "eth*".into(), "wl*".into()],
            existing: "adopt".into(),
            keep_on_stop: false,
        }
    }
}

impl BondConfig {
    /// `fail_over_mac` as the kernel's number.
    pub fn fail_over_mac_value(&self) -> u8 {
        match self.fail_over_mac.as_str() {
            "none" => 0,
            "follow" => 2,
            _ => 1,
        }
    }
    /// `primary_reselect` as the kernel's number.
    pub fn primary_reselect_value(&self) -> u8 {
        match self.primary_reselect.as_str() {
            "better" => 1,
            "failure" => 2,
            _ => 0,
        }
    }
}

/// `[daemon]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// Lease store and DUID (`--state-dir`).
    pub state_dir: PathBuf,
    /// Control socket and supplicant sockets (`--run-dir`).
    pub run_dir: PathBuf,
    /// What SIGTERM/SIGINT does: `keep` (the default) leaves addresses, routes, DNS
    /// and the bond in place and keeps the leases for the next start, so a restart
    /// never drops the network; `release` is a deliberate stop (as `netbond stop
    /// --release`): release, deconfigure, delete the bond unless `keep_on_stop`.
    pub on_stop: String,
    /// With `on_stop = "release"`: send RELEASE (v4) and Release (v6).
    pub release_on_stop: bool,
    /// With `on_stop = "release"`: remove the addresses, routes, DNS and MTU netbond
    /// configured.
    pub deconfigure_on_stop: bool,
    /// When the host counts as online (READY=1, `netbond wait-online`): `any` managed
    /// interface has a DHCPv4 lease or a DHCPv6 address, or `all` of them do.
    pub online: String,
    /// Seconds after start when READY=1 is sent even when not online (STATUS= says
    /// why); 0 sends READY=1 at once.
    pub online_timeout: u64,
    /// Log level when `--log-level` and `RUST_LOG` are not given.
    pub log_level: String,
    /// After setup, keep only CAP_NET_ADMIN, CAP_NET_RAW and CAP_NET_BIND_SERVICE and
    /// set no_new_privs.
    pub drop_privileges: bool,
    /// Also switch to this user after setup (the state and run dirs are handed to it;
    /// the resolv.conf target must be writable by it).
    pub user: Option<String>,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            state_dir: PathBuf::from("/var/lib/netbond"),
            run_dir: PathBuf::from("/run/netbond"),
            on_stop: "keep".into(),
            release_on_stop: true,
            deconfigure_on_stop: true,
            online: "any".into(),
            online_timeout: 30,
            log_level: "info".into(),
            drop_privileges: true,
            user: None,
        }
    }
}

/// `[identity]`
#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// A fixed DUID (colon hex). Default: generated once and kept in the state dir.
    pub duid: Option<String>,
    /// The IAID for the DHCPv4 client identifier and the DHCPv6 IA_NA. Default: a
    /// stable hash of the interface name (never of a MAC, which a bond may change).
    pub iaid: Option<String>,
}

/// What the DHCPv4 client sends as option 61.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientIdSetting {
    /// RFC 4361: 0xff, IAID, DUID (the default).
    Rfc4361,
    /// The bare DUID octets, as the reference dhclient.conf sent them.
    Duid,
    /// Exact octets.
    Raw(Vec<u8>),
}

/// `[dhcp4]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Dhcp4Config {
    /// Run the DHCPv4 client (`--no-dhcp4` turns it off).
    pub enabled: bool,
    /// `"rfc4361"`, `"duid"` or colon hex octets.
    pub client_id: String,
    /// The host name sent to the servers (default: the system's, from gethostname).
    pub hostname: Option<String>,
    /// Send the host name: option 12, or option 81 (FQDN, flags S and E) when it has a
    /// dot. Off: no name is sent.
    pub send_hostname: bool,
    /// Option 60 sent to the server.
    pub vendor_class: Option<String>,
    /// Option 77 (RFC 3004, one user class) sent to the server.
    pub user_class: Option<String>,
    /// More option codes for the parameter request list (option 55).
    pub request: Vec<u8>,
    /// RFC 4039 rapid commit: DISCOVER asks for it, and an ACK that grants it binds
    /// without OFFER/REQUEST.
    pub rapid_commit: bool,
    /// More options to send: code (as a string key) -> hex octets or `{ text = ".." }`.
    pub send: std::collections::BTreeMap<String, OptionValue>,
    /// RFC 8925: ask for option 108 (IPv6-only preferred) and, when the server answers
    /// with it, leave DHCPv4 (no address) for the time it gives, at least 300 s.
    pub ipv6_only_preferred: bool,
    /// RFC 8910: ask for the captive portal URI (option 114) and show it.
    pub captive_portal: bool,
    /// First retransmission interval in seconds (RFC 2131: 4).
    pub initial_interval: f64,
    /// Longest retransmission interval in seconds (RFC 2131: 64).
    pub max_interval: f64,
    /// Seconds to try before giving up and waiting `retry`; 0 = never give up.
    pub timeout: u64,
    /// Seconds to wait after a timeout.
    pub retry: u64,
    /// Seconds to try INIT-REBOOT with a saved lease before DISCOVER.
    pub reboot: u64,
    /// Metric of the routes netbond adds.
    pub route_metric: u32,
    /// Accept option 121 routes shorter than /8 (other than the default route), which
    /// can pull traffic away from a VPN (TunnelVision, CVE-2024-3661).
    pub accept_wide_routes: bool,
    /// Apply routers and option 121 routes.
    pub use_routes: bool,
    /// Apply the interface MTU from option 26.
    pub use_mtu: bool,
    /// Use DNS servers and domains from the server.
    pub use_dns: bool,
    /// Probe a new address with ARP (RFC 5227) while already using it, and decline it
    /// (DHCPDECLINE) if another host answers.
    pub conflict_detection: bool,
    /// RFC 3927 IPv4 link-local address when there is no lease: `"off"` or
    /// `"fallback"` (see `dhcp/ipv4ll.rs`).
    pub link_local: String,
    /// Seconds without a lease before the link-local address is taken (0: at once).
    pub link_local_after: u64,
    /// A static `a.b.c.d/len` used after `fallback_after` seconds without a lease.
    pub fallback_address: Option<String>,
    /// The default router of the static fallback.
    pub fallback_router: Option<String>,
    /// DNS servers of the static fallback.
    pub fallback_dns: Vec<String>,
    /// Seconds without a lease before the static fallback is used.
    pub fallback_after: u64,
}

impl Default for Dhcp4Config {
    fn default() -> Self {
        Dhcp4Config {
            enabled: true,
            client_id: "rfc4361".into(),
            hostname: None,
            send_hostname: true,
            vendor_class: None,
            user_class: None,
            request: Vec::new(),
            rapid_commit: false,
            send: std::collections::BTreeMap::new(),
            ipv6_only_preferred: false,
            captive_portal: true,
            initial_interval: 4.0,
            max_interval: 64.0,
            timeout: 0,
            retry: 300,
            reboot: 10,
            route_metric: 1024,
            accept_wide_routes: false,
            use_routes: true,
            use_mtu: true,
            use_dns: true,
            conflict_detection: true,
            link_local: "off".into(),
            link_local_after: 10,
            fallback_address: None,
            fallback_router: None,
            fallback_dns: Vec::new(),
            fallback_after: 30,
        }
    }
}

/// `[dhcp6] mode`: the engine's own [`ModeSetting`], spelled `auto`, `stateful` or
/// `stateless` in the file. The engine's `Off` is not offered: `enabled = false` says
/// that.
mod dhcp6_mode {
    use netbond_proto::dhcp6::ModeSetting;
    use serde::{Deserialize, Deserializer, Serializer};

    const NAMES: &[&str] = &["auto", "stateful", "stateless"];

    pub fn serialize<S: Serializer>(m: &ModeSetting, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match m {
            ModeSetting::Auto => "auto",
            ModeSetting::Stateful => "stateful",
            ModeSetting::Stateless => "stateless",
            ModeSetting::Off => "off",
        })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ModeSetting, D::Error> {
        let name = String::deserialize(d)?;
        match name.as_str() {
            "auto" => Ok(ModeSetting::Auto),
            "stateful" => Ok(ModeSetting::Stateful),
            "stateless" => Ok(ModeSetting::Stateless),
            other => Err(serde::de::Error::unknown_variant(other, NAMES)),
        }
    }
}

/// `[dhcp6]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Dhcp6Config {
    /// Run the DHCPv6 client (`--no-dhcp6` turns it off).
    pub enabled: bool,
    /// `auto`, `stateful` or `stateless`.
    #[serde(with = "dhcp6_mode")]
    pub mode: ModeSetting,
    /// Ask for a non-temporary address (IA_NA).
    pub ia_na: bool,
    /// Ask for a delegated prefix (IA_PD).
    pub ia_pd: bool,
    /// IAID of the IA_PD (default: the IA_NA's plus one).
    pub iaid_pd: Option<String>,
    /// Use the two-message exchange when the server agrees.
    pub rapid_commit: bool,
    /// Wait a random 0-1 s before the first Solicit (RFC 8415 SOL_MAX_DELAY). Off by
    /// default: the delay is what makes dhcp6c slow, and it only matters when many
    /// hosts power up at once.
    pub solicit_delay: bool,
    /// Ask for NTP servers (option 56).
    pub request_ntp: bool,
    /// Use the DNS servers (option 23) and search domains (option 24) from DHCPv6.
    /// Separate from `[dhcp4] use_dns`, as systemd-networkd's per-family UseDNS=:
    /// one family's DNS can be ignored while the other's is used.
    pub use_dns: bool,
    /// Send the host name (`[dhcp4] hostname`, else the system's) in option 39 (Client
    /// FQDN, flag S).
    pub send_hostname: bool,
    /// Option 15 (one user class) sent to the server.
    pub user_class: Option<String>,
    /// Option 16 (vendor class) data, sent with `vendor_enterprise`.
    pub vendor_class: Option<String>,
    /// The IANA private enterprise number of `vendor_class`.
    pub vendor_enterprise: Option<u32>,
    /// More option codes for the Option Request Option (option 6).
    pub request: Vec<u16>,
    /// More options to send: code -> hex octets or `{ text = ".." }`.
    pub send: std::collections::BTreeMap<String, OptionValue>,
    /// RFC 8910: ask for the captive portal URI (option 103) and show it and the one
    /// in router advertisements (option 37).
    pub captive_portal: bool,
    /// Interfaces that get a /64 of the delegated prefix: `"name"` or
    /// `"name/subnet-id"` (see `dhcp/pd.rs`).
    pub pd_downstream: Vec<String>,
}

impl Default for Dhcp6Config {
    fn default() -> Self {
        Dhcp6Config {
            enabled: true,
            mode: ModeSetting::Auto,
            ia_na: true,
            ia_pd: false,
            iaid_pd: None,
            rapid_commit: true,
            solicit_delay: false,
            request_ntp: true,
            use_dns: true,
            send_hostname: true,
            user_class: None,
            vendor_class: None,
            vendor_enterprise: None,
            request: Vec::new(),
            send: std::collections::BTreeMap::new(),
            captive_portal: true,
            pd_downstream: Vec::new(),
        }
    }
}

/// `[dns]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// The resolv.conf to write (`--resolv-conf`); `"none"` leaves DNS alone.
    pub resolv_conf: String,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            resolv_conf: "/etc/resolv.conf".into(),
        }
    }
}
