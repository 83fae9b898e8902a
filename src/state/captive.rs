//! RFC 8910 captive portal URIs per interface, from DHCPv4 (option 114), DHCPv6 (option
//! 103) and router advertisements (option 37), as the engines and the RA parser checked
//! them (`netbond_proto::captive`). netbond only shows them (`netbond status`, the
//! `captive-portal` event, hooks); it never fetches one. Each change of one source's
//! URI is a `captive-portal` event.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::sync::Mutex;

/// Where a URI came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// DHCPv4 option 114.
    Dhcp4,
    /// DHCPv6 option 103.
    Dhcp6,
    /// Router advertisement option 37.
    Ra,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Dhcp4 => "dhcp4",
            Source::Dhcp6 => "dhcp6",
            Source::Ra => "ra",
        }
    }
}

#[derive(Default, Clone)]
struct Uris {
    dhcp4: Option<String>,
    dhcp6: Option<String>,
    /// With the router that sent it: an RA from that router without the option ends it.
    ra: Option<(String, Ipv6Addr)>,
}

static CAPTIVE: Mutex<Option<HashMap<String, Uris>>> = Mutex::new(None);

fn with<T>(f: impl FnOnce(&mut HashMap<String, Uris>) -> T) -> T {
    let mut g = CAPTIVE.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(HashMap::new))
}

/// `source` now gives `iface` this URI (`None`: none, or the lease is gone).
pub fn set(iface: &str, source: Source, uri: Option<&str>) {
    let changed = with(|m| {
        let u = m.entry(iface.to_string()).or_default();
        let slot = match source {
            Source::Dhcp4 => &mut u.dhcp4,
            Source::Dhcp6 => &mut u.dhcp6,
            Source::Ra => {
                let old = u.ra.as_ref().map(|r| r.0.clone());
                if old.as_deref() == uri {
                    return false;
                }
                u.ra = uri.map(|s| (s.to_string(), Ipv6Addr::UNSPECIFIED));
                return true;
            }
        };
        if slot.as_deref() == uri {
            return false;
        }
        *slot = uri.map(str::to_string);
        true
    });
    if changed {
        announce(iface, source, uri);
    }
}

/// An RA from `router` with (or without) option 37: the RA's URI is the latest one a
/// router sent; a later RA from the same router without it ends it.
pub fn ra(iface: &str, router: Ipv6Addr, uri: Option<&str>) {
    let changed = with(|m| {
        let u = m.entry(iface.to_string()).or_default();
        match (uri, &u.ra) {
            (Some(new), Some((old, _))) if old == new => {
                u.ra = Some((new.to_string(), router));
                false
            }
            (Some(new), _) => {
                u.ra = Some((new.to_string(), router));
                true
            }
            (None, Some((_, from))) if *from == router => {
                u.ra = None;
                true
            }
            (None, _) => false,
        }
    });
    if changed {
        announce(iface, Source::Ra, uri);
    }
}

fn announce(iface: &str, source: Source, uri: Option<&str>) {
    match uri {
        Some(u) => crate::logging::info!("{iface}: captive portal ({}): {u}", source.name()),
        None => crate::logging::info!("{iface}: captive portal ({}): none", source.name()),
    }
    crate::daemon::events::emit(
        "captive-portal",
        Some(iface),
        json!({ "source": source.name(), "uri": uri }),
    );
}

/// The interface's part of `netbond status --json`: `null` when no source names a
/// portal, else `uri` (DHCPv4's, else DHCPv6's, else the RA's) and each source's.
pub fn status(iface: &str) -> Value {
    let u = with(|m| m.get(iface).cloned()).unwrap_or_default();
    let ra = u.ra.map(|r| r.0);
    let first = u.dhcp4.clone().or(u.dhcp6.clone()).or(ra.clone());
    match first {
        None => Value::Null,
        Some(f) => json!({ "uri": f, "dhcp4": u.dhcp4, "dhcp6": u.dhcp6, "ra": ra }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_kept_apart_and_an_ra_without_the_option_ends_its_own() {
        let r1: Ipv6Addr = "fe80::1".parse().unwrap();
        let r2: Ipv6Addr = "fe80::2".parse().unwrap();
        assert_eq!(status("cp0"), Value::Null);
        ra("cp0", r1, Some("https://ra.example/"));
        assert_eq!(status("cp0")["uri"], "https://ra.example/");
        set("cp0", Source::Dhcp4, Some("https://v4.example/"));
        assert_eq!(status("cp0")["uri"], "https://v4.example/");
        assert_eq!(status("cp0")["ra"], "https://ra.example/");
        // Another router without the option does not end r1's.
        ra("cp0", r2, None);
        assert_eq!(status("cp0")["ra"], "https://ra.example/");
        ra("cp0", r1, None);
        assert_eq!(status("cp0")["ra"], Value::Null);
        set("cp0", Source::Dhcp4, None);
        assert_eq!(status("cp0"), Value::Null);
    }
}
