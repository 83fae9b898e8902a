//! Issue 17's remaining options against real servers: NTP servers to systemd-timesyncd,
//! vendor classes and extra DHCPv6 options, RFC 8925 (option 108), RFC 8910 (captive
//! portal), and the FQDN flags as Kea reads them.

use crate::lab::{DnsmasqOpts, Lab, TIMEOUT};
use crate::operate::cli;
use crate::{start_bound, wait_nb};
use std::fs;

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
