//! Multi-interface mode: one netbond process serving several interfaces (the container
//! host case), against one real dnsmasq serving a subnet per interface.

use crate::lab::{self, parse_hex, DnsmasqOpts, Lab, Lease, TIMEOUT};
use crate::operate::cli;
use crate::wait_nb;
use std::fs;
use std::net::Ipv4Addr;
use std::time::Duration;

/// c1 and c2 (client ns) <-> s1 and s2 (server ns), on 10.78.<n>/24 and 10.79.<n>/24.
fn add_pair(lab: &Lab, k: u8) {
    let (s, c) = (format!("s{k}"), format!("c{k}"));
    let mac = format!("02:78:{:02x}:00:00:{k:02x}", lab.n);
    lab.ip(
        &lab.sns,
        &[
            "link", "add", &s, "type", "veth", "peer", "name", &c, "address", &mac, "netns",
            &lab.cns,
        ],
    );
    let a4 = format!("{}/24", gw(lab, k));
    lab.ip(&lab.sns, &["addr", "add", &a4, "dev", &s]);
    lab.ip(&lab.sns, &["link", "set", &s, "up"]);
    lab.ip(&lab.cns, &["link", "set", &c, "up"]);
}

/// The server's address on pair `k` (pair 0 is the lab's own 10.77.<n>.1).
fn gw(lab: &Lab, k: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 77 + k, lab.n, 1)
}

/// dnsmasq options for the extra pairs: their interfaces, ranges, and their own router
/// and option 121 (tagged by interface name, so they win over the lab's defaults).
fn extra_dnsmasq(lab: &Lab, pairs: &[u8]) -> Vec<String> {
    let mut v = Vec::new();
    for &k in pairs {
        let g = gw(lab, k);
        let net = format!("10.{}.{}", 77 + k, lab.n);
        v.push(format!("--interface=s{k}"));
        v.push(format!("--dhcp-range={net}.50,{net}.150,255.255.255.0,2m"));
        v.push(format!("--dhcp-option=tag:s{k},option:router,{g}"));
        v.push(format!(
            "--dhcp-option=tag:s{k},option:classless-static-route,0.0.0.0/0,{g}"
        ));
        v.push(format!("--dhcp-option=tag:s{k},option:dns-server,{g}"));
    }
    v
}

/// The IPv4 address on c<k> inside 10.<77+k>.<n>.50-150.
fn addr_on(lab: &Lab, k: u8) -> Option<Ipv4Addr> {
    addr_in(lab, k, 77 + k)
}

/// The IPv4 address on c<k> inside 10.<net>.<n>.50-150.
fn addr_in(lab: &Lab, k: u8, net: u8) -> Option<Ipv4Addr> {
    let out = lab.exec(
        &lab.cns,
        &["ip", "-4", "-o", "addr", "show", "dev", &format!("c{k}")],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace()
        .filter_map(|w| w.split('/').next()?.parse::<Ipv4Addr>().ok())
        .find(|a| {
            let o = a.octets();
            o[0] == 10 && o[1] == net && o[2] == lab.n && (50..=150).contains(&o[3])
        })
}

/// `metric` of the default route via `dev`, if there is one.
fn default_metric(lab: &Lab, dev: &str) -> Option<u32> {
    let out = lab.ip(&lab.cns, &["-4", "route", "show", "default", "dev", dev]);
    let words: Vec<&str> = out.split_whitespace().collect();
    let i = words.iter().position(|w| *w == "metric")?;
    words.get(i + 1)?.parse().ok()
}

fn dnsmasq_log(lab: &Lab) -> String {
    fs::read_to_string(lab.dnsmasq_log()).unwrap_or_default()
}

#[test]
fn one_process_serves_three_interfaces() {
    let mut lab = Lab::new("multi");
    add_pair(&lab, 1);
    add_pair(&lab, 2);
    lab.start_dnsmasq(DnsmasqOpts {
        range6: None,
        extra: extra_dnsmasq(&lab, &[1, 2]),
        ..DnsmasqOpts::default()
    });
    // The SIGTERM at the end is a deliberate stop (the default keeps the network).
    lab.write_config("[daemon]\non_stop = \"release\"\n");
    // c0 comes from the lab's command line; c1 and c2 from a repeated and a comma list.
    let mut nb = lab.start_netbond(&["--no-dhcp6", "--iface", "c1,c2"]);
    let addrs: Vec<Ipv4Addr> = (0..3)
        .map(|k| {
            wait_nb(&mut nb, TIMEOUT, &format!("a lease on c{k}"), || {
                addr_on(&lab, k)
            })
        })
        .collect();
    eprintln!("leases: {addrs:?}");

    // One identity: every client-id is RFC 4361 (0xff, IAID, DUID) with the same DUID
    // and a different IAID per interface.
    let leases = lab.leases();
    let mut ids: Vec<Vec<u8>> = Vec::new();
    for a in &addrs {
        let cid = leases
            .v4
            .iter()
            .find_map(|l| match l {
                Lease::V4 { ip, client_id, .. } if ip == a => parse_hex(client_id),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no dnsmasq lease for {a}: {leases:?}"));
        assert_eq!(cid[0], 0xff, "client-id {cid:02x?} is not RFC 4361");
        ids.push(cid);
    }
    assert!(
        ids.iter().all(|c| c[5..] == ids[0][5..]),
        "the DUIDs differ: {ids:02x?}"
    );
    let mut iaids: Vec<&[u8]> = ids.iter().map(|c| &c[1..5]).collect();
    iaids.sort();
    iaids.dedup();
    assert_eq!(iaids.len(), 3, "IAIDs are not distinct: {ids:02x?}");

    // Each interface has its own default route; the first listed is preferred. The
    // routes follow the address by a moment: wait for them.
    let metrics = || -> Vec<Option<u32>> {
        (0..3)
            .map(|k| default_metric(&lab, &format!("c{k}")))
            .collect()
    };
    lab::wait_until(TIMEOUT, || metrics().iter().all(Option::is_some));
    let metrics = metrics();
    assert_eq!(
        metrics,
        vec![Some(1024), Some(1025), Some(1026)],
        "default route metrics: {}",
        lab.ip(&lab.cns, &["-4", "route", "show", "default"])
    );

    // status: every interface, or the one asked for.
    let o = cli(&lab, &["status", "--json"]);
    assert!(o.status.success(), "status failed: {o:?}");
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).expect("status is JSON");
    let list = st["interfaces"].as_array().expect("an interfaces array");
    let names: Vec<&str> = list
        .iter()
        .filter_map(|i| i["interface"]["name"].as_str())
        .collect();
    assert_eq!(names, ["c0", "c1", "c2"]);
    for (i, a) in list.iter().zip(&addrs) {
        assert_eq!(i["dhcp4"]["state"], "BOUND");
        assert_eq!(i["dhcp4"]["lease"]["address"], a.to_string());
    }
    assert_eq!(
        st["interface"]["name"], "c0",
        "top level = the first interface"
    );
    let o = cli(&lab, &["status", "--json", "c1"]);
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).expect("status is JSON");
    assert_eq!(st["interface"]["name"], "c1");
    assert_eq!(st["interfaces"].as_array().map(Vec::len), Some(1));
    let o = cli(&lab, &["status", "eth9"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "status of an unmanaged interface: {o:?}"
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("does not manage"),
        "{o:?}"
    );
    let human = String::from_utf8_lossy(&cli(&lab, &["status"]).stdout).into_owned();
    for k in 0..3 {
        assert!(human.contains(&format!("Interface: c{k}")), "{human}");
    }

    // renew one interface: only its server port sees a REQUEST.
    let mark = dnsmasq_log(&lab).len();
    let o = cli(&lab, &["renew", "--v4", "c1"]);
    assert!(o.status.success(), "renew c1: {o:?}");
    wait_nb(&mut nb, TIMEOUT, "a DHCPREQUEST from c1", || {
        dnsmasq_log(&lab)[mark..]
            .contains(&format!("DHCPACK(s1) {}", addrs[1]))
            .then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    let since = dnsmasq_log(&lab)[mark..].to_string();
    assert!(
        !since.contains("DHCPREQUEST(s0)") && !since.contains("DHCPREQUEST(s2)"),
        "renew c1 renewed other interfaces too:\n{since}"
    );

    // Remove c1: the others keep their leases; it comes back with its address.
    lab.ip(&lab.sns, &["link", "del", "s1"]);
    std::thread::sleep(Duration::from_millis(500));
    nb.assert_alive();
    assert_eq!(addr_on(&lab, 0), Some(addrs[0]));
    assert_eq!(addr_on(&lab, 2), Some(addrs[2]));
    add_pair(&lab, 1);
    let back = wait_nb(&mut nb, TIMEOUT, "c1's lease after re-creation", || {
        addr_on(&lab, 1)
    });
    assert_eq!(back, addrs[1], "c1 came back with another address");

    // SIGTERM (on_stop = "release"): every lease released, every address removed, exit 0.
    let mark = dnsmasq_log(&lab).len();
    nb.kill(libc::SIGTERM);
    let st = nb
        .wait_exit(Duration::from_secs(5))
        .expect("netbond did not exit within 5 s of SIGTERM");
    assert!(st.success(), "exit status {st}");
    let ok = lab::wait_until(Duration::from_secs(3), || {
        let log = dnsmasq_log(&lab);
        (0..3).all(|k| log[mark..].contains(&format!("DHCPRELEASE(s{k}) {}", addrs[k as usize])))
    });
    assert!(
        ok,
        "not every lease was released:\n{}",
        &dnsmasq_log(&lab)[mark..]
    );
    for k in 0..3 {
        assert_eq!(addr_on(&lab, k), None, "c{k} still has its address");
    }
}

/// Send `count` ARP replies out of `dev` (client namespace) every 100 ms claiming `spa`
/// with `dev`'s own MAC: what Linux does when another local interface answers (or
/// sends) for an address of this host (arp_ignore=0, arp_announce=0).
fn send_local_arp_claims(cns: String, dev: &'static str, mac: [u8; 6], spa: Ipv4Addr, count: u32) {
    crate::lab::enter_netns(&cns);
    let c_dev = std::ffi::CString::new(dev).unwrap();
    // SAFETY: plain socket calls on a descriptor this thread owns.
    let ifindex = unsafe { libc::if_nametoindex(c_dev.as_ptr()) };
    assert!(ifindex > 0, "{dev} not found");
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM, 0x0806u16.to_be() as i32) };
    assert!(
        fd >= 0,
        "packet socket: {}",
        std::io::Error::last_os_error()
    );
    let mut arp = [0u8; 28];
    arp[..8].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
    arp[8..14].copy_from_slice(&mac);
    arp[14..18].copy_from_slice(&spa.octets());
    arp[18..24].copy_from_slice(&[0xff; 6]);
    arp[24..28].copy_from_slice(&spa.octets());
    for _ in 0..count {
        lab::send_arp_broadcast(fd, ifindex, &arp);
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd) };
}

/// Two interfaces of one host on one LAN: Linux answers ARP for either address on
/// either interface, so c1 may claim c2's address with c1's MAC. That is no conflict:
/// c2 must keep its address (a false DECLINE here cost a 256-interface host seconds).
#[test]
fn two_interfaces_on_one_lan_do_not_conflict_with_each_other() {
    let mut lab = Lab::new("multilan");
    // s1 and s2 in one bridge with the server address: one LAN.
    lab.ip(
        &lab.sns,
        &[
            "link",
            "add",
            "name",
            "lanbr",
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
        ],
    );
    for k in [1u8, 2] {
        let (s, c) = (format!("s{k}"), format!("c{k}"));
        let mac = format!("02:79:{:02x}:00:00:{k:02x}", lab.n);
        lab.ip(
            &lab.sns,
            &[
                "link", "add", &s, "type", "veth", "peer", "name", &c, "address", &mac, "netns",
                &lab.cns,
            ],
        );
        lab.ip(&lab.sns, &["link", "set", &s, "master", "lanbr", "up"]);
        lab.ip(&lab.cns, &["link", "set", &c, "up"]);
    }
    let g = gw(&lab, 1);
    lab.ip(
        &lab.sns,
        &["addr", "add", &format!("{g}/24"), "dev", "lanbr"],
    );
    lab.ip(&lab.sns, &["link", "set", "lanbr", "up"]);
    let net = format!("10.78.{}", lab.n);
    lab.start_dnsmasq(DnsmasqOpts {
        range6: None,
        extra: vec![
            "--interface=lanbr".into(),
            format!("--dhcp-range={net}.50,{net}.150,255.255.255.0,2m"),
            format!("--dhcp-option=tag:lanbr,option:router,{g}"),
            format!("--dhcp-option=tag:lanbr,option:classless-static-route,0.0.0.0/0,{g}"),
        ],
        ..DnsmasqOpts::default()
    });
    let mut nb = lab.start_netbond(&["--no-dhcp6", "--iface", "c1,c2"]);
    let a2 = wait_nb(&mut nb, TIMEOUT, "a lease on c2", || addr_in(&lab, 2, 78));
    // Inside c2's conflict-check window (1.2 s after binding): c1 claims c2's address.
    let cns = lab.cns.clone();
    let c1_mac = lab::parse_mac(&format!("02:79:{:02x}:00:00:01", lab.n));
    std::thread::spawn(move || send_local_arp_claims(cns, "c1", c1_mac, a2, 15))
        .join()
        .unwrap();
    nb.assert_alive();
    let log = nb.log();
    assert!(
        !log.contains("address conflict"),
        "a claim by another interface of this host was taken for a conflict:\n{log}"
    );
    assert!(
        !dnsmasq_log(&lab).contains("DHCPDECLINE"),
        "netbond declined its address"
    );
    assert_eq!(addr_in(&lab, 2, 78), Some(a2), "c2 lost its address");
    assert!(addr_in(&lab, 1, 78).is_some(), "c1 has no lease");
}

/// Issue 18: one process starts 64 interfaces on one LAN (a bridge in the server
/// namespace: c0 from the lab plus m1..m63), every one gets a lease, every lease is on
/// disk, and status proves that no lease save (nor any other durable write) ran on the
/// event-loop thread: they all went through the writer thread.
#[test]
fn sixty_four_interfaces_in_one_process_no_save_on_the_loop() {
    const N: usize = 64;
    let mut lab = Lab::new("multi64");
    let net = format!("10.78.{}", lab.n);
    let mut srv = vec![
        "link add br0 type bridge stp_state 0 forward_delay 0".to_string(),
        format!("addr add {net}.1/24 dev br0"),
        "link set br0 up".to_string(),
    ];
    for k in 1..N {
        srv.push(format!(
            "link add s{k} type veth peer name m{k} netns {}",
            lab.cns
        ));
        srv.push(format!("link set s{k} master br0 up"));
    }
    let batch = lab.path("batch-srv");
    fs::write(&batch, srv.join("\n") + "\n").unwrap();
    lab.ip(&lab.sns, &["-batch", batch.to_str().unwrap()]);
    let cli_batch = lab.path("batch-cli");
    let up: String = (1..N).map(|k| format!("link set m{k} up\n")).collect();
    fs::write(&cli_batch, up).unwrap();
    lab.ip(&lab.cns, &["-batch", cli_batch.to_str().unwrap()]);
    lab.start_dnsmasq(DnsmasqOpts {
        range6: None,
        extra: vec![
            "--interface=br0".into(),
            format!("--dhcp-range={net}.10,{net}.250,255.255.255.0,2m"),
        ],
        ..DnsmasqOpts::default()
    });
    let names: Vec<String> = (1..N).map(|k| format!("m{k}")).collect();
    let list = names.join(",");
    let t0 = std::time::Instant::now();
    let mut nb = lab.start_netbond(&["--no-dhcp6", "--iface", &list]);
    let leased = |lab: &Lab| -> usize {
        let out = lab.ip(&lab.cns, &["-4", "-o", "addr", "show", "scope", "global"]);
        out.lines()
            .filter(|l| {
                let dev = l.split_whitespace().nth(1).unwrap_or("");
                (dev == "c0" && l.contains(&format!("10.77.{}.", lab.n)))
                    || (dev.starts_with('m') && l.contains(&format!(" {net}.")))
            })
            .count()
    };
    wait_nb(
        &mut nb,
        Duration::from_secs(90),
        "a lease on all 64 interfaces",
        || (leased(&lab) == N).then_some(()),
    );
    eprintln!("64 interfaces leased in {:?}", t0.elapsed());

    // Every save done (the queue drained), none on the loop thread.
    let status = |lab: &Lab| -> serde_json::Value {
        let o = cli(lab, &["status", "--json"]);
        assert!(o.status.success(), "status failed: {o:?}");
        serde_json::from_slice(&o.stdout).expect("status is JSON")
    };
    let st = wait_nb(&mut nb, TIMEOUT, "the lease writer to drain", || {
        let st = status(&lab);
        (st["stats"]["lease_writes"]["pending"] == 0).then_some(st)
    });
    eprintln!("stats: {}", st["stats"]);
    assert_eq!(
        st["stats"]["saves_on_loop"], 0,
        "a durable write ran on the event loop: {}",
        st["stats"]
    );
    let w = &st["stats"]["lease_writes"];
    let handled = w["done"].as_u64().unwrap() + w["coalesced"].as_u64().unwrap();
    assert!(handled >= N as u64, "only {handled} lease saves: {w}");
    let ifaces = st["interfaces"].as_array().expect("interfaces");
    assert_eq!(ifaces.len(), N);
    assert!(
        ifaces.iter().all(|i| i["dhcp4"]["state"] == "BOUND"),
        "not all BOUND"
    );
    // The start window was used and saw the leases.
    assert!(
        st["stats"]["start_window"]["ok"].as_u64().unwrap_or(0) >= 16,
        "{}",
        st["stats"]["start_window"]
    );
    // Each lease is on disk with the address the interface has.
    for i in ifaces {
        let name = i["interface"]["name"].as_str().unwrap();
        let file = lab.dir.join("state").join(format!("lease4-{name}.json"));
        let text = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let addr = i["dhcp4"]["lease"]["address"].as_str().unwrap();
        assert!(
            text.contains(&format!("\"address\": \"{addr}\"")),
            "{name}: saved lease does not hold {addr}:\n{text}"
        );
    }
    nb.kill(libc::SIGKILL);
    let _ = nb.wait_exit(Duration::from_secs(5));
}
