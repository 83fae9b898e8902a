//! What a configuration reload (SIGHUP, `netbond reload`) changes while running.
//!
//! Every key of the file is in [`KEYS`]: either live (taken into the running
//! configuration at once, with a word on when it shows) or restart (kept at its running
//! value and named in the log as needing a restart). The comparison walks the old and
//! new configuration as JSON, so a key added to `Config` is compared without code here,
//! and the unit test `every_key_is_classified` fails until the key is put in the table:
//! a new key cannot be silently ignored by a reload.

use crate::config::Config;
use crate::logging::{error, info, warn};
use serde_json::Value;

/// When a changed key takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Taken into the running configuration; the text says when it shows.
    Live(&'static str),
    /// Only read at start: kept at its running value until a restart.
    Restart,
}

use When::{Live, Restart};

const NOW: When = Live("now");
const NEXT_MESSAGE: When = Live("from the next DHCPv4 message");
const NEXT_TIMER: When = Live("from the next DHCPv4 timer");
const NEXT_LEASE: When = Live("at the next lease or renewal");
const AT_STOP: When = Live("when netbond stops");

/// Every key as a dotted path (a section name covers all of its keys), and when a
/// change to it takes effect. Live keys must be read by the running code from the
/// reloaded `Config` (the interfaces get it as `Mail::Config`); the rest are read once,
/// at start.
pub const KEYS: &[(&str, When)] = &[
    ("interface", Restart),
    ("interfaces", Restart),
    ("daemon.state_dir", Restart),
    ("daemon.run_dir", Restart),
    ("daemon.on_stop", AT_STOP),
    ("daemon.release_on_stop", AT_STOP),
    ("daemon.deconfigure_on_stop", AT_STOP),
    ("daemon.log_level", NOW),
    // Read by each wait-online query and readiness check.
    ("daemon.online", NOW),
    // READY=1's deadline is armed once, at start.
    ("daemon.online_timeout", Restart),
    // Privileges are dropped once, after the sockets are open; there is no way back.
    ("daemon.drop_privileges", Restart),
    ("daemon.user", Restart),
    // The identity the servers know this host by: changing it live would orphan leases.
    ("identity", Restart),
    ("dhcp4.enabled", Restart),
    ("dhcp4.client_id", Restart),
    ("dhcp4.hostname", NEXT_MESSAGE),
    ("dhcp4.vendor_class", NEXT_MESSAGE),
    ("dhcp4.send_hostname", NEXT_MESSAGE),
    ("dhcp4.user_class", NEXT_MESSAGE),
    ("dhcp4.request", NEXT_MESSAGE),
    ("dhcp4.send", NEXT_MESSAGE),
    ("dhcp4.rapid_commit", NEXT_MESSAGE),
    ("dhcp4.ipv6_only_preferred", NEXT_MESSAGE),
    ("dhcp4.captive_portal", NEXT_MESSAGE),
    ("dhcp4.initial_interval", NEXT_TIMER),
    ("dhcp4.max_interval", NEXT_TIMER),
    ("dhcp4.timeout", NEXT_TIMER),
    ("dhcp4.retry", NEXT_TIMER),
    ("dhcp4.reboot", NEXT_TIMER),
    // Part of every route already installed; the metric is fixed per interface at start.
    ("dhcp4.route_metric", Restart),
    ("dhcp4.accept_wide_routes", NEXT_LEASE),
    ("dhcp4.use_routes", NEXT_LEASE),
    ("dhcp4.use_mtu", NEXT_LEASE),
    ("dhcp4.use_dns", NOW),
    (
        "dhcp4.conflict_detection",
        Live("for the next address bound"),
    ),
    // The fallbacks are set up with the interface's drivers, at start.
    ("dhcp4.link_local", Restart),
    ("dhcp4.link_local_after", Restart),
    ("dhcp4.fallback_address", Restart),
    ("dhcp4.fallback_router", Restart),
    ("dhcp4.fallback_dns", Restart),
    ("dhcp4.fallback_after", Restart),
    // The DHCPv6 engine is built once with these.
    ("dhcp6.enabled", Restart),
    ("dhcp6.mode", Restart),
    ("dhcp6.ia_na", Restart),
    ("dhcp6.ia_pd", Restart),
    ("dhcp6.iaid_pd", Restart),
    ("dhcp6.rapid_commit", Restart),
    ("dhcp6.solicit_delay", Restart),
    ("dhcp6.request_ntp", Restart),
    ("dhcp6.send_hostname", Restart),
    ("dhcp6.user_class", Restart),
    ("dhcp6.request", Restart),
    ("dhcp6.vendor_class", Restart),
    ("dhcp6.vendor_enterprise", Restart),
    ("dhcp6.send", Restart),
    ("dhcp6.captive_portal", Restart),
    ("dhcp6.use_dns", NOW),
    ("dhcp6.pd_downstream", Restart),
    // Which file (or resolved) owns DNS is decided per interface at start.
    ("dns.resolv_conf", Restart),
    // The hook runner and the chrony sources directory are set up once, at start.
    ("hooks", Restart),
    ("ntp", Restart),
    // The bond is created or adopted at start; its settings are fixed by then.
    ("bond", Restart),
    // The socket's group is set when it is created, before privileges are dropped.
    ("control", Restart),
    // Supplicants are started from this list at start.
    ("wifi", Restart),
];

/// How `path` is classified, if it is.
pub fn classify(path: &str) -> Option<When> {
    KEYS.iter()
        .find(|(k, _)| {
            path == *k
                || path
                    .strip_prefix(k)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
        .map(|(_, w)| *w)
}

/// A dotted path as the file spells it: `[dhcp4] vendor_class`, `[[wifi]]`, `interface`.
pub fn display(path: &str) -> String {
    match path.split_once('.') {
        Some((section, key)) => format!("[{section}] {key}"),
        None if path == "wifi" => "[[wifi]]".into(),
        None if matches!(
            path,
            "daemon" | "identity" | "dhcp4" | "dhcp6" | "dns" | "bond" | "control"
        ) =>
        {
            format!("[{path}]")
        }
        None => path.to_string(),
    }
}

/// The outcome of comparing the running configuration with the file's.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Changed keys taken live (dotted paths), each with when it shows.
    pub live: Vec<(String, &'static str)>,
    /// Changed keys that need a restart (not in effect).
    pub restart: Vec<String>,
    /// The configuration to run with from now on: the old one plus the live changes.
    pub running: Config,
}

impl Plan {
    /// True when the live changes include `path`.
    pub fn applies(&self, path: &str) -> bool {
        self.live.iter().any(|(p, _)| p == path)
    }
}

/// Compare `old` (running) with `new` (the file, command-line overrides applied).
pub fn plan(old: &Config, new: &Config) -> Plan {
    let (Ok(a), Ok(b)) = (serde_json::to_value(old), serde_json::to_value(new)) else {
        // Not reachable for these plain types; keeping everything is the safe answer.
        return Plan {
            running: old.clone(),
            ..Plan::default()
        };
    };
    let mut changed = Vec::new();
    diff(String::new(), &a, &b, &mut changed);
    let mut running = a;
    let mut plan = Plan::default();
    for path in changed {
        match classify(&path) {
            Some(Live(when)) => {
                if let Some(slot) = pointer_mut(&mut running, &path) {
                    *slot = pointer(&b, &path).cloned().unwrap_or(Value::Null);
                }
                plan.live.push((path, when));
            }
            // Unclassified keys (the unit test keeps this empty) are not applied.
            Some(Restart) | None => plan.restart.push(path),
        }
    }
    match crate::config::toml::from_value(crate::config::toml::Value::from_json(running)) {
        Ok(c) => plan.running = c,
        Err(_) => {
            plan.restart.extend(plan.live.drain(..).map(|(p, _)| p));
            plan.running = old.clone();
        }
    }
    plan
}

/// Collect the dotted paths where `a` and `b` differ, descending into tables present
/// on both sides (arrays, such as `[[wifi]]`, compare as a whole).
fn diff(path: String, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                let null = Value::Null;
                diff(
                    child,
                    x.get(k).unwrap_or(&null),
                    y.get(k).unwrap_or(&null),
                    out,
                );
            }
        }
        _ if a != b => out.push(path),
        _ => {}
    }
}

fn pointer<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    v.pointer(&format!("/{}", path.replace('.', "/")))
}

fn pointer_mut<'a>(v: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    v.pointer_mut(&format!("/{}", path.replace('.', "/")))
}

/// SIGHUP or `netbond reload`: re-read the file, take what can change live into the
/// running configuration and hand it to every interface; name what needs a restart.
/// Returns the summary for the control socket's reply.
pub fn reload(
    cfg: &mut std::sync::Arc<Config>,
    ifaces: &[crate::daemon::iface::IfaceHandle],
    path: Option<&std::path::Path>,
    overrides: &crate::daemon::Overrides,
) -> String {
    let (live, summary) = reloaded(cfg, path, overrides);
    if let Some(live) = live {
        *cfg = std::sync::Arc::new(live);
        for h in ifaces {
            h.send(crate::daemon::iface::Mail::Config(cfg.clone()));
        }
    }
    summary
}

/// The running configuration with the file's live keys (`None` when nothing could be
/// read), and one line saying what was done. Which key is live and which needs a
/// restart is decided in one place, `reload::KEYS`.
fn reloaded(
    old: &Config,
    path: Option<&std::path::Path>,
    overrides: &crate::daemon::Overrides,
) -> (Option<Config>, String) {
    let Some(path) = path else {
        let m = "no configuration file in use; nothing to reload".to_string();
        info!("reload: {m}");
        return (None, m);
    };
    let mut new = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            error!("reload: keeping the running configuration: {e}");
            return (None, format!("keeping the running configuration: {e}"));
        }
    };
    overrides.apply(&mut new);
    let plan = plan(old, &new);
    let mut applied = Vec::new();
    let mut not_used = Vec::new();
    let level_pinned = plan.applies("daemon.log_level")
        && crate::logging::set_file_level(&plan.running.daemon.log_level)
            == crate::logging::LevelChange::Pinned;
    for (key, when) in &plan.live {
        let name = display(key);
        if key == "daemon.log_level" && level_pinned {
            not_used.push(format!("{name} (--log-level or RUST_LOG sets the level)"));
            continue;
        }
        applied.push(format!("{name} ({when})"));
    }
    let restart: Vec<String> = plan.restart.iter().map(|k| display(k)).collect();
    let mut parts = Vec::new();
    if !applied.is_empty() {
        parts.push(format!("applied {}", applied.join(", ")));
    }
    if !not_used.is_empty() {
        parts.push(format!("not used: {}", not_used.join(", ")));
    }
    if !restart.is_empty() {
        parts.push(format!(
            "these changes need a restart and are not in effect: {}",
            restart.join(", ")
        ));
    }
    let summary = if parts.is_empty() {
        format!("configuration reloaded from {}: no changes", path.display())
    } else {
        format!(
            "configuration reloaded from {}: {}",
            path.display(),
            parts.join("; ")
        )
    };
    if restart.is_empty() {
        info!("reload: {summary}");
    } else {
        warn!("reload: {summary}");
    }
    (Some(plan.running), summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BondConfig, WifiConfig};

    /// A configuration with every optional key set and one of each table, so every
    /// key appears in its JSON form.
    fn full() -> Config {
        let mut c = Config {
            interface: Some("eth0".into()),
            interfaces: vec!["eth1".into()],
            ..Config::default()
        };
        c.daemon.user = Some("netbond".into());
        c.identity.duid = Some("00:01:02:03".into());
        c.identity.iaid = Some("1".into());
        c.dhcp4.hostname = Some("host".into());
        c.dhcp4.vendor_class = Some("vc".into());
        c.dhcp4.user_class = Some("uc".into());
        c.dhcp4.request = vec![42];
        c.dhcp4.send.insert(
            "224".into(),
            crate::config::OptionValue::Hex("01:02".into()),
        );
        c.dhcp6.user_class = Some("uc6".into());
        c.dhcp6.vendor_class = Some("vc6".into());
        c.dhcp6.vendor_enterprise = Some(32473);
        c.dhcp6
            .send
            .insert("17".into(), crate::config::OptionValue::Hex("01:02".into()));
        c.dhcp6.request = vec![31];
        c.dhcp6.iaid_pd = Some("2".into());
        c.dhcp4.fallback_address = Some("192.168.1.50/24".into());
        c.dhcp4.fallback_router = Some("192.168.1.1".into());
        c.control.group = Some("netbond".into());
        c.bond = Some(BondConfig {
            primary: Some("eth0".into()),
            ..BondConfig::default()
        });
        c.wifi = vec![WifiConfig {
            iface: "wlan0".into(),
            mode: "supervise".into(),
            config: Some("/etc/wpa.conf".into()),
            driver: "nl80211".into(),
            ctrl_dir: Some("/run/wpa".into()),
            binary: Some("wpa_supplicant".into()),
            disable_legacy_rates: false,
            distance: Some(10),
        }];
        c
    }

    /// Every key of `v` (dotted), arrays and scalars being keys.
    fn leaves(path: String, v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    leaves(p, x, out);
                }
            }
            _ => out.push(path),
        }
    }

    fn all_keys() -> Vec<String> {
        let mut out = Vec::new();
        leaves(
            String::new(),
            &serde_json::to_value(full()).unwrap(),
            &mut out,
        );
        out
    }

    #[test]
    fn every_key_is_classified() {
        let keys = all_keys();
        assert!(keys.len() > 40, "the sample lost keys: {keys:?}");
        for k in &keys {
            assert!(
                classify(k).is_some(),
                "configuration key {k:?} is not in reload::KEYS: add it as Live (and make \
                 the running code read it from the reloaded Config) or as Restart"
            );
        }
        // No stale entries either: each names a key (or a section) that exists.
        for (entry, _) in KEYS {
            assert!(
                keys.iter()
                    .any(|k| k == entry || k.starts_with(&format!("{entry}."))),
                "reload::KEYS lists {entry:?}, which is not a configuration key"
            );
        }
    }

    /// A different value of the same type, still deserializable.
    fn changed(v: &Value) -> Vec<Value> {
        match v {
            Value::Bool(b) => vec![Value::Bool(!b)],
            Value::Number(n) if n.is_u64() => vec![(n.as_u64().unwrap() + 1).into()],
            Value::Number(n) => vec![(n.as_f64().unwrap() + 1.5).into()],
            // Enum-like strings need one of their values; any other string gets a suffix.
            Value::String(s) => vec![
                format!("{s}x").into(),
                if s == "stateful" {
                    "stateless"
                } else {
                    "stateful"
                }
                .into(),
            ],
            Value::Array(a) => {
                let mut longer = a.clone();
                longer.push(a.first().cloned().unwrap_or_else(|| "x".into()));
                vec![Value::Array(longer), Value::Array(Vec::new())]
            }
            Value::Null | Value::Object(_) => Vec::new(),
        }
    }

    #[test]
    fn each_key_changed_once_is_applied_live_or_named_for_a_restart() {
        let old = full();
        let old_json = serde_json::to_value(&old).unwrap();
        for key in all_keys() {
            let orig = pointer(&old_json, &key).unwrap();
            let new = changed(orig).into_iter().find_map(|v| {
                let mut j = old_json.clone();
                *pointer_mut(&mut j, &key).unwrap() = v;
                crate::config::toml::from_value::<Config>(crate::config::toml::Value::from_json(j))
                    .ok()
            });
            let new = new.unwrap_or_else(|| panic!("cannot make a changed value for {key}"));
            let p = plan(&old, &new);
            match classify(&key).unwrap() {
                Live(_) => {
                    assert_eq!(p.live.len(), 1, "{key}: {p:?}");
                    assert_eq!(p.live[0].0, key);
                    assert!(p.restart.is_empty(), "{key}: {:?}", p.restart);
                    assert_eq!(p.running, new, "{key}: the live change was not taken");
                }
                Restart => {
                    assert_eq!(p.restart, vec![key.clone()]);
                    assert!(p.live.is_empty(), "{key}: {:?}", p.live);
                    assert_eq!(p.running, old, "{key}: a restart key changed live");
                }
            }
        }
    }

    #[test]
    fn the_keys_the_issue_named_are_each_handled() {
        // Issue 13 item 6: each was neither applied nor reported before.
        for k in [
            "dhcp4.vendor_class",
            "dhcp4.retry",
            "dhcp4.reboot",
            "dhcp4.conflict_detection",
            "daemon.log_level",
        ] {
            assert!(matches!(classify(k), Some(Live(_))), "{k}");
        }
        for k in ["wifi", "control.group", "daemon.user"] {
            assert_eq!(classify(k), Some(Restart), "{k}");
        }
    }

    #[test]
    fn unchanged_is_no_change_and_a_new_section_needs_a_restart() {
        let c = full();
        let p = plan(&c, &c);
        assert!(p.live.is_empty() && p.restart.is_empty());
        assert_eq!(p.running, c);
        let mut old = c.clone();
        old.bond = None;
        let p = plan(&old, &c);
        assert_eq!(p.restart, vec!["bond".to_string()]);
        assert_eq!(p.running, old);
        // Several at once: each goes its own way.
        let mut new = c.clone();
        new.dhcp4.vendor_class = None;
        new.daemon.user = None;
        new.dhcp6.use_dns = false;
        let p = plan(&c, &new);
        assert!(p.applies("dhcp4.vendor_class") && p.applies("dhcp6.use_dns"));
        assert_eq!(p.restart, vec!["daemon.user".to_string()]);
        assert_eq!(p.running.daemon.user, c.daemon.user);
        assert_eq!(p.running.dhcp4.vendor_class, None);
    }

    #[test]
    fn names_as_the_file_spells_them() {
        assert_eq!(display("dhcp4.vendor_class"), "[dhcp4] vendor_class");
        assert_eq!(display("wifi"), "[[wifi]]");
        assert_eq!(display("bond"), "[bond]");
        assert_eq!(display("interface"), "interface");
    }
}
