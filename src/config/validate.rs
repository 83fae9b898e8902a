//! The checks after parsing: each names its section and key and says what is allowed.
//! The first failing check is the one reported, so their order is kept.

use super::Config;
use crate::net::ifname::valid_ifname;
use netbond_proto::duid::{Duid, Iaid};
use std::path::Path;

/// What is wrong: section, key, and the message.
type Invalid = (&'static str, &'static str, String);

impl Config {
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        // First: a part this build left out (a [bond], [[wifi]]) is the real problem.
        crate::features::check(self)?;
        self.validate_identity()?;
        self.validate_dhcp()?;
        self.validate_hooks()?;
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
        self.validate_bond()?;
        self.validate_wifi()?;
        self.validate_ifnames()
    }

    /// `[identity]` and the DHCPv4 client-id.
    fn validate_identity(&self) -> Result<(), Invalid> {
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
        Ok(())
    }

    /// `[dhcp4]` and `[dhcp6]`: timers, host name, extra options, user class, the
    /// fallbacks, prefix delegation.
    fn validate_dhcp(&self) -> Result<(), Invalid> {
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
        crate::dhcp::fallback::validate(&self.dhcp4).map_err(|(k, m)| ("dhcp4", k, m))?;
        crate::dhcp::pd::downstream(&self.dhcp6.pd_downstream)
            .map_err(|m| ("dhcp6", "pd_downstream", m))?;
        Ok(())
    }

    /// `[hooks]` and `[ntp]`.
    fn validate_hooks(&self) -> Result<(), Invalid> {
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
        Ok(())
    }

    /// `[bond]`.
    fn validate_bond(&self) -> Result<(), Invalid> {
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
        Ok(())
    }

    /// `[[wifi]]`.
    fn validate_wifi(&self) -> Result<(), Invalid> {
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
        Ok(())
    }

    /// `interface` and `interfaces`.
    fn validate_ifnames(&self) -> Result<(), Invalid> {
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
    fn validate_stop(&self) -> Result<(), Invalid> {
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
}
