//! Shared scaffolding for netbond's fuzz targets: the fixed client identity (the same one
//! `gen-seeds.sh` gives the netbond that captured the seeds), scripted valid server
//! exchanges that drive each engine into every state, invariant checks on what the
//! engines hand to the daemon, and the daemon modules the targets use.
#![allow(clippy::missing_panics_doc)]

use netbond_proto::dhcp4::{self, reply, Event4, Lease4};
use netbond_proto::dhcp6::{self, Event6};
use netbond_proto::duid::{Duid, Iaid};
use netbond_proto::{Engine, Instant};
use std::net::{Ipv4Addr, Ipv6Addr};

/// The daemon's configuration file (`src/config.rs`).
pub use netbond::config;
/// The daemon's state directory (`src/state/store.rs`).
pub use netbond::state::store;

/// The client's MAC address (c0's in `gen-seeds.sh`).
pub const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// A second MAC, for the RECONFIRMING state (a bond failover).
pub const MAC2: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// The client DUID (`[identity] duid` in `gen-seeds.sh`).
pub const DUID: [u8; 14] = [
    0x00, 0x01, 0x00, 0x01, 0x2e, 0x2d, 0x01, 0xbd, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56,
];
/// The IAID (`[identity] iaid = "1"`).
pub const IAID: Iaid = Iaid(1);
/// The scripted DHCPv4 server.
pub const SERVER4: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 1);
/// The address the scripted DHCPv4 server hands out.
pub const ADDR4: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 77);
/// The scripted server's lease time (T1 1800 s, T2 3150 s by default).
pub const LEASE4: u32 = 3600;
/// The DUID of the scripted DHCPv6 server.
pub const SERVER_DUID: [u8; 10] = [0, 3, 0, 1, 0x02, 0, 0, 0, 0, 0xfe];
/// The address the scripted DHCPv6 server hands out.
pub const ADDR6: Ipv6Addr = Ipv6Addr::new(0xfd78, 0, 0, 0, 0, 0, 0, 0x77);

/// The client DUID as a value.
pub fn duid() -> Duid {
    Duid::from_bytes(DUID.to_vec()).expect("valid DUID")
}

// ----------------------------------------------------------------------------- DHCPv4

/// The DHCPv4 engine configuration every target uses.
pub fn v4_config() -> dhcp4::Config {
    let mut c = dhcp4::Config::new(dhcp4::ClientId::Rfc4361 {
        iaid: IAID,
        duid: duid(),
    });
    c.seed = 0x6e62_6675_7a7a;
    c
}

/// A valid server reply (`kind` = 2 OFFER, 5 ACK, 6 NAK) to `xid` / `chaddr`.
pub fn v4_reply(kind: u8, xid: u32, chaddr: [u8; 6], yiaddr: Ipv4Addr) -> Vec<u8> {
    let mut m = vec![0u8; 240];
    m[0] = 2;
    m[1] = 1;
    m[2] = 6;
    m[4..8].copy_from_slice(&xid.to_be_bytes());
    if kind != 6 {
        m[16..20].copy_from_slice(&yiaddr.octets());
    }
    m[28..34].copy_from_slice(&chaddr);
    m[236..240].copy_from_slice(&[99, 130, 83, 99]);
    let mut opt = |code: u8, v: &[u8]| {
        m.push(code);
        m.push(v.len() as u8);
        m.extend_from_slice(v);
    };
    opt(53, &[kind]);
    opt(54, &SERVER4.octets());
    if kind != 6 {
        opt(51, &LEASE4.to_be_bytes());
        opt(1, &[255, 255, 255, 0]);
        opt(3, &SERVER4.octets());
        opt(6, &SERVER4.octets());
        opt(15, b"example.test");
    }
    m.push(255);
    m
}

/// The xid of a client message.
pub fn xid4(payload: &[u8]) -> u32 {
    u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]])
}

/// The DHCPv4 states the dhcp4_engine target can put a client in.
pub const V4_STATES: [&str; 8] = [
    "INIT",
    "SELECTING",
    "REQUESTING",
    "BOUND",
    "RENEWING",
    "REBINDING",
    "REBOOTING",
    "RECONFIRMING",
];

/// A DHCPv4 client driven by a scripted valid server into `V4_STATES[sel & 7]`.
pub struct V4Setup {
    /// The engine.
    pub client: dhcp4::Client,
    /// Engine time now.
    pub now: Instant,
    /// The MAC the client is using now.
    pub mac: [u8; 6],
    /// xid of the exchange in progress (0 if none).
    pub xid: u32,
}

fn must_send(c: &mut dhcp4::Client, now: Instant, mac: [u8; 6]) -> u32 {
    c.hw_address_changed(now, mac);
    let tx = c
        .poll_transmit(now)
        .unwrap_or_else(|| panic!("scripted exchange: no transmit in {}", c.state()));
    xid4(&tx.payload)
}

fn drain4(c: &mut dhcp4::Client) {
    while let Some(ev) = c.poll_event() {
        check_event4(&ev);
    }
}

/// Bring a fresh client to BOUND with the scripted server.
fn bound4(now: Instant) -> dhcp4::Client {
    let mut c = dhcp4::Client::new(v4_config(), now);
    let xid = must_send(&mut c, now, MAC);
    c.handle_packet(now, &v4_reply(2, xid, MAC, ADDR4));
    assert_eq!(c.state().as_str(), "REQUESTING");
    let xid = must_send(&mut c, now, MAC);
    c.handle_packet(now, &v4_reply(5, xid, MAC, ADDR4));
    assert_eq!(c.state().as_str(), "BOUND");
    drain4(&mut c);
    c
}

impl V4Setup {
    /// Drive a client into state `sel & 7` (see [`V4_STATES`]).
    pub fn new(sel: u8) -> V4Setup {
        let t0 = Instant::from_secs(1000);
        let idx = usize::from(sel & 7);
        let (client, now, mac, xid) = match idx {
            0 => (dhcp4::Client::new(v4_config(), t0), t0, MAC, 0),
            1 => {
                let mut c = dhcp4::Client::new(v4_config(), t0);
                let xid = must_send(&mut c, t0, MAC);
                (c, t0, MAC, xid)
            }
            2 => {
                let mut c = dhcp4::Client::new(v4_config(), t0);
                let xid = must_send(&mut c, t0, MAC);
                c.handle_packet(t0, &v4_reply(2, xid, MAC, ADDR4));
                let xid = must_send(&mut c, t0, MAC);
                (c, t0, MAC, xid)
            }
            3 => (bound4(t0), t0, MAC, 0),
            4 => {
                let mut c = bound4(t0);
                let now = Instant::from_secs(1000 + u64::from(LEASE4 / 2));
                let xid = must_send(&mut c, now, MAC);
                (c, now, MAC, xid)
            }
            5 => {
                let mut c = bound4(t0);
                let now = Instant::from_secs(1000 + u64::from(LEASE4 * 7 / 8));
                let xid = must_send(&mut c, now, MAC);
                (c, now, MAC, xid)
            }
            6 => {
                let saved = bound4(t0).lease().cloned().expect("bound lease");
                let now = Instant::from_secs(1100);
                let mut c = dhcp4::Client::from_saved(v4_config(), saved, now);
                let xid = must_send(&mut c, now, MAC);
                (c, now, MAC, xid)
            }
            _ => {
                let mut c = bound4(t0);
                let now = Instant::from_secs(1010);
                let xid = must_send(&mut c, now, MAC2);
                (c, now, MAC2, xid)
            }
        };
        assert_eq!(
            client.state().as_str(),
            V4_STATES[idx],
            "scripted exchange did not reach the state"
        );
        V4Setup {
            client,
            now,
            mac,
            xid,
        }
    }

    /// Make `pkt` look like a reply to the exchange in progress: BOOTREPLY/Ethernet
    /// header, our xid and chaddr, the magic cookie. Options are left to the fuzzer.
    pub fn patch(&self, pkt: &mut [u8]) {
        if pkt.len() < 240 {
            return;
        }
        pkt[0] = 2;
        pkt[1] = 1;
        pkt[2] = 6;
        pkt[4..8].copy_from_slice(&self.xid.to_be_bytes());
        pkt[28..34].copy_from_slice(&self.mac);
        pkt[236..240].copy_from_slice(&[99, 130, 83, 99]);
    }

    /// Feed one packet and check what comes out. A packet the engine accepted must be
    /// well framed (see [`v4_well_framed`]), and a lease it yields must take its prefix
    /// from that packet's own subnet mask, or be a /32 without one (never classful).
    pub fn feed(&mut self, pkt: &[u8]) {
        self.client.handle_packet(self.now, pkt);
        let events: Vec<Event4> = std::iter::from_fn(|| self.client.poll_event()).collect();
        if !events.iter().any(|e| matches!(e, Event4::Dropped(_))) {
            assert!(
                v4_well_framed(pkt),
                "the engine accepted a packet that is not well framed"
            );
        }
        for ev in events {
            check_event4(&ev);
            if let Event4::Bound(l) | Event4::Renewed(l) | Event4::Changed { new: l, .. } = &ev {
                check_prefix_from(l, pkt);
            }
        }
        check_client4(&self.client, self.now);
    }

    /// Run the engine's timers and transmissions forward `steps` times.
    pub fn run(&mut self, steps: u8) {
        for _ in 0..steps {
            let Some(t) = self.client.poll_timeout() else {
                break;
            };
            if t > self.now {
                self.now = t;
            }
            let mut n = 0;
            self.client.hw_address_changed(self.now, self.mac);
            while let Some(tx) = self.client.poll_transmit(self.now) {
                assert!(tx.payload.len() >= 300, "short client message");
                assert_eq!(tx.chaddr, self.mac);
                n += 1;
                assert!(
                    n < 16,
                    "poll_transmit keeps returning packets at one instant"
                );
            }
            drain4(&mut self.client);
            check_client4(&self.client, self.now);
        }
    }
}

fn valid_name(s: &str) -> bool {
    netbond_proto::name::host_name(s.as_bytes()).as_deref() == Some(s)
}

/// What the daemon relies on in any lease the engine hands out.
pub fn check_lease4(l: &Lease4) {
    assert!(
        reply::is_usable_unicast(l.address),
        "lease address {}",
        l.address
    );
    assert!(reply::is_usable_unicast(l.server), "server {}", l.server);
    assert_ne!(l.address, l.server, "lease address is the server's");
    assert!((1..=32).contains(&l.prefix_len), "prefix {}", l.prefix_len);
    assert_eq!(
        reply::subnet_reserved(l.address, l.prefix_len),
        None,
        "lease address {}/{} is its subnet's network or broadcast address",
        l.address,
        l.prefix_len
    );
    for list in [&l.routers, &l.dns, &l.ntp] {
        assert!(list.len() <= 8, "list of {} entries", list.len());
        assert!(
            list.iter().all(|a| reply::is_usable_unicast(*a)),
            "{list:?}"
        );
    }
    assert!(l.routes.len() <= reply::MAX_ROUTES);
    for r in &l.routes {
        assert!(r.prefix_len <= 32);
        assert_eq!(
            u32::from(r.dest) & !dhcp4::prefix_to_mask(r.prefix_len),
            0,
            "route {r:?} has host bits"
        );
    }
    for n in l
        .domain
        .iter()
        .chain(l.hostname.iter())
        .chain(l.search.iter())
    {
        assert!(valid_name(n), "name {n:?} is not a valid DNS name");
    }
    assert!(l.search.len() <= reply::MAX_SEARCH);
    if let Some(mtu) = l.mtu {
        assert!(mtu >= 68, "mtu {mtu}");
    }
    if let Some(secs) = l.lease_secs {
        assert!(secs >= dhcp4::MIN_LEASE_SECS, "lease {secs}");
        assert!(
            0 < l.t1_secs && l.t1_secs < l.t2_secs && l.t2_secs < secs,
            "timers t1 {} t2 {} lease {secs}",
            l.t1_secs,
            l.t2_secs
        );
    }
    if let Some(u) = &l.captive_portal {
        let again = netbond_proto::captive::parse(u.as_bytes());
        assert_eq!(again, Ok(Some(u.clone())), "captive portal {u:?}");
    }
    let _ = l.broadcast();
}

/// Check one DHCPv4 event.
pub fn check_event4(ev: &Event4) {
    match ev {
        Event4::Bound(l) | Event4::Renewed(l) => check_lease4(l),
        Event4::Changed { old, new } => {
            check_lease4(old);
            check_lease4(new);
        }
        Event4::Backoff { failures, wait, .. } => {
            // One step per failure, within the documented schedule (the DECLINE floor
            // of 10 s aside), never longer than the cap.
            assert!(*failures >= 1);
            assert!(
                *wait <= dhcp4::MAX_FAILURE_BACKOFF.max(dhcp4::DECLINE_BACKOFF),
                "backoff {wait:?}"
            );
            assert!(
                *wait >= dhcp4::failure_backoff(*failures) * 3 / 4,
                "backoff {wait:?} after {failures} failures"
            );
        }
        Event4::Lost { .. }
        | Event4::Timeout
        | Event4::Reconfirming(_)
        | Event4::Dropped(_)
        | Event4::IgnoredOption(_) => {}
        // The fuzzed configuration keeps RFC 8925's floor.
        Event4::Ipv6OnlyPreferred { wait, .. } => {
            assert!(*wait >= dhcp4::MIN_V6ONLY_WAIT, "IPv6-only wait {wait:?}")
        }
    }
}

/// An independent re-walk of the DHCPv4 option framing: the options field after the
/// cookie, and each `sname`/`file` field that option 52 (read from the options field)
/// overloads, must be a run of pad and well-formed options ending in END.
pub fn v4_well_framed(pkt: &[u8]) -> bool {
    fn area_ends_with_end(area: &[u8], overload: &mut Option<u8>) -> bool {
        let mut i = 0;
        while i < area.len() {
            match area[i] {
                0 => i += 1,
                255 => return true,
                code => {
                    let Some(&len) = area.get(i + 1) else {
                        return false;
                    };
                    let end = i + 2 + usize::from(len);
                    if end > area.len() {
                        return false;
                    }
                    if code == 52 && len == 1 && overload.is_none() {
                        *overload = Some(area[i + 2]);
                    }
                    i = end;
                }
            }
        }
        false
    }
    if pkt.len() < 240 || pkt[236..240] != [99, 130, 83, 99] {
        return false;
    }
    let mut overload = None;
    if !area_ends_with_end(&pkt[240..], &mut overload) {
        return false;
    }
    let mut none = Some(0);
    let v = overload.unwrap_or(0);
    (v & 1 == 0 || area_ends_with_end(&pkt[108..236], &mut none))
        && (v & 2 == 0 || area_ends_with_end(&pkt[44..108], &mut none))
}

/// A lease's prefix comes from the subnet mask of the reply that produced it, or is
/// /32 when that reply had none.
fn check_prefix_from(l: &Lease4, pkt: &[u8]) {
    let Ok(m) = dhcp4::wire::Message::parse(pkt) else {
        panic!("a lease from a packet that does not parse");
    };
    let want = match m.option_ip(1) {
        Some(mask) => reply::mask_to_prefix(mask).expect("a contiguous mask"),
        None => 32,
    };
    assert_eq!(l.prefix_len, want, "prefix not from the reply's own mask");
}

fn check_client4(c: &dhcp4::Client, now: Instant) {
    if let Some(l) = c.lease() {
        check_lease4(l);
        let _ = l.remaining_secs(now);
    }
    let _ = c.poll_timeout();
}

// ----------------------------------------------------------------------------- DHCPv6

/// The DHCPv6 engine configuration (IA_NA IAID 1, IA_PD IAID 2).
pub fn v6_config(mode: dhcp6::ModeSetting, rapid: bool) -> dhcp6::Config {
    dhcp6::Config {
        iaid_na: Some(IAID),
        iaid_pd: Some(Iaid(2)),
        rapid_commit: rapid,
        mode,
        solicit_delay: false,
        request_ntp: true,
        fqdn: None,
        user_class: None,
        extra_request: Vec::new(),
        vendor_class: None,
        extra_options: Vec::new(),
        seed: 0x6e62_6675_7a7a,
    }
}

fn tlv(out: &mut Vec<u8>, code: u16, v: &[u8]) {
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&(v.len() as u16).to_be_bytes());
    out.extend_from_slice(v);
}

/// A valid server message (`kind` 2 Advertise, 7 Reply) granting [`ADDR6`] in IA_NA 1.
pub fn v6_reply(kind: u8, xid: u32, with_ia: bool) -> Vec<u8> {
    let x = xid.to_be_bytes();
    let mut m = vec![kind, x[1], x[2], x[3]];
    tlv(&mut m, 1, &DUID);
    tlv(&mut m, 2, &SERVER_DUID);
    if with_ia {
        let mut addr = ADDR6.octets().to_vec();
        addr.extend_from_slice(&1800u32.to_be_bytes());
        addr.extend_from_slice(&3600u32.to_be_bytes());
        let mut ia = IAID.0.to_be_bytes().to_vec();
        ia.extend_from_slice(&1000u32.to_be_bytes());
        ia.extend_from_slice(&1600u32.to_be_bytes());
        tlv(&mut ia, 5, &addr);
        tlv(&mut m, 3, &ia);
    }
    if kind == 2 {
        tlv(&mut m, 7, &[255]);
    }
    let mut dns = Vec::new();
    dns.extend_from_slice(&Ipv6Addr::new(0xfd78, 0, 0, 0, 0, 0, 0, 1).octets());
    tlv(&mut m, 23, &dns);
    m
}

/// The DHCPv6 states the dhcp6_engine target can put a client in.
pub const V6_STATES: [&str; 12] = [
    "IDLE",
    "SOLICITING",
    "REQUESTING",
    "BOUND",
    "RENEWING",
    "REBINDING",
    "CONFIRMING",
    "INFORMING",
    "INFO-BOUND",
    "DECLINING",
    "RELEASING",
    "SOLICITING",
];

/// A DHCPv6 client driven into `V6_STATES[sel % 12]`.
pub struct V6Setup {
    /// The engine.
    pub client: dhcp6::Client,
    /// Engine time now.
    pub now: Instant,
    /// xid of the exchange in progress (0 if none).
    pub xid: u32,
}

fn must_send6(c: &mut dhcp6::Client, now: Instant) -> u32 {
    let tx = c
        .poll_transmit(now)
        .unwrap_or_else(|| panic!("scripted exchange: no transmit in {}", c.state()));
    u32::from_be_bytes([0, tx.payload[1], tx.payload[2], tx.payload[3]])
}

fn drain6(c: &mut dhcp6::Client) {
    while let Some(ev) = c.poll_event() {
        check_event6(&ev);
    }
}

fn bound6(now: Instant) -> dhcp6::Client {
    let mut c = dhcp6::Client::new(v6_config(dhcp6::ModeSetting::Stateful, false), duid(), now);
    let xid = must_send6(&mut c, now);
    c.handle_packet(now, &v6_reply(2, xid, true));
    assert_eq!(c.state().as_str(), "REQUESTING");
    let xid = must_send6(&mut c, now);
    c.handle_packet(now, &v6_reply(7, xid, true));
    assert_eq!(c.state().as_str(), "BOUND");
    drain6(&mut c);
    c
}

impl V6Setup {
    /// Drive a client into state `sel % 12` (see [`V6_STATES`]).
    pub fn new(sel: u8) -> V6Setup {
        use dhcp6::ModeSetting::*;
        let t0 = Instant::from_secs(1000);
        let idx = usize::from(sel % 12);
        let d = duid();
        let (client, now, xid) = match idx {
            0 => (dhcp6::Client::new(v6_config(Auto, false), d, t0), t0, 0),
            1 | 11 => {
                let mut c = dhcp6::Client::new(v6_config(Stateful, idx == 11), d, t0);
                let xid = must_send6(&mut c, t0);
                (c, t0, xid)
            }
            2 => {
                let mut c = dhcp6::Client::new(v6_config(Stateful, false), d, t0);
                let xid = must_send6(&mut c, t0);
                c.handle_packet(t0, &v6_reply(2, xid, true));
                let xid = must_send6(&mut c, t0);
                (c, t0, xid)
            }
            3 => (bound6(t0), t0, 0),
            4 => {
                let mut c = bound6(t0);
                let now = Instant::from_secs(2000);
                let xid = must_send6(&mut c, now);
                (c, now, xid)
            }
            5 => {
                let mut c = bound6(t0);
                let now = Instant::from_secs(2600);
                let xid = must_send6(&mut c, now);
                (c, now, xid)
            }
            6 => {
                let saved = bound6(t0).lease().cloned().expect("bound lease");
                let now = Instant::from_secs(1100);
                let mut c = dhcp6::Client::from_saved(v6_config(Auto, false), d, saved, now);
                // The first Confirm waits a random 0..CNF_MAX_DELAY.
                let now = Instant::from_secs(1102);
                let xid = must_send6(&mut c, now);
                (c, now, xid)
            }
            7 | 8 => {
                let mut c = dhcp6::Client::new(v6_config(Stateless, false), d, t0);
                let now = Instant::from_secs(1002);
                let xid = must_send6(&mut c, now);
                if idx == 8 {
                    c.handle_packet(now, &v6_reply(7, xid, false));
                    drain6(&mut c);
                    (c, now, 0)
                } else {
                    (c, now, xid)
                }
            }
            9 => {
                let mut c = bound6(t0);
                c.decline(t0, ADDR6);
                let xid = must_send6(&mut c, t0);
                (c, t0, xid)
            }
            _ => {
                let mut c = bound6(t0);
                c.release(t0);
                let xid = must_send6(&mut c, t0);
                (c, t0, xid)
            }
        };
        assert_eq!(
            client.state().as_str(),
            V6_STATES[idx],
            "scripted exchange did not reach the state"
        );
        let mut s = V6Setup { client, now, xid };
        drain6(&mut s.client);
        s
    }

    /// Put the current exchange's xid into `pkt`.
    pub fn patch(&self, pkt: &mut [u8]) {
        if pkt.len() >= 4 {
            let x = self.xid.to_be_bytes();
            pkt[1..4].copy_from_slice(&x[1..4]);
        }
    }

    /// Feed one packet and check what comes out. A message the engine accepted must
    /// be well formed (see [`v6_well_formed`]).
    pub fn feed(&mut self, pkt: &[u8]) {
        self.client.handle_packet(self.now, pkt);
        let events: Vec<Event6> = std::iter::from_fn(|| self.client.poll_event()).collect();
        if !events.iter().any(|e| matches!(e, Event6::Dropped(_))) {
            assert!(
                v6_well_formed(pkt),
                "the engine accepted a malformed message"
            );
        }
        for ev in &events {
            check_event6(ev);
        }
        let _ = self.client.poll_timeout();
    }

    /// Run timers and transmissions forward `steps` times; RA flags flip on the way.
    pub fn run(&mut self, steps: u8) {
        for i in 0..steps {
            if i == 1 {
                self.client.ra_flags(self.now, true, true);
            }
            let Some(t) = self.client.poll_timeout() else {
                break;
            };
            if t > self.now {
                self.now = t;
            }
            let mut n = 0;
            while let Some(tx) = self.client.poll_transmit(self.now) {
                assert_eq!(tx.dst, dhcp6::ALL_DHCP_SERVERS);
                n += 1;
                assert!(
                    n < 16,
                    "poll_transmit keeps returning packets at one instant"
                );
            }
            drain6(&mut self.client);
        }
    }
}

/// An independent re-walk of DHCPv6 framing: options exactly fill the message, each IA
/// and IA address/prefix; no option that may appear once appears twice; no two IAs of
/// one type share an IAID; at most one status code per scope, each at least 2 octets;
/// IA_NA/IA_PD at least 12 octets, IA addresses 24, IA prefixes 25; the DNS, domain
/// list, SNTP and NTP options are not empty.
pub fn v6_well_formed(msg: &[u8]) -> bool {
    fn tlvs(mut b: &[u8]) -> Option<Vec<(u16, &[u8])>> {
        let mut out = Vec::new();
        while !b.is_empty() {
            if b.len() < 4 {
                return None;
            }
            let code = u16::from_be_bytes([b[0], b[1]]);
            let len = usize::from(u16::from_be_bytes([b[2], b[3]]));
            if b.len() < 4 + len {
                return None;
            }
            out.push((code, &b[4..4 + len]));
            b = &b[4 + len..];
        }
        Some(out)
    }
    fn one_status(opts: &[(u16, &[u8])]) -> bool {
        let st: Vec<_> = opts.iter().filter(|(c, _)| *c == 13).collect();
        st.len() <= 1 && st.iter().all(|(_, d)| d.len() >= 2)
    }
    fn ia_ok(d: &[u8], pd: bool) -> bool {
        if d.len() < 12 {
            return false;
        }
        let Some(subs) = tlvs(&d[12..]) else {
            return false;
        };
        if !one_status(&subs) {
            return false;
        }
        subs.iter().all(|(c, sd)| match (*c, pd) {
            (5, false) => sd.len() >= 24 && tlvs(&sd[24..]).is_some_and(|s| one_status(&s)),
            (26, true) => sd.len() >= 25 && tlvs(&sd[25..]).is_some_and(|s| one_status(&s)),
            _ => true,
        })
    }
    if msg.len() < 4 {
        return false;
    }
    let Some(opts) = tlvs(&msg[4..]) else {
        return false;
    };
    let once = [1u16, 2, 6, 7, 8, 13, 14, 23, 24, 31, 82, 83, 32];
    for c in once {
        if opts.iter().filter(|(o, _)| *o == c).count() > 1 {
            return false;
        }
    }
    if !one_status(&opts) {
        return false;
    }
    let mut iaids = Vec::new();
    for (c, d) in &opts {
        if matches!(c, 23 | 24 | 31 | 56) && d.is_empty() {
            return false;
        }
        if matches!(c, 3 | 4 | 25) && d.len() >= 4 {
            let key = (*c, u32::from_be_bytes([d[0], d[1], d[2], d[3]]));
            if iaids.contains(&key) {
                return false;
            }
            iaids.push(key);
        }
        if (*c == 3 && !ia_ok(d, false)) || (*c == 25 && !ia_ok(d, true)) {
            return false;
        }
    }
    true
}

/// Check one DHCPv6 event.
pub fn check_event6(ev: &Event6) {
    match ev {
        Event6::Backoff { failures, wait, .. } => {
            assert!(*failures >= 1);
            assert!(*wait <= dhcp6::MAX_FAILURE_BACKOFF, "backoff {wait:?}");
            assert!(
                *wait >= dhcp6::failure_backoff(*failures) * 3 / 4,
                "backoff {wait:?} after {failures} failures"
            );
        }
        Event6::Bound(l) | Event6::Renewed(l) => {
            assert!(
                !(l.addresses.is_empty() && l.prefixes.is_empty()),
                "empty lease bound"
            );
            assert!(l.t1 <= l.t2, "t1 {} > t2 {}", l.t1, l.t2);
            for p in &l.prefixes {
                assert!(p.len <= 128, "prefix length {}", p.len);
            }
            let _ = (l.expires_at(), l.renew_at(), l.rebind_at());
        }
        _ => {}
    }
}
