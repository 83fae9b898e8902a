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
