//! `netbond status --json`: the stable shape the README documents, as typed structs in
//! one place. The interface task, the drivers, the bond and Wi-Fi supervisors hand in
//! plain values; nothing here reads the system. `tests::status_json_matches_the_golden_file`
//! pins the shape (keys, nesting, nulls): a change there is a change to a documented
//! interface.

use crate::net::hwaddr::fmt_mac;
use crate::net::link::LinkInfo;
use crate::state::worker::Stats;
#[cfg(feature = "wifi")]
use crate::wifi::wpa::WpaState;
use netbond_proto::dhcp4::{Lease4, Route4};
use netbond_proto::dhcp6::Lease6;
use netbond_proto::duid::write_hex;
use netbond_proto::{Duid, Iaid, Instant};
use serde::Serialize;
use serde_json::Value;
use std::net::{Ipv4Addr, Ipv6Addr};

/// One client family: its state name and lease (`null` without one).
#[derive(Debug, Clone, Serialize)]
pub struct Client<L> {
    pub state: &'static str,
    pub lease: Option<L>,
    /// DHCPv4: the link-local and static fallbacks (`dhcp/fallback.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallbacks: Option<Value>,
    /// DHCPv6: the delegated prefix handed on downstream (`dhcp/pd.rs`), `null` if none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delegated: Option<Value>,
    /// DHCPv4 in RFC 8925's pause (state `IPV6-ONLY`): seconds until it starts again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_only_secs_left: Option<u64>,
}

/// A DHCPv4 lease.
#[derive(Debug, Clone, Serialize)]
pub struct Lease4Status {
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub server: Ipv4Addr,
    pub routers: Vec<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub domain: Option<String>,
    pub search: Vec<String>,
    pub mtu: Option<u16>,
    /// `null`: an infinite lease.
    pub lease_secs: Option<u32>,
    pub remaining_secs: Option<u32>,
    pub t1_secs: u32,
    pub t2_secs: u32,
    pub chaddr: String,
    /// Option 121, as `dest/len via gateway`.
    pub routes: Vec<String>,
    /// Option 33, as `dest/len via gateway`.
    pub static_routes: Vec<String>,
    /// RFC 8910 option 114.
    pub captive_portal: Option<String>,
}

/// A DHCPv6 lease.
#[derive(Debug, Clone, Serialize)]
pub struct Lease6Status {
    pub server_duid: String,
    pub addresses: Vec<Addr6Status>,
    /// Delegated prefixes as `prefix/len`.
    pub prefixes: Vec<String>,
    pub dns: Vec<Ipv6Addr>,
    pub domains: Vec<String>,
    pub ntp: Vec<Ipv6Addr>,
    /// RFC 8910 option 103.
    pub captive_portal: Option<String>,
}

/// A DHCPv6 address and what is left of its lifetimes (`null`: infinite).
#[derive(Debug, Clone, Serialize)]
pub struct Addr6Status {
    pub address: Ipv6Addr,
    pub valid_secs_left: Option<u32>,
    pub preferred_secs_left: Option<u32>,
}

/// One interface's part.
#[derive(Debug, Clone, Serialize)]
pub struct IfaceStatus {
    pub interface: IfaceId,
    pub identity: Identity,
    /// `null`: the family is disabled.
    pub dhcp4: Option<Client<Lease4Status>>,
    pub dhcp6: Option<Client<Lease6Status>>,
    /// RFC 8910: `null`, or the portal URI and each source's (`state::captive`).
    pub captive_portal: Value,
    /// Set in the `interfaces` list; the top level has the policy's answer instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IfaceId {
    pub name: String,
    pub index: Option<u32>,
    pub mac: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Identity {
    pub duid: String,
    pub iaid: String,
}

/// The bond as `/proc/net/bonding` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct BondStatus {
    pub name: String,
    pub exists: bool,
    pub mode: String,
    pub fail_over_mac: &'static str,
    pub miimon_ms: Option<u32>,
    pub primary: Option<String>,
    pub active_port: Option<String>,
    pub mac: Option<String>,
    pub ports: Vec<PortStatus>,
}

/// A port: in the bond, or matching but not enslaved (yet).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum PortStatus {
    Member {
        name: String,
        /// `active` or `backup`.
        state: &'static str,
        mii_status: &'static str,
        link_failures: u32,
        permanent_mac: Option<String>,
        mac: Option<String>,
    },
    Pending {
        name: String,
        /// `waiting` or `enslave-failed`.
        state: &'static str,
        error: String,
        attempts: u32,
        retry_in_secs: u64,
    },
}

/// A configured Wi-Fi interface.
#[derive(Debug, Clone, Serialize)]
pub struct WifiStatus {
    pub iface: String,
    pub mode: String,
    pub present: bool,
    pub supplicant: String,
    /// Only while the interface exists.
    #[serde(flatten)]
    pub wpa: Option<WpaStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WpaStatus {
    pub control_connected: bool,
    pub wpa_state: String,
    pub bssid: Option<String>,
    pub ssid: Option<String>,
    pub last_event: String,
    pub restarts: u32,
}

/// The writer threads' and the start window's counters.
#[derive(Debug, Clone, Serialize)]
pub struct StatsStatus {
    /// Durable writes that ran on the event loop (0 unless something regressed).
    pub saves_on_loop: u64,
    pub lease_writes: WriterStatus,
    pub dns_writes: WriterStatus,
    pub start_window: Option<WindowStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WriterStatus {
    pub done: u64,
    pub coalesced: u64,
    pub pending: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct WindowStatus {
    pub window: f64,
    pub max_window: f64,
    pub ok: u64,
    pub lost: u64,
}

/// The whole answer. The top-level `interface`, `identity`, `dhcp4` and `dhcp6` are
/// the first (or the chosen) interface's, as in single-interface mode; `interfaces`
/// lists every one.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    #[serde(flatten)]
    pub first: Option<IfaceStatus>,
    pub version: &'static str,
    pub bond: Option<BondStatus>,
    pub wifi: Vec<WifiStatus>,
    pub interfaces: Vec<IfaceStatus>,
    /// The `[daemon] online` policy's answer.
    pub online: bool,
    pub stats: StatsStatus,
}

/// Seconds left of a DHCPv6 lifetime counted from `acquired` (None = infinite).
fn left(acquired: Instant, now: Instant, secs: u32) -> Option<u32> {
    if secs == u32::MAX {
        return None;
    }
    let gone = (now - acquired).as_secs();
    Some(u64::from(secs).saturating_sub(gone) as u32)
}

fn routes(r: &[Route4]) -> Vec<String> {
    r.iter()
        .map(|r| format!("{}/{} via {}", r.dest, r.prefix_len, r.gateway))
        .collect()
}

/// The DHCPv4 client: its state and lease.
pub fn dhcp4(state: &'static str, lease: Option<&Lease4>, now: Instant) -> Client<Lease4Status> {
    let lease = lease.map(|l| Lease4Status {
        address: l.address,
        prefix_len: l.prefix_len,
        server: l.server,
        routers: l.routers.clone(),
        dns: l.dns.clone(),
        domain: l.domain.clone(),
        search: l.search.clone(),
        mtu: l.mtu,
        lease_secs: l.lease_secs,
        remaining_secs: l.remaining_secs(now),
        t1_secs: l.t1_secs,
        t2_secs: l.t2_secs,
        chaddr: fmt_mac(&l.chaddr),
        routes: routes(&l.routes),
        static_routes: routes(&l.static_routes),
        captive_portal: l.captive_portal.clone(),
    });
    Client {
        state,
        lease,
        fallbacks: None,
        delegated: None,
        ipv6_only_secs_left: None,
    }
}

/// The DHCPv6 client: its state and lease.
pub fn dhcp6(state: &'static str, lease: Option<&Lease6>, now: Instant) -> Client<Lease6Status> {
    let lease = lease.map(|l| {
        let mut server_duid = String::new();
        let _ = write_hex(&mut server_duid, &l.server_id);
        Lease6Status {
            server_duid,
            addresses: l
                .addresses
                .iter()
                .map(|a| Addr6Status {
                    address: a.addr,
                    valid_secs_left: left(l.acquired, now, a.valid),
                    preferred_secs_left: left(l.acquired, now, a.preferred),
                })
                .collect(),
            prefixes: l
                .prefixes
                .iter()
                .map(|p| format!("{}/{}", p.prefix, p.len))
                .collect(),
            dns: l.dns.clone(),
            domains: l.domains.clone(),
            ntp: l.ntp.clone(),
            captive_portal: l.captive_portal.clone(),
        }
    });
    Client {
        state,
        lease,
        fallbacks: None,
        delegated: None,
        ipv6_only_secs_left: None,
    }
}

/// One interface: name, index, MAC, identity and both clients (`None`: disabled).
pub fn iface(
    name: &str,
    index: Option<u32>,
    mac: Option<[u8; 6]>,
    identity: (&Duid, Iaid),
    dhcp4: Option<Client<Lease4Status>>,
    dhcp6: Option<Client<Lease6Status>>,
) -> IfaceStatus {
    IfaceStatus {
        interface: IfaceId {
            name: name.to_string(),
            index,
            mac: mac.map(|m| fmt_mac(&m)),
        },
        identity: Identity {
            duid: identity.0.to_string(),
            iaid: identity.1.to_string(),
        },
        dhcp4,
        dhcp6,
        // The interface task sets it (`state::captive::status`).
        captive_portal: Value::Null,
        online: None,
    }
}

/// A port in the bond, as the kernel reports it.
pub fn bond_port(l: &LinkInfo) -> PortStatus {
    let p = l.bond_port.clone().unwrap_or_default();
    PortStatus::Member {
        name: l.name.clone(),
        state: if p.active { "active" } else { "backup" },
        mii_status: if p.mii_up { "up" } else { "down" },
        link_failures: p.link_failures,
        permanent_mac: p.perm_mac.map(|m| fmt_mac(&m)),
        mac: l.mac.map(|m| fmt_mac(&m)),
    }
}

/// A matching port that is not in the bond yet, and why.
pub fn bond_pending(
    name: &str,
    busy: bool,
    error: &str,
    attempts: u32,
    retry_in_secs: u64,
) -> PortStatus {
    PortStatus::Pending {
        name: name.to_string(),
        state: if busy { "waiting" } else { "enslave-failed" },
        error: error.to_string(),
        attempts,
        retry_in_secs,
    }
}

/// The bond: `bond` is its link (None: it does not exist), `primary` and `active` the
/// names of those ports.
pub fn bond(
    name: &str,
    bond: Option<&LinkInfo>,
    primary: Option<String>,
    active: Option<String>,
    ports: Vec<PortStatus>,
) -> BondStatus {
    let b = bond.and_then(|l| l.bond.clone()).unwrap_or_default();
    BondStatus {
        name: name.to_string(),
        exists: bond.is_some(),
        mode: match b.mode {
            Some(1) => "active-backup".to_string(),
            Some(n) => n.to_string(),
            None => "unknown".into(),
        },
        fail_over_mac: match b.fail_over_mac {
            Some(0) => "none",
            Some(1) => "active",
            Some(2) => "follow",
            _ => "unknown",
        },
        miimon_ms: b.miimon,
        primary,
        active_port: active,
        mac: bond.and_then(|l| l.mac).map(|m| fmt_mac(&m)),
        ports,
    }
}

/// A configured Wi-Fi interface: `st` is None while the interface is absent;
/// `supplicant` says what wpa_supplicant is doing. (Without the wifi feature no
/// interface is configured: see `features.rs`.)
#[cfg(feature = "wifi")]
pub fn wifi(iface: &str, mode: &str, st: Option<(&WpaState, String)>) -> WifiStatus {
    let (supplicant, wpa) = match st {
        None => ("not running (interface absent)".to_string(), None),
        Some((st, sup)) => (
            sup,
            Some(WpaStatus {
                control_connected: st.control_connected,
                wpa_state: st.wpa_state.clone(),
                bssid: st.connected_bssid.clone(),
                ssid: st.ssid.clone(),
                last_event: st.last_event.clone(),
                restarts: st.restarts,
            }),
        ),
    };
    WifiStatus {
        iface: iface.to_string(),
        mode: mode.to_string(),
        present: wpa.is_some(),
        supplicant,
        wpa,
    }
}

/// The writer threads' and the start window's counters.
pub fn stats(
    saves_on_loop: u64,
    leases: Stats,
    dns: Stats,
    pace: Option<crate::dhcp::pace::PaceStats>,
) -> StatsStatus {
    let w = |s: Stats| WriterStatus {
        done: s.done,
        coalesced: s.coalesced,
        pending: s.pending,
    };
    StatsStatus {
        saves_on_loop,
        lease_writes: w(leases),
        dns_writes: w(dns),
        start_window: pace.map(|s| WindowStatus {
            window: s.window,
            max_window: s.max_window,
            ok: s.ok,
            lost: s.lost,
        }),
    }
}

/// The whole status as the control socket sends it: each interface with its own
/// `online`, the first one's fields repeated at the top level, where `online` is the
/// policy's answer.
pub fn status(
    ifaces: Vec<(IfaceStatus, bool)>,
    bond: Option<BondStatus>,
    wifi: Vec<WifiStatus>,
    online: bool,
    stats: StatsStatus,
) -> Value {
    let interfaces: Vec<IfaceStatus> = ifaces
        .into_iter()
        .map(|(st, on)| IfaceStatus {
            online: Some(on),
            ..st
        })
        .collect();
    let first = interfaces.first().map(|i| IfaceStatus {
        online: None,
        ..i.clone()
    });
    let st = Status {
        first,
        version: env!("CARGO_PKG_VERSION"),
        bond,
        wifi,
        interfaces,
        online,
        stats,
    };
    // Plain data (string keys, finite numbers): serializing cannot fail.
    serde_json::to_value(st).unwrap_or(Value::Null)
}

#[cfg(test)]
// The golden sample has Wi-Fi interfaces: it needs the wifi feature, and without it
// what only the sample uses is unused.
#[cfg_attr(not(feature = "wifi"), allow(dead_code, unused_imports))]
mod tests {
    use super::*;
    use crate::net::link::{BondInfo, BondPortInfo};
    #[cfg(feature = "wifi")]
    use crate::wifi::wpa::SupplicantState;
    use netbond_proto::dhcp4::Route4;
    use netbond_proto::dhcp6::{Addr6, Prefix6};

    const GOLDEN: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/daemon/testdata/status-golden.json"
    );

    fn link(index: u32, name: &str, mac: u8) -> LinkInfo {
        LinkInfo {
            index,
            name: name.into(),
            mac: Some([2, 0, 0, 0, 0, mac]),
            up: true,
            carrier: true,
            mtu: 1500,
            controller: None,
            is_port: false,
            kind: None,
            bond: None,
            bond_port: None,
        }
    }

    /// One interface with both leases, a bond with an active, a backup and a pending
    /// port, a present and an absent Wi-Fi interface, and the counters.
    #[cfg(feature = "wifi")]
    fn sample() -> Value {
        let now = Instant::from_secs(1000);
        let l4 = Lease4 {
            address: "192.0.2.10".parse().unwrap(),
            prefix_len: 24,
            server: "192.0.2.1".parse().unwrap(),
            routers: vec!["192.0.2.1".parse().unwrap()],
            dns: vec!["192.0.2.53".parse().unwrap(), "192.0.2.54".parse().unwrap()],
            domain: Some("example.com".into()),
            search: vec!["corp.example".into()],
            hostname: Some("host".into()),
            mtu: Some(1400),
            ntp: vec![],
            routes: vec![Route4 {
                dest: "10.0.0.0".parse().unwrap(),
                prefix_len: 8,
                gateway: "192.0.2.254".parse().unwrap(),
            }],
            static_routes: vec![Route4 {
                dest: "10.9.9.9".parse().unwrap(),
                prefix_len: 32,
                gateway: "192.0.2.253".parse().unwrap(),
            }],
            lease_secs: Some(3600),
            t1_secs: 1800,
            t2_secs: 3150,
            acquired: Instant::from_secs(400),
            chaddr: [2, 0, 0, 0, 0, 1],
            captive_portal: None,
        };
        let l6 = Lease6 {
            server_id: vec![0, 1, 0, 1, 0x2e, 0x2d, 1, 0xbd, 2, 0, 0, 0, 0, 9],
            addresses: vec![Addr6 {
                addr: "2001:db8::10".parse().unwrap(),
                preferred: 3600,
                valid: u32::MAX,
            }],
            prefixes: vec![Prefix6 {
                prefix: "2001:db8:100::".parse().unwrap(),
                len: 56,
                preferred: 3600,
                valid: 7200,
            }],
            t1: 1800,
            t2: 2880,
            dns: vec!["2001:db8::53".parse().unwrap()],
            domains: vec!["example.com".into()],
            ntp: vec!["2001:db8::123".parse().unwrap()],
            captive_portal: None,
            acquired: Instant::from_secs(700),
        };
        let duid: Duid = "00:02:00:00:ab:11:01:02:03:04".parse().unwrap();
        let bond0 = LinkInfo {
            kind: Some("bond".into()),
            bond: Some(BondInfo {
                mode: Some(1),
                fail_over_mac: Some(1),
                miimon: Some(100),
                active_port: Some(3),
                primary: Some(3),
                primary_reselect: Some(0),
            }),
            ..link(2, "bond0", 3)
        };
        let port = |index, name: &str, active| LinkInfo {
            controller: Some(2),
            is_port: true,
            bond_port: Some(BondPortInfo {
                active,
                mii_up: active,
                link_failures: 2,
                perm_mac: Some([2, 0, 0, 0, 1, index as u8]),
            }),
            ..link(index, name, index as u8)
        };
        let eth = iface(
            "bond0",
            Some(2),
            Some([2, 0, 0, 0, 0, 3]),
            (&duid, Iaid(7)),
            Some(dhcp4("BOUND", Some(&l4), now)),
            Some(dhcp6("BOUND", Some(&l6), now)),
        );
        let other = iface(
            "eth9",
            None,
            None,
            (&duid, Iaid(8)),
            None,
            Some(dhcp6("SOLICITING", None, now)),
        );
        let wpa = WpaState {
            supplicant: SupplicantState::Running { pid: Some(42) },
            control_connected: true,
            wpa_state: "COMPLETED".into(),
            connected_bssid: Some("02:00:00:00:01:00".into()),
            ssid: Some("My=Net".into()),
            last_event: "connected".into(),
            restarts: 1,
        };
        let stats = stats(
            0,
            Stats {
                done: 5,
                coalesced: 1,
                pending: 0,
            },
            Stats {
                done: 2,
                coalesced: 0,
                pending: 1,
            },
            Some(crate::dhcp::pace::PaceStats {
                ok: 3,
                lost: 1,
                window: 4.0,
                max_window: 8.5,
            }),
        );
        status(
            vec![(eth, true), (other, false)],
            Some(bond(
                "bond0",
                Some(&bond0),
                Some("eth0".into()),
                Some("eth0".into()),
                vec![
                    bond_port(&port(3, "eth0", true)),
                    bond_port(&port(4, "wlan0", false)),
                    bond_pending(
                        "eth1",
                        false,
                        "Device or resource busy (os error 16)",
                        3,
                        20,
                    ),
                ],
            )),
            vec![
                wifi(
                    "wlan0",
                    "supervise",
                    Some((&wpa, "running (pid 42)".into())),
                ),
                wifi("wlan1", "attach", None),
            ],
            true,
            stats,
        )
    }

    /// The shape of `status --json` is stable (README): any change to a key, a nesting
    /// or a type shows up here. `NETBOND_BLESS=1` rewrites the file (review the diff).
    #[test]
    #[cfg(feature = "wifi")]
    fn status_json_matches_the_golden_file() {
        let mut v = serde_json::to_value(sample()).unwrap();
        // The one value that changes with every release.
        assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
        v["version"] = "VERSION".into();
        let got = serde_json::to_string_pretty(&v).unwrap() + "\n";
        if std::env::var_os("NETBOND_BLESS").is_some() {
            std::fs::write(GOLDEN, &got).unwrap();
        }
        let want = std::fs::read_to_string(GOLDEN).expect("the golden file");
        assert_eq!(got, want, "status JSON shape changed");
    }

    /// No interface (all chosen ones gone): no top-level interface fields, the rest as
    /// always.
    #[test]
    fn status_without_interfaces() {
        let zero = Stats::default();
        let v = status(vec![], None, vec![], false, stats(0, zero, zero, None));
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["bond", "interfaces", "online", "stats", "version", "wifi"]
        );
        assert_eq!(v["bond"], Value::Null);
        assert_eq!(v["stats"]["start_window"], Value::Null);
    }
}
