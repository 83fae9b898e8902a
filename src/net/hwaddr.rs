//! Reading an interface's current hardware address straight from the kernel.
//!
//! The engines' MAC comes from netlink: RTM_NEWLINK (`link.rs`) is routed to the
//! interface's task, which calls `hw_address_changed`. This SIOCGIFHWADDR read is the
//! fallback for what no event can tell yet: right before a due DHCPv4 transmit (the
//! RTM_NEWLINK of a change may still be queued; `dhcp/v4.rs`), a MAC where netlink
//! reported none, and the CNI attachment's one read at ADD.

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

/// The MACs of every interface of this host (network namespace), kept current by the
/// daemon from the netlink link events it receives anyway.
///
/// Linux answers ARP for any local address on any interface by default (arp_ignore=0)
/// and sources ARP from whatever local address a packet has, so with two interfaces on
/// one LAN the other interface claims ours with its own MAC. Such a claim is no
/// conflict; the conflict check asks this before declining.
#[derive(Default)]
pub struct HostMacs {
    inner: std::sync::Mutex<MacTable>,
}

/// By index, and how many interfaces have each MAC (a bond and its ports share one):
/// `contains` is asked for every ARP answer during a conflict check, which on a LAN
/// shared by hundreds of this host's interfaces means hundreds per probe, so it must
/// not scan the table.
#[derive(Default)]
struct MacTable {
    by_index: std::collections::HashMap<u32, [u8; 6]>,
    count: std::collections::HashMap<[u8; 6], u32>,
}

impl MacTable {
    fn forget(&mut self, index: u32) {
        if let Some(old) = self.by_index.remove(&index) {
            if let Some(n) = self.count.get_mut(&old) {
                *n -= 1;
                if *n == 0 {
                    self.count.remove(&old);
                }
            }
        }
    }
}

impl HostMacs {
    /// Record an interface's current MAC (or forget it when it has none).
    pub fn set(&self, index: u32, mac: Option<[u8; 6]>) {
        if let Ok(mut t) = self.inner.lock() {
            t.forget(index);
            if let Some(mac) = mac {
                t.by_index.insert(index, mac);
                *t.count.entry(mac).or_insert(0) += 1;
            }
        }
    }

    /// Forget a deleted interface.
    pub fn remove(&self, index: u32) {
        if let Ok(mut t) = self.inner.lock() {
            t.forget(index);
        }
    }

    /// Does an interface of this host have `mac`?
    pub fn contains(&self, mac: &[u8; 6]) -> bool {
        self.inner
            .lock()
            .map(|t| t.count.contains_key(mac))
            .unwrap_or(false)
    }
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
    fn host_macs_follow_the_interfaces() {
        let h = HostMacs::default();
        h.set(2, Some([2, 0, 0, 0, 0, 1]));
        h.set(3, Some([2, 0, 0, 0, 0, 2]));
        assert!(h.contains(&[2, 0, 0, 0, 0, 2]));
        h.set(3, Some([2, 0, 0, 0, 0, 3]));
        assert!(
            !h.contains(&[2, 0, 0, 0, 0, 2]),
            "the old MAC of a changed interface"
        );
        h.remove(2);
        assert!(!h.contains(&[2, 0, 0, 0, 0, 1]));
    }
}
