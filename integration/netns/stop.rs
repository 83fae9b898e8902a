//! Stop versus restart, and readiness (issue 15 items 1 and 2).
//!
//! - SIGTERM keeps the network by default: nothing released, nothing removed; the next
//!   start confirms the leases (INIT-REBOOT, DHCPv6 Confirm) without a DISCOVER or a
//!   Solicit and without ever removing an address (`ip monitor` is the witness).
//! - `netbond stop --release` is the deliberate stop: RELEASE / Release, addresses and
//!   DNS removed, exit 0. (`on_stop = "release"` on SIGTERM: `sigterm_releases`.)
//! - READY=1 (read from a NOTIFY_SOCKET the test binds, as systemd would) comes only
//!   after the lease, or at `online_timeout` with a STATUS= saying why;
//!   `netbond wait-online` exits 0 when online, 1 at its timeout, 3 with no daemon.

use crate::lab::{self, DnsmasqOpts, Lab, TIMEOUT};
use crate::operate::cli;
use crate::pcap;
use crate::{start_dual_stack, v4_sent, v6_sent, wait_init_reboot, wait_nb, ORIGINAL_RESOLV};
use std::fs;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The datagrams that arrive on `sock` within `within` (each as text).
fn datagrams(sock: &UnixDatagram, within: Duration) -> Vec<String> {
    let until = Instant::now() + within;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return out;
        }
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match sock.recv(&mut buf) {
            Ok(n) => out.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => return out,
        }
    }
}

/// Wait up to `within` for a READY=1 datagram; returns it and when it came.
fn wait_ready(sock: &UnixDatagram, within: Duration) -> Option<(String, Instant)> {
    let until = Instant::now() + within;
    let mut buf = [0u8; 4096];
    while Instant::now() < until {
        let left = until.saturating_duration_since(Instant::now());
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        if let Ok(n) = sock.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.lines().any(|l| l == "READY=1") {
                return Some((text, Instant::now()));
            }
        }
    }
    None
}

fn notify_socket(lab: &Lab) -> (UnixDatagram, std::path::PathBuf) {
    let path = lab.path("notify.sock");
    let _ = fs::remove_file(&path);
    (
        UnixDatagram::bind(&path).expect("bind the notify socket"),
        path,
    )
}

/// SIGTERM with the default configuration keeps addresses, routes and DNS and sends no
/// RELEASE; the next start confirms both leases (INIT-REBOOT, Confirm) with no
/// DISCOVER or Solicit and no address ever removed. `netbond stop` (no --release) does
/// the same.
#[test]
fn sigterm_keeps_the_network_and_a_restart_confirms() {
    let mut lab = Lab::new("keep");
    let original = ORIGINAL_RESOLV;
    let (mut nb, a, a6, written) = start_dual_stack(&mut lab);
    let has_default = |lab: &Lab| lab.routes4().iter().any(|r| r.dst == "default");
    assert!(has_default(&lab), "no default route: {:?}", lab.routes4());
    lab.monitor_addresses();
    lab.capture();

    let t0 = Instant::now();
    nb.kill(libc::SIGTERM);
    let st = nb
        .wait_exit(Duration::from_secs(5))
        .expect("netbond did not exit within 5 s of SIGTERM");
    assert!(st.success(), "exit status {st}");
    assert!(
        t0.elapsed() <= Duration::from_secs(2),
        "SIGTERM took {:?}",
        t0.elapsed()
    );
    thread::sleep(Duration::from_millis(300));
    assert_eq!(
        lab.addr4_in(50, 150).map(|x| x.addr),
        Some(a),
        "v4 address gone after SIGTERM"
    );
    assert_eq!(
        lab.addr6_in(0x100, 0x1ff).map(|x| x.addr),
        Some(a6.addr),
        "v6 address gone after SIGTERM"
    );
    assert!(
        has_default(&lab),
        "default route gone after SIGTERM: {:?}",
        lab.routes4()
    );
    assert_eq!(
        fs::read_to_string(lab.resolv_conf()).unwrap(),
        written,
        "resolv.conf changed by a keeping stop"
    );
    let pkts = lab.packets();
    assert!(
        v4_sent(&pkts, pcap::DHCPRELEASE).is_empty() && v6_sent(&pkts, pcap::V6_RELEASE).is_empty(),
        "a keeping stop released:\n{}",
        pcap::summary(&pkts)
    );

    // The next start: INIT-REBOOT for the same address, Confirm for the v6 one.
    let mut nb2 = lab.start_netbond(&[]);
    wait_init_reboot(&lab, &mut nb2, a, "kept");
    let confirm = wait_nb(
        &mut nb2,
        TIMEOUT,
        "a DHCPv6 Confirm (or Renew/Rebind)",
        || {
            let p = lab.packets();
            [pcap::V6_CONFIRM, pcap::V6_RENEW, pcap::V6_REBIND]
                .into_iter()
                .find_map(|t| v6_sent(&p, t).first().map(|x| x.v6().unwrap().clone()))
        },
    );
    assert!(
        confirm.ia_addrs.contains(&a6.addr),
        "the Confirm does not name {}: {:?}",
        a6.addr,
        confirm.ia_addrs
    );
    wait_nb(&mut nb2, TIMEOUT, "the Reply to it", || {
        lab.packets()
            .iter()
            .any(|p| p.v6_type() == Some(pcap::V6_REPLY) && p.v6().unwrap().xid == confirm.xid)
            .then_some(())
    });
    thread::sleep(Duration::from_millis(500));
    let pkts = lab.packets();
    for (what, sent) in [
        ("DHCPDISCOVER", v4_sent(&pkts, pcap::DHCPDISCOVER)),
        ("DHCPRELEASE", v4_sent(&pkts, pcap::DHCPRELEASE)),
        ("Solicit", v6_sent(&pkts, pcap::V6_SOLICIT)),
        ("Release", v6_sent(&pkts, pcap::V6_RELEASE)),
    ] {
        assert!(
            sent.is_empty(),
            "{what} sent across the restart:\n{}",
            pcap::summary(&pkts)
        );
    }
    assert_eq!(lab.addr4_in(50, 150).map(|x| x.addr), Some(a));
    assert_eq!(lab.addr6_in(0x100, 0x1ff).map(|x| x.addr), Some(a6.addr));
    assert!(
        nb2.log().contains(&format!("keeping {a}/24")),
        "the restart did not report keeping {a}:\n{}",
        lab::tail(&nb2.log_path, 30)
    );
    assert!(
        nb2.log()
            .contains(&format!("dhcp6: c0: keeping {}/128", a6.addr)),
        "the restart did not report keeping {}:\n{}",
        a6.addr,
        lab::tail(&nb2.log_path, 30)
    );
    // Online at once: the kept address counts while it is being confirmed.
    let o = cli(&lab, &["wait-online", "--timeout", "5"]);
    assert!(
        o.status.success(),
        "wait-online after the restart: {}",
        stderr(&o)
    );

    // `netbond stop` without --release keeps everything too.
    let o = cli(&lab, &["stop"]);
    assert!(o.status.success(), "netbond stop failed: {}", stderr(&o));
    let st = nb2
        .wait_exit(Duration::from_secs(5))
        .expect("netbond did not exit after `netbond stop`");
    assert!(st.success(), "exit status {st}");
    thread::sleep(Duration::from_millis(300));
    assert_eq!(lab.addr4_in(50, 150).map(|x| x.addr), Some(a));
    assert_eq!(lab.addr6_in(0x100, 0x1ff).map(|x| x.addr), Some(a6.addr));
    let pkts = lab.stop_capture();
    assert!(
        v4_sent(&pkts, pcap::DHCPRELEASE).is_empty() && v6_sent(&pkts, pcap::V6_RELEASE).is_empty(),
        "`netbond stop` released:\n{}",
        pcap::summary(&pkts)
    );
    for addr in [a.to_string(), a6.addr.to_string()] {
        let del = lab.monitor_deleted(&addr);
        assert!(del.is_empty(), "{addr} was removed at some point: {del:?}");
    }

    // A third run ends with the deliberate stop: the resolv.conf from before the first
    // run comes back, though two runs since found netbond's own file in place.
    let mut nb3 = lab.start_netbond(&[]);
    wait_nb(&mut nb3, TIMEOUT, "the third run online", || {
        cli(&lab, &["wait-online", "--timeout", "1"])
            .status
            .success()
            .then_some(())
    });
    let o = cli(&lab, &["stop", "--release"]);
    assert!(o.status.success(), "netbond stop --release: {}", stderr(&o));
    nb3.wait_exit(Duration::from_secs(5))
        .expect("netbond did not exit after `netbond stop --release`");
    assert_eq!(
        fs::read_to_string(lab.resolv_conf()).unwrap(),
        original,
        "the releasing stop after two restarts did not restore the original resolv.conf"
    );
    assert!(
        lab.addr4_in(50, 150).is_none(),
        "v4 address left by stop --release"
    );
}

/// `netbond stop --release`: the server sees RELEASE and Release, the addresses and the
/// DNS go, the daemon exits 0, and the CLI returns once that is done.
#[test]
fn stop_release_releases_and_deconfigures() {
    let mut lab = Lab::new("stoprel");
    let original = ORIGINAL_RESOLV;
    let (mut nb, a, a6, _) = start_dual_stack(&mut lab);
    let mon = crate::events::raw_monitor(&lab, &mut nb, true);
    lab.capture();
    let o = cli(&lab, &["stop", "--release"]);
    assert!(
        o.status.success(),
        "netbond stop --release failed: {}",
        stderr(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("released"),
        "{o:?}"
    );
    // The CLI returned after the work: the addresses are already gone.
    assert!(
        !lab.addrs4().iter().any(|x| x.addr == a),
        "v4 address still on c0 when `stop --release` returned: {:?}",
        lab.addrs4()
    );
    let st = nb
        .wait_exit(Duration::from_secs(5))
        .expect("netbond did not exit after `netbond stop --release`");
    assert!(st.success(), "exit status {st}");
    // A stop by command ends the event stream as a signal does.
    lab::wait_until(Duration::from_secs(3), || {
        mon.events()
            .last()
            .is_some_and(|e| e["type"] == "daemon-stop")
    });
    let evs = mon.events();
    let last = evs.last().expect("no events at all");
    assert_eq!(last["type"], "daemon-stop", "last event: {last}");
    assert_eq!(last["signal"], "netbond stop", "{last}");
    let ok = lab::wait_until(Duration::from_secs(3), || {
        let p = lab.packets();
        !v4_sent(&p, pcap::DHCPRELEASE).is_empty() && !v6_sent(&p, pcap::V6_RELEASE).is_empty()
    });
    let pkts = lab.stop_capture();
    assert!(ok, "missing RELEASE / Release:\n{}", pcap::summary(&pkts));
    assert_eq!(v4_sent(&pkts, pcap::DHCPRELEASE)[0].v4().unwrap().ciaddr, a);
    assert!(v6_sent(&pkts, pcap::V6_RELEASE)[0]
        .v6()
        .unwrap()
        .ia_addrs
        .contains(&a6.addr));
    assert!(
        !lab.addrs6().iter().any(|x| x.addr == a6.addr),
        "v6 address still on c0"
    );
    assert_eq!(fs::read_to_string(lab.resolv_conf()).unwrap(), original);
    // Nothing listens any more.
    let o = cli(&lab, &["status"]);
    assert_eq!(o.status.code(), Some(3), "status after the stop: {o:?}");
}

/// READY=1 only once the lease is on the interface; `wait-online` exits 3 with no
/// daemon, waits for a daemon that is not there yet, exits 1 at its timeout while the
/// server is silent, and 0 once bound.
#[test]
fn wait_online_and_ready_come_with_the_lease() {
    let mut lab = Lab::new("online");
    let o = cli(&lab, &["wait-online", "--timeout", "0.5"]);
    assert_eq!(o.status.code(), Some(3), "no daemon: {o:?}");
    assert!(stderr(&o).contains("not running"), "{}", stderr(&o));

    lab.start_dnsmasq_default();
    lab.nft_silence_server();
    lab.write_config("[daemon]\nonline_timeout = 300\n");
    let (sock, sock_path) = notify_socket(&lab);
    // Started before the daemon: it must wait for the control socket, not fail.
    let mut early = Command::new(lab::netbond_bin())
        .args(["wait-online", "--timeout", "60", "--run-dir"])
        .arg(lab.path("run"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_millis(600));
    assert!(
        early.try_wait().unwrap().is_none(),
        "wait-online gave up before the daemon started"
    );
    let mut nb = lab.start_netbond_env(&[], &[("NOTIFY_SOCKET", sock_path.as_path())]);
    wait_nb(&mut nb, TIMEOUT, "the control socket", || {
        lab.path("run/netbond.sock").exists().then_some(())
    });

    let t = Instant::now();
    let o = cli(&lab, &["wait-online", "--timeout", "1"]);
    assert_eq!(o.status.code(), Some(1), "silent server: {o:?}");
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "returned after {:?}",
        t.elapsed()
    );
    assert!(stderr(&o).contains("not online"), "{}", stderr(&o));
    let o = cli(&lab, &["status", "--json"]);
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["online"], false, "{st}");
    let before = datagrams(&sock, Duration::from_millis(1500));
    assert!(
        !before.iter().any(|d| d.lines().any(|l| l == "READY=1")),
        "READY=1 without a lease: {before:?}"
    );
    assert!(
        early.try_wait().unwrap().is_none(),
        "early wait-online returned without a lease"
    );

    lab.nft_flush();
    let (ready, _) = wait_ready(&sock, TIMEOUT).expect("no READY=1 after the server came back");
    // READY follows the configuration of an address (either family: online = "any"),
    // never precedes it.
    let (a4, a6) = (lab.addr4_in(50, 150), lab.addr6_in(0x100, 0x1ff));
    assert!(
        a4.is_some() || a6.is_some(),
        "READY=1 before an address was on c0: {ready:?}"
    );
    assert!(ready.contains("STATUS=online: c0"), "{ready:?}");
    let early_rc = lab::wait_for(Duration::from_secs(10), || early.try_wait().unwrap())
        .expect("early wait-online did not return once online");
    assert!(early_rc.success(), "early wait-online: {early_rc}");

    let o = cli(
        &lab,
        &["wait-online", "--timeout", "5", "--family", "4", "--all"],
    );
    assert!(o.status.success(), "wait-online --family 4 --all: {o:?}");
    let o = cli(&lab, &["wait-online", "--timeout", "5", "--iface", "nope"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(stderr(&o).contains("does not manage"), "{}", stderr(&o));
    let o = cli(&lab, &["status", "--json"]);
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["online"], true, "{st}");
    assert_eq!(st["interfaces"][0]["online"], true, "{st}");
    nb.assert_alive();
}

/// No server at all: READY=1 comes at online_timeout (not before), with a STATUS=
/// saying what is missing, and the daemon keeps trying.
#[test]
fn ready_at_online_timeout_without_a_server() {
    let mut lab = Lab::new("readyto");
    lab.start_dnsmasq_default();
    lab.nft_silence_server();
    lab.write_config("[daemon]\nonline_timeout = 2\n");
    let (sock, sock_path) = notify_socket(&lab);
    let t0 = Instant::now();
    let mut nb = lab.start_netbond_env(&[], &[("NOTIFY_SOCKET", sock_path.as_path())]);
    let (ready, at) = wait_ready(&sock, Duration::from_secs(10)).expect("no READY=1 at all");
    let after = at - t0;
    assert!(
        after >= Duration::from_millis(1900) && after <= Duration::from_secs(6),
        "READY=1 after {after:?}, expected at the 2 s online_timeout"
    );
    assert!(
        ready.contains("STATUS=not online") && ready.contains("online_timeout"),
        "{ready:?}"
    );
    assert!(lab.addr4_in(50, 150).is_none());
    nb.assert_alive();
    let o = cli(&lab, &["wait-online", "--timeout", "1"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
}

/// An IPv6 network with router advertisements only (SLAAC) and no DHCP answering:
/// the kernel's address from the RA makes the host online for IPv6 ("a global IPv6
/// address"), not for DHCPv4.
#[test]
fn a_slaac_address_is_online_for_ipv6() {
    let mut lab = Lab::new("slaac");
    let sns = lab.sns.clone();
    lab.ip(
        &sns,
        &["-6", "addr", "add", "fd78::1/64", "dev", "s0", "nodad"],
    );
    lab.start_dnsmasq(DnsmasqOpts {
        extra: vec!["--dhcp-range=fd78::,ra-only,64".into()],
        ..DnsmasqOpts::default()
    });
    lab.nft_silence_server();
    lab.write_config("[daemon]\nonline_timeout = 300\n");
    let mut nb = lab.start_netbond(&[]);
    wait_nb(
        &mut nb,
        TIMEOUT,
        "a SLAAC address in fd78::/64 on c0",
        || {
            lab.global_addrs6()
                .into_iter()
                .find(|a| a.addr.segments()[0] == 0xfd78)
        },
    );
    let o = cli(&lab, &["wait-online", "--timeout", "20", "--family", "6"]);
    assert!(
        o.status.success(),
        "wait-online --family 6 with SLAAC: {o:?}"
    );
    let o = cli(&lab, &["wait-online", "--timeout", "1", "--family", "4"]);
    assert_eq!(o.status.code(), Some(1), "no DHCPv4 lease: {o:?}");
    assert!(
        lab.addr6_in(0x100, 0x1ff).is_none(),
        "a DHCPv6 address through the silenced server"
    );
    let o = cli(&lab, &["status", "--json"]);
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["online"], true, "{st}");
    assert_eq!(st["interfaces"][0]["online"], true, "{st}");
    nb.assert_alive();
}

/// Issue 13 item 8: a configuration that releases the lease but keeps the address is
/// refused by `check-config` and by `run`, with the reason and the way out.
#[test]
fn check_config_refuses_release_without_deconfigure() {
    let dir = std::env::temp_dir().join(format!("netbond-h4-cc-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("netbond.toml");
    fs::write(
        &conf,
        "[daemon]\nrelease_on_stop = true\ndeconfigure_on_stop = false\n",
    )
    .unwrap();
    let o = Command::new(lab::netbond_bin())
        .arg("check-config")
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let e = stderr(&o);
    assert!(e.contains(":3:1:") && e.contains("address is free"), "{e}");
    assert!(e.contains("on_stop = \"keep\""), "{e}");
    // `run` refuses it before touching anything.
    let o = Command::new(lab::netbond_bin())
        .args(["run", "--iface", "nb-nonexistent0", "--config"])
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(stderr(&o).contains("address is free"), "{}", stderr(&o));
    fs::write(&conf, "[daemon]\non_stop = \"release\"\n").unwrap();
    let o = Command::new(lab::netbond_bin())
        .arg("check-config")
        .arg(&conf)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let _ = fs::remove_dir_all(&dir);
}
