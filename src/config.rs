//! The configuration file (`/etc/netbond/netbond.toml`): every key, its default, and
//! errors that name the file, line and column.
//!
//! Unknown keys are rejected (a typo must not silently fall back to a default), and
//! values are checked after parsing so the message can say what is allowed.

use netbond_proto::dhcp6::ModeSetting;
use netbond_proto::duid::{Duid, Iaid};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod options;
pub use options::{OptionValue, TextValue};

/// The whole file.
#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Paths and process behaviour.
    pub daemon: DaemonConfig,
    /// The host's DHCP identity.
    pub identity: IdentityConfig,
    /// Single-interface mode: the interface to run on (`--iface` overrides it).
    pub interface: Option<String>,
    /// Multi-interface mode: more interfaces for the same process, each with its own
    /// DHCPv4/DHCPv6 clients (same DUID, its own IAID). With `interface` too, that one
    /// comes first. In bond mode these are extra interfaces beside the bond.
    pub interfaces: Vec<String>,
    /// The DHCPv4 client.
    pub dhcp4: Dhcp4Config,
    /// The DHCPv6 client.
    pub dhcp6: Dhcp6Config,
    /// DNS handling.
    pub dns: DnsConfig,
    /// Bond mode: when present, netbond creates (or adopts) this bond, enslaves the
    /// matching ports as they appear, and runs DHCP on the bond.
    pub bond: Option<BondConfig>,
    /// The control socket.
    pub control: ControlConfig,
    /// Wireless ports: one `[[wifi]]` table per interface whose wpa_supplicant netbond
    /// runs (or follows).
    pub wifi: Vec<WifiConfig>,
    /// Programs run on events (see README, "Hooks").
    pub hooks: HooksConfig,
    /// Where NTP servers learned by DHCP go.
    pub ntp: NtpConfig,
}

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

/// A configuration error with its location when known.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The file, when the error came from one.
    pub path: Option<PathBuf>,
    /// 1-based line and column.
    pub position: Option<(usize, usize)>,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.path, self.position) {
            (Some(p), Some((l, c))) => write!(f, "{}:{l}:{c}: {}", p.display(), self.message),
            (Some(p), None) => write!(f, "{}: {}", p.display(), self.message),
            (None, Some((l, c))) => write!(f, "line {l}, column {c}: {}", self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, col)
}

/// Find where `key = ...` is written, to point a value error at it.
fn locate_key(text: &str, section: &str, key: &str) -> Option<(usize, usize)> {
    let mut in_section = section.is_empty();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            in_section = t.trim_matches(|c| c == '[' || c == ']').trim() == section;
            continue;
        }
        if in_section {
            if let Some(rest) = t.strip_prefix(key) {
                if rest.trim_start().starts_with('=') {
                    let col = line.len() - line.trim_start().len() + 1;
                    return Some((i + 1, col));
                }
            }
        }
    }
    None
}

impl Config {
    /// Parse and validate TOML text. `path` is only used in messages.
    pub fn parse(text: &str, path: Option<&Path>) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError {
            path: path.map(Path::to_path_buf),
            position: e.span().map(|s| line_col(text, s.start)),
            message: e.message().trim().to_string(),
        })?;
        cfg.validate()
            .map_err(|(section, key, message)| ConfigError {
                path: path.map(Path::to_path_buf),
                position: locate_key(text, section, key),
                message: format!("[{section}] {key}: {message}"),
            })?;
        Ok(cfg)
    }

    /// Read a file; a missing file is an error naming it.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: Some(path.to_path_buf()),
            position: None,
            message: format!("cannot read the configuration: {e}"),
        })?;
        Config::parse(&text, Some(path))
    }

    fn validate(&self) -> Result<(), (&'static str, &'static str, String)> {
        if let Some(d) = &self.identity.duid {
            d.parse::<Duid>()
                .map_err(|e| ("identity", "duid", e.to_string()))?;
        }
        if let Some(i) = &self.identity.iaid {
            i.parse::<Iaid>().map_err(|_| {
                (
                    "identity",
                    "iaid",
                    format!("{i:?} is not an IAID; use a number, 0x-hex, or 4 hex octets"),
                )
            })?;
        }
        if let Some(i) = &self.dhcp6.iaid_pd {
            i.parse::<Iaid>()
                .map_err(|_| ("dhcp6", "iaid_pd", format!("{i:?} is not an IAID")))?;
        }
        self.dhcp4_client_id()
            .map_err(|m| ("dhcp4", "client_id", m))?;
        let d4 = &self.dhcp4;
        if !(0.5..=64.0).contains(&d4.initial_interval) {
            return Err((
                "dhcp4",
                "initial_interval",
                "must be between 0.5 and 64 seconds".into(),
            ));
        }
        if !(d4.initial_interval..=3600.0).contains(&d4.max_interval) {
            return Err((
                "dhcp4",
                "max_interval",
                "must be at least initial_interval and at most 3600 seconds".into(),
            ));
        }
        if let Some(h) = &d4.hostname {
            if netbond_proto::name::host_name(h.as_bytes()).is_none() {
                return Err((
                    "dhcp4",
                    "hostname",
                    "must be a DNS name: letters, digits, hyphens and dots".into(),
                ));
            }
        }
        self.validate_options()?;
        if !(1..=3600).contains(&self.hooks.timeout) {
            return Err(("hooks", "timeout", "must be 1 to 3600 seconds".into()));
        }
        if !(1..=64).contains(&self.hooks.max_concurrent) {
            return Err(("hooks", "max_concurrent", "must be 1 to 64".into()));
        }
        if !self.hooks.dir.is_absolute() {
            return Err(("hooks", "dir", "must be an absolute path".into()));
        }
        for (key, dir) in [
            ("chrony_dir", &self.ntp.chrony_dir),
            ("timesyncd_dir", &self.ntp.timesyncd_dir),
        ] {
            if !matches!(dir.as_str(), "none" | "") && !Path::new(dir).is_absolute() {
                return Err(("ntp", key, "must be an absolute path or \"none\"".into()));
            }
        }
        if !matches!(
            self.daemon.log_level.as_str(),
            "error" | "warn" | "info" | "debug" | "trace"
        ) {
            return Err((
                "daemon",
                "log_level",
                "must be one of error, warn, info, debug, trace".into(),
            ));
        }
        self.validate_stop()?;
        if let Some(b) = &self.bond {
            if !valid_ifname(&b.name) {
                return Err((
                    "bond",
                    "name",
                    format!("{:?} is not an interface name", b.name),
                ));
            }
            if b.mode != "active-backup" {
                return Err(("bond", "mode", "only \"active-backup\" is supported".into()));
            }
            if !matches!(b.fail_over_mac.as_str(), "active" | "none" | "follow") {
                return Err((
                    "bond",
                    "fail_over_mac",
                    "must be \"active\", \"none\" or \"follow\"".into(),
                ));
            }
            if !matches!(b.primary_reselect.as_str(), "always" | "better" | "failure") {
                return Err((
                    "bond",
                    "primary_reselect",
                    "must be \"always\", \"better\" or \"failure\"".into(),
                ));
            }
            if !matches!(b.existing.as_str(), "adopt" | "refuse") {
                return Err(("bond", "existing", "must be \"adopt\" or \"refuse\"".into()));
            }
            if b.miimon == 0 || b.miimon > 60_000 {
                return Err((
                    "bond",
                    "miimon",
                    "must be 1 to 60000 ms (MII monitoring is how failover is detected)".into(),
                ));
            }
            if b.ports.is_empty() {
                return Err(("bond", "ports", "list at least one port pattern".into()));
            }
            if let Some(p) = &b.primary {
                if !valid_ifname(p) {
                    return Err(("bond", "primary", format!("{p:?} is not an interface name")));
                }
            }
        }
        for w in &self.wifi {
            if !valid_ifname(&w.iface) {
                return Err((
                    "wifi",
                    "iface",
                    format!("{:?} is not an interface name", w.iface),
                ));
            }
            match w.mode.as_str() {
                "supervise" if w.config.is_none() => {
                    return Err((
                        "wifi",
                        "config",
                        format!(
                            "[[wifi]] {}: mode \"supervise\" needs the wpa_supplicant config file",
                            w.iface
                        ),
                    ))
                }
                "supervise" | "attach" => {}
                _ => return Err(("wifi", "mode", "must be \"supervise\" or \"attach\"".into())),
            }
            if w.driver.is_empty() || w.driver.contains(char::is_whitespace) {
                return Err((
                    "wifi",
                    "driver",
                    "a comma-separated driver list, e.g. \"nl80211,wext\"".into(),
                ));
            }
            if w.distance.is_some_and(|d| d > 100_000) {
                return Err(("wifi", "distance", "at most 100000 m".into()));
            }
        }
        if let Some(i) = &self.interface {
            if !valid_ifname(i) {
                return Err(("", "interface", format!("{i:?} is not an interface name")));
            }
        }
        for i in &self.interfaces {
            if !valid_ifname(i) {
                return Err(("", "interfaces", format!("{i:?} is not an interface name")));
            }
        }
        Ok(())
    }

    /// The stop and readiness keys, and the combinations that contradict each other.
    fn validate_stop(&self) -> Result<(), (&'static str, &'static str, String)> {
        let d = &self.daemon;
        if !matches!(d.on_stop.as_str(), "keep" | "release") {
            return Err((
                "daemon",
                "on_stop",
                "must be \"keep\" (a restart keeps the network) or \"release\" (every stop \
                 releases the leases and removes the configuration)"
                    .into(),
            ));
        }
        if !matches!(d.online.as_str(), "any" | "all") {
            return Err((
                "daemon",
                "online",
                "must be \"any\" (one interface with a lease) or \"all\" (every managed interface)"
                    .into(),
            ));
        }
        if d.online_timeout > 86_400 {
            return Err((
                "daemon",
                "online_timeout",
                "at most 86400 seconds (0 sends READY=1 at once)".into(),
            ));
        }
        if d.release_on_stop && !d.deconfigure_on_stop {
            // RFC 2131 4.4.6 / RFC 8415 18.2.7: after a RELEASE the client no longer
            // owns the address; keeping it configured means using an address the
            // server may hand to another host.
            return Err((
                "daemon",
                "deconfigure_on_stop",
                "false with release_on_stop = true would tell the server the address is free \
                 and keep using it (another host may get it). To keep the network across a \
                 restart use on_stop = \"keep\" (the default) and drop these two keys; to \
                 keep the addresses on a deliberate stop, also set release_on_stop = false"
                    .into(),
            ));
        }
        if d.on_stop == "release" && !d.release_on_stop && !d.deconfigure_on_stop {
            return Err((
                "daemon",
                "on_stop",
                "\"release\" with release_on_stop = false and deconfigure_on_stop = false \
                 releases nothing and removes nothing; use on_stop = \"keep\""
                    .into(),
            ));
        }
        Ok(())
    }

    /// The interfaces `netbond run` manages, in order: the bond (in bond mode), then
    /// `from_cli` (`--iface`, repeatable) when given, else `interface` and `interfaces`.
    /// Duplicates are dropped. An error, for the user, when the list is empty or names
    /// a bond port (DHCP on a port would fight the bond's).
    pub fn managed_interfaces(&self, from_cli: &[String]) -> Result<Vec<String>, String> {
        let mut wanted: Vec<String> = if from_cli.is_empty() {
            self.interface
                .iter()
                .chain(&self.interfaces)
                .cloned()
                .collect()
        } else {
            from_cli.to_vec()
        };
        if let Some(b) = &self.bond {
            wanted.retain(|n| *n != b.name);
            if let Some(port) = wanted
                .iter()
                .find(|n| b.ports.iter().any(|p| glob_match(p, n)))
            {
                return Err(format!(
                    "{port} matches [bond] ports {:?}: it is a port of {}, and DHCP runs on the bond; \
                     remove it from --iface/interfaces or from the ports",
                    b.ports, b.name
                ));
            }
            wanted.insert(0, b.name.clone());
        }
        let mut out: Vec<String> = Vec::with_capacity(wanted.len());
        for n in wanted {
            if !valid_ifname(&n) {
                return Err(format!("{n:?} is not a valid interface name"));
            }
            if !out.contains(&n) {
                out.push(n);
            }
        }
        if out.is_empty() {
            return Err(
                "no interface: give --iface NAME (repeatable), or `interface = \"NAME\"` \
                        or `interfaces = [...]` in the configuration"
                    .into(),
            );
        }
        Ok(out)
    }

    /// The option 61 setting.
    pub fn dhcp4_client_id(&self) -> Result<ClientIdSetting, String> {
        match self.dhcp4.client_id.as_str() {
            "rfc4361" => Ok(ClientIdSetting::Rfc4361),
            "duid" => Ok(ClientIdSetting::Duid),
            hex => netbond_proto::duid::parse_hex_octets(hex)
                .map(ClientIdSetting::Raw)
                .map_err(|_| {
                    format!("{hex:?}: use \"rfc4361\", \"duid\", or colon-separated hex octets")
                }),
        }
    }

    /// Durations for the DHCPv4 engine.
    pub fn dhcp4_timing(&self) -> (Duration, Duration, Option<Duration>, Duration, Duration) {
        let d = &self.dhcp4;
        (
            Duration::from_secs_f64(d.initial_interval),
            Duration::from_secs_f64(d.max_interval),
            (d.timeout > 0).then(|| Duration::from_secs(d.timeout)),
            Duration::from_secs(d.retry),
            Duration::from_secs(d.reboot),
        )
    }
}

/// Shell-style match with `*` and `?` (no character classes).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

use crate::net::ifname::valid_ifname;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_interfaces_order_dedupe_and_bond_ports() {
        let c = Config::parse(
            "interface = \"eth0\"\ninterfaces = [\"eth1\", \"eth0\"]\n",
            None,
        )
        .unwrap();
        assert_eq!(c.managed_interfaces(&[]).unwrap(), ["eth0", "eth1"]);
        // --iface replaces the file's list.
        let cli = ["veth3".to_string()];
        assert_eq!(c.managed_interfaces(&cli).unwrap(), ["veth3"]);
        assert!(Config::default().managed_interfaces(&[]).is_err());
        // Bond mode: the bond first; an extra interface may not be one of its ports.
        let b = Config::parse("[bond]\nname = \"bond0\"\nports = [\"en*\"]\n", None).unwrap();
        assert_eq!(b.managed_interfaces(&[]).unwrap(), ["bond0"]);
        let extra = ["bond0".to_string(), "wg0".to_string()];
        assert_eq!(b.managed_interfaces(&extra).unwrap(), ["bond0", "wg0"]);
        let port = ["enp1s0".to_string()];
        let e = b.managed_interfaces(&port).unwrap_err();
        assert!(e.contains("port of bond0"), "{e}");
        let bad = ["a/b".to_string()];
        assert!(c.managed_interfaces(&bad).is_err());
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("", None).unwrap();
        assert_eq!(c, Config::default());
        assert!(c.dhcp4.enabled && c.dhcp6.enabled);
        assert_eq!(c.dhcp4.initial_interval, 4.0);
    }

    #[test]
    fn the_example_config_parses() {
        let text = include_str!("../config/netbond.toml");
        Config::parse(text, None).unwrap();
    }

    #[test]
    fn unknown_key_is_rejected_with_its_position() {
        let e = Config::parse(
            "[dhcp4]\nhostname = \"a\"\nretyr = 5\n",
            Some(Path::new("x.toml")),
        )
        .unwrap_err();
        assert_eq!(e.position, Some((3, 1)));
        assert!(e.message.contains("retyr"), "{e}");
        assert!(e.to_string().starts_with("x.toml:3:1:"), "{e}");
    }

    #[test]
    fn wrong_type_is_rejected_with_its_position() {
        let e = Config::parse("[dhcp4]\nretry = \"soon\"\n", None).unwrap_err();
        assert_eq!(e.position.map(|p| p.0), Some(2));
    }

    #[test]
    fn bad_values_name_the_key_and_what_is_allowed() {
        let e = Config::parse("[identity]\nduid = \"zz\"\n", None).unwrap_err();
        assert_eq!(e.position, Some((2, 1)));
        assert!(e.message.contains("duid"));
        let e = Config::parse("[dhcp4]\n  initial_interval = 0.1\n", None).unwrap_err();
        assert_eq!(e.position, Some((2, 3)));
        assert!(e.message.contains("between 0.5 and 64"));
        let e = Config::parse("[dhcp4]\nhostname = \"a b\"\n", None).unwrap_err();
        assert!(e.message.contains("DNS name"));
        let e = Config::parse("[dhcp4]\nclient_id = \"what\"\n", None).unwrap_err();
        assert!(e.message.contains("rfc4361"));
        let e = Config::parse("[dhcp6]\nmode = \"sometimes\"\n", None).unwrap_err();
        assert_eq!(e.position.map(|p| p.0), Some(2));
        let e = Config::parse("interface = \"../etc\"\n", None).unwrap_err();
        assert!(e.message.contains("interface"));
    }

    #[test]
    fn stop_and_online_keys() {
        let c = Config::default();
        assert_eq!(c.daemon.on_stop, "keep");
        assert_eq!(c.daemon.online, "any");
        assert_eq!(c.daemon.online_timeout, 30);
        let c = Config::parse("[daemon]\non_stop = \"release\"\nonline = \"all\"\n", None).unwrap();
        assert_eq!(
            (c.daemon.on_stop.as_str(), c.daemon.online.as_str()),
            ("release", "all")
        );
        let e = Config::parse("[daemon]\non_stop = \"drop\"\n", None).unwrap_err();
        assert_eq!(e.position, Some((2, 1)));
        assert!(e.message.contains("\"keep\""), "{e}");
        let e = Config::parse("[daemon]\nonline = \"most\"\n", None).unwrap_err();
        assert!(e.message.contains("\"all\""), "{e}");
        assert!(Config::parse("[daemon]\nonline_timeout = 100000\n", None).is_err());
        // The server is told the address is free while it stays configured: refused,
        // pointing at the key, saying why and what to write instead.
        let e = Config::parse(
            "[daemon]\nrelease_on_stop = true\ndeconfigure_on_stop = false\n",
            Some(Path::new("n.toml")),
        )
        .unwrap_err();
        assert_eq!(e.position, Some((3, 1)));
        assert!(e.message.contains("address is free"), "{e}");
        assert!(e.message.contains("on_stop = \"keep\""), "{e}");
        // The default release_on_stop is true: deconfigure_on_stop = false alone is
        // the same contradiction.
        assert!(Config::parse("[daemon]\ndeconfigure_on_stop = false\n", None).is_err());
        // The seamless-restart recipe of old still parses (it is what "keep" does).
        Config::parse(
            "[daemon]\nrelease_on_stop = false\ndeconfigure_on_stop = false\n[bond]\nkeep_on_stop = true\n",
            None,
        )
        .unwrap();
        // "release" that would release nothing and remove nothing.
        let e = Config::parse(
            "[daemon]\non_stop = \"release\"\nrelease_on_stop = false\ndeconfigure_on_stop = false\n",
            None,
        )
        .unwrap_err();
        assert!(e.message.contains("releases nothing"), "{e}");
        // Deconfigure without RELEASE is a legitimate deliberate stop.
        Config::parse(
            "[daemon]\non_stop = \"release\"\nrelease_on_stop = false\n",
            None,
        )
        .unwrap();
    }

    #[test]
    fn bond_section() {
        let c = Config::parse("[bond]\nprimary = \"eth0\"\n", None).unwrap();
        let b = c.bond.unwrap();
        assert_eq!(b.name, "bond0");
        assert_eq!(b.fail_over_mac_value(), 1);
        assert_eq!(b.primary.as_deref(), Some("eth0"));
        let e = Config::parse("[bond]\nmode = \"802.3ad\"\n", None).unwrap_err();
        assert_eq!(e.position, Some((2, 1)));
        assert!(e.message.contains("active-backup"));
        let e = Config::parse("[bond]\nports = []\n", None).unwrap_err();
        assert!(e.message.contains("port"));
        assert!(Config::parse("[bond]\nprimry = \"x\"\n", None).is_err());
    }

    #[test]
    fn wifi_tables() {
        let c = Config::parse(
            "[[wifi]]\niface = \"wlan0\"\nconfig = \"/etc/wpa.conf\"\n[[wifi]]\niface = \"wlan1\"\nmode = \"attach\"\n",
            None,
        )
        .unwrap();
        assert_eq!(c.wifi.len(), 2);
        assert_eq!(c.wifi[0].driver, "nl80211,wext,wired");
        assert_eq!(c.wifi[1].mode, "attach");
        let e = Config::parse("[[wifi]]\niface = \"wlan0\"\n", None).unwrap_err();
        assert!(e.message.contains("config file"), "{e}");
        assert!(Config::parse("[[wifi]]\niface = \"wlan0\"\nmode = \"x\"\n", None).is_err());
        assert!(Config::parse("[[wifi]]\niface = \"wlan0\"\nssid = \"x\"\n", None).is_err());
    }

    #[test]
    fn client_id_forms() {
        let mut c = Config::default();
        assert_eq!(c.dhcp4_client_id(), Ok(ClientIdSetting::Rfc4361));
        c.dhcp4.client_id = "duid".into();
        assert_eq!(c.dhcp4_client_id(), Ok(ClientIdSetting::Duid));
        c.dhcp4.client_id = "01:02:03".into();
        assert_eq!(c.dhcp4_client_id(), Ok(ClientIdSetting::Raw(vec![1, 2, 3])));
    }

    #[test]
    fn extra_options_are_checked_at_load() {
        let c = Config::parse(
            "[dhcp4]\nsend = { 224 = \"de:ad\" }\nrequest = [252]\n",
            None,
        )
        .unwrap();
        assert_eq!(c.dhcp4_send(), Ok(vec![(224, vec![0xde, 0xad])]));
        for bad in [
            "[dhcp4]\nsend = { 61 = \"01\" }\n",
            "[dhcp4]\nsend = { 300 = \"01\" }\n",
            "[dhcp4]\nsend = { 224 = \"zz\" }\n",
            "[dhcp4]\nrequest = [0]\n",
            "[dhcp6]\nuser_class = \"\"\n",
        ] {
            assert!(Config::parse(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn dhcp6_mode_is_the_engine_setting_in_lower_case() {
        for (text, mode) in [
            ("auto", ModeSetting::Auto),
            ("stateful", ModeSetting::Stateful),
            ("stateless", ModeSetting::Stateless),
        ] {
            let c = Config::parse(&format!("[dhcp6]\nmode = \"{text}\"\n"), None).unwrap();
            assert_eq!(c.dhcp6.mode, mode);
            let back = toml::to_string(&c.dhcp6).unwrap();
            assert!(back.contains(&format!("mode = \"{text}\"")), "{back}");
        }
        assert_eq!(
            Config::parse("", None).unwrap().dhcp6.mode,
            ModeSetting::Auto
        );
        for bad in ["off", "Auto", "stateful "] {
            let e = Config::parse(&format!("[dhcp6]\nmode = \"{bad}\"\n"), None).unwrap_err();
            assert!(e.to_string().contains("expected one of"), "{e}");
        }
    }
}
