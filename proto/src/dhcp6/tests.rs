//! Tests of the DHCPv6 engine against a tiny scripted server, on a virtual clock.

use super::lease::finalize;
use super::wire::{self, code, Builder, WireAddr, WirePrefix};
use super::*;
use crate::Engine;
use proptest::prelude::*;
use std::time::Duration;

const IAID: Iaid = Iaid(7);
const PD_IAID: Iaid = Iaid(9);
const SRV: &[u8] = &[0, 3, 0, 1, 1, 2, 3, 4, 5, 6];
const SRV2: &[u8] = &[0, 3, 0, 1, 9, 9, 9, 9, 9, 9];
const DNS: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x53);

fn duid() -> Duid {
    Duid::ll(1, &[2, 0, 0, 0, 0, 1]).unwrap()
}

fn addr(n: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n)
}

fn cfg() -> Config {
    Config {
        iaid_na: Some(IAID),
        mode: ModeSetting::Stateful,
        seed: 42,
        ..Config::default()
    }
}

fn status_body(s: StatusCode) -> Vec<u8> {
    let mut v = s.code().to_be_bytes().to_vec();
    v.extend_from_slice(b"msg");
    v
}

fn domain_wire(names: &[&str]) -> Vec<u8> {
    let mut v = Vec::new();
    for n in names {
        for l in n.split('.') {
            v.push(l.len() as u8);
            v.extend_from_slice(l.as_bytes());
        }
        v.push(0);
    }
    v
}

/// A scripted server: answers a client message with an Advertise or Reply.
#[derive(Clone)]
struct Srv {
    id: Vec<u8>,
    addr: Ipv6Addr,
    pref: Option<u8>,
    t1: u32,
    t2: u32,
    preferred: u32,
    valid: u32,
    status: Option<StatusCode>,
    ia_status: Option<StatusCode>,
    pd_status: Option<StatusCode>,
    rapid: bool,
    with_ia: bool,
    extra: Vec<(u16, Vec<u8>)>,
}

impl Srv {
    fn new(id: &[u8]) -> Self {
        Srv {
            id: id.to_vec(),
            addr: addr(0x100),
            pref: None,
            t1: 1000,
            t2: 1600,
            preferred: 2000,
            valid: 3000,
            status: None,
            ia_status: None,
            pd_status: None,
            rapid: false,
            with_ia: true,
            extra: Vec::new(),
        }
    }

    fn answer(&self, t: MessageType, client: &[u8]) -> Vec<u8> {
        let m = wire::parse(client).expect("client message parses");
        let mut b = Builder::new(t, m.xid);
        b.opt(code::CLIENTID, m.client_id.as_deref().unwrap_or(&[]));
        b.opt(code::SERVERID, &self.id);
        if let Some(p) = self.pref {
            b.opt(code::PREFERENCE, &[p]);
        }
        if let Some(s) = self.status {
            b.opt(code::STATUS_CODE, &status_body(s));
        }
        if self.rapid {
            b.opt(code::RAPID_COMMIT, &[]);
        }
        if self.with_ia {
            for ia in &m.ia_na {
                let addrs = if self.ia_status.is_some() {
                    vec![]
                } else {
                    vec![WireAddr {
                        addr: self.addr,
                        preferred: self.preferred,
                        valid: self.valid,
                    }]
                };
                let mut body = wire::ia_na_body(ia.iaid, self.t1, self.t2, &addrs);
                if let Some(s) = self.ia_status {
                    body.extend(wire::tlv(code::STATUS_CODE, &status_body(s)));
                }
                b.opt(code::IA_NA, &body);
            }
            for ia in &m.ia_pd {
                let p = if self.pd_status.is_some() {
                    vec![]
                } else {
                    vec![WirePrefix {
                        prefix: Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0),
                        len: 56,
                        preferred: self.preferred,
                        valid: self.valid,
                    }]
                };
                let mut body = wire::ia_pd_body(ia.iaid, self.t1, self.t2, &p);
                if let Some(s) = self.pd_status {
                    body.extend(wire::tlv(code::STATUS_CODE, &status_body(s)));
                }
                b.opt(code::IA_PD, &body);
            }
        }
        b.opt(code::DNS_SERVERS, &DNS.octets());
        b.opt(code::DOMAIN_LIST, &domain_wire(&["example.com"]));
        for (c, d) in &self.extra {
            b.opt(*c, d);
        }
        b.finish()
    }

    fn advertise(&self, client: &[u8]) -> Vec<u8> {
        self.answer(MessageType::Advertise, client)
    }

    fn reply(&self, client: &[u8]) -> Vec<u8> {
        self.answer(MessageType::Reply, client)
    }
}

/// Advance the clock to the client's deadline and take the transmission due then.
fn fire(c: &mut Client, now: &mut Instant) -> Transmit6 {
    let t = c.poll_timeout().expect("a deadline");
    assert!(t >= *now, "deadline in the past");
    *now = t;
    c.poll_transmit(*now)
        .expect("a transmission at the deadline")
}

fn events(c: &mut Client) -> Vec<Event6> {
    std::iter::from_fn(|| c.poll_event())
        .filter(|e| !matches!(e, Event6::Dropped(_)))
        .collect()
}

/// Why the latest message given to `c` was dropped: the drop event it left at the end
/// of the queue, if it did (`None`: it was accepted).
fn last_drop(c: &Client) -> Option<&'static str> {
    match c.events.back() {
        Some(Event6::Dropped(why)) => Some(why),
        _ => None,
    }
}

fn drops(c: &mut Client) -> Vec<&'static str> {
    std::iter::from_fn(|| c.poll_event())
        .filter_map(|e| match e {
            Event6::Dropped(w) => Some(w),
            _ => None,
        })
        .collect()
}

fn parsed(t: &Transmit6) -> wire::Message {
    wire::parse(&t.payload).expect("own message parses")
}

/// Run Solicit/Advertise/Request/Reply with `srv`; returns the lease.
fn bind(c: &mut Client, now: &mut Instant, srv: &Srv) -> Lease6 {
    let sol = fire(c, now);
    assert_eq!(sol.msg_type, MessageType::Solicit);
    c.handle_packet(*now, &srv.advertise(&sol.payload));
    let req = fire(c, now);
    assert_eq!(req.msg_type, MessageType::Request);
    c.handle_packet(*now, &srv.reply(&req.payload));
    match events(c).as_slice() {
        [Event6::Bound(l)] => l.clone(),
        other => panic!("expected Bound, got {other:?}"),
    }
}

fn bound_client(now: &mut Instant) -> (Client, Lease6) {
    let mut c = Client::new(cfg(), duid(), *now);
    let l = bind(&mut c, now, &Srv::new(SRV));
    (c, l)
}

// ----- core exchanges -------------------------------------------------------------------

#[test]
fn full_four_message_exchange() {
    let mut now = Instant::ZERO;
    let mut c = Client::new(cfg(), duid(), now);
    assert_eq!(c.state(), State::Soliciting);
    let sol = fire(&mut c, &mut now);
    assert_eq!(sol.dst, ALL_DHCP_SERVERS);
    assert_eq!(now, Instant::ZERO);
    let m = parsed(&sol);
    assert_eq!(m.msg_type, MessageType::Solicit);
    assert_eq!(m.elapsed, Some(0));
    assert_eq!(m.oro, vec![23, 24, 82]);
    assert!(m.server_id.is_none());
    assert!(!m.rapid_commit);
    assert_eq!(m.ia_na.len(), 1);
    assert_eq!(m.ia_na[0].iaid, IAID.0);

    let srv = Srv::new(SRV);
    c.handle_packet(now, &srv.advertise(&sol.payload));
    // The first RT is not cut short (preference 0): the Request waits for its end.
    assert!(c.poll_transmit(now).is_none());
    let req = fire(&mut c, &mut now);
    assert!(now.as_millis() > 1000 && now.as_millis() <= 1100);
    assert_eq!(req.msg_type, MessageType::Request);
    let m = parsed(&req);
    assert_eq!(m.server_id.as_deref(), Some(SRV));
    assert_eq!(m.elapsed, Some(0));
    assert_ne!(m.xid, parsed(&sol).xid);
    assert_eq!(m.ia_na[0].addrs[0].addr, addr(0x100));
    c.handle_packet(now, &srv.reply(&req.payload));
    let ev = events(&mut c);
    let [Event6::Bound(l)] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(c.state(), State::Bound);
    assert_eq!(l.server_id, SRV);
    assert_eq!(
        l.addresses,
        vec![Addr6 {
            addr: addr(0x100),
            preferred: 2000,
            valid: 3000
        }]
    );
    assert_eq!((l.t1, l.t2), (1000, 1600));
    assert_eq!(l.dns, vec![DNS]);
    assert_eq!(l.domains, vec!["example.com".to_string()]);
    assert_eq!(l.acquired, now);
    assert_eq!(c.lease(), Some(l));
    assert_eq!(c.poll_timeout(), Some(now + Duration::from_secs(1000)));
}

#[test]
fn client_id_is_exactly_the_duid_bytes() {
    // The DHCPv4 engine embeds these very octets after 0xff and the IAID (RFC 4361),
    // so both families present one identity.
    let d = duid();
    let opt = client_id_option(&d);
    assert_eq!(&opt[..2], &[0, 1]);
    assert_eq!(
        usize::from(u16::from_be_bytes([opt[2], opt[3]])),
        d.as_bytes().len()
    );
    assert_eq!(&opt[4..], d.as_bytes());
    let v4 = crate::duid::rfc4361_client_id(IAID, &d);
    assert_eq!(&v4[5..], &opt[4..]);
    let mut now = Instant::ZERO;
    let mut c = Client::new(cfg(), d.clone(), now);
    let sol = fire(&mut c, &mut now);
    assert_eq!(parsed(&sol).client_id.as_deref(), Some(d.as_bytes()));
    assert!(sol.payload.windows(opt.len()).any(|w| w == opt.as_slice()));
}

#[test]
fn user_class_and_extra_requests_in_solicit() {
    let mut now = Instant::ZERO;
    let mut c = Client::new(
        Config {
            user_class: Some(b"kiosk".to_vec()),
            extra_request: vec![103],
            ..cfg()
        },
        duid(),
        now,
    );
    let sol = fire(&mut c, &mut now);
    let uc = [0, 15, 0, 7, 0, 5, b'k', b'i', b'o', b's', b'k'];
    assert!(sol.payload.windows(uc.len()).any(|w| w == uc));
    // The ORO ends with the extra code.
    let p = &sol.payload;
    let i = p.windows(2).position(|w| w == [0, 6]).unwrap();
    let len = usize::from(u16::from_be_bytes([p[i + 2], p[i + 3]]));
    assert_eq!(&p[i + 4 + len - 2..i + 4 + len], &[0, 103]);
}

#[test]
fn client_fqdn_option_in_solicit_only_when_configured() {
    let mut now = Instant::ZERO;
    let fqdn_opt = |name: &[u8]| {
        let mut o = vec![0, 39, 0, (1 + name.len()) as u8, 0x01];
        o.extend_from_slice(name);
        o
    };
    let mut c = Client::new(
        Config {
            fqdn: Some("box".into()),
            ..cfg()
        },
        duid(),
        now,
    );
    let sol = fire(&mut c, &mut now);
    // A name without a dot is partial (no root label): the server completes it.
    let want = fqdn_opt(b"\x03box");
    assert!(sol
        .payload
        .windows(want.len())
        .any(|w| w == want.as_slice()));
    let mut c = Client::new(
        Config {
            fqdn: Some("box.example.org".into()),
            ..cfg()
        },
        duid(),
        now,
    );
    let sol = fire(&mut c, &mut now);
    let want = fqdn_opt(b"\x03box\x07example\x03org\x00");
    assert!(sol
        .payload
        .windows(want.len())
        .any(|w| w == want.as_slice()));
    let mut c = Client::new(cfg(), duid(), now);
    let sol = fire(&mut c, &mut now);
    assert!(!sol.payload.windows(4).any(|w| w[..2] == [0, 39]));
}

#[test]
fn rapid_commit_accepted() {
    let mut now = Instant::ZERO;
    let mut c = Client::new(
        Config {
            rapid_commit: true,
            ..cfg()
        },
        duid(),
        now,
    );
    let sol = fire(&mut c, &mut now);
    assert!(parsed(&sol).rapid_commit);
    let srv = Srv {
        rapid: true,
        ..Srv::new(SRV)
    };
    c.handle_packet(now, &srv.reply(&sol.payload));
    assert!(matches!(events(&mut c).as_slice(), [Event6::Bound(_)]));
    assert_eq!(c.state(), State::Bound);
    assert!(c.poll_transmit(now).is_none());
}

#[test]
fn rapid_commit_refused_by_advertise_continues_with_request() {
    let mut now = Instant::ZERO;
    let mut c = Client::new(
        Config {
            rapid_commit: true,
            ..cfg()
        },
        duid(),
        now,
    );
    let sol = fire(&mut c, &mut now);
    let srv = Srv::new(SRV);
    c.handle_packet(now, &srv.advertise(&sol.payload));
    let req = fire(&mut c, &mut now);
    assert_eq!(req.msg_type, MessageType::Request);
    assert!(!parsed(&req).rapid_commit);
    c.handle_packet(now, &srv.reply(&req.payload));
    assert!(matches!(events(&mut c).as_slice(), [Event6::Bound(_)]));
}

#[test]
fn reply_to_solicit_without_rapid_commit_is_dropped() {
    let mut now = Instant::ZERO;
    let mut c = Client::new(cfg(), duid(), now);
    let sol = fire(&mut c, &mut now);
    let srv = Srv {
        rapid: true,
        ..Srv::new(SRV)
    };
    // The client did not ask for Rapid Commit.
    c.handle_packet(now, &srv.reply(&sol.payload));
    assert_eq!(drops(&mut c), vec!["Reply to Solicit without Rapid Commit"]);
    assert_eq!(c.state(), State::Soliciting);
}

#[test]
fn preference_255_is_taken_at_once() {
    let mut now = Instant::ZERO;
    let mut c = Client::new(cfg(), duid(), now);
    let sol = fire(&mut c, &mut now);
    let srv = Srv {
        pref: Some(255),
        ..Srv::new(SRV2)
    };
    now += Duration::from_millis(10);
    c.handle_packet(now, &srv.advertise(&sol.payload));
    let req = c.poll_transmit(now).expect("Request at once");
    assert_eq!(req.msg_type, MessageType::Request);
    assert_eq!(parsed(&req).server_id.as_deref(), Some(SRV2));
}

#[test]
fn highest_preference_collected_during_first_rt_wins_ties_keep_first() {
    let mut now = Instant::ZERO;
    let mut c = Client::new(cfg(), duid(), now);
    let sol = fire(&mut c, &mut now);
    let a = Srv {
        pref: Some(10),
        ..Srv::new(SRV)
    };
    let b = Srv {
        pref: Some(20),
        addr: addr(0x200),
        ..Srv::new(SRV2)
    };
    let b2 = Srv {
        pref: Some(20),
        ..Srv::new(&[0, 3, 0, 1, 7, 7, 7, 7, 7, 7])
    };
    c.handle_packet(now, &a.advertise(&sol.payload));
    c.handle_packet(now, &b.advertise(&sol.payload));
    c.handle_packet(now, &b2.advertise(&sol.payload));
    assert!(c.poll_transmit(now).is_none());
    let req = fire(&mut c, &mut now);
    assert_eq!(req.msg_type, MessageType::Request);
    let m = parsed(&req);
    assert_eq!(m.server_id.as_deref(), Some(SRV2));
    assert_eq!(m.ia_na[0].addrs[0].addr, addr(0x200));
}

#[test]
fn advertise_after_first_rt_is_taken_immediately() {
    let mut now = Instant::ZERO;
    let mut c = Client::new(cfg(), duid(), now);
    fire(&mut c, &mut now);
    let sol2 = fire(&mut c, &mut now);
    assert_eq!(sol2.msg_type, MessageType::Solicit);
    c.handle_packet(now, &Srv::new(SRV).advertise(&sol2.payload));
    assert_eq!(
        c.poll_transmit(now).map(|t| t.msg_type),
        Some(MessageType::Request)
    );
}

#[test]
fn advertise_without_addresses_is_ignored() {
    let mut now = Instant::ZERO;
    let mut c = Client::new(cfg(), duid(), now);
    let sol = fire(&mut c, &mut now);
    let none = Srv {
        ia_status: Some(StatusCode::NoAddrsAvail),
        pref: Some(255),
        ..Srv::new(SRV)
    };
    c.handle_packet(now, &none.advertise(&sol.payload));
    let top = Srv {
        status: Some(StatusCode::NoAddrsAvail),
        with_ia: false,
        ..Srv::new(SRV)
    };
    c.handle_packet(now, &top.advertise(&sol.payload));
    assert_eq!(drops(&mut c).len(), 2);
    // No Request: the next transmission is a Solicit retransmission.
    assert_eq!(fire(&mut c, &mut now).msg_type, MessageType::Solicit);
}

// ----- retransmission -------------------------------------------------------------------

#[test]
fn solicit_retransmission_schedule() {
    let mut now = Instant::ZERO;
    let mut c = Client::new(cfg(), duid(), now);
    let mut sends = vec![];
    for _ in 0..22 {
        let t = fire(&mut c, &mut now);
        assert_eq!(t.msg_type, MessageType::Solicit);
        sends.push((now.as_millis(), parsed(&t)));
    }
    let xid = sends[0].1.xid;
    assert!(sends.iter().all(|(_, m)| m.xid == xid));
    let rts: Vec<u64> = sends.windows(2).map(|w| w[1].0 - w[0].0).collect();
    // First RT: IRT + RAND*IRT with RAND in (0, 0.1].
    assert!(rts[0] > 1000 && rts[0] <= 1100, "{}", rts[0]);
    let mut capped = false;
    for w in rts.windows(2) {
        let (prev, rt) = (w[0], w[1]);
        let cap = params::SOL_MAX_RT;
        if 2 * prev - prev / 10 > cap + cap / 10 {
            assert!(rt >= cap - cap / 10 && rt <= cap + cap / 10, "{rt}");
            capped = true;
        } else if rt < cap - cap / 10 {
            assert!(
                rt >= 2 * prev - prev / 10 && rt <= 2 * prev + prev / 10,
                "{prev} -> {rt}"
            );
        }
    }
    assert!(capped);
    // Elapsed time counts centiseconds from the first Solicit, saturating.
    assert_eq!(sends[1].1.elapsed, Some((sends[1].0 / 10) as u16));
    assert_eq!(sends[21].1.elapsed, Some(0xffff));
}

#[test]
fn solicit_delay_is_below_sol_max_delay() {
    for seed in 1..20 {
        let c = Client::new(
            Config {
                solicit_delay: true,
                seed,
                ..cfg()
            },
            duid(),
            Instant::ZERO,
        );
        assert!(c.poll_timeout().unwrap().as_millis() <= params::SOL_MAX_DELAY);
    }
}

#[test]
fn request_gives_up_after_req_max_rc_and_solicits_again() {
    let mut now = Instant::ZERO;
    let mut c = Client::new(cfg(), duid(), now);
    let sol = fire(&mut c, &mut now);
    c.handle_packet(
        now,
        &Srv {
            pref: Some(255),
            ..Srv::new(SRV)
        }
        .advertise(&sol.payload),
    );
    let mut last = now;
    let mut rts = vec![];
    for i in 0..params::REQ_MAX_RC {
        let t = fire(&mut c, &mut now);
        assert_eq!(t.msg_type, MessageType::Request, "attempt {i}");
        rts.push(now.as_millis() - last.as_millis());
        last = now;
    }
    // The first Request goes out at once; then RT = IRT +- 10 %, doubling, cap REQ_MAX_RT.
    assert_eq!(rts[0], 0);
    assert!(rts[1] >= 900 && rts[1] <= 1100, "{rts:?}");
    assert!(rts[2] >= 2 * rts[1] - rts[1] / 10 && rts[2] <= 2 * rts[1] + rts[1] / 10);
    assert!(rts.iter().all(|&rt| rt <= 33_000));
    assert!(rts[9] >= 27_000, "{rts:?}");
    let t = fire(&mut c, &mut now);
    assert_eq!(t.msg_type, MessageType::Solicit);
    assert_eq!(c.state(), State::Soliciting);
}

// ----- renew, rebind, expiry ------------------------------------------------------------

#[test]
fn renew_at_t1_with_server_id_then_rebind_at_t2_without() {
    let mut now = Instant::ZERO;
    let (mut c, l) = bound_client(&mut now);
    let ren = fire(&mut c, &mut now);
    assert_eq!(ren.msg_type, MessageType::Renew);
    assert_eq!(now, l.acquired + Duration::from_secs(1000));
    let m = parsed(&ren);
    assert_eq!(m.server_id.as_deref(), Some(SRV));
    assert_eq!(m.ia_na[0].addrs[0].addr, addr(0x100));
    assert_eq!(c.state(), State::Renewing);
    // Renew retransmits from REN_TIMEOUT until T2.
    let ren2 = fire(&mut c, &mut now);
    assert_eq!(ren2.msg_type, MessageType::Renew);
    assert!((9_000..=11_000).contains(&(now - l.acquired - Duration::from_secs(1000)).as_millis()));
    let mut t = fire(&mut c, &mut now);
    while t.msg_type == MessageType::Renew {
        t = fire(&mut c, &mut now);
    }
    assert_eq!(t.msg_type, MessageType::Rebind);
    assert_eq!(now, l.acquired + Duration::from_secs(1600));
    let m = parsed(&t);
    assert!(m.server_id.is_none());
    assert_eq!(c.state(), State::Rebinding);
    // Any server may answer a Rebind; the lease moves to it.
    let other = Srv {
        t1: 500,
        t2: 800,
        ..Srv::new(SRV2)
    };
    c.handle_packet(now, &other.reply(&t.payload));
    let ev = events(&mut c);
    let [Event6::Renewed(l2)] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(l2.server_id, SRV2);
    assert_eq!((l2.t1, l2.t2), (500, 800));
    assert_eq!(l2.acquired, now);
    assert_eq!(c.state(), State::Bound);
}

#[test]
fn renew_reply_extends_and_other_server_is_dropped() {
    let mut now = Instant::ZERO;
    let (mut c, _) = bound_client(&mut now);
    let ren = fire(&mut c, &mut now);
    c.handle_packet(now, &Srv::new(SRV2).reply(&ren.payload));
    assert_eq!(
        drops(&mut c),
        vec!["server identifier is not the selected server's"]
    );
    c.handle_packet(now, &Srv::new(SRV).reply(&ren.payload));
    let ev = events(&mut c);
    let [Event6::Renewed(l)] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(l.acquired, now);
    assert_eq!(c.poll_timeout(), Some(now + Duration::from_secs(1000)));
}

#[test]
fn lifetime_expiry_loses_the_lease() {
    let mut now = Instant::ZERO;
    let (mut c, l) = bound_client(&mut now);
    loop {
        let t = fire(&mut c, &mut now);
        if now >= l.acquired + Duration::from_secs(3000) {
            // The expiry restarts Solicit in the same poll.
            assert_eq!(t.msg_type, MessageType::Solicit);
            break;
        }
        assert!(matches!(
            t.msg_type,
            MessageType::Renew | MessageType::Rebind
        ));
    }
    assert_eq!(now, l.acquired + Duration::from_secs(3000));
    let ev = events(&mut c);
    assert!(matches!(
        ev.as_slice(),
        [Event6::Lost {
            reason: LostReason::Expired,
            ..
        }]
    ));
    assert!(c.lease().is_none());
}

#[test]
fn zero_t1_t2_are_chosen_by_the_client() {
    let mut now = Instant::ZERO;
    let mut c = Client::new(cfg(), duid(), now);
    let l = bind(
        &mut c,
        &mut now,
        &Srv {
            t1: 0,
            t2: 0,
            ..Srv::new(SRV)
        },
    );
    assert_eq!((l.t1, l.t2), (1000, 1600));
}

#[test]
fn ia_with_t1_greater_than_t2_is_discarded() {
    let mut now = Instant::ZERO;
    let mut c = Client::new(cfg(), duid(), now);
    let sol = fire(&mut c, &mut now);
    let bad = Srv {
        t1: 2000,
        t2: 1000,
        pref: Some(255),
        ..Srv::new(SRV)
    };
    c.handle_packet(now, &bad.advertise(&sol.payload));
    assert_eq!(
        drops(&mut c),
        vec!["Advertise offers no addresses or prefixes"]
    );
    // T2 given alone below a computed T1 is repaired.
    let l = finalize(
        Lease6 {
            server_id: vec![],
            addresses: vec![Addr6 {
                addr: addr(1),
                preferred: 1000,
                valid: 2000,
            }],
            prefixes: vec![],
            t1: 0,
            t2: 0,
            dns: vec![],
            domains: vec![],
            ntp: vec![],
            captive_portal: None,
            acquired: Instant::ZERO,
        },
        0,
        300,
    );
    assert_eq!((l.t1, l.t2), (300, 300));
}

#[test]
fn infinite_lifetimes_never_renew() {
    let mut now = Instant::ZERO;
    let mut c = Client::new(cfg(), duid(), now);
    bind(
        &mut c,
        &mut now,
        &Srv {
            t1: 0,
            t2: 0,
            preferred: INFINITY,
            valid: INFINITY,
            ..Srv::new(SRV)
        },
    );
    assert_eq!(c.poll_timeout(), None);
}

// ----- confirm --------------------------------------------------------------------------

fn saved_lease() -> Lease6 {
    let mut now = Instant::ZERO;
    let (_, l) = bound_client(&mut now);
    l
}

#[test]
fn confirm_after_restart_success_keeps_addresses() {
    let saved = saved_lease();
    let mut now = Instant::from_secs(100);
    let mut c = Client::from_saved(cfg(), duid(), saved.clone(), now);
    assert_eq!(c.state(), State::Confirming);
    let t = fire(&mut c, &mut now);
    assert!(now.as_millis() <= 101_000);
    assert_eq!(t.msg_type, MessageType::Confirm);
    let m = parsed(&t);
    assert!(m.server_id.is_none());
    assert_eq!(m.ia_na[0].addrs[0].addr, addr(0x100));
    assert_eq!(m.ia_na[0].addrs[0].valid, 0);
    let srv = Srv {
        status: Some(StatusCode::Success),
        with_ia: false,
        ..Srv::new(SRV2)
    };
    c.handle_packet(now, &srv.reply(&t.payload));
    let ev = events(&mut c);
    assert_eq!(ev, vec![Event6::Bound(saved.clone())]);
    assert_eq!(c.state(), State::Bound);
    assert_eq!(c.poll_timeout(), saved.renew_at());
}

#[test]
fn confirm_not_on_link_loses_and_solicits() {
    let saved = saved_lease();
    let mut now = Instant::from_secs(100);
    let mut c = Client::from_saved(cfg(), duid(), saved, now);
    let t = fire(&mut c, &mut now);
    let srv = Srv {
        status: Some(StatusCode::NotOnLink),
        with_ia: false,
        ..Srv::new(SRV)
    };
    c.handle_packet(now, &srv.reply(&t.payload));
    assert!(matches!(
        events(&mut c).as_slice(),
        [
            Event6::Lost {
                reason: LostReason::NotOnLink,
                ..
            },
            Event6::Backoff {
                failures: 1,
                wait: Duration::ZERO,
                ..
            }
        ]
    ));
    assert_eq!(c.poll_transmit(now).unwrap().msg_type, MessageType::Solicit);
}

#[test]
fn confirm_silence_keeps_using_addresses_after_mrd() {
    let saved = saved_lease();
    let mut now = Instant::from_secs(100);
    let mut c = Client::from_saved(cfg(), duid(), saved.clone(), now);
    let first = fire(&mut c, &mut now);
    let start = now;
    let mut n = 1;
    while let Some(t) = c.poll_timeout() {
        now = t;
        match c.poll_transmit(now) {
            Some(t) => {
                assert_eq!(t.msg_type, MessageType::Confirm);
                assert!(parsed(&t).elapsed.unwrap() > 0);
                n += 1;
            }
            None => break,
        }
    }
    assert!(n >= 3);
    assert_eq!(now, start + Duration::from_millis(params::CNF_MAX_RD));
    assert_eq!(events(&mut c), vec![Event6::Bound(saved)]);
    assert_eq!(c.state(), State::Bound);
    assert_eq!(parsed(&first).elapsed, Some(0));
}

#[test]
fn restart_with_delegated_prefixes_rebinds() {
    let mut now = Instant::ZERO;
    let config = Config {
        iaid_pd: Some(PD_IAID),
        ..cfg()
    };
    let mut c = Client::new(config.clone(), duid(), now);
    let saved = bind(&mut c, &mut now, &Srv::new(SRV));
    assert!(!saved.prefixes.is_empty() && !saved.addresses.is_empty());
    let mut now = now + Duration::from_secs(100);
    let mut c = Client::from_saved(config, duid(), saved.clone(), now);
    assert_eq!(c.state(), State::Rebinding);
    let t = fire(&mut c, &mut now);
    assert_eq!(t.msg_type, MessageType::Rebind);
    let m = parsed(&t);
    assert!(m.server_id.is_none(), "Rebind names no server");
    assert_eq!(m.ia_pd[0].prefixes[0].prefix, saved.prefixes[0].prefix);
    assert_eq!(m.ia_na[0].addrs[0].addr, saved.addresses[0].addr);
    c.handle_packet(now, &Srv::new(SRV).reply(&t.payload));
    assert!(matches!(events(&mut c).as_slice(), [Event6::Renewed(_)]));
    assert_eq!(c.state(), State::Bound);
    // A prefix-only lease is rebound too, not solicited afresh.
    let pd_only = Lease6 {
        addresses: Vec::new(),
        ..saved
    };
    let c = Client::from_saved(
        Config {
            iaid_na: None,
            iaid_pd: Some(PD_IAID),
            ..cfg()
        },
        duid(),
        pd_only,
        now,
    );
    assert_eq!(c.state(), State::Rebinding);
}

#[test]
fn restart_with_expired_lease_solicits() {
    let saved = saved_lease();
    let c = Client::from_saved(cfg(), duid(), saved, Instant::from_secs(5000));
    assert_eq!(c.state(), State::Soliciting);
    assert!(c.lease().is_none());
}

#[test]
fn link_flap_confirms_and_renews_in_place() {
    let mut now = Instant::ZERO;
    let (mut c, l) = bound_client(&mut now);
    c.link_changed(now, false);
    assert_eq!(c.state(), State::LinkDown);
    assert_eq!(c.poll_timeout(), l.expires_at());
    now += Duration::from_secs(5);
    c.link_changed(now, true);
    let t = fire(&mut c, &mut now);
    assert_eq!(t.msg_type, MessageType::Confirm);
    c.handle_packet(
        now,
        &Srv {
            with_ia: false,
            ..Srv::new(SRV)
        }
        .reply(&t.payload),
    );
    assert_eq!(events(&mut c), vec![Event6::Renewed(l)]);
}

#[test]
fn lease_expires_while_link_is_down_then_solicits_on_up() {
    let mut now = Instant::ZERO;
    let (mut c, l) = bound_client(&mut now);
    c.link_changed(now, false);
    assert!(c.poll_transmit(now).is_none());
    now = c.poll_timeout().unwrap();
    assert_eq!(now, l.expires_at().unwrap());
    assert!(c.poll_transmit(now).is_none());
    assert!(matches!(
        events(&mut c).as_slice(),
        [Event6::Lost {
            reason: LostReason::Expired,
            ..
        }]
    ));
    assert_eq!(c.poll_timeout(), None);
    c.link_changed(now, true);
    assert_eq!(c.poll_transmit(now).unwrap().msg_type, MessageType::Solicit);
}

#[test]
fn prefix_delegation_is_requested_renewed_and_released() {
    let mut now = Instant::ZERO;
    let config = Config {
        iaid_na: None,
        iaid_pd: Some(PD_IAID),
        ..cfg()
    };
    let mut c = Client::new(config, duid(), now);
    let l = bind(&mut c, &mut now, &Srv::new(SRV));
    assert!(l.addresses.is_empty());
    assert_eq!(
        l.prefixes[0].prefix,
        Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0)
    );
    let ren = fire(&mut c, &mut now);
    let m = parsed(&ren);
    assert!(m.ia_na.is_empty());
    assert_eq!(m.ia_pd[0].iaid, PD_IAID.0);
    assert_eq!(m.ia_pd[0].prefixes[0].len, 56);
    c.handle_packet(now, &Srv::new(SRV).reply(&ren.payload));
    assert!(matches!(events(&mut c).as_slice(), [Event6::Renewed(_)]));
    c.release(now);
    let rel = fire(&mut c, &mut now);
    assert_eq!(parsed(&rel).ia_pd[0].prefixes.len(), 1);
}

// ----- decline, release -----------------------------------------------------------------

#[test]
fn decline_drops_address_and_solicits_again() {
    let mut now = Instant::ZERO;
    let (mut c, l) = bound_client(&mut now);
    c.decline(now, addr(0x100));
    let ev = events(&mut c);
    let [Event6::Lost {
        lease,
        reason: LostReason::Declined,
    }] = ev.as_slice()
    else {
        panic!("{ev:?}")
    };
    assert_eq!(lease.addresses, l.addresses);
    let t = fire(&mut c, &mut now);
    assert_eq!(t.msg_type, MessageType::Decline);
    let m = parsed(&t);
    assert_eq!(m.server_id.as_deref(), Some(SRV));
    assert_eq!(m.ia_na[0].addrs[0].addr, addr(0x100));
    c.handle_packet(
        now,
        &Srv {
            with_ia: false,
            ..Srv::new(SRV)
        }
        .reply(&t.payload),
    );
    assert_eq!(c.poll_transmit(now).unwrap().msg_type, MessageType::Solicit);
    // Declining something not leased only reports.
    c.decline(now, addr(1));
    assert_eq!(drops(&mut c), vec!["decline: no lease is held"]);
}

#[test]
fn decline_without_reply_gives_up_after_dec_max_rc() {
    let mut now = Instant::ZERO;
    let (mut c, _) = bound_client(&mut now);
    c.decline(now, addr(0x100));
    for _ in 0..params::DEC_MAX_RC {
        assert_eq!(fire(&mut c, &mut now).msg_type, MessageType::Decline);
    }
    assert_eq!(fire(&mut c, &mut now).msg_type, MessageType::Solicit);
}

#[test]
fn release_sends_release_and_emits_lost() {
    let mut now = Instant::ZERO;
    let (mut c, l) = bound_client(&mut now);
    c.release(now);
    assert_eq!(
        events(&mut c),
        vec![Event6::Lost {
            lease: l,
            reason: LostReason::Released
        }]
    );
    let t = fire(&mut c, &mut now);
    assert_eq!(t.msg_type, MessageType::Release);
    let m = parsed(&t);
    assert_eq!(m.server_id.as_deref(), Some(SRV));
    assert_eq!(m.ia_na[0].addrs[0].addr, addr(0x100));
    for _ in 1..params::REL_MAX_RC {
        assert_eq!(fire(&mut c, &mut now).msg_type, MessageType::Release);
    }
    assert_eq!(c.poll_timeout().map(|_| ()), Some(()));
    now = c.poll_timeout().unwrap();
    assert!(c.poll_transmit(now).is_none());
    assert_eq!(c.state(), State::Idle);
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn release_reply_ends_the_exchange() {
    let mut now = Instant::ZERO;
    let (mut c, _) = bound_client(&mut now);
    c.release(now);
    let t = fire(&mut c, &mut now);
    c.handle_packet(
        now,
        &Srv {
            with_ia: false,
            ..Srv::new(SRV)
        }
        .reply(&t.payload),
    );
    assert_eq!(c.state(), State::Idle);
    assert_eq!(c.poll_timeout(), None);
}

// ----- status codes ---------------------------------------------------------------------

/// A client in Requesting with the Request sent; returns it.
fn requesting(now: &mut Instant, cfg: Config) -> (Client, Transmit6) {
    let mut c = Client::new(cfg, duid(), *now);
    let sol = fire(&mut c, now);
    c.handle_packet(
        *now,
        &Srv {
            pref: Some(255),
            ..Srv::new(SRV)
        }
        .advertise(&sol.payload),
    );
    let req = c.poll_transmit(*now).unwrap();
    (c, req)
}

#[test]
fn unspec_fail_and_use_multicast_retransmit() {
    for s in [StatusCode::UnspecFail, StatusCode::UseMulticast] {
        let mut now = Instant::ZERO;
        let (mut c, req) = requesting(&mut now, cfg());
        c.handle_packet(
            now,
            &Srv {
                status: Some(s),
                with_ia: false,
                ..Srv::new(SRV)
            }
            .reply(&req.payload),
        );
        assert_eq!(drops(&mut c).len(), 1);
        assert_eq!(c.state(), State::Requesting);
        let again = fire(&mut c, &mut now);
        assert_eq!(again.msg_type, MessageType::Request);
        assert_eq!(parsed(&again).xid, parsed(&req).xid);
    }
}

#[test]
fn not_on_link_or_no_addrs_in_request_reply_solicits() {
    for s in [StatusCode::NotOnLink, StatusCode::NoAddrsAvail] {
        let mut now = Instant::ZERO;
        let (mut c, req) = requesting(&mut now, cfg());
        c.handle_packet(
            now,
            &Srv {
                ia_status: Some(s),
                ..Srv::new(SRV)
            }
            .reply(&req.payload),
        );
        assert_eq!(c.state(), State::Soliciting, "{s:?}");
        assert_eq!(c.poll_transmit(now).unwrap().msg_type, MessageType::Solicit);
        // Nothing was bound; the failure is reported once, and the first one costs no
        // delay (RFC 8415 18.2.10.1).
        assert!(matches!(
            events(&mut c).as_slice(),
            [Event6::Backoff {
                failures: 1,
                wait: Duration::ZERO,
                ..
            }]
        ));
    }
}

#[test]
fn no_addrs_avail_keeps_a_successful_ia_pd() {
    let mut now = Instant::ZERO;
    let config = Config {
        iaid_pd: Some(PD_IAID),
        ..cfg()
    };
    let (mut c, req) = requesting(&mut now, config);
    assert_eq!(parsed(&req).ia_pd.len(), 1);
    c.handle_packet(
        now,
        &Srv {
            ia_status: Some(StatusCode::NoAddrsAvail),
            ..Srv::new(SRV)
        }
        .reply(&req.payload),
    );
    let ev = events(&mut c);
    let [Event6::Bound(l)] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert!(l.addresses.is_empty());
    assert_eq!(l.prefixes.len(), 1);
    assert_eq!(l.prefixes[0].len, 56);
}

#[test]
fn no_binding_in_renew_reply_sends_request() {
    let mut now = Instant::ZERO;
    let (mut c, _) = bound_client(&mut now);
    let ren = fire(&mut c, &mut now);
    c.handle_packet(
        now,
        &Srv {
            ia_status: Some(StatusCode::NoBinding),
            ..Srv::new(SRV)
        }
        .reply(&ren.payload),
    );
    let req = c.poll_transmit(now).unwrap();
    assert_eq!(req.msg_type, MessageType::Request);
    let m = parsed(&req);
    assert_eq!(m.server_id.as_deref(), Some(SRV));
    assert_eq!(m.ia_na[0].addrs[0].addr, addr(0x100));
    c.handle_packet(now, &Srv::new(SRV).reply(&req.payload));
    assert!(matches!(events(&mut c).as_slice(), [Event6::Renewed(_)]));
}

#[test]
fn not_on_link_in_renew_reply_loses_and_solicits() {
    let mut now = Instant::ZERO;
    let (mut c, _) = bound_client(&mut now);
    let ren = fire(&mut c, &mut now);
    c.handle_packet(
        now,
        &Srv {
            ia_status: Some(StatusCode::NotOnLink),
            ..Srv::new(SRV)
        }
        .reply(&ren.payload),
    );
    assert!(matches!(
        events(&mut c).as_slice(),
        [
            Event6::Lost {
                reason: LostReason::NotOnLink,
                ..
            },
            Event6::Backoff {
                failures: 1,
                wait: Duration::ZERO,
                ..
            }
        ]
    ));
    assert_eq!(c.poll_transmit(now).unwrap().msg_type, MessageType::Solicit);
}

#[test]
fn renew_reply_with_zero_lifetimes_withdraws_addresses() {
    let mut now = Instant::ZERO;
    let (mut c, _) = bound_client(&mut now);
    let ren = fire(&mut c, &mut now);
    c.handle_packet(
        now,
        &Srv {
            preferred: 0,
            valid: 0,
            ..Srv::new(SRV)
        }
        .reply(&ren.payload),
    );
    assert!(matches!(
        events(&mut c).as_slice(),
        [
            Event6::Lost {
                reason: LostReason::Refused,
                ..
            },
            Event6::Backoff {
                failures: 1,
                wait: Duration::ZERO,
                ..
            }
        ]
    ));
    assert_eq!(c.state(), State::Soliciting);
}

#[test]
fn renew_reply_missing_an_address_keeps_it_with_remaining_lifetime() {
    let mut now = Instant::ZERO;
    let (mut c, _) = bound_client(&mut now);
    let ren = fire(&mut c, &mut now);
    c.handle_packet(
        now,
        &Srv {
            addr: addr(0x300),
            ..Srv::new(SRV)
        }
        .reply(&ren.payload),
    );
    let ev = events(&mut c);
    let [Event6::Renewed(l)] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(l.addresses.len(), 2);
    assert_eq!(l.addresses[1].addr, addr(0x100));
    assert_eq!(l.addresses[1].valid, 2000);
    assert_eq!(l.addresses[1].preferred, 1000);
}

// ----- stateless ------------------------------------------------------------------------

#[test]
fn information_request_with_refresh_time() {
    let mut now = Instant::ZERO;
    let config = Config {
        mode: ModeSetting::Stateless,
        request_ntp: true,
        ..cfg()
    };
    let mut c = Client::new(config, duid(), now);
    assert!(c.poll_timeout().unwrap().as_millis() <= params::INF_MAX_DELAY);
    let t = fire(&mut c, &mut now);
    assert_eq!(t.msg_type, MessageType::InformationRequest);
    let m = parsed(&t);
    assert!(m.ia_na.is_empty() && m.server_id.is_none());
    assert_eq!(m.oro, vec![23, 24, 56, 82, 32, 83]);
    let mut ntp = wire::tlv(1, &addr(0x123).octets());
    ntp.extend(wire::tlv(3, &domain_wire(&["ntp.example.com"])));
    let srv = Srv {
        with_ia: false,
        extra: vec![
            (code::INFO_REFRESH_TIME, 7200u32.to_be_bytes().to_vec()),
            (code::NTP_SERVER, ntp),
        ],
        ..Srv::new(SRV)
    };
    c.handle_packet(now, &srv.reply(&t.payload));
    let ev = events(&mut c);
    let [Event6::Info(info)] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(info.dns, vec![DNS]);
    assert_eq!(info.ntp, vec![addr(0x123)]);
    assert_eq!(info.refresh, 7200);
    assert_eq!(c.state(), State::InfoBound);
    let received = now;
    let t = fire(&mut c, &mut now);
    assert_eq!(now, received + Duration::from_secs(7200));
    assert_eq!(t.msg_type, MessageType::InformationRequest);

    // Below the minimum: 600 s. Absent: 86400 s.
    let low = Srv {
        with_ia: false,
        extra: vec![(code::INFO_REFRESH_TIME, 5u32.to_be_bytes().to_vec())],
        ..Srv::new(SRV)
    };
    c.handle_packet(now, &low.reply(&t.payload));
    assert_eq!(c.info().unwrap().refresh, 600);
    assert_eq!(c.poll_timeout(), Some(now + Duration::from_secs(600)));
    let t = fire(&mut c, &mut now);
    c.handle_packet(
        now,
        &Srv {
            with_ia: false,
            ..Srv::new(SRV)
        }
        .reply(&t.payload),
    );
    assert_eq!(c.info().unwrap().refresh, 86_400);
}

#[test]
fn auto_mode_follows_ra_flags() {
    let mut now = Instant::ZERO;
    let mut c = Client::new(
        Config {
            mode: ModeSetting::Auto,
            ..cfg()
        },
        duid(),
        now,
    );
    assert_eq!(c.state(), State::Idle);
    assert_eq!(c.poll_timeout(), None);
    c.ra_flags(now, false, false);
    assert_eq!(c.poll_timeout(), None);
    c.ra_flags(now, false, true);
    assert_eq!(c.state(), State::Informing);
    c.ra_flags(now, true, true);
    assert_eq!(c.state(), State::Soliciting);
    assert_eq!(fire(&mut c, &mut now).msg_type, MessageType::Solicit);
    // A repeated RA does not restart the exchange.
    c.ra_flags(now, true, false);
    assert_eq!(c.phase.txn().unwrap().count, 1);

    let off = Client::new(
        Config {
            mode: ModeSetting::Off,
            ..cfg()
        },
        duid(),
        now,
    );
    assert_eq!(off.poll_timeout(), None);
}

// ----- validation -----------------------------------------------------------------------

#[test]
fn wrong_xid_client_id_or_server_id_is_dropped() {
    let mut now = Instant::ZERO;
    let (mut c, req) = requesting(&mut now, cfg());
    let good = Srv::new(SRV).reply(&req.payload);
    let mut bad_xid = good.clone();
    bad_xid[3] ^= 1;
    c.handle_packet(now, &bad_xid);
    assert_eq!(last_drop(&c), Some("transaction id does not match"));
    let mut other_client = req.payload.clone();
    let m = parsed(&req);
    let pos = other_client
        .windows(m.client_id.as_ref().unwrap().len())
        .position(|w| w == m.client_id.as_deref().unwrap())
        .unwrap();
    other_client[pos + 5] ^= 0xff;
    c.handle_packet(now, &Srv::new(SRV).reply(&other_client));
    c.handle_packet(now, &Srv::new(SRV2).reply(&req.payload));
    // No client id at all.
    let mut b = Builder::new(MessageType::Reply, m.xid);
    b.opt(code::SERVERID, SRV);
    c.handle_packet(now, &b.finish());
    // No server id.
    let mut b = Builder::new(MessageType::Reply, m.xid);
    b.opt(code::CLIENTID, duid().as_bytes());
    c.handle_packet(now, &b.finish());
    assert_eq!(
        drops(&mut c),
        vec![
            "transaction id does not match",
            "client identifier is not ours",
            "server identifier is not the selected server's",
            "missing client identifier",
            "missing server identifier",
        ]
    );
    assert_eq!(c.state(), State::Requesting);
    c.handle_packet(now, &good);
    assert_eq!(last_drop(&c), None);
    assert!(matches!(events(&mut c).as_slice(), [Event6::Bound(_)]));
}

#[test]
fn malformed_lengths_drop_the_whole_message() {
    let mut now = Instant::ZERO;
    let (mut c, req) = requesting(&mut now, cfg());
    let xid = parsed(&req).xid;
    let base = |extra: &dyn Fn(&mut Builder)| {
        let mut b = Builder::new(MessageType::Reply, xid);
        b.opt(code::CLIENTID, duid().as_bytes());
        b.opt(code::SERVERID, SRV);
        b.opt(
            code::IA_NA,
            &wire::ia_na_body(
                IAID.0,
                100,
                200,
                &[WireAddr {
                    addr: addr(5),
                    preferred: 300,
                    valid: 400,
                }],
            ),
        );
        extra(&mut b);
        b.finish()
    };
    let cases: Vec<Vec<u8>> = vec![
        base(&|b| {
            b.opt(code::PREFERENCE, &[1, 2]);
        }),
        base(&|b| {
            b.opt(code::ELAPSED_TIME, &[1]);
        }),
        base(&|b| {
            b.opt(code::STATUS_CODE, &[0]);
        }),
        base(&|b| {
            b.opt(code::RAPID_COMMIT, &[0]);
        }),
        base(&|b| {
            b.opt(code::SOL_MAX_RT, &[0, 0, 1]);
        }),
        base(&|b| {
            b.opt(code::INFO_REFRESH_TIME, &[0, 0, 1, 0, 0]);
        }),
        base(&|b| {
            b.opt(code::IA_NA, &[0; 11]);
        }),
        base(&|b| {
            b.opt(code::DNS_SERVERS, &[0; 17]);
        }),
        base(&|b| {
            b.opt(code::DOMAIN_LIST, &[3, b'a', b'b']);
        }),
        base(&|b| {
            b.opt(code::DOMAIN_LIST, &[0xc0, 0x0c]);
        }),
        base(&|b| {
            let mut ia = wire::ia_na_body(IAID.0, 0, 0, &[]);
            ia.extend(wire::tlv(code::IAADDR, &[0; 23]));
            b.opt(code::IA_NA, &ia);
        }),
        base(&|b| {
            let mut ia = wire::ia_pd_body(1, 0, 0, &[]);
            ia.extend(wire::tlv(code::IAPREFIX, &[0; 24]));
            b.opt(code::IA_PD, &ia);
        }),
        base(&|b| {
            // IA sub-option running past the IA's own end.
            let mut ia = wire::ia_na_body(IAID.0, 0, 0, &[]);
            ia.extend([0, 5, 0, 30, 1, 2]);
            b.opt(code::IA_NA, &ia);
        }),
        base(&|b| {
            b.opt(code::NTP_SERVER, &wire::tlv(1, &[0; 15]));
        }),
        // Option header truncated / length beyond message end.
        {
            let mut v = base(&|_| {});
            v.extend([0, 23]);
            v
        },
        {
            let mut v = base(&|_| {});
            v.extend([0, 23, 0, 16, 1, 2]);
            v
        },
        vec![7, 1, 2],
    ];
    for (i, m) in cases.iter().enumerate() {
        c.handle_packet(now, m);
        assert_eq!(drops(&mut c).len(), 1, "case {i}");
        assert!(events(&mut c).is_empty(), "case {i}");
        assert_eq!(c.state(), State::Requesting, "case {i}");
    }
    c.handle_packet(now, &base(&|_| {}));
    assert!(matches!(events(&mut c).as_slice(), [Event6::Bound(_)]));
}

/// Messages whose every option fits its container but that are still not well formed
/// (issue 13 item 3): each is dropped whole, with its reason, and the exchange goes on.
#[test]
fn within_bounds_but_malformed_messages_are_dropped() {
    let mut now = Instant::ZERO;
    let (mut c, req) = requesting(&mut now, cfg());
    let xid = parsed(&req).xid;
    let ia = |iaid: u32, extra: &[u8]| {
        let mut v = wire::ia_na_body(
            iaid,
            100,
            200,
            &[WireAddr {
                addr: addr(5),
                preferred: 300,
                valid: 400,
            }],
        );
        v.extend_from_slice(extra);
        v
    };
    let base = |extra: &dyn Fn(&mut Builder)| {
        let mut b = Builder::new(MessageType::Reply, xid);
        b.opt(code::CLIENTID, duid().as_bytes());
        b.opt(code::SERVERID, SRV);
        b.opt(code::IA_NA, &ia(IAID.0, &[]));
        extra(&mut b);
        b.finish()
    };
    let status = |s: StatusCode| wire::tlv(code::STATUS_CODE, &status_body(s));
    let dns = DNS.octets();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        // A second copy of an option that may appear once: which one counts?
        (
            base(&|b| {
                b.opt(code::STATUS_CODE, &status_body(StatusCode::Success));
                b.opt(code::STATUS_CODE, &status_body(StatusCode::NoAddrsAvail));
            }),
            "an option that may appear once is repeated",
        ),
        (
            base(&|b| {
                b.opt(code::PREFERENCE, &[1]);
                b.opt(code::PREFERENCE, &[255]);
            }),
            "an option that may appear once is repeated",
        ),
        (
            base(&|b| {
                b.opt(code::DNS_SERVERS, &dns);
                b.opt(code::DNS_SERVERS, &dns);
            }),
            "an option that may appear once is repeated",
        ),
        (
            base(&|b| {
                b.opt(code::DOMAIN_LIST, &domain_wire(&["a.test"]));
                b.opt(code::DOMAIN_LIST, &domain_wire(&["b.test"]));
            }),
            "an option that may appear once is repeated",
        ),
        (
            base(&|b| {
                b.opt(code::RAPID_COMMIT, &[]);
                b.opt(code::RAPID_COMMIT, &[]);
            }),
            "an option that may appear once is repeated",
        ),
        (
            base(&|b| {
                b.opt(code::SOL_MAX_RT, &3600u32.to_be_bytes());
                b.opt(code::SOL_MAX_RT, &60u32.to_be_bytes());
            }),
            "an option that may appear once is repeated",
        ),
        (
            base(&|b| {
                b.opt(code::INFO_REFRESH_TIME, &3600u32.to_be_bytes());
                b.opt(code::INFO_REFRESH_TIME, &600u32.to_be_bytes());
            }),
            "an option that may appear once is repeated",
        ),
        (
            base(&|b| {
                b.opt(code::SERVERID, SRV);
            }),
            "duplicate client or server identifier",
        ),
        // Two IA_NAs with our IAID: which addresses are ours?
        (
            base(&|b| {
                b.opt(code::IA_NA, &ia(IAID.0, &[]));
            }),
            "two IAs of one type with the same IAID",
        ),
        // Two status codes in one IA, or in one IA address.
        (
            {
                let mut b = Builder::new(MessageType::Reply, xid);
                b.opt(code::CLIENTID, duid().as_bytes());
                b.opt(code::SERVERID, SRV);
                let mut two = status(StatusCode::Success);
                two.extend(status(StatusCode::NoAddrsAvail));
                b.opt(code::IA_NA, &ia(IAID.0, &two));
                b.finish()
            },
            "status code repeated in an IA",
        ),
        (
            base(&|b| {
                let mut a = addr(6).octets().to_vec();
                a.extend(300u32.to_be_bytes());
                a.extend(400u32.to_be_bytes());
                a.extend(status(StatusCode::Success));
                a.extend(status(StatusCode::Success));
                let mut body = wire::ia_na_body(99, 0, 0, &[]);
                body.extend(wire::tlv(code::IAADDR, &a));
                b.opt(code::IA_NA, &body);
            }),
            "status code repeated in an IA address or prefix",
        ),
        // Empty list options: each must carry at least one entry.
        (
            base(&|b| {
                b.opt(code::DNS_SERVERS, &[]);
            }),
            "empty DNS, domain or NTP option",
        ),
        (
            base(&|b| {
                b.opt(code::DOMAIN_LIST, &[]);
            }),
            "empty DNS, domain or NTP option",
        ),
        (
            base(&|b| {
                b.opt(code::NTP_SERVER, &[]);
            }),
            "empty DNS, domain or NTP option",
        ),
        // Trailing bytes too short to be an option, at the top level and in an IA.
        (
            {
                let mut v = base(&|_| {});
                v.push(0);
                v
            },
            "truncated option header",
        ),
        (
            {
                let mut b = Builder::new(MessageType::Reply, xid);
                b.opt(code::CLIENTID, duid().as_bytes());
                b.opt(code::SERVERID, SRV);
                b.opt(code::IA_NA, &ia(IAID.0, &[0, 13, 0]));
                b.finish()
            },
            "truncated option header",
        ),
    ];
    for (i, (m, why)) in cases.iter().enumerate() {
        c.handle_packet(now, m);
        assert_eq!(last_drop(&c), Some(*why), "case {i}");
        assert_eq!(drops(&mut c), vec![*why], "case {i}");
        assert_eq!(c.state(), State::Requesting, "case {i}");
    }
    // Different IAIDs, or an IA_NA and an IA_PD sharing one, are fine.
    c.handle_packet(
        now,
        &base(&|b| {
            b.opt(code::IA_NA, &ia(IAID.0 + 1, &[]));
            b.opt(code::IA_PD, &wire::ia_pd_body(IAID.0, 0, 0, &[]));
        }),
    );
    assert_eq!(last_drop(&c), None);
    assert!(matches!(events(&mut c).as_slice(), [Event6::Bound(_)]));
}

#[test]
fn address_with_preferred_above_valid_is_ignored_alone() {
    let mut now = Instant::ZERO;
    let (mut c, req) = requesting(&mut now, cfg());
    let xid = parsed(&req).xid;
    let mut b = Builder::new(MessageType::Reply, xid);
    b.opt(code::CLIENTID, duid().as_bytes());
    b.opt(code::SERVERID, SRV);
    let addrs = [
        WireAddr {
            addr: addr(1),
            preferred: 500,
            valid: 400,
        },
        WireAddr {
            addr: addr(2),
            preferred: 300,
            valid: 400,
        },
        WireAddr {
            addr: "fe80::1".parse().unwrap(),
            preferred: 300,
            valid: 400,
        },
        WireAddr {
            addr: "ff02::1".parse().unwrap(),
            preferred: 300,
            valid: 400,
        },
    ];
    b.opt(code::IA_NA, &wire::ia_na_body(IAID.0, 0, 0, &addrs));
    c.handle_packet(now, &b.finish());
    let ev = events(&mut c);
    let [Event6::Bound(l)] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(l.addresses.len(), 1);
    assert_eq!(l.addresses[0].addr, addr(2));
}

#[test]
fn domains_are_validated_and_lists_capped() {
    let mut out = vec![];
    let mut w = domain_wire(&["good.example", "bad!.example", "under_score.example"]);
    w.extend(domain_wire(&[&"a".repeat(63)[..]]));
    wire::parse_domains(&w, &mut out).unwrap();
    // Underscores are refused like everywhere else (crate::name): resolv.conf refused
    // them anyway, so only the lease and the status used to show such a name.
    assert_eq!(out, vec!["good.example", &"a".repeat(63)]);
    let long = [&"b".repeat(63)[..]; 4].join(".");
    let mut out = vec![];
    wire::parse_domains(&domain_wire(&[&long]), &mut out).unwrap();
    assert!(out.is_empty());
    let many: Vec<String> = (0..20).map(|i| format!("d{i}.example")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let mut out = vec![];
    wire::parse_domains(&domain_wire(&refs), &mut out).unwrap();
    assert_eq!(out.len(), 16);

    let mut b = Builder::new(MessageType::Reply, 1);
    let dns: Vec<u8> = (1..30u16).flat_map(|i| addr(i).octets()).collect();
    b.opt(code::DNS_SERVERS, &dns);
    let ntp: Vec<u8> = (1..12u16)
        .flat_map(|i| wire::tlv(1, &addr(i).octets()))
        .collect();
    b.opt(code::NTP_SERVER, &ntp);
    let m = wire::parse(&b.finish()).unwrap();
    assert_eq!(m.dns.len(), 16);
    assert_eq!(m.ntp.len(), 8);
}

#[test]
fn sol_max_rt_option_is_honoured_within_bounds() {
    for (value, expect) in [
        (120u32, 120_000u64),
        (30, params::SOL_MAX_RT),
        (100_000, params::SOL_MAX_RT),
    ] {
        let mut now = Instant::ZERO;
        let mut c = Client::new(cfg(), duid(), now);
        let sol = fire(&mut c, &mut now);
        let srv = Srv {
            status: Some(StatusCode::NoAddrsAvail),
            with_ia: false,
            extra: vec![(code::SOL_MAX_RT, value.to_be_bytes().to_vec())],
            ..Srv::new(SRV)
        };
        // Processed even from an Advertise that is otherwise ignored.
        c.handle_packet(now, &srv.advertise(&sol.payload));
        let mut last = now;
        let mut max_rt = 0;
        for _ in 0..15 {
            fire(&mut c, &mut now);
            max_rt = max_rt.max(now.as_millis() - last.as_millis());
            last = now;
        }
        assert!(max_rt <= expect + expect / 10, "{value}: {max_rt}");
        assert!(max_rt >= expect - expect / 10, "{value}: {max_rt}");
    }
}

#[test]
fn reconfigure_is_ignored_with_a_reason() {
    let mut now = Instant::ZERO;
    let (mut c, _) = bound_client(&mut now);
    let mut b = Builder::new(MessageType::Reconfigure, 0);
    b.opt(code::CLIENTID, duid().as_bytes());
    b.opt(code::SERVERID, SRV);
    b.opt(19, &[5]);
    c.handle_packet(now, &b.finish());
    assert_eq!(
        drops(&mut c),
        vec!["Reconfigure ignored: authentication is not implemented"]
    );
    assert_eq!(c.state(), State::Bound);
}

#[test]
fn replies_when_nothing_is_pending_are_dropped() {
    let mut now = Instant::ZERO;
    let (mut c, _) = bound_client(&mut now);
    let mut b = Builder::new(MessageType::Reply, 0);
    b.opt(code::CLIENTID, duid().as_bytes());
    b.opt(code::SERVERID, SRV);
    c.handle_packet(now, &b.finish());
    assert_eq!(drops(&mut c), vec!["no exchange in progress"]);
    c.handle_packet(now, &[1, 0, 0, 0]);
    assert_eq!(drops(&mut c), vec!["not a server-to-client message type"]);
}

// ----- robustness -----------------------------------------------------------------------

/// Clients in every state, each with the xid it currently expects.
type Sent6 = Vec<(Instant, MessageType)>;

/// Run the client against `server` (answering each transmit at once) until `until`.
/// Stops after 2,000 transmits, so a tight loop fails a count instead of hanging.
fn run_against(
    c: &mut Client,
    from: Instant,
    until: Instant,
    mut server: impl FnMut(&Transmit6) -> Vec<Vec<u8>>,
) -> (Sent6, Vec<Event6>) {
    let mut sent = Vec::new();
    let mut evs = Vec::new();
    let mut now = from;
    while now <= until && sent.len() < 2000 {
        while let Some(tx) = c.poll_transmit(now) {
            sent.push((now, tx.msg_type));
            for pkt in server(&tx) {
                c.handle_packet(now, &pkt);
            }
            evs.extend(std::iter::from_fn(|| c.poll_event()));
            if sent.len() >= 2000 {
                break;
            }
        }
        evs.extend(std::iter::from_fn(|| c.poll_event()));
        match c.poll_timeout() {
            Some(next) => now = next.max(now + Duration::from_millis(1)),
            None => break,
        }
    }
    (sent, evs)
}

fn backoff_steps(evs: &[Event6]) -> Vec<(u32, Duration, &'static str)> {
    evs.iter()
        .filter_map(|e| match e {
            Event6::Backoff {
                failures,
                wait,
                reason,
            } => Some((*failures, *wait, *reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_server_refusing_every_request_causes_no_tight_loop() {
    // It advertises with preference 255 (so the client requests at once) and answers
    // every Request with a status: before the backoff this was a loop with no delay.
    let cases = [
        (Some(StatusCode::NoAddrsAvail), None, "NoAddrsAvail"),
        (Some(StatusCode::NotOnLink), None, "NotOnLink"),
        (None, Some(StatusCode::NotOnLink), "NotOnLink"),
        (Some(StatusCode::UseMulticast), None, "UseMulticast"),
        (Some(StatusCode::NoBinding), None, "NoBinding"),
        (Some(StatusCode::Other(42)), None, "grants no address"),
        (None, Some(StatusCode::UseMulticast), "Requests"),
        (None, Some(StatusCode::UnspecFail), "Requests"),
    ];
    for (ia_status, top, why) in cases {
        let mut c = Client::new(cfg(), duid(), Instant::ZERO);
        let adv = Srv {
            pref: Some(255),
            ..Srv::new(SRV)
        };
        let refuse = Srv {
            ia_status,
            status: top,
            ..Srv::new(SRV)
        };
        let (sent, evs) = run_against(
            &mut c,
            Instant::ZERO,
            Instant::from_secs(900),
            |tx| match tx.msg_type {
                MessageType::Solicit => vec![adv.advertise(&tx.payload)],
                MessageType::Request => vec![refuse.reply(&tx.payload)],
                _ => vec![],
            },
        );
        let window = |a: u64, b: u64| {
            sent.iter()
                .filter(|(at, _)| *at >= Instant::from_secs(a) && *at < Instant::from_secs(b))
                .count()
        };
        let case = format!("{ia_status:?}/{top:?}");
        assert!(window(0, 20) <= 12, "{case}: {} in 20 s", window(0, 20));
        for start in (300..840).step_by(30) {
            let n = window(start, start + 60);
            assert!(n <= 12, "{case}: {n} messages from {start} s on");
        }
        assert!(c.lease().is_none(), "{case}");
        let steps = backoff_steps(&evs);
        assert!(steps.len() >= 4, "{case}: {steps:?}");
        assert!(steps.iter().all(|s| s.2.contains(why)), "{case}: {steps:?}");
        for (i, (failures, wait, _)) in steps.iter().enumerate() {
            assert_eq!(*failures, i as u32 + 1, "{case}");
            let base = failure_backoff(*failures);
            assert!(*wait <= base && *wait >= base * 3 / 4, "{case}: {wait:?}");
        }
    }
    assert_eq!(failure_backoff(1), Duration::ZERO);
    assert_eq!(failure_backoff(3), Duration::from_secs(4));
    assert_eq!(failure_backoff(99), MAX_FAILURE_BACKOFF);
}

#[test]
fn a_server_that_refused_is_not_preferred_while_another_advertises() {
    let mut now = Instant::ZERO;
    let (mut c, req) = requesting(&mut now, cfg());
    let refuse = Srv {
        ia_status: Some(StatusCode::NoAddrsAvail),
        ..Srv::new(SRV)
    };
    c.handle_packet(now, &refuse.reply(&req.payload));
    let sol = fire(&mut c, &mut now);
    assert_eq!(sol.msg_type, MessageType::Solicit);
    // The refusing server says 255 ("take me at once"); it is not taken at once...
    let pushy = Srv {
        pref: Some(255),
        ..Srv::new(SRV)
    };
    c.handle_packet(now, &pushy.advertise(&sol.payload));
    assert_eq!(c.state(), State::Soliciting);
    // ...and a plain Advertise from another server wins the first RT.
    c.handle_packet(now, &Srv::new(SRV2).advertise(&sol.payload));
    let req = fire(&mut c, &mut now);
    assert_eq!(req.msg_type, MessageType::Request);
    assert_eq!(parsed(&req).server_id.as_deref(), Some(SRV2));
    // Alone, the refusing server is still asked, at the end of the first RT.
    let mut now = Instant::ZERO;
    let (mut c, req) = requesting(&mut now, cfg());
    c.handle_packet(now, &refuse.reply(&req.payload));
    let sol = fire(&mut c, &mut now);
    c.handle_packet(now, &pushy.advertise(&sol.payload));
    let req = fire(&mut c, &mut now);
    assert_eq!(req.msg_type, MessageType::Request);
    assert_eq!(parsed(&req).server_id.as_deref(), Some(SRV));
}

#[test]
fn a_decline_loop_backs_off_until_a_lease_is_kept() {
    // Every address the server grants fails DAD a second later.
    let mut c = Client::new(cfg(), duid(), Instant::ZERO);
    let srv = Srv::new(SRV);
    let mut now = Instant::ZERO;
    let mut declines = 0;
    let mut steps = Vec::new();
    while now < Instant::from_secs(600) && declines < 200 {
        while let Some(tx) = c.poll_transmit(now) {
            match tx.msg_type {
                MessageType::Solicit => c.handle_packet(now, &srv.advertise(&tx.payload)),
                MessageType::Request => c.handle_packet(now, &srv.reply(&tx.payload)),
                MessageType::Decline => {
                    declines += 1;
                    c.handle_packet(now, &srv.reply(&tx.payload));
                }
                _ => {}
            }
            let evs: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
            for ev in evs {
                match ev {
                    Event6::Bound(l) => c.decline(now, l.addresses[0].addr),
                    Event6::Backoff { wait, .. } => steps.push(wait),
                    _ => {}
                }
            }
        }
        now = c
            .poll_timeout()
            .unwrap()
            .max(now + Duration::from_millis(1));
    }
    assert!(
        declines <= 16,
        "{declines} Declines in 10 minutes: {steps:?}"
    );
    assert!(steps.last().is_some_and(|w| *w >= Duration::from_secs(48)));
    // This time DAD succeeds: the lease is kept until T1 (1000 s), where the server
    // says NotOnLink. A lease kept that long starts the count afresh: no delay.
    let before = c.failures();
    assert!(before >= 5, "{before}");
    let mut renewed = None;
    while renewed.is_none() && now < Instant::from_secs(3000) {
        while let Some(tx) = c.poll_transmit(now) {
            let reply = match tx.msg_type {
                MessageType::Solicit => srv.advertise(&tx.payload),
                MessageType::Request => srv.reply(&tx.payload),
                MessageType::Renew => {
                    renewed = Some(now);
                    Srv {
                        ia_status: Some(StatusCode::NotOnLink),
                        ..Srv::new(SRV)
                    }
                    .reply(&tx.payload)
                }
                _ => continue,
            };
            c.handle_packet(now, &reply);
        }
        now = c
            .poll_timeout()
            .unwrap()
            .max(now + Duration::from_millis(1));
    }
    assert!(renewed.is_some(), "never renewed");
    assert_eq!(c.failures(), 1);
    assert!(
        backoff_steps(&std::iter::from_fn(|| c.poll_event()).collect::<Vec<_>>())
            .iter()
            .any(|s| s.0 == 1 && s.1.is_zero())
    );
}

fn clients_in_every_state() -> Vec<Client> {
    let mut v = vec![];
    let mut now = Instant::ZERO;
    let mut c = Client::new(cfg(), duid(), now);
    fire(&mut c, &mut now);
    v.push(c); // soliciting
    let mut now = Instant::ZERO;
    v.push(requesting(&mut now, cfg()).0);
    let mut now = Instant::ZERO;
    let (c, _) = bound_client(&mut now);
    v.push(c); // bound
    let mut now = Instant::ZERO;
    let (mut c, _) = bound_client(&mut now);
    fire(&mut c, &mut now);
    v.push(c.clone()); // renewing
    while c.state() != State::Rebinding {
        fire(&mut c, &mut now);
    }
    v.push(c); // rebinding
    let mut now = Instant::from_secs(10);
    let mut c = Client::from_saved(cfg(), duid(), saved_lease(), now);
    fire(&mut c, &mut now);
    v.push(c); // confirming
    let mut now = Instant::ZERO;
    let (mut c, _) = bound_client(&mut now);
    c.decline(now, addr(0x100));
    fire(&mut c, &mut now);
    v.push(c); // declining
    let mut now = Instant::ZERO;
    let (mut c, _) = bound_client(&mut now);
    c.release(now);
    fire(&mut c, &mut now);
    v.push(c); // releasing
    let mut now = Instant::ZERO;
    let mut c = Client::new(
        Config {
            mode: ModeSetting::Stateless,
            ..cfg()
        },
        duid(),
        now,
    );
    fire(&mut c, &mut now);
    v.push(c); // informing
    v.push(Client::new(
        Config {
            mode: ModeSetting::Auto,
            ..cfg()
        },
        duid(),
        now,
    ));
    v
}

#[test]
fn every_state_is_covered() {
    let names: Vec<String> = clients_in_every_state()
        .iter()
        .map(|c| c.state().to_string())
        .collect();
    assert_eq!(
        names,
        vec![
            "SOLICITING",
            "REQUESTING",
            "BOUND",
            "RENEWING",
            "REBINDING",
            "CONFIRMING",
            "DECLINING",
            "RELEASING",
            "INFORMING",
            "IDLE"
        ]
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        for mut c in clients_in_every_state() {
            let now = c.poll_timeout().unwrap_or(Instant::ZERO);
            c.handle_packet(now, &bytes);
            let _ = c.poll_transmit(now);
            while c.poll_event().is_some() {}
        }
    }

    #[test]
    fn arbitrary_options_after_a_valid_prefix_never_panic(
        t in prop_oneof![Just(2u8), Just(7u8), Just(10u8)],
        tail in proptest::collection::vec(any::<u8>(), 0..400),
        opts in proptest::collection::vec(
            (prop_oneof![Just(3u16), Just(25), Just(13), Just(23), Just(24), Just(56),
                         Just(82), Just(83), Just(32), Just(7), Just(14), Just(5), Just(26)],
             proptest::collection::vec(any::<u8>(), 0..80)),
            0..6),
    ) {
        for mut c in clients_in_every_state() {
            let xid = c.phase.txn().map(|t| t.xid).unwrap_or(0);
            let mut b = Builder::new(MessageType::from_code(t).unwrap(), xid);
            b.opt(code::CLIENTID, duid().as_bytes());
            b.opt(code::SERVERID, SRV);
            for (code, data) in &opts {
                b.opt(*code, data);
            }
            let mut msg = b.finish();
            msg.extend_from_slice(&tail);
            let now = c.poll_timeout().unwrap_or(Instant::ZERO);
            c.handle_packet(now, &msg);
            let _ = c.poll_transmit(now + Duration::from_secs(1));
            while c.poll_event().is_some() {}
            let _ = c.poll_timeout();
            let _ = c.lease();
        }
    }
}

#[test]
fn renew_on_demand_sends_renew_at_once() {
    let mut now = Instant::ZERO;
    let (mut c, l) = bound_client(&mut now);
    now += Duration::from_secs(10);
    c.renew(now);
    let t = c.poll_transmit(now).expect("Renew at once, not at T1");
    assert_eq!(t.msg_type, MessageType::Renew);
    assert_eq!(parsed(&t).server_id.as_deref(), Some(SRV));
    c.handle_packet(now, &Srv::new(SRV).reply(&t.payload));
    match events(&mut c).as_slice() {
        [Event6::Renewed(n)] => assert_eq!(n.addresses[0].addr, l.addresses[0].addr),
        other => panic!("expected Renewed, got {other:?}"),
    }
}

// ----- the shared engine surface --------------------------------------------------------

#[test]
fn stop_reports_the_lease_lost_and_nothing_restarts_it_but_start() {
    let mut now = Instant::ZERO;
    let (mut c, l) = bound_client(&mut now);
    c.stop(now);
    assert_eq!(
        events(&mut c),
        vec![Event6::Lost {
            lease: l,
            reason: LostReason::Stopped
        }]
    );
    assert_eq!(c.state(), State::Stopped);
    assert_eq!(c.state().to_string(), "STOPPED");
    assert_eq!(c.poll_timeout(), None);
    // Neither an RA nor a link flap wakes a stopped client.
    c.ra_flags(now, true, false);
    c.link_changed(now, false);
    c.link_changed(now, true);
    assert_eq!(c.state(), State::Stopped);
    assert!(c.poll_transmit(now + Duration::from_secs(60)).is_none());
    c.start(now);
    assert_eq!(fire(&mut c, &mut now).msg_type, MessageType::Solicit);
}

#[test]
fn handle_timeout_runs_timers_without_sending() {
    let mut now = Instant::ZERO;
    let (mut c, l) = bound_client(&mut now);
    let t1 = l.renew_at().unwrap();
    c.handle_timeout(t1);
    assert_eq!(c.state(), State::Renewing);
    // The Renew itself is left for poll_transmit, due at once.
    assert_eq!(c.poll_timeout(), Some(t1));
    assert_eq!(c.poll_transmit(t1).unwrap().msg_type, MessageType::Renew);
}

#[test]
fn resend_now_repeats_the_message_in_flight_with_the_same_transaction() {
    let mut now = Instant::ZERO;
    let mut c = Client::new(cfg(), duid(), now);
    // Nothing has been sent yet: nothing to repeat.
    c.resend_now(now);
    let first = fire(&mut c, &mut now);
    assert!(c.poll_transmit(now).is_none());
    c.resend_now(now);
    let again = c.poll_transmit(now).expect("sent again at once");
    assert_eq!(again.msg_type, MessageType::Solicit);
    assert_eq!(parsed(&again).xid, parsed(&first).xid);
}

#[test]
fn the_hardware_address_is_not_the_identity() {
    let mut now = Instant::ZERO;
    let (mut c, _) = bound_client(&mut now);
    c.hw_address_changed(now, [2, 0, 0, 0, 0, 0x99]);
    assert_eq!(c.state(), State::Bound);
    assert!(c.poll_event().is_none());
}

#[test]
fn vendor_class_and_extra_options_in_every_message_but_release() {
    let mut now = Instant::ZERO;
    let mut c = Client::new(
        Config {
            vendor_class: Some((32473, b"nb".to_vec())),
            extra_options: vec![(17, vec![0, 0, 0x7e, 0x59]), (65001, b"rack-7".to_vec())],
            ..cfg()
        },
        duid(),
        now,
    );
    let sol = fire(&mut c, &mut now);
    let has = |t: &Transmit6, o: &[u8]| t.payload.windows(o.len()).any(|w| w == o);
    let vc = [0, 16, 0, 8, 0, 0, 0x7e, 0xd9, 0, 2, b'n', b'b'];
    let x17 = [0, 17, 0, 4, 0, 0, 0x7e, 0x59];
    let x65001 = [0xfd, 0xe9, 0, 6, b'r', b'a', b'c', b'k', b'-', b'7'];
    for o in [&vc[..], &x17, &x65001] {
        assert!(has(&sol, o), "Solicit lacks {o:?}");
    }
    let l = {
        let srv = Srv::new(SRV);
        c.handle_packet(now, &srv.advertise(&sol.payload));
        let req = fire(&mut c, &mut now);
        assert!(has(&req, &vc) && has(&req, &x65001), "Request");
        c.handle_packet(now, &srv.reply(&req.payload));
        c.lease().cloned().unwrap()
    };
    assert!(!l.addresses.is_empty());
    c.release(now);
    let rel = c.poll_transmit(now).unwrap();
    assert_eq!(rel.msg_type, MessageType::Release);
    assert!(
        !has(&rel, &vc) && !has(&rel, &x65001),
        "Release carries only what it must"
    );
}

#[test]
fn captive_portal_uri_from_the_reply_is_checked() {
    let run = |uri: &[u8]| {
        let mut now = Instant::ZERO;
        let mut c = Client::new(cfg(), duid(), now);
        let srv = Srv {
            extra: vec![(code::CAPTIVE_PORTAL, uri.to_vec())],
            ..Srv::new(SRV)
        };
        bind(&mut c, &mut now, &srv).captive_portal
    };
    assert_eq!(
        run(b"https://portal.example/"),
        Some("https://portal.example/".into())
    );
    assert_eq!(run(b"https://x\x1b]0;pwned\x07"), None);
    assert_eq!(run(b"urn:ietf:params:capport:unrestricted"), None);
}
