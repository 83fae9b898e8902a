//! Issue 17's remaining options against real servers: NTP servers to systemd-timesyncd,
//! vendor classes and extra DHCPv6 options, RFC 8925 (option 108), RFC 8910 (captive
//! portal), and the FQDN flags as Kea reads them.

use crate::events::{assert_envelope, count, raw_monitor, send_ra_options};
use crate::lab::{self, DnsmasqOpts, Lab, TIMEOUT};
use crate::operate::cli;
use crate::wait_nb;
use serde_json::Value;
use std::fs;
use std::time::{Duration, Instant};

/// `netbond status --json` as JSON.
fn status(lab: &Lab) -> Value {
    let o = cli(lab, &["status", "--json"]);
    assert!(o.status.success(), "status: {o:?}");
    serde_json::from_slice(&o.stdout).expect("status --json is JSON")
}

/// An RFC 8910 option 37 (type, length in 8-octet units, the URI, NUL padding).
fn option_37(uri: &[u8]) -> Vec<u8> {
    let mut o = vec![37, 0];
    o.extend_from_slice(uri);
    while o.len() % 8 != 0 {
        o.push(0);
    }
    o[1] = (o.len() / 8) as u8;
    o
}

/// Send RAs with `options` every second until `done` holds (the watcher opens with the
/// interface: RAs sent before it are not seen).
fn ra_until(
    lab: &Lab,
    nb: &mut crate::lab::Netbond,
    options: &[u8],
    what: &str,
    mut done: impl FnMut() -> bool,
) {
    let mut sent = Instant::now() - Duration::from_secs(10);
    wait_nb(nb, TIMEOUT, what, || {
        if sent.elapsed() > Duration::from_secs(1) {
            send_ra_options(lab, options);
            sent = Instant::now();
        }
        done().then_some(())
    });
}

/// RFC 8910 option 37 in router advertisements: a URI with an escape sequence is refused
/// (logged, never shown); a valid one shows in `status --json` and the human status, and
/// the monitor sees exactly one `captive-portal` event for it (source `ra`), however
/// many RAs repeat it.
#[test]
fn ra_captive_portal_is_checked_and_shown() {
    let mut lab = Lab::new("optcpra");
    let mut nb = lab.start_netbond(&["--no-dhcp4"]);
    let mon = raw_monitor(&lab, &mut nb, true);
    let log = nb.log_path.clone();
    let logged = |what: &str| fs::read_to_string(&log).unwrap_or_default().contains(what);
    ra_until(
        &lab,
        &mut nb,
        &option_37(b"https://evil.example/\x1b[2J"),
        "the refused URI logged",
        || logged("ignored the captive portal URI"),
    );
    assert_eq!(status(&lab)["captive_portal"], Value::Null);
    let uri = "https://portal.example/capport?x=1";
    ra_until(
        &lab,
        &mut nb,
        &option_37(uri.as_bytes()),
        "the URI in status",
        || status(&lab)["captive_portal"]["uri"] == uri,
    );
    // More RAs with the same URI: no new event.
    for _ in 0..3 {
        send_ra_options(&lab, &option_37(uri.as_bytes()));
    }
    let st = status(&lab);
    assert_eq!(st["captive_portal"]["ra"], uri, "{st}");
    assert_eq!(st["captive_portal"]["dhcp6"], Value::Null, "{st}");
    let human = cli(&lab, &["status"]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains(&format!("Portal:    {uri}")), "{text}");
    assert!(lab::wait_until(TIMEOUT, || count(
        &mon.events(),
        "captive-portal"
    ) >= 1));
    std::thread::sleep(Duration::from_millis(300));
    let evs = mon.events();
    assert_envelope(&evs);
    let cp: Vec<&Value> = evs
        .iter()
        .filter(|e| e["type"] == "captive-portal")
        .collect();
    assert_eq!(cp.len(), 1, "{evs:#?}");
    assert_eq!(cp[0]["uri"], uri);
    assert_eq!(cp[0]["source"], "ra");
    assert_eq!(cp[0]["interface"], "c0");
    assert!(
        !fs::read_to_string(&log).unwrap().contains('\x1b'),
        "the escape reached the log"
    );
    nb.assert_alive();
}

/// What Kea (a server that acts on them) reads from netbond's DHCPv4 messages: the
/// Client FQDN option 81 for a qualified host name with flags S=1 (the server updates
/// the A record), E=1 (wire encoding), N=0 and O=0 (RFC 4702), and no option 12 beside
/// it; the vendor class (option 60) that Kea turns into its `VENDOR_CLASS_` class.
#[test]
fn kea_reads_the_fqdn_flags_and_the_vendor_class() {
    let mut lab = Lab::new("optkea");
    lab.write_config(
        "[dhcp4]\nhostname = \"box-8.example.test\"\nvendor_class = \"netbond-test\"\n",
    );
    let kea = crate::cni::Kea::start_logging(&lab, vec![], 99);
    let mut nb = lab.start_netbond(&["--no-dhcp6"]);
    let a = wait_nb(&mut nb, TIMEOUT, "a DHCPv4 address from Kea", || {
        lab.addr4_in(50, 150)
    });
    let log = kea.log();
    let fqdn: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("DHCP4_CLIENT_FQDN_DATA"))
        .collect();
    assert!(!fqdn.is_empty(), "Kea logged no client FQDN:\n{log}");
    for l in &fqdn {
        assert!(l.contains("N=0, E=1, O=0, S=1"), "flags: {l}");
        assert!(l.contains("box-8.example.test."), "name: {l}");
    }
    assert!(
        log.lines()
            .any(|l| l.contains("DHCP4_CLASS_ASSIGNED") && l.contains("VENDOR_CLASS_netbond-test")),
        "Kea did not class the client by its vendor class:\n{log}"
    );
    // Option 12 is not sent with 81 (RFC 4702 section 3.1).
    assert!(
        !log.lines().any(|l| l.trim_start().starts_with("type=012")),
        "a host name option beside the FQDN:\n{log}"
    );
    nb.assert_alive();
    let _ = a;
}

/// RFC 8925 against dnsmasq sending option 108 (4 s): netbond asks for it (code 108 in
/// the DISCOVER's parameter list), takes no IPv4 address, sends no DHCPv4 while it
/// waits (status `IPV6-ONLY`, one `dhcp4-ipv6-only` event with the server and 4 s),
/// and starts over after the wait: by then dnsmasq no longer sends 108, and the address
/// comes. The RFC's 300 s floor is lowered to 2 s for this test only, with the
/// test-only NETBOND_TEST_MIN_V6ONLY_WAIT (the server's 4 s is above it, so the value
/// used is the server's, as the RFC says).
#[test]
fn ipv6_only_preferred_pauses_dhcp4_then_resumes() {
    let mut lab = Lab::new("opt108");
    lab.write_config("[dhcp4]\nipv6_only_preferred = true\n");
    lab.capture();
    let mut nb = lab.start_netbond_env(
        &["--no-dhcp6"],
        &[("NETBOND_TEST_MIN_V6ONLY_WAIT", std::path::Path::new("2"))],
    );
    // The monitor follows before the server answers.
    let mon = raw_monitor(&lab, &mut nb, true);
    lab.start_dnsmasq(DnsmasqOpts {
        extra: vec!["--dhcp-option=108,00:00:00:04".into()],
        ..DnsmasqOpts::default()
    });
    let ev = wait_nb(&mut nb, TIMEOUT, "dhcp4-ipv6-only", || {
        mon.events()
            .into_iter()
            .find(|e| e["type"] == "dhcp4-ipv6-only")
    });
    let paused_at = Instant::now();
    assert_eq!(ev["wait_secs"], 4, "{ev}");
    assert_eq!(ev["server"], lab.gw4().to_string(), "{ev}");
    let st = status(&lab);
    assert_eq!(st["dhcp4"]["state"], "IPV6-ONLY", "{st}");
    let left = st["dhcp4"]["ipv6_only_secs_left"].as_u64();
    assert!(left.is_some_and(|s| s <= 4), "{st}");
    assert_eq!(st["dhcp4"]["lease"], Value::Null, "{st}");
    assert!(
        lab.addr4_in(1, 254).is_none(),
        "an IPv4 address was configured"
    );
    // The server stops preferring IPv6-only while netbond waits.
    lab.start_dnsmasq(DnsmasqOpts::default());
    let a = wait_nb(
        &mut nb,
        Duration::from_secs(15),
        "the address after the wait",
        || lab.addr4_in(50, 150),
    );
    let took = paused_at.elapsed();
    assert!(
        took >= Duration::from_millis(3500),
        "DHCPv4 came back after {took:?}, before the 4 s wait"
    );
    // tcpdump writes what the kernel has handed it: let the ACK reach the file.
    lab::wait_for(TIMEOUT, || {
        let p = lab.packets();
        p.iter()
            .any(|x| x.v4_type() == Some(crate::pcap::DHCPACK))
            .then_some(())
    });
    let pkts = lab.stop_capture();
    let summary = crate::pcap::summary(&pkts);
    let disc = crate::v4_sent(&pkts, crate::pcap::DHCPDISCOVER);
    let first = disc
        .first()
        .unwrap_or_else(|| panic!("no DISCOVER:\n{summary}"));
    let prl = first
        .v4()
        .unwrap()
        .options
        .iter()
        .find(|o| o.0 == 55)
        .map(|o| o.1.clone());
    assert!(
        prl.is_some_and(|p| p.contains(&108)),
        "108 not requested:\n{summary}"
    );
    // Nothing from the client during the wait: no REQUEST for the offered address, and
    // the next DISCOVER comes at least ~4 s after the OFFER that carried 108.
    let offer = pkts
        .iter()
        .find(|p| p.v4_type() == Some(crate::pcap::DHCPOFFER))
        .unwrap_or_else(|| panic!("no OFFER:\n{summary}"));
    assert!(
        offer.v4().unwrap().options.iter().any(|o| o.0 == 108),
        "dnsmasq sent no 108:\n{summary}"
    );
    let after: Vec<_> = pkts
        .iter()
        .filter(|p| p.dst_port == 67 && p.ts > offer.ts)
        .collect();
    let next = after
        .first()
        .unwrap_or_else(|| panic!("nothing after the OFFER:\n{summary}"));
    assert_eq!(next.v4_type(), Some(crate::pcap::DHCPDISCOVER), "{summary}");
    assert!(
        next.ts - offer.ts >= 3.5,
        "DHCPv4 resumed after {} s:\n{summary}",
        next.ts - offer.ts
    );
    assert_eq!(count(&mon.events(), "dhcp4-ipv6-only"), 1);
    let bound = wait_nb(&mut nb, TIMEOUT, "dhcp4-bound", || {
        mon.events()
            .into_iter()
            .find(|e| e["type"] == "dhcp4-bound")
    });
    assert_eq!(bound["lease"]["address"], a.addr.to_string());
    nb.assert_alive();
}

/// RFC 8910 from both servers (dnsmasq sends option 114 and DHCPv6 option 103 because
/// netbond asks for them): each URI is in the lease events, in `status --json` by
/// source, in one `captive-portal` event per source, and in a hook's
/// `new_captive_portal`.
#[test]
fn dhcp_captive_portal_in_status_events_and_hooks() {
    let mut lab = Lab::new("optcp");
    let hooks = lab.path("hooks.d");
    let out = lab.path("hook-out");
    fs::create_dir_all(&out).unwrap();
    fs::create_dir_all(&hooks).unwrap();
    let hook = hooks.join("10-portal");
    fs::write(
        &hook,
        format!(
            "#!/bin/sh\n[ \"$NETBOND_EVENT\" = captive-portal ] || exit 0\n\
             echo \"$NETBOND_SOURCE $new_captive_portal\" >> {}/portal\n",
            out.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&hooks, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    lab.write_config(&format!(
        "[hooks]\ndir = \"{}\"\nrun_as_root = true\ntimeout = 5\n",
        hooks.display()
    ));
    let (u4, u6) = ("https://portal.example/v4", "https://portal.example/v6?x=1");
    // The monitor follows before any server answers.
    let mut nb = lab.start_netbond(&[]);
    let mon = raw_monitor(&lab, &mut nb, true);
    lab.start_dnsmasq(DnsmasqOpts {
        extra: vec![
            // Unquoted: dnsmasq would send the quotes too.
            format!("--dhcp-option=114,{u4}"),
            format!("--dhcp-option=option6:103,{u6}"),
        ],
        ..DnsmasqOpts::default()
    });
    wait_nb(&mut nb, TIMEOUT, "both URIs in status", || {
        let st = status(&lab);
        (st["captive_portal"]["dhcp4"] == u4 && st["captive_portal"]["dhcp6"] == u6).then_some(())
    });
    let st = status(&lab);
    assert_eq!(st["captive_portal"]["uri"], u4, "{st}");
    let portal = out.join("portal");
    wait_nb(&mut nb, TIMEOUT, "the hook for both", || {
        (fs::read_to_string(&portal).ok()?.lines().count() == 2).then_some(())
    });
    let mut lines: Vec<String> = fs::read_to_string(&portal)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    assert_eq!(lines, [format!("dhcp4 {u4}"), format!("dhcp6 {u6}")]);
    let evs = mon.events();
    let cp: Vec<&Value> = evs
        .iter()
        .filter(|e| e["type"] == "captive-portal")
        .collect();
    assert_eq!(cp.len(), 2, "{evs:#?}");
    let b4 = evs
        .iter()
        .find(|e| e["type"] == "dhcp4-bound")
        .expect("dhcp4-bound");
    assert_eq!(b4["lease"]["captive_portal"], u4);
    let b6 = evs
        .iter()
        .find(|e| e["type"] == "dhcp6-bound")
        .expect("dhcp6-bound");
    assert_eq!(b6["lease"]["captive_portal"], u6);
    // The lease goes: so does its URI.
    assert!(cli(&lab, &["release", "--v4"]).status.success());
    wait_nb(&mut nb, TIMEOUT, "the v4 URI gone", || {
        (status(&lab)["captive_portal"]["dhcp4"] == Value::Null).then_some(())
    });
    assert_eq!(status(&lab)["captive_portal"]["uri"], u6);
    nb.assert_alive();
}

/// DHCPv6 vendor class (option 16 with its enterprise number) and extra options from
/// the configuration, in hex and as text, as dnsmasq receives them (captured at the
/// server's side) in the Solicit and the Request.
#[test]
fn dhcp6_vendor_class_and_extra_options_reach_the_server() {
    let mut lab = Lab::new("opt6send");
    lab.write_config(
        "[dhcp6]\nvendor_class = \"netbond-test\"\nvendor_enterprise = 32473\n\
         send = { 17 = \"00:00:7e:59:00:01:00:02:ab:cd\", 65001 = { text = \"rack-7\" } }\n",
    );
    lab.start_dnsmasq(DnsmasqOpts::default());
    lab.capture();
    let mut nb = lab.start_netbond(&["--no-dhcp4"]);
    wait_nb(&mut nb, TIMEOUT, "a DHCPv6 address", || {
        lab.addr6_in(0x100, 0x1ff)
    });
    let pkts = lab::wait_for(TIMEOUT, || {
        let p = lab.packets();
        (!crate::v6_sent(&p, 3).is_empty()).then_some(p)
    })
    .unwrap_or_else(|| lab.packets());
    lab.stop_capture();
    let summary = crate::pcap::summary(&pkts);
    let mut vc = vec![0, 0, 0x7e, 0xd9, 0, 12];
    vc.extend_from_slice(b"netbond-test");
    // Every message the client sent (Solicit, and with rapid commit nothing more).
    let sent: Vec<_> = pkts.iter().filter(|p| p.dst_port == 547).collect();
    assert!(
        !crate::v6_sent(&pkts, 1).is_empty(),
        "no Solicit:\n{summary}"
    );
    for p in sent {
        let kind = p.v6_type().unwrap();
        let m = p.v6().unwrap();
        let opt = |c: u16| m.options.iter().find(|o| o.0 == c).map(|o| o.1.clone());
        assert_eq!(opt(16), Some(vc.clone()), "vendor class in type {kind}");
        assert_eq!(
            opt(17),
            Some(vec![0, 0, 0x7e, 0x59, 0, 1, 0, 2, 0xab, 0xcd]),
            "type {kind}"
        );
        assert_eq!(opt(65001), Some(b"rack-7".to_vec()), "type {kind}");
    }
    nb.assert_alive();
}
