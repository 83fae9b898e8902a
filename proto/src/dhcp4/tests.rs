//! Virtual-clock scenarios: one per transition and per validation rule.

use super::wire::{opt, Message, HEADER_LEN, MAGIC_COOKIE};
use super::*;
use crate::Engine;
use proptest::prelude::*;

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xbb];
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 50);

fn duid() -> Duid {
    "00:04:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00"
        .parse()
        .unwrap()
}

fn config() -> Config {
    let mut c = Config::new(ClientId::Rfc4361 {
        iaid: Iaid(1),
        duid: duid(),
    });
    c.seed = 42;
    c
}

fn t(secs: u64) -> Instant {
    Instant::from_secs(secs)
}

/// A reply builder standing in for a server.
struct Reply {
    kind: u8,
    yiaddr: Ipv4Addr,
    server: Option<Ipv4Addr>,
    options: Vec<(u8, Vec<u8>)>,
    xid: u32,
    chaddr: [u8; 6],
    op: u8,
}

impl Reply {
    fn to(req: &Transmit4, kind: u8) -> Reply {
        let m = Message::parse(&req.payload).unwrap();
        let mut chaddr = [0; 6];
        chaddr.copy_from_slice(&m.chaddr[..6]);
        Reply {
            kind,
            yiaddr: if kind == 6 {
                Ipv4Addr::UNSPECIFIED
            } else {
                ADDR
            },
            server: Some(SERVER),
            options: vec![
                (opt::SUBNET_MASK, vec![255, 255, 255, 0]),
                (opt::LEASE_TIME, 3600u32.to_be_bytes().to_vec()),
                (opt::ROUTER, vec![10, 0, 0, 1]),
                (opt::DNS, vec![10, 0, 0, 1, 10, 0, 0, 2]),
            ],
            xid: m.xid,
            chaddr,
            op: 2,
        }
    }
    fn opt(mut self, code: u8, v: &[u8]) -> Self {
        self.options.retain(|(c, _)| *c != code);
        self.options.push((code, v.to_vec()));
        self
    }
    fn without(mut self, code: u8) -> Self {
        self.options.retain(|(c, _)| *c != code);
        self
    }
    fn bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        b[0] = self.op;
        b[1] = 1;
        b[2] = 6;
        b[4..8].copy_from_slice(&self.xid.to_be_bytes());
        b[16..20].copy_from_slice(&self.yiaddr.octets());
        b[28..34].copy_from_slice(&self.chaddr);
        b.extend_from_slice(&MAGIC_COOKIE);
        b.extend_from_slice(&[opt::MESSAGE_TYPE, 1, self.kind]);
        if let Some(s) = self.server {
            b.push(opt::SERVER_ID);
            b.push(4);
            b.extend_from_slice(&s.octets());
        }
        for (c, v) in &self.options {
            b.push(*c);
            b.push(v.len() as u8);
            b.extend_from_slice(v);
        }
        b.push(255);
        b
    }
}

/// The engine as the daemon drives it, for these tests: the MAC the interface has when
/// a packet is due is given to the engine (`hw_address_changed`) right before
/// `poll_transmit`, and what the engine reports about each received packet (the drop
/// reason, the ignored option values) is taken out of its events and kept for the
/// assertions; every other event passes through.
#[derive(Debug)]
struct TestClient {
    c: Client,
    last_drop: Option<&'static str>,
    ignored: Vec<&'static str>,
}

impl TestClient {
    fn new(config: Config, now: Instant) -> Self {
        Self::wrap(Client::new(config, now))
    }
    fn from_saved(config: Config, saved: Lease4, now: Instant) -> Self {
        Self::wrap(Client::from_saved(config, saved, now))
    }
    fn wrap(c: Client) -> Self {
        TestClient {
            c,
            last_drop: None,
            ignored: Vec::new(),
        }
    }
    fn poll_transmit(&mut self, now: Instant, mac: [u8; 6]) -> Option<Transmit4> {
        self.c.hw_address_changed(now, mac);
        self.c.poll_transmit(now)
    }
    fn handle_packet(&mut self, now: Instant, bytes: &[u8]) {
        let before = self.c.events.len();
        self.c.handle_packet(now, bytes);
        let new: Vec<Event4> = self.c.events.drain(before..).collect();
        self.last_drop = None;
        self.ignored.clear();
        for ev in new {
            match ev {
                Event4::Dropped(why) => self.last_drop = Some(why),
                Event4::IgnoredOption(why) => self.ignored.push(why),
                ev => self.c.events.push_back(ev),
            }
        }
    }
    /// Why the last packet given to `handle_packet` was dropped, if it was.
    fn last_drop(&self) -> Option<&'static str> {
        self.last_drop
    }
    /// The option values the last packet carried that were left out of the lease.
    fn ignored_options(&self) -> &[&'static str] {
        &self.ignored
    }
    fn state_name(&self) -> &'static str {
        self.c.state().as_str()
    }
}

impl std::ops::Deref for TestClient {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.c
    }
}

impl std::ops::DerefMut for TestClient {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.c
    }
}

fn msg(tx: &Transmit4) -> Message {
    Message::parse(&tx.payload).unwrap()
}

fn mtype(tx: &Transmit4) -> u8 {
    msg(tx).option(opt::MESSAGE_TYPE).unwrap()[0]
}

/// Run DISCOVER/OFFER/REQUEST/ACK at t=0 and return the client, bound.
fn bound() -> TestClient {
    let mut c = TestClient::new(config(), t(0));
    let d = c.poll_transmit(t(0), MAC_A).unwrap();
    c.handle_packet(t(0), &Reply::to(&d, 2).bytes());
    let r = c.poll_transmit(t(0), MAC_A).unwrap();
    c.handle_packet(t(0), &Reply::to(&r, 5).bytes());
    assert!(matches!(c.poll_event(), Some(Event4::Bound(_))));
    assert_eq!(c.state_name(), "BOUND");
    c
}

#[test]
fn full_exchange_binds_with_all_parameters() {
    let mut c = TestClient::new(config(), t(0));
    assert_eq!(c.state_name(), "INIT");
    let d = c.poll_transmit(t(0), MAC_A).unwrap();
    assert_eq!(d.kind, MessageType::Discover);
    assert!(d.is_broadcast());
    assert_eq!(d.src, Ipv4Addr::UNSPECIFIED);
    assert_eq!(d.chaddr, MAC_A);
    assert!(d.payload.len() >= 300);
    let m = msg(&d);
    assert_eq!(&m.chaddr[..6], &MAC_A);
    assert_eq!(m.option(opt::CLIENT_ID).unwrap(), c.client_id());
    assert!(m
        .option(opt::PARAM_REQUEST)
        .unwrap()
        .contains(&opt::CLASSLESS_ROUTES));
    assert_eq!(c.state_name(), "SELECTING");

    let offer = Reply::to(&d, 2)
        .opt(opt::MTU, &1400u16.to_be_bytes())
        .opt(opt::DOMAIN, b"lan")
        .opt(
            opt::CLASSLESS_ROUTES,
            &[24, 192, 168, 9, 10, 0, 0, 1, 0, 10, 0, 0, 1],
        );
    c.handle_packet(t(0), &offer.bytes());
    assert_eq!(c.last_drop(), None);
    assert_eq!(c.state_name(), "REQUESTING");
    let r = c.poll_transmit(t(0), MAC_A).unwrap();
    let m = msg(&r);
    assert_eq!(mtype(&r), 3);
    assert_eq!(m.xid, msg(&d).xid, "REQUEST keeps the DISCOVER's xid");
    assert_eq!(m.option_ip(opt::REQUESTED_IP), Some(ADDR));
    assert_eq!(m.option_ip(opt::SERVER_ID), Some(SERVER));
    let ack = Reply::to(&r, 5)
        .opt(opt::MTU, &1400u16.to_be_bytes())
        .opt(opt::DOMAIN, b"lan")
        .opt(
            opt::CLASSLESS_ROUTES,
            &[24, 192, 168, 9, 10, 0, 0, 1, 0, 10, 0, 0, 1],
        );
    c.handle_packet(t(1), &ack.bytes());
    let Some(Event4::Bound(l)) = c.poll_event() else {
        panic!("no Bound")
    };
    assert_eq!(l.address, ADDR);
    assert_eq!(l.prefix_len, 24);
    assert_eq!(l.routers, vec![SERVER]);
    assert_eq!(l.dns.len(), 2);
    assert_eq!(l.mtu, Some(1400));
    assert_eq!(l.domain.as_deref(), Some("lan"));
    assert_eq!(l.routes.len(), 2);
    assert_eq!(
        (l.t1_secs, l.t2_secs, l.lease_secs),
        (1800, 3150, Some(3600))
    );
    assert_eq!(l.chaddr, MAC_A);
    assert_eq!(c.state_name(), "BOUND");
    // Bound and idle: the only deadline is T1.
    assert_eq!(c.poll_timeout(), Some(t(1800)));
    assert!(c.poll_transmit(t(100), MAC_A).is_none());
}

/// Bind with `extra` options on the OFFER and ACK and return the lease.
fn bind_with(extra: &[(u8, &[u8])]) -> Lease4 {
    let mut c = TestClient::new(config(), t(0));
    let d = c.poll_transmit(t(0), MAC_A).unwrap();
    assert!(msg(&d)
        .option(opt::PARAM_REQUEST)
        .unwrap()
        .contains(&opt::STATIC_ROUTES));
    let mut o = Reply::to(&d, 2);
    for (code, v) in extra {
        o = o.opt(*code, v);
    }
    c.handle_packet(t(0), &o.bytes());
    let r = c.poll_transmit(t(0), MAC_A).unwrap();
    let mut a = Reply::to(&r, 5);
    for (code, v) in extra {
        a = a.opt(*code, v);
    }
    c.handle_packet(t(0), &a.bytes());
    let Some(Event4::Bound(l)) = c.poll_event() else {
        panic!("no Bound: {:?}", c.last_drop())
    };
    l
}

#[test]
fn option_33_used_only_without_option_121() {
    let o33: &[u8] = &[172, 16, 0, 0, 10, 0, 0, 1, 0, 0, 0, 0, 10, 0, 0, 1];
    let l = bind_with(&[(opt::STATIC_ROUTES, o33)]);
    assert_eq!(
        l.static_routes,
        vec![Route4 {
            dest: "172.16.0.0".parse().unwrap(),
            prefix_len: 16,
            gateway: "10.0.0.1".parse().unwrap(),
        }],
        "the 0.0.0.0 destination is dropped, the class B network kept"
    );
    assert!(l.routes.is_empty());
    // RFC 3442 section 3: with option 121 present, option 33 is ignored entirely.
    let l = bind_with(&[
        (opt::STATIC_ROUTES, o33),
        (opt::CLASSLESS_ROUTES, &[24, 192, 168, 9, 10, 0, 0, 1]),
    ]);
    assert!(l.static_routes.is_empty(), "{:?}", l.static_routes);
    assert_eq!(l.routes.len(), 1);
}

#[test]
fn discover_retransmits_with_rfc_backoff_and_jitter() {
    let mut c = TestClient::new(config(), t(0));
    let first = c.poll_transmit(t(0), MAC_A).unwrap();
    let xid = msg(&first).xid;
    let mut now = t(0);
    let mut gaps = vec![];
    for _ in 0..7 {
        let next = c.poll_timeout().unwrap();
        assert!(c
            .poll_transmit(Instant::from_millis(next.as_millis() - 1), MAC_A)
            .is_none());
        let tx = c.poll_transmit(next, MAC_A).unwrap();
        assert_eq!(msg(&tx).xid, xid, "retransmits keep the xid");
        gaps.push((next - now).as_millis() as i64);
        now = next;
    }
    for (gap, base) in gaps
        .iter()
        .zip([4000, 8000, 16000, 32000, 64000, 64000, 64000])
    {
        assert!((gap - base).abs() <= 1000, "gap {gap} vs {base}");
    }
}

#[test]
fn initial_interval_is_configurable() {
    let mut cfg = config();
    cfg.initial_interval = Duration::from_secs(2);
    let mut c = TestClient::new(cfg, t(0));
    c.poll_transmit(t(0), MAC_A).unwrap();
    let next = c.poll_timeout().unwrap();
    assert!((1000..=3000).contains(&next.as_millis()));
}

#[test]
fn secs_field_counts_from_exchange_start() {
    let mut c = TestClient::new(config(), t(0));
    c.poll_transmit(t(0), MAC_A).unwrap();
    let next = c.poll_timeout().unwrap();
    let tx = c.poll_transmit(next, MAC_A).unwrap();
    assert_eq!(u64::from(msg(&tx).secs), next.as_millis() / 1000);
}

#[test]
fn chaddr_follows_the_mac_given_at_each_transmit() {
    let mut c = TestClient::new(config(), t(0));
    let d1 = c.poll_transmit(t(0), MAC_A).unwrap();
    // The MAC changes while SELECTING: the next DISCOVER goes out at once, new MAC.
    let d2 = c.poll_transmit(t(1), MAC_B).unwrap();
    assert_eq!(d2.chaddr, MAC_B);
    assert_eq!(&msg(&d2).chaddr[..6], &MAC_B);
    assert_ne!(msg(&d1).xid, msg(&d2).xid);
    // A late OFFER to the old chaddr/xid is dropped.
    c.handle_packet(t(1), &Reply::to(&d1, 2).bytes());
    assert!(c.last_drop().is_some());
    c.handle_packet(t(1), &Reply::to(&d2, 2).bytes());
    assert_eq!(c.state_name(), "REQUESTING");
    // The MAC changes again while REQUESTING: the REQUEST carries the newest MAC.
    let r = c.poll_transmit(t(1), MAC_A).unwrap();
    assert_eq!(r.chaddr, MAC_A);
    assert_eq!(mtype(&r), 3);
    // Retransmits too.
    let next = c.poll_timeout().unwrap();
    let r2 = c.poll_transmit(next, MAC_B).unwrap();
    assert_eq!(&msg(&r2).chaddr[..6], &MAC_B);
    c.handle_packet(next, &Reply::to(&r2, 5).bytes());
    let Some(Event4::Bound(l)) = c.poll_event() else {
        panic!()
    };
    assert_eq!(l.chaddr, MAC_B);
}

#[test]
fn mac_change_while_bound_reconfirms_the_same_address_without_deconfiguring() {
    let mut c = bound();
    let tx = c.poll_transmit(t(10), MAC_B).expect("immediate REQUEST");
    assert_eq!(c.state_name(), "RECONFIRMING");
    let m = msg(&tx);
    assert_eq!(mtype(&tx), 3);
    assert!(tx.is_broadcast());
    assert_eq!(tx.chaddr, MAC_B);
    assert_eq!(&m.chaddr[..6], &MAC_B);
    assert_eq!(m.ciaddr, Ipv4Addr::UNSPECIFIED, "INIT-REBOOT style");
    assert_eq!(m.option_ip(opt::REQUESTED_IP), Some(ADDR));
    assert_eq!(m.option_ip(opt::SERVER_ID), None);
    assert_eq!(
        m.option(opt::CLIENT_ID).unwrap(),
        c.client_id(),
        "identity unchanged"
    );
    assert_eq!(
        c.poll_event(),
        Some(Event4::Reconfirming(ReconfirmCause::MacChanged {
            old: MAC_A,
            new: MAC_B
        })),
        "the re-confirmation is announced"
    );
    assert!(
        c.poll_event().is_none(),
        "no deconfiguration while re-confirming"
    );
    assert!(c.lease().is_some());
    c.handle_packet(t(10), &Reply::to(&tx, 5).bytes());
    let Some(Event4::Renewed(l)) = c.poll_event() else {
        panic!("expected Renewed")
    };
    assert_eq!(l.address, ADDR);
    assert_eq!(l.chaddr, MAC_B);
    assert_eq!(c.state_name(), "BOUND");
    assert!(c.poll_event().is_none());
}

#[test]
fn mac_change_reconfirm_retransmits_then_obeys_t2_and_expiry() {
    let mut c = bound();
    let first = c.poll_transmit(t(10), MAC_B).unwrap();
    let mut last = t(10);
    let mut sent = vec![first];
    while let Some(next) = c.poll_timeout() {
        if next >= t(3150) {
            break;
        }
        if let Some(tx) = c.poll_transmit(next, MAC_B) {
            assert_eq!(tx.chaddr, MAC_B);
            sent.push(tx);
        }
        assert!(next > last);
        last = next;
    }
    assert!(sent.len() >= 5, "backoff retransmits: {}", sent.len());
    assert!(matches!(c.poll_event(), Some(Event4::Reconfirming(_))));
    assert!(
        c.poll_event().is_none(),
        "address kept while the lease is valid"
    );
    // At T2 the lease's own rules apply: REBINDING broadcast with ciaddr.
    let rb = c.poll_transmit(t(3150), MAC_B).unwrap();
    assert_eq!(c.state_name(), "REBINDING");
    assert_eq!(msg(&rb).ciaddr, ADDR);
    assert!(rb.is_broadcast());
    // Expiry: the address is lost.
    c.handle_timeout(t(3600));
    assert!(matches!(
        c.poll_event(),
        Some(Event4::Lost {
            reason: LostReason::Expired,
            ..
        })
    ));
    assert!(c.lease().is_none());
    assert_eq!(c.state_name(), "SELECTING");
}

#[test]
fn mac_change_then_nak_gives_up_the_address() {
    let mut c = bound();
    let tx = c.poll_transmit(t(10), MAC_B).unwrap();
    c.handle_packet(t(10), &Reply::to(&tx, 6).bytes());
    assert!(matches!(c.poll_event(), Some(Event4::Reconfirming(_))));
    assert!(matches!(
        c.poll_event(),
        Some(Event4::Lost {
            reason: LostReason::Nak,
            ..
        })
    ));
    assert_eq!(c.state_name(), "SELECTING");
    assert_eq!(
        c.poll_transmit(t(10), MAC_B).unwrap().kind,
        MessageType::Discover
    );
}

#[test]
fn mac_change_during_renewing_and_rebinding_reconfirms() {
    for at in [1800u64, 3150] {
        let mut c = bound();
        let tx = c.poll_transmit(t(at), MAC_A).unwrap();
        assert_eq!(mtype(&tx), 3);
        let again = c.poll_transmit(t(at + 1), MAC_B).unwrap();
        assert_eq!(again.chaddr, MAC_B);
        assert_eq!(msg(&again).option_ip(opt::REQUESTED_IP), Some(ADDR));
        if at < 3150 {
            assert_eq!(c.state_name(), "RECONFIRMING");
        }
        c.handle_packet(t(at + 1), &Reply::to(&again, 5).bytes());
        assert!(matches!(c.poll_event(), Some(Event4::Reconfirming(_))));
        assert!(matches!(c.poll_event(), Some(Event4::Renewed(_))));
    }
}

#[test]
fn renewing_unicasts_to_the_server_and_rebinding_broadcasts() {
    let mut c = bound();
    assert!(c.poll_transmit(t(1799), MAC_A).is_none());
    let r = c.poll_transmit(t(1800), MAC_A).unwrap();
    assert_eq!(c.state_name(), "RENEWING");
    assert_eq!(r.dst, SERVER);
    assert_eq!(r.src, ADDR);
    let m = msg(&r);
    assert_eq!(m.ciaddr, ADDR);
    assert_eq!(
        m.option_ip(opt::REQUESTED_IP),
        None,
        "RFC 2131 table 5: no option 50 in RENEWING"
    );
    assert_eq!(m.option_ip(opt::SERVER_ID), None);
    // Retransmit after half the time to T2 (675 s).
    assert_eq!(c.poll_timeout(), Some(t(1800 + 675)));
    let r2 = c.poll_transmit(t(2475), MAC_A).unwrap();
    assert_eq!(msg(&r2).xid, m.xid);
    // Near T2 the minimum of 60 s applies and T2 wins.
    let rb = c.poll_transmit(t(3150), MAC_A).unwrap();
    assert_eq!(c.state_name(), "REBINDING");
    assert!(rb.is_broadcast());
    assert_ne!(msg(&rb).xid, m.xid);
    c.handle_packet(t(3151), &Reply::to(&rb, 5).bytes());
    let Some(Event4::Renewed(l)) = c.poll_event() else {
        panic!()
    };
    assert_eq!(l.acquired, t(3150), "times count from the REQUEST");
    assert_eq!(c.poll_timeout(), Some(t(3150 + 1800)));
}

#[test]
fn a_renewal_answered_by_another_server_moves_the_lease_to_it() {
    let mut c = bound();
    let r = c.poll_transmit(t(1800), MAC_A).unwrap();
    let mut ack = Reply::to(&r, 5);
    ack.server = Some(Ipv4Addr::new(10, 0, 0, 2));
    c.handle_packet(t(1800), &ack.bytes());
    let Some(Event4::Renewed(l)) = c.poll_event() else {
        panic!("{:?}", c.last_drop())
    };
    assert_eq!(l.address, ADDR);
    assert_eq!(l.server, Ipv4Addr::new(10, 0, 0, 2));
    // The next renewal is unicast to the server that answered.
    let next = c.poll_timeout().unwrap();
    let r2 = c.poll_transmit(next, MAC_A).unwrap();
    assert_eq!(r2.dst, Ipv4Addr::new(10, 0, 0, 2));
}

#[test]
fn renew_ack_with_new_address_is_a_change() {
    let mut c = bound();
    let r = c.poll_transmit(t(1800), MAC_A).unwrap();
    let mut ack = Reply::to(&r, 5);
    ack.yiaddr = Ipv4Addr::new(10, 0, 0, 77);
    c.handle_packet(t(1800), &ack.bytes());
    let Some(Event4::Changed { old, new }) = c.poll_event() else {
        panic!()
    };
    assert_eq!(old.address, ADDR);
    assert_eq!(new.address, Ipv4Addr::new(10, 0, 0, 77));
}

#[test]
fn nak_in_each_state() {
    // REQUESTING: back to SELECTING, nothing configured to lose.
    let mut c = TestClient::new(config(), t(0));
    let d = c.poll_transmit(t(0), MAC_A).unwrap();
    c.handle_packet(t(0), &Reply::to(&d, 2).bytes());
    let r = c.poll_transmit(t(0), MAC_A).unwrap();
    c.handle_packet(t(0), &Reply::to(&r, 6).bytes());
    assert_eq!(c.state_name(), "SELECTING");
    // Nothing configured to lose; the failure itself is reported once.
    assert!(matches!(
        c.poll_event(),
        Some(Event4::Backoff {
            failures: 1,
            wait: Duration::ZERO,
            ..
        })
    ));
    assert!(c.poll_event().is_none());
    // RENEWING and REBINDING: lost.
    for at in [1800, 3150] {
        let mut c = bound();
        let r = c.poll_transmit(t(at), MAC_A).unwrap();
        c.handle_packet(t(at), &Reply::to(&r, 6).bytes());
        assert!(matches!(
            c.poll_event(),
            Some(Event4::Lost {
                reason: LostReason::Nak,
                ..
            })
        ));
        assert_eq!(c.state_name(), "SELECTING");
    }
    // REBOOTING: lost.
    let mut c = TestClient::from_saved(config(), saved_lease(), t(100));
    let r = c.poll_transmit(t(100), MAC_A).unwrap();
    c.handle_packet(t(100), &Reply::to(&r, 6).bytes());
    assert!(matches!(
        c.poll_event(),
        Some(Event4::Lost {
            reason: LostReason::Nak,
            ..
        })
    ));
    // SELECTING and BOUND: a NAK is not a reply to anything and is ignored.
    let mut c = TestClient::new(config(), t(0));
    let d = c.poll_transmit(t(0), MAC_A).unwrap();
    c.handle_packet(t(0), &Reply::to(&d, 6).bytes());
    assert_eq!(c.state_name(), "SELECTING");
    let mut c = bound();
    c.handle_packet(t(5), &Reply::to(&d, 6).bytes());
    assert_eq!(c.state_name(), "BOUND");
    assert!(c.poll_event().is_none());
}

fn saved_lease() -> Lease4 {
    let c = bound();
    c.lease().unwrap().clone()
}

#[test]
fn init_reboot_from_a_saved_lease_keeps_the_address() {
    let saved = saved_lease();
    let mut c = TestClient::from_saved(config(), saved, t(100));
    assert_eq!(c.state_name(), "INIT-REBOOT");
    assert_eq!(c.lease().unwrap().address, ADDR);
    let r = c.poll_transmit(t(100), MAC_A).unwrap();
    assert_eq!(c.state_name(), "REBOOTING");
    let m = msg(&r);
    assert_eq!(mtype(&r), 3);
    assert!(r.is_broadcast());
    assert_eq!(m.ciaddr, Ipv4Addr::UNSPECIFIED);
    assert_eq!(m.option_ip(opt::REQUESTED_IP), Some(ADDR));
    assert_eq!(m.option_ip(opt::SERVER_ID), None);
    c.handle_packet(t(100), &Reply::to(&r, 5).bytes());
    assert!(
        matches!(c.poll_event(), Some(Event4::Renewed(_))),
        "same address: no remove/re-add"
    );
}

#[test]
fn init_reboot_silence_falls_back_to_discover_keeping_the_lease() {
    let mut c = TestClient::from_saved(config(), saved_lease(), t(100));
    c.poll_transmit(t(100), MAC_A).unwrap();
    let mut now = t(100);
    while now < t(110) {
        now = c.poll_timeout().unwrap();
        if let Some(tx) = c.poll_transmit(now, MAC_A) {
            if tx.kind == MessageType::Discover {
                break;
            }
        }
    }
    assert_eq!(c.state_name(), "SELECTING");
    assert!(now <= t(110));
    assert!(c.poll_event().is_none());
    assert!(c.lease().is_some(), "still valid, still configured");
    // An OFFER/ACK for the same address is a renewal of the configured lease.
    let d = c.poll_transmit(c.poll_timeout().unwrap(), MAC_A).unwrap();
    c.handle_packet(now, &Reply::to(&d, 2).bytes());
    let r = c.poll_transmit(now, MAC_A).unwrap();
    c.handle_packet(now, &Reply::to(&r, 5).bytes());
    assert!(matches!(c.poll_event(), Some(Event4::Renewed(_))));
}

#[test]
fn expired_saved_lease_starts_fresh() {
    let c = TestClient::from_saved(config(), saved_lease(), t(4000));
    assert_eq!(c.state_name(), "INIT");
    assert!(c.lease().is_none());
}

#[test]
fn t1_t2_repair() {
    assert_eq!(repair_timers(3600, None, None), (1800, 3150));
    assert_eq!(repair_timers(3600, Some(100), Some(200)), (100, 200));
    // T1 >= T2: T1 repaired.
    assert_eq!(repair_timers(3600, Some(3000), Some(2000)), (1800, 2000));
    assert_eq!(repair_timers(3600, Some(3000), Some(1000)), (571, 1000));
    // T2 >= lease: T2 repaired.
    assert_eq!(repair_timers(3600, Some(1000), Some(4000)), (1000, 3150));
    // Zeros.
    assert_eq!(repair_timers(3600, Some(0), Some(0)), (1800, 3150));
    // A tiny T1 would renew every second: raised to the floor.
    assert_eq!(repair_timers(3600, Some(1), None), (MIN_T1_SECS, 3150));
    assert_eq!(repair_timers(60, Some(1), Some(2)), (30, 52));
    for l in [60u32, 61, 100, 1000] {
        for t1 in 0..l {
            let (a, _) = repair_timers(l, Some(t1), None);
            assert!(a >= MIN_T1_SECS.min(l / 2), "{l} {t1} -> {a}");
        }
    }
    for l in [60u32, 61, 1000, u32::MAX - 1] {
        for t1 in [None, Some(0), Some(1), Some(l / 2), Some(l), Some(u32::MAX)] {
            for t2 in [None, Some(0), Some(1), Some(l - 1), Some(l), Some(u32::MAX)] {
                let (a, b) = repair_timers(l, t1, t2);
                assert!(0 < a && a < b && b < l, "{l} {t1:?} {t2:?} -> {a} {b}");
            }
        }
    }
}

#[test]
fn ack_timers_are_repaired_and_short_leases_raised() {
    let mut c = TestClient::new(config(), t(0));
    let d = c.poll_transmit(t(0), MAC_A).unwrap();
    c.handle_packet(t(0), &Reply::to(&d, 2).bytes());
    let r = c.poll_transmit(t(0), MAC_A).unwrap();
    let ack = Reply::to(&r, 5)
        .opt(opt::LEASE_TIME, &5u32.to_be_bytes())
        .opt(opt::RENEWAL_TIME, &50u32.to_be_bytes())
        .opt(opt::REBINDING_TIME, &40u32.to_be_bytes());
    c.handle_packet(t(0), &ack.bytes());
    let Some(Event4::Bound(l)) = c.poll_event() else {
        panic!()
    };
    assert_eq!(l.lease_secs, Some(MIN_LEASE_SECS));
    assert!(l.t1_secs < l.t2_secs && l.t2_secs < MIN_LEASE_SECS);
}

#[test]
fn infinite_lease_has_no_timers() {
    let mut c = TestClient::new(config(), t(0));
    let d = c.poll_transmit(t(0), MAC_A).unwrap();
    c.handle_packet(t(0), &Reply::to(&d, 2).bytes());
    let r = c.poll_transmit(t(0), MAC_A).unwrap();
    c.handle_packet(
        t(0),
        &Reply::to(&r, 5).opt(opt::LEASE_TIME, &[255; 4]).bytes(),
    );
    let Some(Event4::Bound(l)) = c.poll_event() else {
        panic!()
    };
    assert_eq!(l.lease_secs, None);
    assert_eq!(c.poll_timeout(), None, "no wakeups when idle");
    assert!(c.poll_transmit(t(10_000_000), MAC_A).is_none());
}

#[test]
fn lease_expiry_while_rebinding_loses_the_address() {
    let mut c = bound();
    let mut now = t(0);
    while let Some(next) = c.poll_timeout() {
        now = next;
        c.poll_transmit(now, MAC_A);
        if c.lease().is_none() {
            break;
        }
    }
    assert_eq!(now, t(3600));
    assert!(matches!(
        c.poll_event(),
        Some(Event4::Lost {
            reason: LostReason::Expired,
            ..
        })
    ));
}

#[test]
fn decline_sends_decline_and_waits_ten_seconds() {
    let mut c = bound();
    c.decline(t(5), Ipv4Addr::new(1, 2, 3, 4));
    assert!(c.poll_event().is_none(), "not our address: ignored");
    c.decline(t(5), ADDR);
    let tx = c.poll_transmit(t(5), MAC_A).unwrap();
    assert_eq!(tx.kind, MessageType::Decline);
    let m = msg(&tx);
    assert_eq!(m.option_ip(opt::REQUESTED_IP), Some(ADDR));
    assert_eq!(m.option_ip(opt::SERVER_ID), Some(SERVER));
    assert_eq!(m.ciaddr, Ipv4Addr::UNSPECIFIED);
    assert!(matches!(
        c.poll_event(),
        Some(Event4::Lost {
            reason: LostReason::Declined,
            ..
        })
    ));
    assert!(c.poll_transmit(t(14), MAC_A).is_none());
    assert_eq!(
        c.poll_transmit(t(15), MAC_A).unwrap().kind,
        MessageType::Discover
    );
}

#[test]
fn release_unicasts_then_stops() {
    let mut c = bound();
    c.release(t(5));
    let tx = c.poll_transmit(t(5), MAC_A).unwrap();
    assert_eq!(tx.kind, MessageType::Release);
    assert_eq!(tx.dst, SERVER);
    assert_eq!(tx.src, ADDR);
    let m = msg(&tx);
    assert_eq!(m.ciaddr, ADDR);
    assert_eq!(m.option_ip(opt::SERVER_ID), Some(SERVER));
    assert!(matches!(
        c.poll_event(),
        Some(Event4::Lost {
            reason: LostReason::Released,
            ..
        })
    ));
    assert_eq!(c.state_name(), "STOPPED");
    assert!(c.poll_transmit(t(100), MAC_A).is_none());
    assert_eq!(c.poll_timeout(), None);
    c.start(t(200));
    assert_eq!(
        c.poll_transmit(t(200), MAC_A).unwrap().kind,
        MessageType::Discover
    );
}

#[test]
fn link_down_pauses_and_link_up_reconfirms() {
    let mut c = bound();
    c.link_changed(t(5), false);
    assert!(
        c.poll_transmit(t(1900), MAC_A).is_none(),
        "no transmit while down"
    );
    c.link_changed(t(1900), true);
    assert_eq!(
        c.poll_event(),
        Some(Event4::Reconfirming(ReconfirmCause::LinkUp))
    );
    let tx = c.poll_transmit(t(1900), MAC_A).unwrap();
    assert_eq!(msg(&tx).option_ip(opt::REQUESTED_IP), Some(ADDR));
    assert!(tx.is_broadcast());
    // Without a lease, link up sends the DISCOVER again at once, same xid, so a late
    // OFFER to the first one still counts.
    let mut c = TestClient::new(config(), t(0));
    let d1 = c.poll_transmit(t(0), MAC_A).unwrap();
    c.link_changed(t(1), false);
    c.link_changed(t(2), true);
    let d2 = c.poll_transmit(t(2), MAC_A).unwrap();
    assert_eq!(d2.kind, MessageType::Discover);
    assert_eq!(msg(&d1).xid, msg(&d2).xid);
    c.handle_packet(t(2), &Reply::to(&d1, 2).bytes());
    assert_eq!(c.state_name(), "REQUESTING");
    // The backoff restarted from the initial interval.
    let mut c = TestClient::new(config(), t(0));
    c.poll_transmit(t(0), MAC_A).unwrap();
    for _ in 0..3 {
        let at = c.poll_timeout().unwrap();
        c.poll_transmit(at, MAC_A).unwrap();
    }
    let now = c.poll_timeout().unwrap();
    c.link_changed(now, false);
    c.link_changed(now, true);
    c.poll_transmit(now, MAC_A).unwrap();
    let gap = (c.poll_timeout().unwrap() - now).as_millis();
    assert!((3000..=5000).contains(&gap), "{gap}");
}

#[test]
fn resend_now_keeps_the_xid_and_restarts_the_backoff() {
    let mut c = TestClient::new(config(), t(0));
    let d1 = c.poll_transmit(t(0), MAC_A).unwrap();
    assert!(c.poll_transmit(t(1), MAC_A).is_none());
    c.resend_now(t(1));
    let d2 = c.poll_transmit(t(1), MAC_A).unwrap();
    assert_eq!(msg(&d1).xid, msg(&d2).xid);
    let gap = (c.poll_timeout().unwrap() - t(1)).as_millis();
    assert!((3000..=5000).contains(&gap), "{gap}");
    // Bound: nothing to resend.
    let mut b = bound();
    b.resend_now(t(5));
    assert!(b.poll_transmit(t(5), MAC_A).is_none());
}

#[test]
fn timeout_and_retry_like_dhclient() {
    let mut cfg = config();
    cfg.timeout = Some(Duration::from_secs(10));
    cfg.retry = Duration::from_secs(20);
    let mut c = TestClient::new(cfg, t(0));
    c.poll_transmit(t(0), MAC_A).unwrap();
    c.poll_transmit(t(5), MAC_A);
    c.handle_timeout(t(10));
    assert_eq!(c.poll_event(), Some(Event4::Timeout));
    assert_eq!(c.state_name(), "INIT");
    assert_eq!(c.poll_timeout(), Some(t(30)));
    assert_eq!(
        c.poll_transmit(t(30), MAC_A).unwrap().kind,
        MessageType::Discover
    );
}

#[test]
fn requesting_gives_up_after_four_requests() {
    let mut c = TestClient::new(config(), t(0));
    let d = c.poll_transmit(t(0), MAC_A).unwrap();
    c.handle_packet(t(0), &Reply::to(&d, 2).bytes());
    let mut kinds = vec![];
    for _ in 0..5 {
        let now = c.poll_timeout().unwrap();
        kinds.push(c.poll_transmit(now, MAC_A).unwrap().kind);
    }
    assert_eq!(&kinds[..4], &[MessageType::Request; 4]);
    assert_eq!(kinds[4], MessageType::Discover);
}

#[test]
fn xid_changes_per_exchange() {
    let mut c = bound();
    let r1 = c.poll_transmit(t(1800), MAC_A).unwrap();
    c.handle_packet(t(1800), &Reply::to(&r1, 5).bytes());
    c.poll_event();
    let r2 = c.poll_transmit(t(3600), MAC_A).unwrap();
    assert_ne!(msg(&r1).xid, msg(&r2).xid);
}

/// One test per validation rule: each reply is dropped, with a reason, and changes nothing.
#[test]
fn validation_rules_drop_the_whole_reply() {
    type Mutation = Box<dyn Fn(Reply) -> Reply>;
    let setups: Vec<(&str, Mutation)> = vec![
        (
            "op",
            Box::new(|mut r| {
                r.op = 1;
                r
            }),
        ),
        (
            "xid",
            Box::new(|mut r| {
                r.xid ^= 1;
                r
            }),
        ),
        (
            "chaddr",
            Box::new(|mut r| {
                r.chaddr = MAC_B;
                r
            }),
        ),
        ("type", Box::new(|r| r.opt(opt::MESSAGE_TYPE, &[]))),
        (
            "server id",
            Box::new(|mut r| {
                r.server = None;
                r
            }),
        ),
        (
            "server id bcast",
            Box::new(|mut r| {
                r.server = Some(Ipv4Addr::BROADCAST);
                r
            }),
        ),
        (
            "other server",
            Box::new(|mut r| {
                r.server = Some(Ipv4Addr::new(10, 0, 0, 9));
                r
            }),
        ),
        (
            "yiaddr 0",
            Box::new(|mut r| {
                r.yiaddr = Ipv4Addr::UNSPECIFIED;
                r
            }),
        ),
        (
            "yiaddr bcast",
            Box::new(|mut r| {
                r.yiaddr = Ipv4Addr::BROADCAST;
                r
            }),
        ),
        (
            "yiaddr loop",
            Box::new(|mut r| {
                r.yiaddr = Ipv4Addr::LOCALHOST;
                r
            }),
        ),
        (
            "yiaddr mcast",
            Box::new(|mut r| {
                r.yiaddr = Ipv4Addr::new(239, 1, 1, 1);
                r
            }),
        ),
        (
            "yiaddr class e",
            Box::new(|mut r| {
                r.yiaddr = Ipv4Addr::new(250, 1, 1, 1);
                r
            }),
        ),
        (
            "yiaddr ll",
            Box::new(|mut r| {
                r.yiaddr = Ipv4Addr::new(169, 254, 1, 1);
                r
            }),
        ),
        (
            "yiaddr server",
            Box::new(|mut r| {
                r.yiaddr = SERVER;
                r
            }),
        ),
        (
            "yiaddr other",
            Box::new(|mut r| {
                r.yiaddr = Ipv4Addr::new(10, 0, 0, 99);
                r
            }),
        ),
        (
            "mask",
            Box::new(|r| r.opt(opt::SUBNET_MASK, &[255, 0, 255, 0])),
        ),
        (
            "mask len",
            Box::new(|r| r.opt(opt::SUBNET_MASK, &[255, 255, 255])),
        ),
        (
            "lease len",
            Box::new(|r| r.opt(opt::LEASE_TIME, &[0, 0, 1])),
        ),
        ("no lease", Box::new(|r| r.without(opt::LEASE_TIME))),
        ("router len", Box::new(|r| r.opt(opt::ROUTER, &[10, 0, 0]))),
        ("dns len", Box::new(|r| r.opt(opt::DNS, &[10, 0, 0, 1, 2]))),
        ("mtu len", Box::new(|r| r.opt(opt::MTU, &[5]))),
        ("client id", Box::new(|r| r.opt(opt::CLIENT_ID, &[1, 2, 3]))),
        ("bootp", Box::new(|r| r.opt(opt::MESSAGE_TYPE, &[1]))),
    ];
    for (name, f) in setups {
        let mut c = TestClient::new(config(), t(0));
        let d = c.poll_transmit(t(0), MAC_A).unwrap();
        c.handle_packet(t(0), &Reply::to(&d, 2).bytes());
        let r = c.poll_transmit(t(0), MAC_A).unwrap();
        let bad = f(Reply::to(&r, 5));
        c.handle_packet(t(0), &bad.bytes());
        assert!(c.last_drop().is_some(), "{name}: not dropped");
        assert_eq!(c.state_name(), "REQUESTING", "{name}");
        assert!(c.poll_event().is_none(), "{name}");
    }
}

#[test]
fn unusable_options_are_dropped_alone() {
    let mut c = TestClient::new(config(), t(0));
    let d = c.poll_transmit(t(0), MAC_A).unwrap();
    c.handle_packet(t(0), &Reply::to(&d, 2).bytes());
    let r = c.poll_transmit(t(0), MAC_A).unwrap();
    let ack = Reply::to(&r, 5)
        .opt(opt::HOSTNAME, b"x;reboot")
        .opt(opt::DOMAIN, b"evil\nnameserver 6.6.6.6")
        .opt(opt::MTU, &[0, 10])
        .opt(opt::CLASSLESS_ROUTES, &[40, 1, 2, 3])
        .opt(opt::DNS, &[0, 0, 0, 0, 255, 255, 255, 255, 10, 0, 0, 3]);
    c.handle_packet(t(0), &ack.bytes());
    let Some(Event4::Bound(l)) = c.poll_event() else {
        panic!("{:?}", c.last_drop())
    };
    assert_eq!(l.hostname, None);
    assert!(
        c.ignored_options()
            .contains(&"host name is not a valid DNS name"),
        "{:?}",
        c.ignored_options()
    );

    assert_eq!(l.domain, None);
    assert_eq!(l.mtu, None);
    assert!(l.routes.is_empty());
    assert_eq!(l.dns, vec![Ipv4Addr::new(10, 0, 0, 3)]);
}

#[test]
fn huge_lists_are_capped() {
    let mut c = TestClient::new(config(), t(0));
    let d = c.poll_transmit(t(0), MAC_A).unwrap();
    c.handle_packet(t(0), &Reply::to(&d, 2).bytes());
    let r = c.poll_transmit(t(0), MAC_A).unwrap();
    let mut dns = vec![];
    for i in 0..60u8 {
        dns.extend_from_slice(&[10, 1, 0, i + 1]);
    }
    let ack = Reply::to(&r, 5).opt(opt::DNS, &dns).opt(opt::ROUTER, &dns);
    c.handle_packet(t(0), &ack.bytes());
    let Some(Event4::Bound(l)) = c.poll_event() else {
        panic!()
    };
    assert_eq!(l.dns.len(), reply::MAX_DNS);
    assert_eq!(l.routers.len(), reply::MAX_ROUTERS);
}

#[test]
fn forcerenew_without_authentication_is_ignored() {
    let mut c = bound();
    let d = Transmit4 {
        payload: {
            let mut b = wire::Builder::request(1, 0, Ipv4Addr::UNSPECIFIED, MAC_A);
            b.option(opt::MESSAGE_TYPE, &[9]);
            let mut p = b.finish();
            p[0] = 2;
            p
        },
        src: SERVER,
        dst: ADDR,
        chaddr: MAC_A,
        kind: MessageType::ForceRenew,
    };
    c.handle_packet(t(5), &d.payload);
    assert!(c.last_drop().unwrap().contains("FORCERENEW"));
    assert_eq!(c.state_name(), "BOUND");
}

#[test]
fn offer_from_any_server_ack_only_from_the_selected() {
    let mut c = TestClient::new(config(), t(0));
    let d = c.poll_transmit(t(0), MAC_A).unwrap();
    let mut o = Reply::to(&d, 2);
    o.server = Some(Ipv4Addr::new(10, 0, 0, 2));
    c.handle_packet(t(0), &o.bytes());
    let r = c.poll_transmit(t(0), MAC_A).unwrap();
    assert_eq!(
        msg(&r).option_ip(opt::SERVER_ID),
        Some(Ipv4Addr::new(10, 0, 0, 2))
    );
    c.handle_packet(t(0), &Reply::to(&r, 5).bytes());
    assert_eq!(
        c.last_drop(),
        Some("reply from a server other than the one selected")
    );
}

#[test]
fn raw_client_id_is_sent_verbatim_and_hostname_vendor_included() {
    let mut cfg = config();
    cfg.client_id = ClientId::Raw(duid().as_bytes().to_vec());
    cfg.hostname = Some("laptop".into());
    cfg.vendor_class = Some(b"netbond".to_vec());
    let mut c = TestClient::new(cfg, t(0));
    let m = msg(&c.poll_transmit(t(0), MAC_A).unwrap());
    assert_eq!(m.option(opt::CLIENT_ID).unwrap(), duid().as_bytes());
    assert_eq!(m.option(opt::HOSTNAME).unwrap(), b"laptop");
    assert_eq!(m.option(opt::VENDOR_CLASS).unwrap(), b"netbond");
    assert_eq!(m.option_u16(opt::MAX_MESSAGE_SIZE), Some(1500));
}

#[test]
fn set_config_changes_options_and_timing_but_keeps_the_client_id() {
    let mut c = bound();
    let id = c.client_id().to_vec();
    let mut cfg = config();
    cfg.client_id = ClientId::Raw(vec![1, 2, 3]);
    cfg.vendor_class = Some(b"reloaded".to_vec());
    cfg.hostname = Some("renamed".into());
    c.set_config(cfg);
    assert_eq!(c.client_id(), id.as_slice(), "the identity must not change");
    c.renew(t(10));
    let m = msg(&c.poll_transmit(t(10), MAC_A).unwrap());
    assert_eq!(m.option(opt::CLIENT_ID).unwrap(), id.as_slice());
    assert_eq!(m.option(opt::VENDOR_CLASS).unwrap(), b"reloaded");
    assert_eq!(m.option(opt::HOSTNAME).unwrap(), b"renamed");
}

#[test]
fn rapid_commit_binds_on_an_ack_with_option_80_only_when_asked() {
    // Asked: option 80 in DISCOVER; an ACK with 80 binds at once.
    let mut cfg = config();
    cfg.rapid_commit = true;
    let mut c = TestClient::new(cfg, t(0));
    let d = c.poll_transmit(t(0), MAC_A).unwrap();
    assert_eq!(msg(&d).option(opt::RAPID_COMMIT), Some(&[][..]));
    // An ACK without option 80 does not count.
    c.handle_packet(t(0), &Reply::to(&d, 5).bytes());
    assert_eq!(c.last_drop(), Some("not an OFFER while selecting"));
    assert_eq!(c.state_name(), "SELECTING");
    c.handle_packet(t(0), &Reply::to(&d, 5).opt(opt::RAPID_COMMIT, &[]).bytes());
    assert_eq!(c.last_drop(), None);
    assert_eq!(c.state_name(), "BOUND");
    assert!(matches!(c.poll_event(), Some(Event4::Bound(l)) if l.address == ADDR));
    // Not asked: no option 80, and an ACK with it is dropped while selecting.
    let mut c = TestClient::new(config(), t(0));
    let d = c.poll_transmit(t(0), MAC_A).unwrap();
    assert_eq!(msg(&d).option(opt::RAPID_COMMIT), None);
    c.handle_packet(t(0), &Reply::to(&d, 5).opt(opt::RAPID_COMMIT, &[]).bytes());
    assert_eq!(c.state_name(), "SELECTING");
    // And an OFFER still works with rapid commit asked (a server without it).
    let mut cfg = config();
    cfg.rapid_commit = true;
    let mut c = TestClient::new(cfg, t(0));
    let d = c.poll_transmit(t(0), MAC_A).unwrap();
    c.handle_packet(t(0), &Reply::to(&d, 2).bytes());
    assert_eq!(c.state_name(), "REQUESTING");
}

#[test]
fn user_class_and_extra_options_are_sent() {
    let mut cfg = config();
    cfg.user_class = Some(b"kiosk".to_vec());
    cfg.extra_options = vec![(224, vec![1, 2, 3])];
    cfg.extra_request = vec![252];
    let mut c = TestClient::new(cfg, t(0));
    let m = msg(&c.poll_transmit(t(0), MAC_A).unwrap());
    assert_eq!(m.option(opt::USER_CLASS).unwrap(), b"\x05kiosk");
    assert_eq!(m.option(224).unwrap(), &[1, 2, 3]);
    assert!(m.option(opt::PARAM_REQUEST).unwrap().contains(&252));
}

#[test]
fn a_fully_qualified_name_goes_in_option_81_instead_of_12() {
    let mut cfg = config();
    cfg.hostname = Some("laptop".into());
    cfg.fqdn = Some("laptop.example.org".into());
    let mut c = TestClient::new(cfg, t(0));
    let m = msg(&c.poll_transmit(t(0), MAC_A).unwrap());
    assert_eq!(m.option(opt::HOSTNAME), None);
    let mut want = vec![0x05, 0, 0, 6];
    want.extend_from_slice(b"laptop\x07example\x03org\x00");
    assert_eq!(m.option(opt::CLIENT_FQDN).unwrap(), want.as_slice());
}

#[test]
fn rfc4361_client_id_carries_iaid_and_duid() {
    let c = TestClient::new(config(), t(0));
    let id = c.client_id();
    assert_eq!(id[0], 0xff);
    assert_eq!(&id[1..5], &[0, 0, 0, 1]);
    assert_eq!(&id[5..], duid().as_bytes());
}

type Sent = Vec<(Instant, MessageType)>;
type Events = Vec<(Instant, Event4)>;

/// Run the client against `server` (which answers each transmit with packets, at
/// once) from `from` until `until`, returning what was sent and the events. Stops
/// after 2,000 transmits, so a tight loop shows up as a failed count, not a hang.
fn run_against(
    c: &mut TestClient,
    from: Instant,
    until: Instant,
    mut server: impl FnMut(&Transmit4) -> Vec<Vec<u8>>,
) -> (Sent, Events) {
    let mut sent = Vec::new();
    let mut events = Vec::new();
    let mut now = from;
    while now <= until && sent.len() < 2000 {
        while let Some(tx) = c.poll_transmit(now, MAC_A) {
            sent.push((now, tx.kind));
            for pkt in server(&tx) {
                c.handle_packet(now, &pkt);
            }
            while let Some(ev) = c.poll_event() {
                events.push((now, ev));
            }
            if sent.len() >= 2000 {
                break;
            }
        }
        while let Some(ev) = c.poll_event() {
            events.push((now, ev));
        }
        match c.poll_timeout() {
            Some(next) => now = next.max(now + Duration::from_millis(1)),
            None => break,
        }
    }
    (sent, events)
}

/// A server that OFFERs normally and NAKs every REQUEST (issue 13: ~17,000 DISCOVERs in
/// 14 s before the backoff).
fn nak_every_request(tx: &Transmit4) -> Vec<Vec<u8>> {
    match tx.kind {
        MessageType::Discover => vec![Reply::to(tx, 2).bytes()],
        MessageType::Request => vec![Reply::to(tx, 6).bytes()],
        _ => vec![],
    }
}

fn backoffs(events: &[(Instant, Event4)]) -> Vec<(Instant, u32, Duration)> {
    events
        .iter()
        .filter_map(|(at, e)| match e {
            Event4::Backoff { failures, wait, .. } => Some((*at, *failures, *wait)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_nak_loop_backs_off_exponentially_with_jitter() {
    let mut c = TestClient::new(config(), t(0));
    let (sent, events) = run_against(&mut c, t(0), t(600), nak_every_request);
    let in_window = |a: u64, b: u64| {
        sent.iter()
            .filter(|(at, _)| *at >= t(a) && *at < t(b))
            .count()
    };
    // The first minute: a few quick retries (0, 2, 4, 8, 16, 32 s), not a flood.
    assert!(
        in_window(0, 20) <= 12,
        "{} packets in the first 20 s",
        in_window(0, 20)
    );
    assert!(
        in_window(0, 60) <= 16,
        "{} packets in the first minute",
        in_window(0, 60)
    );
    // Then at most one DISCOVER and one REQUEST a minute (jitter may fit a third).
    for start in (120..540).step_by(30) {
        let n = in_window(start, start + 60);
        assert!(n <= 4, "{n} packets between {start} s and {} s", start + 60);
    }
    // Every NAK is one backoff step, reported once; the waits double up to 64 s, each
    // shortened by at most a quarter (jitter).
    let steps = backoffs(&events);
    let naks = sent
        .iter()
        .filter(|(_, k)| *k == MessageType::Request)
        .count();
    assert_eq!(steps.len(), naks, "one Backoff event per NAK");
    assert!(steps.len() >= 10, "{steps:?}");
    let mut jittered = false;
    for (i, (_, failures, wait)) in steps.iter().enumerate() {
        assert_eq!(*failures, i as u32 + 1);
        let base = failure_backoff(*failures);
        assert!(
            *wait <= base && *wait >= base * 3 / 4,
            "step {failures}: {wait:?}"
        );
        jittered |= *wait != base;
    }
    assert!(jittered, "no jitter: {steps:?}");
    assert_eq!(failure_backoff(1), Duration::ZERO);
    assert_eq!(failure_backoff(2), Duration::from_secs(2));
    assert_eq!(failure_backoff(7), Duration::from_secs(64));
    assert_eq!(failure_backoff(1000), MAX_FAILURE_BACKOFF);
    // Nothing is sent during a backoff.
    let (at, _, wait) = steps[5];
    assert!(c.lease().is_none());
    assert_eq!(
        sent.iter()
            .filter(|(s, _)| *s > at && *s < at + wait)
            .count(),
        0,
        "sent during the backoff after {at:?}"
    );
}

#[test]
fn a_lease_kept_for_a_while_resets_the_backoff() {
    let mut c = TestClient::new(config(), t(0));
    let (_, events) = run_against(&mut c, t(0), t(100), nak_every_request);
    let before = backoffs(&events).len() as u32;
    assert!(before >= 4);
    // A server that ACKs: bound, and the count is kept until the lease has lasted. (The
    // NAKing server's OFFER is requested only when the DISCOVER would be resent.)
    let now = c.poll_timeout().unwrap();
    let d = c.poll_transmit(now, MAC_A).unwrap();
    c.handle_packet(now, &Reply::to(&d, 2).bytes());
    let now = c.poll_timeout().unwrap();
    let r = c.poll_transmit(now, MAC_A).unwrap();
    c.handle_packet(now, &Reply::to(&r, 5).bytes());
    assert!(matches!(c.poll_event(), Some(Event4::Bound(_))));
    assert_eq!(c.failures(), before);
    // NAKed at T1, half an hour later: a fresh start, at once.
    let at = now + Duration::from_secs(1800);
    let r = c.poll_transmit(at, MAC_A).unwrap();
    assert_eq!(r.kind, MessageType::Request);
    c.handle_packet(at, &Reply::to(&r, 6).bytes());
    let evs: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(
        evs.iter().any(|e| matches!(
            e,
            Event4::Backoff {
                failures: 1,
                wait: Duration::ZERO,
                ..
            }
        )),
        "{evs:?}"
    );
    assert_eq!(c.state_name(), "SELECTING");
}

#[test]
fn a_decline_loop_backs_off_too() {
    // The server always hands out the same address, which another host holds: each
    // ACK is followed by a DECLINE. RFC 2131's 10 s floor stays; beyond it, the wait
    // grows, because a lease declined a second after it was bound resets nothing.
    let mut c = TestClient::new(config(), t(0));
    let mut declines = Vec::new();
    let mut now = t(0);
    let mut steps = Vec::new();
    while now < t(900) && declines.len() < 200 {
        while let Some(tx) = c.poll_transmit(now, MAC_A) {
            match tx.kind {
                MessageType::Discover => c.handle_packet(now, &Reply::to(&tx, 2).bytes()),
                MessageType::Request => c.handle_packet(now, &Reply::to(&tx, 5).bytes()),
                MessageType::Decline => declines.push(now),
                _ => {}
            }
            while let Some(ev) = c.poll_event() {
                match ev {
                    Event4::Bound(_) => c.decline(now + Duration::from_secs(1), ADDR),
                    Event4::Backoff { wait, .. } => steps.push(wait),
                    _ => {}
                }
            }
        }
        now = c
            .poll_timeout()
            .unwrap()
            .max(now + Duration::from_millis(1));
    }
    assert!(steps.iter().all(|w| *w >= DECLINE_BACKOFF), "{steps:?}");
    assert!(
        declines.len() <= 20,
        "{} DECLINEs in 15 minutes (one per 10 s would be 90)",
        declines.len()
    );
    let gaps: Vec<_> = declines.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.last().is_some_and(|g| *g >= Duration::from_secs(48)),
        "{gaps:?}"
    );
}

#[test]
fn requests_never_acked_count_as_a_failed_exchange() {
    let mut c = TestClient::new(config(), t(0));
    let offers_only = |tx: &Transmit4| match tx.kind {
        MessageType::Discover => vec![Reply::to(tx, 2).bytes()],
        _ => vec![],
    };
    let (sent, events) = run_against(&mut c, t(0), t(400), offers_only);
    let steps = backoffs(&events);
    assert!(steps.len() >= 2, "{steps:?}");
    assert!(events.iter().any(|(_, e)| matches!(
        e,
        Event4::Backoff {
            reason: "no valid ACK to the REQUESTs",
            ..
        }
    )));
    // Four REQUESTs per exchange, as before; the exchanges themselves back off.
    assert!(steps[1].2 >= Duration::from_millis(1500), "{steps:?}");
    assert!(sent.len() < 60, "{} packets", sent.len());
}

#[test]
fn a_server_that_naked_is_not_preferred_while_another_offers() {
    let other = Ipv4Addr::new(10, 0, 0, 2);
    let mut c = TestClient::new(config(), t(0));
    let d = c.poll_transmit(t(0), MAC_A).unwrap();
    c.handle_packet(t(0), &Reply::to(&d, 2).bytes());
    let r = c.poll_transmit(t(0), MAC_A).unwrap();
    c.handle_packet(t(0), &Reply::to(&r, 6).bytes());
    // The next DISCOVER: the NAKing server answers first, another one later.
    let d = c.poll_transmit(t(0), MAC_A).unwrap();
    assert_eq!(d.kind, MessageType::Discover);
    c.handle_packet(t(0), &Reply::to(&d, 2).bytes());
    assert_eq!(
        c.state_name(),
        "SELECTING",
        "took the NAKing server's OFFER"
    );
    assert!(c.poll_transmit(t(1), MAC_A).is_none());
    let mut o = Reply::to(&d, 2);
    o.server = Some(other);
    o.yiaddr = Ipv4Addr::new(10, 0, 0, 60);
    c.handle_packet(t(1), &o.bytes());
    let r = c.poll_transmit(t(1), MAC_A).unwrap();
    assert_eq!(r.kind, MessageType::Request);
    assert_eq!(msg(&r).option_ip(opt::SERVER_ID), Some(other));
    // With no other server, the NAKing one is asked again, but only when the DISCOVER
    // would have been retransmitted (and it is not).
    let mut c = TestClient::new(config(), t(0));
    let d = c.poll_transmit(t(0), MAC_A).unwrap();
    c.handle_packet(t(0), &Reply::to(&d, 2).bytes());
    let r = c.poll_transmit(t(0), MAC_A).unwrap();
    c.handle_packet(t(0), &Reply::to(&r, 6).bytes());
    let d = c.poll_transmit(t(0), MAC_A).unwrap();
    c.handle_packet(t(0), &Reply::to(&d, 2).bytes());
    assert!(c.poll_transmit(t(2), MAC_A).is_none());
    let due = c.poll_timeout().unwrap();
    assert!(due >= t(3) && due <= t(5), "{due:?}");
    let r = c.poll_transmit(due, MAC_A).unwrap();
    assert_eq!(r.kind, MessageType::Request);
    assert_eq!(msg(&r).option_ip(opt::SERVER_ID), Some(SERVER));
    assert_eq!(msg(&r).xid, msg(&d).xid);
}

#[test]
fn broadcast_or_network_yiaddr_for_its_own_mask_is_refused() {
    let offer = |yiaddr: Ipv4Addr, mask: [u8; 4]| {
        let mut c = TestClient::new(config(), t(0));
        let d = c.poll_transmit(t(0), MAC_A).unwrap();
        let mut o = Reply::to(&d, 2).opt(opt::SUBNET_MASK, &mask);
        o.yiaddr = yiaddr;
        c.handle_packet(t(0), &o.bytes());
        (c, o)
    };
    let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
    for (addr, mask, why) in [
        ("10.0.0.255", [255, 255, 255, 0], "broadcast"),
        ("10.0.0.0", [255, 255, 255, 0], "network"),
        ("10.0.0.63", [255, 255, 255, 224], "broadcast"),
        ("10.0.0.32", [255, 255, 255, 224], "network"),
        ("10.0.0.51", [255, 255, 255, 252], "broadcast"),
        ("10.255.255.255", [255, 0, 0, 0], "broadcast"),
    ] {
        let (c, _) = offer(ip(addr), mask);
        assert_eq!(
            c.last_drop(),
            Some(if why == "broadcast" {
                "offered address is the broadcast address of its subnet"
            } else {
                "offered address is the network address of its subnet"
            }),
            "{addr} {mask:?}"
        );
        assert_eq!(c.state_name(), "SELECTING");
    }
    // /31 (RFC 3021) and /32 have neither: both /31 addresses and a /32 ending in .255
    // bind.
    for (addr, mask, len) in [
        ("10.0.0.2", [255, 255, 255, 254], 31),
        ("10.0.0.3", [255, 255, 255, 254], 31),
        ("10.0.0.255", [255, 255, 255, 255], 32),
        ("10.0.0.0", [255, 255, 255, 255], 32),
    ] {
        let (mut c, o) = offer(ip(addr), mask);
        assert_eq!(c.last_drop(), None, "{addr}/{len}");
        let r = c.poll_transmit(t(0), MAC_A).unwrap();
        let mut a = Reply::to(&r, 5).opt(opt::SUBNET_MASK, &mask);
        a.yiaddr = o.yiaddr;
        c.handle_packet(t(0), &a.bytes());
        match c.poll_event() {
            Some(Event4::Bound(l)) => {
                assert_eq!((l.address, l.prefix_len), (ip(addr), len));
            }
            other => panic!("{addr}/{len}: {other:?} {:?}", c.last_drop()),
        }
    }
    // An ACK whose own mask makes the offered address its subnet's broadcast.
    let (mut c, _) = offer(ip("10.0.0.63"), [255, 255, 255, 0]);
    let r = c.poll_transmit(t(0), MAC_A).unwrap();
    let mut a = Reply::to(&r, 5).opt(opt::SUBNET_MASK, &[255, 255, 255, 224]);
    a.yiaddr = ip("10.0.0.63");
    c.handle_packet(t(0), &a.bytes());
    assert_eq!(
        c.last_drop(),
        Some("offered address is the broadcast address of its subnet")
    );
    assert!(c.lease().is_none());
}

#[test]
fn a_lease_without_a_subnet_mask_is_a_32_never_classful() {
    for yiaddr in ["10.0.0.50", "172.16.5.5", "192.168.1.20"] {
        let mut c = TestClient::new(config(), t(0));
        let d = c.poll_transmit(t(0), MAC_A).unwrap();
        let mut o = Reply::to(&d, 2).without(opt::SUBNET_MASK);
        o.yiaddr = yiaddr.parse().unwrap();
        c.handle_packet(t(0), &o.bytes());
        let r = c.poll_transmit(t(0), MAC_A).unwrap();
        let mut a = Reply::to(&r, 5).without(opt::SUBNET_MASK);
        a.yiaddr = o.yiaddr;
        c.handle_packet(t(0), &a.bytes());
        let Some(Event4::Bound(l)) = c.poll_event() else {
            panic!("{yiaddr}: {:?}", c.last_drop())
        };
        assert_eq!(l.prefix_len, 32, "{yiaddr}");
        assert_eq!(l.broadcast(), l.address);
    }
}

#[test]
fn a_reply_whose_options_swallow_end_is_dropped_whole() {
    let mut c = TestClient::new(config(), t(0));
    let d = c.poll_transmit(t(0), MAC_A).unwrap();
    // The hostile case of issue 13: no subnet mask, and the last option's length runs
    // over the END to the very end of the packet.
    let mut b = Reply::to(&d, 2).without(opt::SUBNET_MASK).bytes();
    b.pop();
    b.extend_from_slice(&[opt::DOMAIN, 5, b'a', b'.', b'b', b'c', 255]);
    c.handle_packet(t(0), &b);
    assert_eq!(c.last_drop(), Some("options field not terminated by END"));
    assert_eq!(c.state_name(), "SELECTING");
    // The same reply padded after a proper END is fine.
    let mut b = Reply::to(&d, 2).bytes();
    b.extend_from_slice(&[0; 20]);
    c.handle_packet(t(0), &b);
    assert_eq!(c.last_drop(), None);
    assert_eq!(c.state_name(), "REQUESTING");
}

fn drive_to(state: usize) -> TestClient {
    match state {
        0 => TestClient::new(config(), t(0)),
        1 => {
            let mut c = TestClient::new(config(), t(0));
            c.poll_transmit(t(0), MAC_A);
            c
        }
        2 => {
            let mut c = TestClient::new(config(), t(0));
            let d = c.poll_transmit(t(0), MAC_A).unwrap();
            c.handle_packet(t(0), &Reply::to(&d, 2).bytes());
            c.poll_transmit(t(0), MAC_A);
            c
        }
        3 => bound(),
        4 => {
            let mut c = bound();
            c.poll_transmit(t(1800), MAC_A);
            c
        }
        5 => {
            let mut c = bound();
            c.poll_transmit(t(3150), MAC_A);
            c
        }
        6 => {
            let mut c = TestClient::from_saved(config(), saved_lease(), t(100));
            c.poll_transmit(t(100), MAC_A);
            c
        }
        _ => {
            let mut c = bound();
            c.poll_transmit(t(10), MAC_B);
            c
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(state in 0usize..8, bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        let mut c = drive_to(state);
        c.handle_packet(t(2000), &bytes);
        let _ = c.poll_transmit(t(2001), MAC_A);
        let _ = c.poll_timeout();
    }

    #[test]
    fn mutated_valid_replies_never_panic(state in 0usize..8, flips in proptest::collection::vec((0usize..400, any::<u8>()), 1..20), cut in 240usize..400) {
        let mut c = drive_to(state);
        let tx = c.poll_transmit(t(4000), MAC_A).or_else(|| c.poll_transmit(c.poll_timeout().unwrap_or(t(0)), MAC_A));
        if let Some(tx) = tx {
            let mut b = Reply::to(&tx, 5).opt(opt::CLASSLESS_ROUTES, &[24, 1, 2, 3, 4, 5, 6, 7]).opt(opt::DOMAIN_SEARCH, &[3, b'a', b'b', b'c', 0, 0xc0, 0]).bytes();
            b.resize(400, 0);
            for (i, v) in flips { b[i] = v; }
            b.truncate(cut);
            c.handle_packet(t(4000), &b);
            let _ = c.poll_transmit(t(4001), MAC_B);
        }
    }
}

#[test]
fn broadcast_flag_is_set_only_while_the_client_has_no_address() {
    let mut cfg = config();
    cfg.broadcast_flag = true;
    let mut c = TestClient::new(cfg, t(0));
    let d = c.poll_transmit(t(0), MAC_A).unwrap();
    assert_eq!(msg(&d).flags, 0x8000, "DISCOVER asks for broadcast replies");
    c.handle_packet(t(0), &Reply::to(&d, 2).bytes());
    let r = c.poll_transmit(t(0), MAC_A).unwrap();
    assert_eq!(msg(&r).flags, 0x8000, "so does the REQUEST");
    c.handle_packet(t(0), &Reply::to(&r, 5).bytes());
    assert!(matches!(c.poll_event(), Some(Event4::Bound(_))));
    let renew = c.poll_transmit(t(1800), MAC_A).unwrap();
    assert_eq!(msg(&renew).flags, 0, "a bound client receives unicast");
    // The default leaves the flag clear.
    let mut plain = TestClient::new(config(), t(0));
    assert_eq!(msg(&plain.poll_transmit(t(0), MAC_A).unwrap()).flags, 0);
}

#[test]
fn a_mac_that_flips_back_before_the_next_send_keeps_the_transaction() {
    // A bond settling on its backup port: the DISCOVER went out with the new MAC, then
    // a netlink event queued before the change reports the old one, then the new one
    // again. The server must see one transaction, not two.
    let mut c = Client::new(config(), t(0));
    c.hw_address_changed(t(0), MAC_B);
    let d1 = c.poll_transmit(t(0)).unwrap();
    c.hw_address_changed(t(0), MAC_A);
    c.hw_address_changed(t(0), MAC_B);
    let next = c.poll_timeout().unwrap();
    let d2 = c.poll_transmit(next).unwrap();
    assert_eq!(
        msg(&d2).xid,
        msg(&d1).xid,
        "a flip back started a new transaction"
    );
    assert_eq!(d2.chaddr, MAC_B);
    // A real change still goes out at once, under a new xid.
    c.hw_address_changed(next, MAC_A);
    let d3 = c
        .poll_transmit(next)
        .expect("sent at once after a real change");
    assert_eq!(d3.chaddr, MAC_A);
    assert_ne!(msg(&d3).xid, msg(&d2).xid);
}

#[test]
fn nothing_is_sent_before_the_hardware_address_is_known() {
    let mut c = Client::new(config(), t(0));
    assert!(c.poll_transmit(t(0)).is_none());
    assert_eq!(c.state(), State::Selecting);
    c.hw_address_changed(t(0), MAC_A);
    let d = c
        .poll_transmit(t(0))
        .expect("DISCOVER once the MAC is known");
    assert_eq!(d.chaddr, MAC_A);
    // The first address given is not a change.
    assert!(c.poll_event().is_none());
}

#[test]
fn drops_and_ignored_options_are_events() {
    let mut c = Client::new(config(), t(0));
    c.hw_address_changed(t(0), MAC_A);
    let d = c.poll_transmit(t(0)).unwrap();
    c.handle_packet(t(0), &[1, 2, 3]);
    assert!(matches!(c.poll_event(), Some(Event4::Dropped(_))));
    c.handle_packet(t(0), &Reply::to(&d, 2).bytes());
    assert!(c.poll_event().is_none(), "an OFFER reports nothing");
    let r = c.poll_transmit(t(0)).unwrap();
    c.handle_packet(t(0), &Reply::to(&r, 5).opt(opt::MTU, &[0, 10]).bytes());
    assert_eq!(c.poll_event(), Some(Event4::IgnoredOption("MTU below 68")));
    assert!(matches!(c.poll_event(), Some(Event4::Bound(l)) if l.mtu.is_none()));
}

fn v6only_config() -> Config {
    let mut cfg = config();
    cfg.ipv6_only_preferred = true;
    cfg
}

#[test]
fn ipv6_only_preferred_offer_pauses_dhcp4_for_its_time_then_discovers() {
    let mut c = TestClient::new(v6only_config(), t(0));
    let d = c.poll_transmit(t(0), MAC_A).unwrap();
    assert!(msg(&d).option(opt::PARAM_REQUEST).unwrap().contains(&108));
    // RFC 8925 3.3: the server may offer no address with it.
    let mut r = Reply::to(&d, 2).opt(opt::V6ONLY_PREFERRED, &600u32.to_be_bytes());
    r.yiaddr = Ipv4Addr::UNSPECIFIED;
    c.handle_packet(t(1), &r.bytes());
    assert_eq!(c.last_drop(), None);
    assert_eq!(
        c.poll_event(),
        Some(Event4::Ipv6OnlyPreferred {
            server: SERVER,
            wait: Duration::from_secs(600)
        })
    );
    assert_eq!(c.state_name(), "IPV6-ONLY");
    assert!(c.lease().is_none());
    assert_eq!(c.ipv6_only_until(), Some(t(601)));
    assert_eq!(c.poll_timeout(), Some(t(601)));
    assert!(
        c.poll_transmit(t(300), MAC_A).is_none(),
        "nothing sent while paused"
    );
    c.handle_timeout(t(601));
    let again = c.poll_transmit(t(601), MAC_A).unwrap();
    assert_eq!(mtype(&again), 1, "a DISCOVER after the wait");
    assert_eq!(c.state_name(), "SELECTING");
}

#[test]
fn ipv6_only_wait_is_at_least_the_minimum_and_a_link_flap_ends_it() {
    let mut c = TestClient::new(v6only_config(), t(0));
    let d = c.poll_transmit(t(0), MAC_A).unwrap();
    c.handle_packet(
        t(0),
        &Reply::to(&d, 2)
            .opt(opt::V6ONLY_PREFERRED, &[0, 0, 0, 0])
            .bytes(),
    );
    assert!(matches!(
        c.poll_event(),
        Some(Event4::Ipv6OnlyPreferred { wait, .. }) if wait == MIN_V6ONLY_WAIT
    ));
    // "Until a network attachment event happens": down and up starts over at once.
    c.link_changed(t(10), false);
    c.link_changed(t(11), true);
    assert_eq!(mtype(&c.poll_transmit(t(11), MAC_A).unwrap()), 1);
}

#[test]
fn ipv6_only_preferred_is_ignored_unless_asked_and_well_formed() {
    // Not asked: not in the parameter list, and an OFFER with an address is taken.
    let mut c = TestClient::new(config(), t(0));
    let d = c.poll_transmit(t(0), MAC_A).unwrap();
    assert!(!msg(&d).option(opt::PARAM_REQUEST).unwrap().contains(&108));
    c.handle_packet(
        t(0),
        &Reply::to(&d, 2)
            .opt(opt::V6ONLY_PREFERRED, &[0, 0, 1, 0])
            .bytes(),
    );
    assert_eq!(c.state_name(), "REQUESTING");
    // Not asked, and no address offered: nothing to take.
    let mut c = TestClient::new(config(), t(0));
    let d = c.poll_transmit(t(0), MAC_A).unwrap();
    let mut r = Reply::to(&d, 2).opt(opt::V6ONLY_PREFERRED, &[0, 0, 1, 0]);
    r.yiaddr = Ipv4Addr::UNSPECIFIED;
    c.handle_packet(t(0), &r.bytes());
    assert!(c.last_drop().is_some());
    assert_eq!(c.state_name(), "SELECTING");
    // Asked, but a length other than 4 (RFC 8925 3.1): ignored.
    let mut c = TestClient::new(v6only_config(), t(0));
    let d = c.poll_transmit(t(0), MAC_A).unwrap();
    c.handle_packet(
        t(0),
        &Reply::to(&d, 2)
            .opt(opt::V6ONLY_PREFERRED, &[0, 1, 0])
            .bytes(),
    );
    assert_eq!(c.state_name(), "REQUESTING");
    let r = c.poll_transmit(t(0), MAC_A).unwrap();
    c.handle_packet(
        t(0),
        &Reply::to(&r, 5)
            .opt(opt::V6ONLY_PREFERRED, &[0, 1, 0])
            .bytes(),
    );
    assert_eq!(c.ignored_options(), ["option 108 length is not 4"]);
    assert_eq!(c.state_name(), "BOUND");
    // Asked, while renewing: only DISCOVER and INIT-REBOOT answers count.
    let mut c = bound();
    c.c.set_config(v6only_config());
    c.renew(t(5));
    let r = c.poll_transmit(t(5), MAC_A).unwrap();
    c.handle_packet(
        t(5),
        &Reply::to(&r, 5)
            .opt(opt::V6ONLY_PREFERRED, &[0, 0, 1, 0])
            .bytes(),
    );
    assert_eq!(c.state_name(), "BOUND");
}

#[test]
fn ipv6_only_preferred_in_the_init_reboot_ack_drops_the_saved_lease() {
    let mut c = TestClient::from_saved(v6only_config(), saved_lease(), t(100));
    let r = c.poll_transmit(t(100), MAC_A).unwrap();
    c.handle_packet(
        t(100),
        &Reply::to(&r, 5)
            .opt(opt::V6ONLY_PREFERRED, &[0, 0, 2, 0])
            .bytes(),
    );
    assert!(matches!(
        c.poll_event(),
        Some(Event4::Lost {
            reason: LostReason::Ipv6OnlyPreferred,
            ..
        })
    ));
    assert!(matches!(
        c.poll_event(),
        Some(Event4::Ipv6OnlyPreferred { .. })
    ));
    assert!(c.lease().is_none());
    assert_eq!(c.state_name(), "IPV6-ONLY");
}

#[test]
fn captive_portal_uri_is_checked_into_the_lease() {
    let run = |uri: &[u8]| {
        let mut c = TestClient::new(config(), t(0));
        let d = c.poll_transmit(t(0), MAC_A).unwrap();
        c.handle_packet(t(0), &Reply::to(&d, 2).bytes());
        let r = c.poll_transmit(t(0), MAC_A).unwrap();
        c.handle_packet(
            t(0),
            &Reply::to(&r, 5).opt(opt::CAPTIVE_PORTAL, uri).bytes(),
        );
        let ignored = c.ignored_options().to_vec();
        (c.lease().unwrap().captive_portal.clone(), ignored)
    };
    assert_eq!(
        run(b"https://portal.example/"),
        (Some("https://portal.example/".into()), vec![])
    );
    let (uri, ignored) = run(b"https://x\n$(reboot)");
    assert_eq!(uri, None);
    assert_eq!(ignored, ["option 114 is not a usable captive portal URI"]);
    assert_eq!(run(b"urn:ietf:params:capport:unrestricted"), (None, vec![]));
}
