//! Fallbacks without a DHCP server (issue 17 item 6: RFC 3927 link-local, the static
//! fallback) and prefix delegation handed on (item 7, against Kea's `pd-pools`), with
//! assertions from outside: `ip addr` / `ip route` in the client namespace, ARP seen by
//! tcpdump in the server namespace, the events on the control socket.

use crate::events::raw_monitor;
use crate::lab::{self, tools, DnsmasqOpts, Lab, TIMEOUT};
use crate::operate::cli;
use crate::wait_nb;
use netbond_proto::ipv4ll::candidate;
use serde_json::{json, Value};
use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Probing (up to 1 + 2 x 2 s), the claim 2 s after the last probe, and slack.
const LL_TIMEOUT: Duration = Duration::from_secs(20);

/// tcpdump printing ARP on s0 (server side) as text, killed on drop.
struct ArpCapture {
    child: Child,
    out: PathBuf,
}

impl ArpCapture {
    fn start(lab: &Lab) -> ArpCapture {
        let out = lab.path("arp.txt");
        let err = lab.path("arp.err");
        let child = Command::new(&tools().ip)
            .args(["netns", "exec", &lab.sns])
            .arg(&tools().tcpdump)
            .args(["-i", "s0", "-n", "-l", "-Z", "root", "arp"])
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap())
            .spawn()
            .expect("spawn tcpdump");
        assert!(
            lab::wait_until(TIMEOUT, || fs::read_to_string(&err)
                .unwrap_or_default()
                .contains("listening on")),
            "tcpdump (ARP) did not start"
        );
        ArpCapture { child, out }
    }

    fn text(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }
}

impl Drop for ArpCapture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn c0_mac(lab: &Lab) -> [u8; 6] {
    lab::parse_mac(&lab.mac)
}

/// The 169.254/16 addresses on c0.
fn ll_addrs(lab: &Lab) -> Vec<Ipv4Addr> {
    lab.addrs4()
        .into_iter()
        .filter(|a| a.addr.octets()[..2] == [169, 254])
        .inspect(|a| assert_eq!(a.prefix_len, 16, "link-local is a /16: {a:?}"))
        .map(|a| a.addr)
        .collect()
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

/// DHCPv4 only, retransmitting at most every 4 s (so a server started later is found
/// quickly), plus `more` in `[dhcp4]`.
fn v4_only(more: &str) -> String {
    format!("[dhcp4]\nmax_interval = 4.0\n{more}\n[dhcp6]\nenabled = false\n")
}

/// No server: the MAC's link-local address is probed for, announced and configured
/// (a /16, no default route); a server appearing later brings a lease, and the
/// link-local address goes away with the events telling both.
#[test]
fn ipv4ll_without_a_server_and_dropped_when_a_lease_is_bound() {
    let mut lab = Lab::new("ipv4ll");
    lab.write_config(&v4_only("link_local = \"fallback\"\nlink_local_after = 0"));
    let arp = ArpCapture::start(&lab);
    let mut nb = lab.start_netbond(&[]);
    let mon = raw_monitor(&lab, &mut nb, true);
    let want = candidate(c0_mac(&lab), 0);
    let got = wait_nb(&mut nb, LL_TIMEOUT, "a 169.254 address on c0", || {
        ll_addrs(&lab).first().copied()
    });
    assert_eq!(got, want, "the address is the one seeded from c0's MAC");
    // The probes (sender 0.0.0.0) and an announcement (sender = target) on the wire.
    let seen = lab::wait_until(Duration::from_secs(5), || {
        let t = arp.text();
        t.matches(&format!("who-has {want} tell 0.0.0.0")).count() >= 3
            && (t.contains(&format!("who-has {want} tell {want}"))
                || t.contains(&format!("Announcement {want}")))
    });
    assert!(
        seen,
        "no 3 ARP probes + announcement for {want}:\n{}",
        arp.text()
    );
    assert!(
        !lab.routes4().iter().any(|r| r.dst == "default"),
        "link-local must not add a default route: {:?}",
        lab.routes4()
    );
    // Announcing for ANNOUNCE_INTERVAL after the claim, then bound (held, defended).
    let status = || -> Value {
        serde_json::from_slice(&cli(&lab, &["status", "--json"]).stdout).unwrap_or_default()
    };
    let bound = lab::wait_until(Duration::from_secs(5), || {
        status()["dhcp4"]["fallbacks"]["link_local"]["state"] == "bound"
    });
    let st = status();
    assert!(bound, "status: {st}");
    assert_eq!(
        st["dhcp4"]["fallbacks"]["link_local"]["address"],
        want.to_string()
    );
    // A server appears: the lease is bound and the link-local address dropped.
    lab.start_dnsmasq(DnsmasqOpts::default());
    let lease = wait_nb(&mut nb, TIMEOUT * 2, "a DHCPv4 lease", || {
        lab.addr4_in(50, 150)
    });
    assert!(
        lab::wait_until(TIMEOUT, || ll_addrs(&lab).is_empty()),
        "169.254 address still on c0 next to the lease {lease:?}: {:?}",
        lab.addrs4()
    );
    let ok = lab::wait_until(TIMEOUT, || {
        let ev = mon.events();
        !of_type(&ev, "ipv4ll-dropped").is_empty() && !of_type(&ev, "dhcp4-bound").is_empty()
    });
    let ev = mon.events();
    assert!(ok, "no ipv4ll-dropped and dhcp4-bound events: {ev:?}");
    let conf = of_type(&ev, "ipv4ll-configured");
    assert_eq!(conf.len(), 1, "{ev:?}");
    assert_eq!(conf[0]["address"], want.to_string());
    assert_eq!(conf[0]["v"], 1);
    let dropped = of_type(&ev, "ipv4ll-dropped");
    assert_eq!(dropped[0]["reason"], "lease", "{ev:?}");
    let seq = |e: &Value| e["seq"].as_u64().unwrap();
    let bound = of_type(&ev, "dhcp4-bound");
    assert!(
        seq(conf[0]) < seq(dropped[0]) && seq(dropped[0]) < seq(bound[0]),
        "{ev:?}"
    );
}

/// The peer holds the MAC's first candidate: the kernel there answers the probe, and
/// netbond takes the second candidate instead.
#[test]
fn ipv4ll_conflict_makes_it_pick_another_address() {
    let mut lab = Lab::new("ipv4ll-conflict");
    let taken = candidate(c0_mac(&lab), 0);
    lab.ip(
        &lab.sns,
        &["addr", "add", &format!("{taken}/16"), "dev", "s0"],
    );
    // Two seconds before probing: the monitor below is subscribed before the
    // conflict is published (events are not replayed to late subscribers).
    lab.write_config(&v4_only("link_local = \"fallback\"\nlink_local_after = 2"));
    let mut nb = lab.start_netbond(&[]);
    let mon = raw_monitor(&lab, &mut nb, true);
    let got = wait_nb(&mut nb, LL_TIMEOUT * 2, "a 169.254 address on c0", || {
        ll_addrs(&lab).first().copied()
    });
    assert_ne!(got, taken, "took the address the peer holds");
    assert_eq!(
        got,
        candidate(c0_mac(&lab), 1),
        "the MAC's second candidate"
    );
    let ev = mon.events();
    let conflicts = of_type(&ev, "ipv4ll-conflict");
    assert!(
        conflicts.iter().any(|e| e["address"] == taken.to_string()),
        "no ipv4ll-conflict for {taken}: {ev:?}"
    );
}

/// The static fallback: nothing before fallback_after, then address, default route and
/// DNS; all of it gone when a server's lease arrives.
#[test]
fn static_fallback_after_its_time_and_dropped_when_a_lease_arrives() {
    let mut lab = Lab::new("fallback");
    let n = lab.n;
    let addr = Ipv4Addr::new(192, 168, n, 50);
    let router = format!("192.168.{n}.1");
    lab.write_config(&v4_only(&format!(
        "fallback_address = \"{addr}/24\"\nfallback_router = \"{router}\"\n\
         fallback_dns = [\"192.0.2.53\"]\nfallback_after = 3"
    )));
    let mut nb = lab.start_netbond(&[]);
    let mon = raw_monitor(&lab, &mut nb, true);
    let has = |lab: &Lab| {
        lab.addrs4()
            .iter()
            .any(|a| a.addr == addr && a.prefix_len == 24)
    };
    wait_nb(&mut nb, TIMEOUT, "the static fallback on c0", || {
        has(&lab).then_some(())
    });
    let after = nb.started.elapsed();
    assert!(
        after >= Duration::from_secs(3),
        "fallback after {after:?}, before fallback_after"
    );
    let default_via = |lab: &Lab| {
        lab.routes4()
            .iter()
            .any(|r| r.dst == "default" && r.gateway.as_deref() == Some(router.as_str()))
    };
    // The route follows the address by a moment.
    assert!(
        lab::wait_until(TIMEOUT, || default_via(&lab)),
        "no default route via {router}: {:?}",
        lab.routes4()
    );
    let conf = lab.resolv_conf();
    let resolv = || fs::read_to_string(&conf).unwrap_or_default();
    assert!(
        lab::wait_until(TIMEOUT, || resolv().contains("192.0.2.53")),
        "fallback DNS not in resolv.conf: {}",
        resolv()
    );
    lab.start_dnsmasq(DnsmasqOpts::default());
    wait_nb(&mut nb, TIMEOUT * 2, "a DHCPv4 lease", || {
        lab.addr4_in(50, 150)
    });
    assert!(
        lab::wait_until(TIMEOUT, || !has(&lab)),
        "fallback address still on c0: {:?}",
        lab.addrs4()
    );
    assert!(
        lab::wait_until(TIMEOUT, || !default_via(&lab)),
        "fallback route still there: {:?}",
        lab.routes4()
    );
    // resolv.conf is written off the loop: give the writer its moment.
    assert!(
        lab::wait_until(TIMEOUT, || !resolv().contains("192.0.2.53")),
        "{}",
        resolv()
    );
    let gw = lab.gw4().to_string();
    let lease_default = || {
        lab.routes4()
            .iter()
            .any(|r| r.dst == "default" && r.gateway.as_deref() == Some(gw.as_str()))
    };
    assert!(
        lab::wait_until(TIMEOUT, lease_default),
        "the lease's default route: {:?}",
        lab.routes4()
    );
    let ev = mon.events();
    let up = of_type(&ev, "fallback-configured");
    let down = of_type(&ev, "fallback-dropped");
    assert_eq!((up.len(), down.len()), (1, 1), "{ev:?}");
    assert_eq!(up[0]["address"], addr.to_string());
    assert_eq!(up[0]["router"], router);
    assert_eq!(down[0]["reason"], "lease");
}

/// kea-dhcp6 in the server namespace, delegating /56s from a /48 with short
/// lifetimes; killed on drop.
struct Kea6 {
    child: Child,
    log: PathBuf,
}

impl Kea6 {
    fn start(lab: &Lab) -> Kea6 {
        let n = lab.n;
        let dir = lab.path("kea6");
        fs::create_dir_all(&dir).unwrap();
        let log = dir.join("kea6.log");
        let conf = json!({ "Dhcp6": {
            "interfaces-config": { "interfaces": ["s0"] },
            "server-id": { "type": "LL", "persist": false },
            "lease-database": { "type": "memfile", "persist": true,
                                "name": dir.join("leases6.csv"), "lfc-interval": 0 },
            "preferred-lifetime": 40, "valid-lifetime": 60,
            "renew-timer": 20, "rebind-timer": 30,
            "subnet6": [{
                "id": 1, "subnet": format!("fd77:{n:x}::/64"), "interface": "s0",
                "pools": [{ "pool": format!("fd77:{n:x}::100 - fd77:{n:x}::1ff") }],
                "pd-pools": [{ "prefix": format!("fd99:{n:x}::"), "prefix-len": 48,
                               "delegated-len": 56 }]
            }],
            "loggers": [{ "name": "kea-dhcp6", "severity": "DEBUG", "debuglevel": 15,
                          "output_options": [{ "output": log }] }]
        }});
        let cf = dir.join("kea6.json");
        fs::write(&cf, conf.to_string()).unwrap();
        let child = Command::new(&tools().ip)
            .args(["netns", "exec", &lab.sns, "kea-dhcp6", "-c"])
            .arg(&cf)
            .env("KEA_PIDFILE_DIR", &dir)
            .env("KEA_LOCKFILE_DIR", &dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("kea6.err")).unwrap())
            .spawn()
            .expect("kea-dhcp6 (Debian's kea-dhcp6-server)");
        let k = Kea6 { child, log };
        assert!(
            lab::wait_until(TIMEOUT, || k.log().contains("DHCP6_STARTED")),
            "kea-dhcp6 did not start: {}\n{}",
            k.log(),
            fs::read_to_string(dir.join("kea6.err")).unwrap_or_default()
        );
        k
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Kea6 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The IPv6 addresses of `dev` in the client namespace, as `addr/len`.
fn addrs6_of(lab: &Lab, dev: &str) -> Vec<String> {
    let v: Value =
        serde_json::from_str(&lab.ip(&lab.cns, &["-j", "-6", "addr", "show", "dev", dev]))
            .unwrap_or(Value::Null);
    v.as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap_or(""), a["prefixlen"]))
        .collect()
}

/// Kea delegates a /56: one /64 of it goes to each downstream interface (the first by
/// position, the second by its subnet id) as `<prefix>::1/64`, with an event; `netbond
/// stop --release` takes them away again.
#[test]
fn delegated_prefix_reaches_downstream_interfaces_and_goes_with_the_release() {
    let mut lab = Lab::new("pd");
    for dev in ["dn0", "dn1"] {
        let peer = format!("{dev}p");
        lab.ip(
            &lab.cns,
            &["link", "add", dev, "type", "veth", "peer", "name", &peer],
        );
        lab.ip(&lab.cns, &["link", "set", &peer, "up"]);
        lab.ip(&lab.cns, &["link", "set", dev, "up"]);
    }
    let kea = Kea6::start(&lab);
    lab.write_config(
        "[dhcp4]\nenabled = false\n[dhcp6]\nmode = \"stateful\"\nia_pd = true\n\
         pd_downstream = [\"dn0\", \"dn1/3\"]\n",
    );
    let mut nb = lab.start_netbond(&[]);
    let mon = raw_monitor(&lab, &mut nb, true);
    let n = lab.n;
    let on_dn0 = wait_nb(&mut nb, TIMEOUT * 2, "a delegated /64 on dn0", || {
        addrs6_of(&lab, "dn0")
            .into_iter()
            .find(|a| a.starts_with(&format!("fd99:{n:x}:")))
    });
    let ev = mon.events();
    let del = of_type(&ev, "dhcp6-prefix-delegated");
    assert_eq!(del.len(), 1, "{ev:?}");
    let prefix = del[0]["prefix"].as_str().unwrap().to_string();
    assert!(prefix.ends_with("/56"), "{prefix}");
    // The /56's first /64 for dn0 (position 0), its /64 number 3 for dn1.
    let base: std::net::Ipv6Addr = prefix.trim_end_matches("/56").parse().unwrap();
    let seg = base.segments();
    let sub = |id: u16| {
        let mut s = seg;
        s[3] |= id;
        format!(
            "{}/64",
            std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 1)
        )
    };
    assert_eq!(on_dn0, sub(0));
    assert!(
        lab::wait_until(TIMEOUT, || addrs6_of(&lab, "dn1").contains(&sub(3))),
        "dn1 lacks {}: {:?}",
        sub(3),
        addrs6_of(&lab, "dn1")
    );
    let a = &del[0]["assignments"];
    assert_eq!(a[0]["interface"], "dn0");
    assert_eq!(a[1]["interface"], "dn1");
    assert_eq!(format!("{}/64", a[1]["address"].as_str().unwrap()), sub(3));
    // The kernel's on-link route for each /64 came with the address.
    let r = lab.ip(&lab.cns, &["-6", "route", "show", "dev", "dn1"]);
    assert!(r.contains(&sub(3).replace("::1/64", "::/64")), "{r}");
    let o = cli(&lab, &["stop", "--release"]);
    assert!(o.status.success(), "stop --release: {o:?}");
    assert!(
        !addrs6_of(&lab, "dn0").contains(&sub(0)) && !addrs6_of(&lab, "dn1").contains(&sub(3)),
        "delegated addresses still on the downstream interfaces after the release: {:?} {:?}",
        addrs6_of(&lab, "dn0"),
        addrs6_of(&lab, "dn1")
    );
    assert!(
        lab::wait_until(TIMEOUT, || kea.log().contains("DHCP6_RELEASE_PD")),
        "Kea logged no prefix release:\n{}",
        kea.log()
    );
    let ev = mon.events();
    let gone = of_type(&ev, "dhcp6-prefix-withdrawn");
    assert_eq!(gone.len(), 1, "{ev:?}");
    assert_eq!(gone[0]["reason"], "released");
    assert_eq!(gone[0]["prefix"], prefix.as_str());
}
