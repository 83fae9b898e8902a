//! Operating netbond: the CLI against a running daemon over its control socket, and
//! least privilege (capabilities read from /proc).

use crate::lab::{self, DnsmasqOpts, Lab, TIMEOUT};
use crate::{start_bound, wait_nb};
use std::process::{Command, Output};
use std::time::Duration;

/// Run `netbond ARGS --run-dir <lab>/run` from the root namespace (the control socket
/// is a file; no network is needed to reach it).
pub(crate) fn cli(lab: &Lab, args: &[&str]) -> Output {
    Command::new(lab::netbond_bin())
        .args(args)
        .arg("--run-dir")
        .arg(lab.path("run"))
        .output()
        .expect("run the netbond CLI")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn cli_status_renew_stop_start_reload() {
    let mut lab = Lab::new("cli");
    let (mut nb, a) = start_bound(&mut lab, DnsmasqOpts::default(), &[]);
    let a6 = wait_nb(&mut nb, TIMEOUT, "a DHCPv6 address", || {
        lab.addr6_in(0x100, 0x1ff)
    });

    // status --json: the documented fields.
    let o = cli(&lab, &["status", "--json"]);
    assert!(o.status.success(), "status failed: {o:?}");
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).expect("status is JSON");
    assert_eq!(st["interface"]["name"], "c0");
    assert_eq!(st["dhcp4"]["state"], "BOUND");
    assert_eq!(st["dhcp4"]["lease"]["address"], a.to_string());
    assert_eq!(st["dhcp4"]["lease"]["prefix_len"], 24);
    assert_eq!(st["dhcp4"]["lease"]["server"], lab.gw4().to_string());
    assert!(st["dhcp4"]["lease"]["remaining_secs"].as_u64().unwrap() <= 120);
    assert_eq!(
        st["dhcp6"]["lease"]["addresses"][0]["address"],
        a6.addr.to_string()
    );
    let duid = st["identity"]["duid"].as_str().unwrap().to_string();
    assert!(duid.len() >= 8, "duid {duid}");
    assert!(st["bond"].is_null());
    // Human output names the address too.
    let human = stdout(&cli(&lab, &["status"]));
    assert!(human.contains(&a.to_string()), "{human}");

    // renew: a REQUEST goes out now (not at T1) and the lease is renewed in place.
    lab.capture();
    let o = cli(&lab, &["renew", "--v4"]);
    assert!(o.status.success(), "renew: {o:?}");
    let ok = lab::wait_until(TIMEOUT, || {
        nb.log().matches("dhcp4: c0: renewed").count() >= 1
    });
    assert!(ok, "no renewal logged:\n{}", nb.log());
    let renewed = lab::wait_until(TIMEOUT, || {
        crate::v4_sent(&lab.packets(), crate::pcap::DHCPREQUEST)
            .iter()
            .any(|p| p.v4().map(|m| m.ciaddr) == Some(a))
    });
    let pkts = lab.stop_capture();
    assert!(
        renewed,
        "no RENEWING request with ciaddr {a}:\n{}",
        crate::pcap::summary(&pkts)
    );

    // dhcp4 stop: v4 address gone, v6 untouched; start: v4 back.
    let o = cli(&lab, &["dhcp4", "stop"]);
    assert!(o.status.success(), "dhcp4 stop: {o:?}");
    assert!(
        lab::wait_until(TIMEOUT, || lab.addr4_in(50, 150).is_none()),
        "v4 address still there after dhcp4 stop"
    );
    assert!(
        lab.addr6_in(0x100, 0x1ff).is_some(),
        "dhcp4 stop removed the v6 address"
    );
    let st: serde_json::Value =
        serde_json::from_slice(&cli(&lab, &["status", "--json"]).stdout).unwrap();
    assert_eq!(st["dhcp4"]["state"], "STOPPED");
    let o = cli(&lab, &["dhcp4", "start"]);
    assert!(o.status.success(), "dhcp4 start: {o:?}");
    wait_nb(&mut nb, TIMEOUT, "v4 address after dhcp4 start", || {
        lab.addr4_in(50, 150)
    });

    // dhcp6 stop/start likewise.
    assert!(cli(&lab, &["dhcp6", "stop"]).status.success());
    assert!(
        lab::wait_until(TIMEOUT, || lab.addr6_in(0x100, 0x1ff).is_none()),
        "v6 address still there after dhcp6 stop"
    );
    assert!(
        lab.addr4_in(50, 150).is_some(),
        "dhcp6 stop removed the v4 address"
    );
    assert!(cli(&lab, &["dhcp6", "start"]).status.success());
    wait_nb(&mut nb, TIMEOUT, "v6 address after dhcp6 start", || {
        lab.addr6_in(0x100, 0x1ff)
    });

    // reload with a broken file: refused, the daemon keeps running.
    lab.write_config("[dhcp4]\nretyr = 1\n");
    let o = cli(&lab, &["reload"]);
    assert!(o.status.success(), "reload: {o:?}");
    assert!(
        lab::wait_until(Duration::from_secs(5), || nb
            .log()
            .contains("keeping the running configuration")),
        "a broken config on reload was not reported:\n{}",
        nb.log()
    );
    nb.assert_alive();
    lab.write_config("");
    assert!(cli(&lab, &["reload"]).status.success());
}

#[test]
fn cli_refuses_unprivileged_callers_and_explains_a_missing_daemon() {
    let mut lab = Lab::new("cliperm");
    let (_nb, _a) = start_bound(&mut lab, DnsmasqOpts::default(), &["--no-dhcp6"]);
    // `nobody` cannot even open the 0600 socket.
    let sock = lab.path("run").join("netbond.sock");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(lab::netbond_bin())
        .args(["renew", "--run-dir"])
        .arg(lab.path("run"))
        .output()
        .expect("setpriv (util-linux)");
    assert!(!out.status.success(), "nobody could renew");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("permission denied"), "unclear message: {err}");
    assert!(sock.exists());
    // No daemon: a clear message and exit code 3.
    let out = Command::new(lab::netbond_bin())
        .args(["status", "--run-dir", "/nonexistent-netbond-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running"));
}

#[test]
fn runs_with_only_the_three_network_capabilities() {
    let mut lab = Lab::new("caps");
    let (nb, _a) = start_bound(&mut lab, DnsmasqOpts::default(), &["--no-dhcp6"]);
    // `ip netns exec` execs netbond in place, so the spawned pid is netbond's.
    let status = std::fs::read_to_string(format!("/proc/{}/status", nb.pid)).unwrap();
    let field = |name: &str| {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in /proc status"));
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    // CAP_NET_BIND_SERVICE (10), CAP_NET_ADMIN (12), CAP_NET_RAW (13).
    assert_eq!(field("CapEff:"), 0x3400, "effective set");
    assert_eq!(field("CapPrm:"), 0x3400, "permitted set");
    assert_eq!(field("CapBnd:"), 0x3400, "bounding set");
    assert_eq!(field("NoNewPrivs:"), 1, "no_new_privs");
}

#[test]
fn runs_as_a_dedicated_user_with_only_the_network_capabilities() {
    let mut lab = Lab::new("user");
    lab.write_config("[daemon]\nuser = \"nobody\"\n");
    let (nb, _a) = start_bound(&mut lab, DnsmasqOpts::default(), &["--no-dhcp6"]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", nb.pid)).unwrap();
    let line = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name}"))
            .to_string()
    };
    let uids: Vec<u32> = line("Uid:")
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(
        uids.iter().all(|u| *u == 65534),
        "not running as nobody: {uids:?}"
    );
    let eff = u64::from_str_radix(line("CapEff:").split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert_eq!(eff, 0x3400, "effective capabilities as nobody");
    // Still able to do its job: a renewal over the control socket works.
    let o = cli(&lab, &["renew", "--v4"]);
    assert!(o.status.success(), "{o:?}");
}
