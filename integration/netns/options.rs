//! Issue 17's remaining options against real servers: NTP servers to systemd-timesyncd,
//! vendor classes and extra DHCPv6 options, RFC 8925 (option 108), RFC 8910 (captive
//! portal), and the FQDN flags as Kea reads them.

use crate::events::{assert_envelope, count, raw_monitor, send_ra_options};
use crate::lab::{self, DnsmasqOpts, Lab, TIMEOUT};
use crate::operate::cli;
use crate::{start_bound, wait_nb};
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

/// The lease's NTP server goes to systemd-timesyncd as a runtime drop-in (here in the
/// lab: the configured directory, whose parent exists), one `NTP=` line, and the file
/// goes with the lease.
#[test]
fn timesyncd_dropin_follows_the_lease() {
    let mut lab = Lab::new("optsync");
    let dir = lab.path("timesyncd.conf.d");
    lab.write_config(&format!("[ntp]\ntimesyncd_dir = \"{}\"\n", dir.display()));
    let opts = DnsmasqOpts {
        extra: vec![format!("--dhcp-option=option:ntp-server,{}", lab.gw4())],
        ..DnsmasqOpts::default()
    };
    let (mut nb, _a) = start_bound(&mut lab, opts, &["--no-dhcp6"]);
    let file = dir.join("netbond-c0.conf");
    let text = wait_nb(&mut nb, TIMEOUT, "netbond-c0.conf", || {
        fs::read_to_string(&file).ok()
    });
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        lines,
        ["[Time]".to_string(), format!("NTP={}", lab.gw4())],
        "{text}"
    );
    // The lab moved chrony's directory too: both time daemons got the server.
    assert!(lab.path("chrony-dhcp/c0.sources").exists());
    assert!(cli(&lab, &["release", "--v4"]).status.success());
    wait_nb(
        &mut nb,
        TIMEOUT,
        "netbond-c0.conf removed on release",
        || (!file.exists()).then_some(()),
    );
    assert!(
        fs::read_dir(&dir).unwrap().next().is_none(),
        "files left in {}",
        dir.display()
    );
    nb.assert_alive();
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
