//! Reading an interface's current hardware address straight from the kernel.
//!
//! The link watcher keeps the MAC current from RTM_NEWLINK events, but an event can
//! still be in flight when a DHCP packet is built. Reading it with SIOCGIFHWADDR right
//! before every transmit closes that window: the chaddr is never older than the send.

use std::io;
use std::os::fd::AsRawFd;

/// The current MAC of `ifname`, or an error if the interface is gone.
pub fn current_mac(ifname: &str) -> io::Result<[u8; 6]> {
    if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{ifname:?} is not an interface name"),
        ));
    }
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(ifname.bytes()) {
        *dst = src as libc::c_char;
    }
    // SAFETY: SIOCGIFHWADDR reads ifr_name and writes ifr_hwaddr inside `req`, which
    // lives for the whole call; the fd is a valid socket.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFHWADDR as _, &mut req) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: after a successful SIOCGIFHWADDR the union holds ifru_hwaddr.
    let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (d, s) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *d = *s as u8;
    }
    Ok(mac)
}

/// The MACs of every interface of this host (network namespace), from getifaddrs(3).
///
/// Linux answers ARP for any local address on any interface by default (arp_ignore=0),
/// so with two interfaces on one LAN the other interface replies for ours with its own
/// MAC. Such a reply is no conflict; the conflict check asks this before declining.
pub fn local_macs() -> io::Result<Vec<[u8; 6]>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head into `head` on success.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        if !ifa.ifa_addr.is_null() {
            // SAFETY: ifa_addr is non-null and points to a sockaddr of its family.
            let family = unsafe { (*ifa.ifa_addr).sa_family };
            if i32::from(family) == libc::AF_PACKET {
                // SAFETY: AF_PACKET entries carry a sockaddr_ll.
                let ll = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_ll) };
                if ll.sll_halen == 6 {
                    let mut mac = [0u8; 6];
                    mac.copy_from_slice(&ll.sll_addr[..6]);
                    out.push(mac);
                }
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// `aa:bb:cc:dd:ee:ff`
pub fn fmt_mac(mac: &[u8; 6]) -> String {
    let mut s = String::with_capacity(17);
    let _ = netbond_proto::duid::write_hex(&mut s, mac);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_a_zero_mac_and_bad_names_fail() {
        assert_eq!(current_mac("lo").unwrap(), [0; 6]);
        assert!(current_mac("no-such-if0").is_err());
        assert!(current_mac("").is_err());
        assert!(current_mac("a-name-far-too-long").is_err());
        assert_eq!(fmt_mac(&[1, 2, 3, 0xaa, 0xbb, 0xcc]), "01:02:03:aa:bb:cc");
    }

    #[test]
    fn local_macs_lists_this_hosts_interfaces() {
        let macs = local_macs().unwrap();
        // Loopback (all zero) is always there.
        assert!(macs.contains(&[0; 6]), "{macs:?}");
    }
}
