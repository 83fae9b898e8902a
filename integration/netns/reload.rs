//! Signals and configuration reloads against a running daemon, and what netbond puts
//! back when it deconfigures (issue 13 items 4, 5, 6 and the MTU part of 9).

use crate::lab::{self, DnsmasqOpts, Lab, TIMEOUT};
use crate::operate::cli;
use crate::{start_bound, v4_sent, v6_sent, wait_nb};
use std::fs;

/// SIGUSR2 renews both families: a DHCPv4 REQUEST and a DHCPv6 Renew go out at once
/// (long before T1 of the 2-minute leases), and both renewals are logged.
#[test]
fn sigusr2_renews_dhcp4_and_dhcp6() {
    let mut lab = Lab::new("usr2");
    let (mut nb, a) = start_bound(&mut lab, DnsmasqOpts::default(), &[]);
    wait_nb(&mut nb, TIMEOUT, "a DHCPv6 address", || {
        lab.addr6_in(0x100, 0x1ff)
    });
    let before4 = nb.log().matches("dhcp4: c0: renewed").count();
    let before6 = nb.log().matches("dhcp6: c0: renewed").count();
    lab.capture();
    nb.kill(libc::SIGUSR2);
    let both = lab::wait_until(TIMEOUT, || {
        let log = nb.log();
        log.matches("dhcp4: c0: renewed").count() > before4
            && log.matches("dhcp6: c0: renewed").count() > before6
    });
    assert!(
        both,
        "SIGUSR2 did not renew both families:\n{}",
        lab::tail(&nb.log_path, 30)
    );
    // Unicast v4 REQUEST with ciaddr = the lease, and a v6 Renew, on the wire.
    let seen = lab::wait_until(TIMEOUT, || {
        let pkts = lab.packets();
        v4_sent(&pkts, crate::pcap::DHCPREQUEST)
            .iter()
            .any(|p| p.v4().map(|m| m.ciaddr) == Some(a))
            && !v6_sent(&pkts, crate::pcap::V6_RENEW).is_empty()
    });
    let pkts = lab.stop_capture();
    assert!(
        seen,
        "no DHCPv4 REQUEST with ciaddr {a} and DHCPv6 Renew after SIGUSR2:\n{}",
        crate::pcap::summary(&pkts)
    );
    nb.assert_alive();
}

fn resolv(lab: &Lab) -> String {
    fs::read_to_string(lab.resolv_conf()).unwrap_or_default()
}

/// `[dhcp6] use_dns = false` keeps DHCPv6's DNS servers out of resolv.conf while
/// DHCPv4's are written; a reload that swaps the two per-family settings rewrites
/// resolv.conf at once (no renewal needed): v6 server in, v4 server out.
#[test]
fn dhcp6_use_dns_is_its_own_setting_and_reloads_live() {
    let mut lab = Lab::new("use-dns6");
    lab.write_config("[dhcp6]\nuse_dns = false\n");
    let (mut nb, _a) = start_bound(&mut lab, DnsmasqOpts::default(), &[]);
    let (v4dns, v6dns) = (
        format!("nameserver {}", lab.gw4()),
        format!("nameserver {}", lab.gw6()),
    );
    wait_nb(&mut nb, TIMEOUT, "DHCPv6 bound", || {
        nb_log_has(&lab, "dhcp6: c0: bound")
    });
    wait_nb(&mut nb, TIMEOUT, "the v4 DNS server in resolv.conf", || {
        resolv(&lab).contains(&v4dns).then_some(())
    });
    let text = resolv(&lab);
    assert!(
        !text.contains(&v6dns) && !text.contains("fd77:"),
        "[dhcp6] use_dns = false, yet DHCPv6 DNS was written:\n{text}"
    );

    lab.write_config("[dhcp4]\nuse_dns = false\n");
    let o = cli(&lab, &["reload"]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "reload: {o:?}");
    assert!(
        out.contains("[dhcp4] use_dns") && out.contains("[dhcp6] use_dns"),
        "reload did not report both use_dns changes: {out}"
    );
    let swapped = lab::wait_until(TIMEOUT, || {
        let t = resolv(&lab);
        t.contains(&v6dns) && !t.contains(&v4dns)
    });
    assert!(
        swapped,
        "resolv.conf not rewritten after the reload:\n{}",
        resolv(&lab)
    );
    nb.assert_alive();
}

fn nb_log_has(lab: &Lab, what: &str) -> Option<()> {
    fs::read_to_string(lab.path("netbond.log"))
        .unwrap_or_default()
        .contains(what)
        .then_some(())
}

/// A reload with one live change and restart-needing ones: the reply and the log say
/// which is which; the live one (`[dhcp4] vendor_class`) is on the wire in the next
/// renewal; the restart ones (`[daemon] user`, `[control] group`) are not in effect
/// (the daemon still runs as root); `log_level` is reported as not used because the
/// command line set the level. SIGHUP takes the same path.
#[test]
fn reload_applies_live_keys_and_names_those_needing_a_restart() {
    let mut lab = Lab::new("reload");
    let (mut nb, a) = start_bound(&mut lab, DnsmasqOpts::default(), &["--no-dhcp6"]);

    lab.write_config(
        "[daemon]\nuser = \"nobody\"\nlog_level = \"warn\"\n\
         [dhcp4]\nvendor_class = \"netbond-reloaded\"\n\
         [control]\ngroup = \"root\"\n",
    );
    let o = cli(&lab, &["reload"]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "reload: {o:?}");
    assert!(
        out.contains("applied [dhcp4] vendor_class"),
        "live key not reported as applied: {out}"
    );
    assert!(
        out.contains("need a restart")
            && out.contains("[daemon] user")
            && out.contains("[control] group"),
        "restart keys not named: {out}"
    );
    assert!(
        out.contains("not used: [daemon] log_level"),
        "a log_level overridden by --log-level must be reported: {out}"
    );
    let logged = lab::wait_until(TIMEOUT, || {
        let log = nb.log();
        log.lines().any(|l| {
            l.contains("WARN")
                && l.contains("need a restart and are not in effect:")
                && l.contains("[daemon] user")
                && l.contains("[control] group")
        })
    });
    assert!(logged, "restart keys not in the log:\n{}", nb.log());

    // The live change is in effect: the next REQUEST carries option 60.
    lab.capture();
    assert!(cli(&lab, &["renew", "--v4"]).status.success());
    let sent = lab::wait_until(TIMEOUT, || {
        v4_sent(&lab.packets(), crate::pcap::DHCPREQUEST)
            .iter()
            .any(|p| {
                p.v4().is_some_and(|m| {
                    m.ciaddr == a && m.option(60) == Some(b"netbond-reloaded".as_slice())
                })
            })
    });
    let pkts = lab.stop_capture();
    assert!(
        sent,
        "no renewal REQUEST with the reloaded vendor class:\n{}",
        crate::pcap::summary(&pkts)
    );
    // The restart ones are not: still root.
    let status = fs::read_to_string(format!("/proc/{}/status", nb.pid)).unwrap();
    let uid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap();
    assert_eq!(uid, "0", "[daemon] user took effect without a restart");

    // SIGHUP: same classification, in the log.
    lab.write_config("[dhcp4]\nvendor_class = \"second\"\nretry = 30\n");
    nb.kill(libc::SIGHUP);
    let logged = lab::wait_until(TIMEOUT, || {
        let log = nb.log();
        log.lines().any(|l| {
            l.contains("reload: configuration reloaded")
                && l.contains("[dhcp4] retry (")
                && l.contains("[dhcp4] vendor_class (")
        })
    });
    assert!(
        logged,
        "SIGHUP reload not logged:\n{}",
        lab::tail(&nb.log_path, 20)
    );
    nb.assert_alive();
}

/// Option 26 (the lab's dnsmasq sends 1400) changes the MTU; when netbond deconfigures
/// (here `netbond dhcp4 stop`) the interface's own MTU comes back, also after a restart
/// that kept the network (the original is kept in the state dir).
#[test]
fn mtu_from_dhcp_is_restored_when_netbond_deconfigures() {
    let mut lab = Lab::new("mtu");
    let before = lab.mtu().expect("c0 MTU");
    assert_ne!(
        before, 1400,
        "the lab must start with another MTU than option 26"
    );
    let (mut nb, _a) = start_bound(&mut lab, DnsmasqOpts::default(), &["--no-dhcp6"]);
    wait_nb(&mut nb, TIMEOUT, "MTU 1400 from option 26", || {
        (lab.mtu() == Some(1400)).then_some(())
    });
    assert!(cli(&lab, &["dhcp4", "stop"]).status.success());
    let back = lab::wait_until(TIMEOUT, || lab.mtu() == Some(before));
    assert!(
        back,
        "MTU is {:?} after dhcp4 stop, want {before} back:\n{}",
        lab.mtu(),
        lab::tail(&nb.log_path, 20)
    );
    assert!(cli(&lab, &["dhcp4", "start"]).status.success());
    wait_nb(&mut nb, TIMEOUT, "MTU 1400 again", || {
        (lab.mtu() == Some(1400)).then_some(())
    });

    // A restart that keeps the network (kill -9 here: nothing is undone), then a
    // deconfigure by the new process: it still knows the MTU from before.
    nb.kill(libc::SIGKILL);
    nb.wait_exit(TIMEOUT).expect("netbond exits on SIGKILL");
    assert_eq!(lab.mtu(), Some(1400));
    let nb = lab.start_netbond(&["--no-dhcp6"]);
    let logged = lab::wait_until(TIMEOUT, || {
        let log = nb.log();
        let run2 = log.rsplit("===== netbond run").next().unwrap_or("");
        run2.contains("dhcp4: c0: renewed") || run2.contains("dhcp4: c0: bound")
    });
    assert!(logged, "second run never confirmed:\n{}", nb.log());
    assert!(cli(&lab, &["dhcp4", "stop"]).status.success());
    let back = lab::wait_until(TIMEOUT, || lab.mtu() == Some(before));
    assert!(
        back,
        "MTU is {:?} after a restart and dhcp4 stop, want {before}:\n{}",
        lab.mtu(),
        lab::tail(&nb.log_path, 20)
    );
}

/// Kills (SIGKILL) and reaps a netbond started by hand, also when the test panics.
struct OwnNetbond(std::process::Child);

impl Drop for OwnNetbond {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// `[daemon] log_level` is live when neither `--log-level` nor `RUST_LOG` chose the
/// level: info, then a reload to debug, and the next renewal's debug lines appear.
/// (The lab's own command line always passes `--log-level debug`, so this test starts
/// netbond itself.)
#[test]
fn reload_changes_the_log_level_unless_the_command_line_set_it() {
    let mut lab = Lab::new("loglevel");
    lab.start_dnsmasq_default();
    lab.write_config("[daemon]\nlog_level = \"info\"\n");
    let log_path = lab.path("own-netbond.log");
    let log = fs::File::create(&log_path).unwrap();
    let child = std::process::Command::new(&lab::tools().ip)
        .args(["netns", "exec", &lab.cns])
        .arg(lab::netbond_bin())
        .args(["run", "--iface", "c0", "--no-dhcp6", "--state-dir"])
        .arg(lab.path("state"))
        .arg("--run-dir")
        .arg(lab.path("run"))
        .arg("--resolv-conf")
        .arg(lab.resolv_conf())
        .arg("--config")
        .arg(lab.path("netbond.toml"))
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("spawn netbond");
    let _nb = OwnNetbond(child);
    let read = || fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        lab::wait_until(TIMEOUT, || read().contains("dhcp4: c0: bound")),
        "no lease:\n{}",
        read()
    );
    assert!(
        !read().contains("DEBUG"),
        "debug lines at info:\n{}",
        read()
    );

    lab.write_config("[daemon]\nlog_level = \"debug\"\n");
    let o = cli(&lab, &["reload"]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        out.contains("applied [daemon] log_level (now)"),
        "log_level not applied: {out}"
    );
    assert!(cli(&lab, &["renew", "--v4"]).status.success());
    assert!(
        lab::wait_until(TIMEOUT, || read().contains("DEBUG dhcp4: c0: sent REQUEST")),
        "no debug line after the reload to debug:\n{}",
        read()
    );
}
