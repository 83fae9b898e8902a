//! Network-namespace integration tests: netbond against a real dnsmasq over a veth
//! pair, with assertions on the client interface (addresses, routes, MTU), the files
//! netbond writes, and the packets captured at the server.
//!
//! Needs root plus `ip`, `dnsmasq`, `nft` and `tcpdump` (see `../lab/`, the lab shared
//! with the hostile tier). Each test has its own lab (namespaces, dnsmasq, temp dir), so
//! they run in parallel.

mod cni;
mod events;
mod fallback;
mod faults;
#[path = "../lab/mod.rs"]
mod lab;
mod multi;
mod operate;
mod options;
mod reload;
mod stop;

use std::fs;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::thread;
use std::time::{Duration, Instant};

use lab::pcap::{self, Packet};
use lab::{
    hex, mac_str, netns_exists, parse_hex, parse_mac, pid_alive, DnsmasqOpts, Lab, Lease, Netbond,
    TIMEOUT,
};
use netbond_proto::testkit::v4;

/// Wait until `f` yields a value, failing fast (with the log) if netbond dies, and
/// failing with `what` after `timeout`.
pub(crate) fn wait_nb<T>(
    nb: &mut Netbond,
    timeout: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        nb.assert_alive();
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Start dnsmasq (default options) and netbond, and wait for a v4 lease on c0.
fn start_bound(lab: &mut Lab, opts: DnsmasqOpts, extra: &[&str]) -> (Netbond, Ipv4Addr) {
    let (lo, hi) = opts.range4;
    lab.start_dnsmasq(opts);
    let mut nb = lab.start_netbond(extra);
    let a = wait_nb(&mut nb, TIMEOUT, "a DHCPv4 address on c0", || {
        lab.addr4_in(lo, hi)
    });
    (nb, a.addr)
}

/// resolv.conf as it was before netbond, for the tests that check it is restored.
pub(crate) const ORIGINAL_RESOLV: &str = "# original resolv.conf\nnameserver 192.0.2.53\n";

/// With [`ORIGINAL_RESOLV`] in the lab's resolv.conf, start dnsmasq (default options) and
/// netbond (default flags) and wait for the v4 and v6 addresses and for netbond's
/// resolv.conf, which is returned with them.
pub(crate) fn start_dual_stack(lab: &mut Lab) -> (Netbond, Ipv4Addr, lab::Addr6, String) {
    fs::write(lab.resolv_conf(), ORIGINAL_RESOLV).unwrap();
    let (mut nb, a) = start_bound(lab, DnsmasqOpts::default(), &[]);
    let a6 = wait_nb(&mut nb, TIMEOUT, "a DHCPv6 address", || {
        lab.addr6_in(0x100, 0x1ff)
    });
    let written = wait_nb(&mut nb, TIMEOUT, "resolv.conf rewritten", || {
        fs::read_to_string(lab.resolv_conf())
            .ok()
            .filter(|s| s != ORIGINAL_RESOLV)
    });
    (nb, a, a6, written)
}

/// After a restart, with a capture running: the first DHCPREQUEST must be an
/// INIT-REBOOT for `addr` (option 50 = `addr`, ciaddr 0; `which` names the address in
/// the failure), and it must be ACKed. Returns the REQUEST.
pub(crate) fn wait_init_reboot(
    lab: &Lab,
    nb: &mut Netbond,
    addr: Ipv4Addr,
    which: &str,
) -> pcap::Dhcp4 {
    let req = wait_nb(nb, TIMEOUT, "an INIT-REBOOT DHCPREQUEST", || {
        v4_sent(&lab.packets(), pcap::DHCPREQUEST)
            .first()
            .map(|p| p.v4().unwrap().clone())
    });
    assert_eq!(
        req.requested_ip,
        Some(addr),
        "INIT-REBOOT must request the {which} address"
    );
    assert_eq!(
        req.ciaddr,
        Ipv4Addr::UNSPECIFIED,
        "INIT-REBOOT has ciaddr 0"
    );
    wait_nb(nb, TIMEOUT, "its DHCPACK", || {
        lab.packets()
            .iter()
            .any(|p| p.v4_type() == Some(pcap::DHCPACK) && p.v4().unwrap().xid == req.xid)
            .then_some(())
    });
    req
}

/// Client-sent DHCPv4 packets of the given type.
pub(crate) fn v4_sent(pkts: &[Packet], t: u8) -> Vec<&Packet> {
    pkts.iter()
        .filter(|p| p.dst_port == 67 && p.v4_type() == Some(t))
        .collect()
}

/// Client-sent DHCPv6 packets of the given type.
pub(crate) fn v6_sent(pkts: &[Packet], t: u8) -> Vec<&Packet> {
    pkts.iter()
        .filter(|p| p.dst_port == 547 && p.v6_type() == Some(t))
        .collect()
}

// ------------------------------------------------------------------------ self check

/// Send one DHCPDISCOVER (broadcast flag set) from inside the client namespace with a
/// plain UDP socket.
fn send_discover(lab: &Lab, xid: u32, mac: [u8; 6]) {
    let mut m = v4::Builder::request(v4::DISCOVER, xid, mac);
    m.flags = 0x8000;
    let m = m.build();
    lab::in_netns(&lab.cns, move || {
        let sock = std::net::UdpSocket::bind("0.0.0.0:68").expect("bind :68");
        sock.set_broadcast(true).unwrap();
        let dev = b"c0\0";
        // SAFETY: valid socket and buffer.
        let r = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_BINDTODEVICE,
                dev.as_ptr().cast(),
                dev.len() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0, "SO_BINDTODEVICE: {}", std::io::Error::last_os_error());
        sock.send_to(&m, "255.255.255.255:67")
            .expect("send DISCOVER");
    });
}

/// The lab itself works: namespaces, veth, dnsmasq answering, capture + pcap decode,
/// and cleanup at drop. Does not need netbond.
#[test]
fn lab_self_check() {
    let mut lab = Lab::new("selfcheck");
    let (sns, cns) = (lab.sns.clone(), lab.cns.clone());
    assert!(netns_exists(&sns) && netns_exists(&cns));
    lab.start_dnsmasq_default();
    assert!(lab.dnsmasq_running());
    let dpid = lab.dnsmasq_pid().unwrap();
    lab.capture();
    // A static address so the kernel has a source for the broadcast.
    lab.ip(&lab.cns, &["addr", "add", "10.77.0.9/8", "dev", "c0"]);
    let mac = parse_mac(&lab.mac);
    let xid = 0x4e42_0001;
    send_discover(&lab, xid, mac);
    let ok = lab::wait_until(TIMEOUT, || {
        let p = lab.packets();
        p.iter()
            .any(|p| p.v4_type() == Some(pcap::DHCPDISCOVER) && p.v4().unwrap().xid == xid)
            && p.iter()
                .any(|p| p.v4_type() == Some(pcap::DHCPOFFER) && p.v4().unwrap().xid == xid)
    });
    assert!(
        ok,
        "no DISCOVER/OFFER exchange captured:\n{}",
        lab.packets_summary()
    );
    let pkts = lab.stop_capture();
    let d = pkts
        .iter()
        .find(|p| p.v4_type() == Some(pcap::DHCPDISCOVER))
        .unwrap();
    assert_eq!(d.v4().unwrap().chaddr, mac);
    let o = pkts
        .iter()
        .find(|p| p.v4_type() == Some(pcap::DHCPOFFER))
        .unwrap();
    let off = o.v4().unwrap();
    assert!(lab.in_range4(off.yiaddr, 50, 150), "offer {}", off.yiaddr);
    assert_eq!(
        off.option(26),
        Some(&1400u16.to_be_bytes()[..]),
        "MTU option"
    );
    assert_eq!(off.server_id, Some(lab.gw4()));
    assert!(off.option(121).is_some(), "classless routes option");
    // nft rules load (netdev ingress + egress hooks).
    lab.nft_drop_mac("02:00:00:00:00:01");
    lab.nft_silence_server();
    lab.nft_flush();
    lab.restart_dnsmasq();
    assert!(lab.dnsmasq_running());
    assert!(!pid_alive(dpid), "old dnsmasq still running");
    let dpid = lab.dnsmasq_pid().unwrap();
    lab.delete_link();
    assert!(lab.link().is_null());
    lab.create_link();
    assert_eq!(lab.link()["address"].as_str(), Some(lab.mac.as_str()));
    drop(lab);
    assert!(!netns_exists(&sns), "{sns} left behind");
    assert!(!netns_exists(&cns), "{cns} left behind");
    assert!(!pid_alive(dpid), "dnsmasq left running");
}

// ------------------------------------------------------------------------ scenarios

/// Scenario 1: Cold start: v4 lease with options applied (routes, MTU, DNS), a DHCPv6 address,
/// and one DUID shared by the v4 client identifier (RFC 4361) and DHCPv6.
#[test]
fn cold_start_v4_and_v6_same_duid() {
    let mut lab = Lab::new("cold");
    lab.write_config("[dhcp4]\nroute_metric = 777\n");
    let (mut nb, a) = start_bound(&mut lab, DnsmasqOpts::default(), &[]);
    let gw = lab.gw4().to_string();
    let a4 = lab.addr4_in(50, 150).unwrap();
    assert_eq!(a4.prefix_len, 24, "{a4:?}");
    assert!(
        a4.valid_lft > 0 && a4.valid_lft <= 120,
        "valid_lft should be finite (lease 2m): {a4:?}"
    );
    wait_nb(
        &mut nb,
        TIMEOUT,
        "default and 192.168.n.0/24 routes via the server, metric 777 (from the config)",
        || {
            let r = lab.routes4();
            let via = |dst: &str| {
                r.iter().any(|r| {
                    r.dst == dst
                        && r.gateway.as_deref() == Some(gw.as_str())
                        && r.metric == Some(777)
                })
            };
            let dflt = via("default");
            let cls = via(&format!("192.168.{}.0/24", lab.n));
            (dflt && cls).then_some(())
        },
    );
    wait_nb(&mut nb, TIMEOUT, "MTU 1400 on c0", || {
        (lab.mtu() == Some(1400)).then_some(())
    });
    let want = format!("nameserver {gw}");
    wait_nb(
        &mut nb,
        TIMEOUT,
        "resolv.conf with the v4 DNS server",
        || {
            fs::read_to_string(lab.resolv_conf())
                .ok()
                .filter(|s| s.lines().any(|l| l.trim() == want))
        },
    );
    let a6 = wait_nb(
        &mut nb,
        TIMEOUT,
        "a DHCPv6 address in fd77:n::100-1ff",
        || lab.addr6_in(0x100, 0x1ff),
    );
    assert!(a6.valid_lft <= 120, "{a6:?}");
    // The server's view: the v4 client-id is ff:<IAID>:<DUID> and the v6 lease has the
    // same DUID.
    let leases = wait_nb(
        &mut nb,
        TIMEOUT,
        "v4 and v6 leases in dnsmasq's lease file",
        || {
            let l = lab.leases();
            let v4 =
                l.v4.iter()
                    .any(|x| matches!(x, Lease::V4 { ip, .. } if *ip == a));
            let v6 =
                l.v6.iter()
                    .any(|x| matches!(x, Lease::V6 { ip, .. } if *ip == a6.addr));
            (v4 && v6).then_some(l)
        },
    );
    let cid = leases
        .v4
        .iter()
        .find_map(|x| match x {
            Lease::V4 { ip, client_id, .. } if *ip == a => Some(client_id.clone()),
            _ => None,
        })
        .unwrap();
    let duid6 = leases
        .v6
        .iter()
        .find_map(|x| match x {
            Lease::V6 { ip, duid, .. } if *ip == a6.addr => Some(duid.clone()),
            _ => None,
        })
        .unwrap();
    let cid_b = parse_hex(&cid).unwrap_or_else(|| panic!("v4 client-id {cid:?} not hex"));
    assert!(
        cid_b.len() > 5 && cid_b[0] == 0xff,
        "v4 client-id must be RFC 4361 ff:<iaid>:<duid>, got {cid}"
    );
    let duid_b = parse_hex(&duid6).unwrap();
    assert_eq!(
        hex(&cid_b[5..]),
        hex(&duid_b),
        "v4 client-id DUID part and the DHCPv6 DUID differ"
    );
    nb.assert_alive();
}

/// Scenario 2: The MAC changes under a bound lease (bond failover to a port where only the new
/// MAC is heard): netbond re-confirms the same address with the new chaddr, and the
/// address never leaves the interface.
#[test]
fn mac_change_keeps_address() {
    let mut lab = Lab::new("macchg");
    let (mut nb, a) = start_bound(&mut lab, DnsmasqOpts::default(), &[]);
    let a6 = wait_nb(&mut nb, TIMEOUT, "a DHCPv6 address", || {
        lab.addr6_in(0x100, 0x1ff)
    });
    lab.monitor_addresses();
    lab.capture();
    let old = lab.mac.clone();
    let new = format!("02:77:{:02x}:00:00:02", lab.n);
    lab.nft_drop_mac(&old);
    let t0 = Instant::now();
    // Capture timestamps are wall-clock seconds; every client packet from here on is
    // after the change.
    let changed_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    lab.set_mac(&new);
    let newb = parse_mac(&new);
    let req = wait_nb(
        &mut nb,
        Duration::from_secs(10),
        "a DHCPREQUEST with the new chaddr and option 50 = the bound address",
        || {
            v4_sent(&lab.packets(), pcap::DHCPREQUEST)
                .into_iter()
                .find(|p| {
                    let d = p.v4().unwrap();
                    d.chaddr == newb && d.requested_ip == Some(a)
                })
                .cloned()
        },
    );
    eprintln!("re-confirmation REQUEST after {:?}", t0.elapsed());
    let xid = req.v4().unwrap().xid;
    wait_nb(&mut nb, TIMEOUT, "the DHCPACK to that REQUEST", || {
        lab.packets()
            .iter()
            .any(|p| p.v4_type() == Some(pcap::DHCPACK) && p.v4().unwrap().xid == xid)
            .then_some(())
    });
    thread::sleep(Duration::from_millis(500));
    assert!(
        lab.addr4_in(50, 150).map(|x| x.addr) == Some(a),
        "address changed or lost: {:?}",
        lab.addrs4()
    );
    let del = lab.monitor_deleted(&a.to_string());
    assert!(del.is_empty(), "v4 address was removed meanwhile: {del:?}");
    assert!(
        lab.global_addrs6().iter().any(|x| x.addr == a6.addr),
        "IPv6 address {} lost: {:?}",
        a6.addr,
        lab.addrs6()
    );
    // After the change no DHCPv4 client packet may carry the old MAC, in chaddr or
    // as the frame's source: the server (or AP) only hears the new one, so such a
    // packet is lost, and a server that did hear it would bind the lease to a MAC
    // the host no longer has. The capture point sees frames before the nftables drop.
    let pkts = lab.packets();
    let stale: Vec<String> = pkts
        .iter()
        .filter(|p| p.dst_port == 67 && p.ts >= changed_at)
        .filter_map(|p| {
            let d = p.v4()?;
            (d.chaddr != newb || p.src_mac != newb).then(|| {
                format!(
                    "type {:?} xid {:#x} chaddr {} from {}",
                    p.v4_type(),
                    d.xid,
                    mac_str(&d.chaddr),
                    mac_str(&p.src_mac)
                )
            })
        })
        .collect();
    assert!(
        stale.is_empty(),
        "DHCPv4 sent with the old MAC {old} after the change: {stale:?}\n{}",
        pcap::summary(&pkts)
    );
    assert!(
        pkts.iter().any(|p| p.dst_port == 67 && p.ts >= changed_at),
        "the capture holds no client packet after the change (clock mismatch?)\n{}",
        pcap::summary(&pkts)
    );
    nb.assert_alive();
}

/// Scenario 3: kill -9 then restart with the same state dir: INIT-REBOOT (REQUEST, no
/// DISCOVER), same address, never removed from c0.
#[test]
fn restart_keeps_address() {
    let mut lab = Lab::new("restart");
    let (mut nb, a) = start_bound(&mut lab, DnsmasqOpts::default(), &[]);
    let a6 = wait_nb(&mut nb, TIMEOUT, "a DHCPv6 address", || {
        lab.addr6_in(0x100, 0x1ff)
    });
    // Let it persist the leases.
    thread::sleep(Duration::from_secs(1));
    lab.monitor_addresses();
    nb.kill(libc::SIGKILL);
    assert!(
        nb.wait_exit(Duration::from_secs(5)).is_some(),
        "kill -9 did not kill"
    );
    lab.capture();
    let mut nb2 = lab.start_netbond(&[]);
    wait_init_reboot(&lab, &mut nb2, a, "saved");
    thread::sleep(Duration::from_millis(500));
    let pkts = lab.packets();
    assert!(
        v4_sent(&pkts, pcap::DHCPDISCOVER).is_empty(),
        "DISCOVER sent after restart:\n{}",
        pcap::summary(&pkts)
    );
    assert_eq!(lab.addr4_in(50, 150).map(|x| x.addr), Some(a));
    let del = lab.monitor_deleted(&a.to_string());
    assert!(
        del.is_empty(),
        "address removed across the restart: {del:?}"
    );
    // DHCPv6: Confirm (RFC 8415 18.2.3), never a new Solicit; the same address, kept on c0.
    wait_nb(
        &mut nb2,
        TIMEOUT,
        "a DHCPv6 Reply after the restart",
        || {
            lab.packets()
                .iter()
                .any(|p| p.dst_port == 546 && p.v6_type() == Some(pcap::V6_REPLY))
                .then_some(())
        },
    );
    thread::sleep(Duration::from_millis(500));
    let pkts = lab.packets();
    assert!(
        v6_sent(&pkts, pcap::V6_SOLICIT).is_empty() && !v6_sent(&pkts, pcap::V6_CONFIRM).is_empty(),
        "DHCPv6 after kill -9 must Confirm, not Solicit:\n{}",
        pcap::summary(&pkts)
    );
    assert_eq!(lab.addr6_in(0x100, 0x1ff).map(|x| x.addr), Some(a6.addr));
    let del6 = lab.monitor_deleted(&a6.addr.to_string());
    assert!(
        del6.is_empty(),
        "v6 address removed across the restart: {del6:?}"
    );
    nb2.assert_alive();
}

/// Scenario 4: No server: DISCOVER retransmissions back off per RFC 2131 (4 s, 8 s, ± 1 s);
/// when the server appears, a lease is obtained.
#[test]
fn server_silent_then_back() {
    let mut lab = Lab::new("silent");
    lab.capture();
    let mut nb = lab.start_netbond(&[]);
    let mac = parse_mac(&lab.mac);
    let discovers = |lab: &Lab| -> Vec<f64> {
        v4_sent(&lab.packets(), pcap::DHCPDISCOVER)
            .into_iter()
            .filter(|p| p.src_mac == mac)
            .map(|p| p.ts)
            .collect()
    };
    // Up to 10 s of initial random delay are allowed, then 0 + 4 + 8.
    let ts = wait_nb(
        &mut nb,
        Duration::from_secs(30),
        "three DHCPDISCOVERs",
        || {
            let t = discovers(&lab);
            (t.len() >= 3).then_some(t)
        },
    );
    lab.start_dnsmasq_default();
    let started = Instant::now();
    let g1 = ts[1] - ts[0];
    let g2 = ts[2] - ts[1];
    eprintln!("DISCOVER gaps: {g1:.2} s, {g2:.2} s");
    assert!(
        (2.5..=5.5).contains(&g1) && (6.5..=9.5).contains(&g2),
        "retransmission gaps {g1:.2} s, {g2:.2} s; want ~4 s then ~8 s (RFC 2131 4.1):\n{}",
        lab.packets_summary()
    );
    // Next retransmission is ~16 s after the third.
    let a = wait_nb(
        &mut nb,
        Duration::from_secs(25),
        "a lease once the server is back",
        || lab.addr4_in(50, 150),
    );
    eprintln!(
        "bound {:?} after the server came back: {}",
        started.elapsed(),
        a.addr
    );
}

/// Scenario 5: Renewal at T1 (10 s via option 58) is NAKed by a server that lost the lease and
/// now serves another range: the old address goes, a new one is obtained.
#[test]
fn nak_on_renew() {
    let mut lab = Lab::new("nak");
    let t1 = vec![
        "--dhcp-option=option:T1,10".to_string(),
        "--dhcp-option=option:T2,15".to_string(),
    ];
    let opts = DnsmasqOpts {
        extra: t1.clone(),
        ..DnsmasqOpts::default()
    };
    let (mut nb, a) = start_bound(&mut lab, opts, &[]);
    let bound_at = Instant::now();
    lab.stop_dnsmasq();
    let _ = fs::remove_file(lab.leases_path());
    lab.capture();
    lab.start_dnsmasq(DnsmasqOpts {
        range4: (200, 250),
        extra: t1,
        ..DnsmasqOpts::default()
    });
    wait_nb(
        &mut nb,
        Duration::from_secs(30),
        "a DHCPNAK from the server",
        || {
            lab.packets()
                .iter()
                .any(|p| p.v4_type() == Some(pcap::DHCPNAK))
                .then_some(())
        },
    );
    eprintln!("NAK {:?} after binding", bound_at.elapsed());
    wait_nb(
        &mut nb,
        Duration::from_secs(10),
        "the old address removed",
        || (!lab.addrs4().iter().any(|x| x.addr == a)).then_some(()),
    );
    let b = wait_nb(&mut nb, TIMEOUT, "a new address in .200-.250", || {
        lab.addr4_in(200, 250)
    });
    eprintln!("new address {}", b.addr);
    let pkts = lab.packets();
    let renew = v4_sent(&pkts, pcap::DHCPREQUEST)
        .into_iter()
        .find(|p| p.v4().unwrap().ciaddr == a);
    assert!(
        renew.is_some(),
        "no RENEWING/REBINDING REQUEST with ciaddr {a}:\n{}",
        pcap::summary(&pkts)
    );
}

/// Scenario 6: c0 disappears mid-exchange and comes back (same names): netbond survives and
/// gets a lease on the new interface.
#[test]
fn interface_deleted_and_recreated() {
    let mut lab = Lab::new("ifrecreate");
    lab.capture();
    let mut nb = lab.start_netbond(&[]);
    wait_nb(&mut nb, Duration::from_secs(30), "a DHCPDISCOVER", || {
        (!v4_sent(&lab.packets(), pcap::DHCPDISCOVER).is_empty()).then_some(())
    });
    lab.stop_capture();
    lab.delete_link();
    thread::sleep(Duration::from_secs(1));
    nb.assert_alive();
    lab.create_link();
    lab.start_dnsmasq_default();
    let a = wait_nb(
        &mut nb,
        Duration::from_secs(30),
        "a lease on the re-created c0",
        || lab.addr4_in(50, 150),
    );
    eprintln!("bound {} on the new c0", a.addr);
    nb.assert_alive();
}

/// Scenario 7: SIGTERM with `on_stop = "release"` (the seed's behaviour, now chosen
/// explicitly): exit 0 within 2 s, DHCPRELEASE (and DHCPv6 Release), addresses removed,
/// resolv.conf restored.
#[test]
fn sigterm_releases() {
    let mut lab = Lab::new("sigterm");
    lab.write_config("[daemon]\non_stop = \"release\"\n");
    let original = ORIGINAL_RESOLV;
    let (mut nb, a, a6, _) = start_dual_stack(&mut lab);
    lab.capture();
    let t0 = Instant::now();
    nb.kill(libc::SIGTERM);
    let st = nb.wait_exit(Duration::from_secs(5));
    let took = t0.elapsed();
    let st = st.unwrap_or_else(|| panic!("netbond did not exit within 5 s of SIGTERM"));
    eprintln!("exited {st} after {took:?}");
    assert!(st.success(), "exit status {st}");
    assert!(
        took <= Duration::from_secs(2),
        "SIGTERM took {took:?} (> 2 s)"
    );
    let ok = lab::wait_until(Duration::from_secs(3), || {
        let p = lab.packets();
        !v4_sent(&p, pcap::DHCPRELEASE).is_empty() && !v6_sent(&p, pcap::V6_RELEASE).is_empty()
    });
    let pkts = lab.stop_capture();
    assert!(
        ok,
        "missing DHCPRELEASE and/or DHCPv6 Release:\n{}",
        pcap::summary(&pkts)
    );
    let rel = v4_sent(&pkts, pcap::DHCPRELEASE)[0].v4().unwrap().clone();
    assert_eq!(rel.ciaddr, a, "RELEASE ciaddr");
    let rel6 = v6_sent(&pkts, pcap::V6_RELEASE)[0].v6().unwrap().clone();
    assert!(
        rel6.ia_addrs.contains(&a6.addr),
        "v6 Release does not name {}: {:?}",
        a6.addr,
        rel6.ia_addrs
    );
    assert!(
        !lab.addrs4().iter().any(|x| x.addr == a),
        "v4 address still on c0: {:?}",
        lab.addrs4()
    );
    assert!(
        !lab.addrs6().iter().any(|x| x.addr == a6.addr),
        "v6 address still on c0: {:?}",
        lab.addrs6()
    );
    assert_eq!(
        fs::read_to_string(lab.resolv_conf()).ok().as_deref(),
        Some(original),
        "resolv.conf not restored"
    );
}
