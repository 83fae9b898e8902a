//! The configuration file (`/etc/netbond/netbond.toml`): every key, its default, and
//! errors that name the file, line and column.
//!
//! Unknown keys are rejected (a typo must not silently fall back to a default), and
//! values are checked after parsing so the message can say what is allowed.

mod options;
mod sections;
pub mod toml;
mod validate;

pub use options::{OptionValue, TextValue};

pub use sections::*;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
            position: e.span.map(|s| line_col(text, s.start)),
            message: e.message,
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
    use netbond_proto::dhcp6::ModeSetting;

    #[test]
    #[cfg(feature = "bond")] // parses a [bond] section, refused without the feature
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
    fn syntax_errors_and_dates_have_their_position() {
        let e = Config::parse("[dhcp4]\nretry = \n", None).unwrap_err();
        assert_eq!(e.position, Some((2, 9)), "{e}");
        assert!(e.message.contains("expected a value"), "{e}");
        let e = Config::parse("[dhcp4]\n[dhcp4]\n", None).unwrap_err();
        assert_eq!(e.position, Some((2, 2)), "{e}");
        assert!(e.message.contains("defined twice"), "{e}");
        let e = Config::parse("\n[dns]\nresolv_conf = 2024-01-01\n", None).unwrap_err();
        assert_eq!(e.position, Some((3, 15)), "{e}");
        assert!(e.message.contains("no date values"), "{e}");
        // A value that fails inside an array or an inline table is pointed at itself.
        let e = Config::parse("[dhcp4]\nrequest = [1,\n  300]\n", None).unwrap_err();
        assert_eq!(e.position, Some((3, 3)), "{e}");
        let e = Config::parse("[dhcp4]\nsend = { 224 = 5 }\n", None).unwrap_err();
        assert_eq!(e.position, Some((2, 16)), "{e}");
        assert!(e.message.contains("hex octets"), "{e}");
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
    #[cfg(feature = "bond")] // parses a [bond] section, refused without the feature
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
    #[cfg(feature = "bond")] // parses a [bond] section, refused without the feature
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
    #[cfg(feature = "wifi")] // parses a [wifi] section, refused without the feature
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
        // A table missing a key is pointed at by its header; an unknown key by itself.
        let e = Config::parse(
            "[[wifi]]\niface = \"w0\"\n[[wifi]]\nconfig = \"/x\"\n",
            None,
        )
        .unwrap_err();
        assert_eq!(e.position, Some((3, 1)), "{e}");
        assert!(e.message.contains("missing field `iface`"), "{e}");
        let e = Config::parse("[[wifi]]\niface = \"w0\"\n  ssid = 1\n", None).unwrap_err();
        assert_eq!(e.position, Some((3, 3)), "{e}");
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
            // The reload path: serialized to JSON, read back through the same deserializer.
            let json = serde_json::to_value(&c.dhcp6).unwrap();
            assert_eq!(json["mode"], text);
            let back: Dhcp6Config = toml::from_value(toml::Value::from_json(json)).unwrap();
            assert_eq!(back, c.dhcp6);
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
