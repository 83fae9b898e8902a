//! Work inside a container's network namespace without leaving the daemon's own.
//!
//! A socket belongs to the namespace it was created in for its whole life, so the
//! daemon needs to be in a container's namespace only while it creates the sockets. A
//! short-lived thread enters the namespace (`setns` changes only the calling thread),
//! creates them, registers them with the daemon's reactor, hands them back, and exits:
//! no thread per container, and no pooled thread is ever left in a foreign namespace
//! (which is why this is not `spawn_blocking`).

use std::fs::File;
use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::Path;

/// Run `f` on a fresh thread inside the network namespace at `netns` (a bind mount
/// such as /var/run/netns/NAME, or /proc/PID/ns/net), with the caller's tokio runtime
/// entered so that sockets made there can be registered with it.
pub async fn run_in<T, F>(netns: &Path, f: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    let ns = open(netns)?;
    let handle = tokio::runtime::Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let shown = netns.display().to_string();
    std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || {
            let _rt = handle.enter();
            // SAFETY: setns on a valid namespace fd; it affects only this thread.
            let r = if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                let e = io::Error::last_os_error();
                let hint = match e.raw_os_error() {
                    Some(libc::EPERM) => " (needs CAP_SYS_ADMIN)",
                    // A plain file where the runtime's bind mount should be: the
                    // daemon does not see the runtime's mounts.
                    Some(libc::EINVAL) => {
                        " (not a network namespace here: run the daemon in the mount namespace of the container runtime, or with mount propagation from it)"
                    }
                    _ => "",
                };
                Err(io::Error::new(
                    e.kind(),
                    format!("entering network namespace {shown}: {e}{hint}"),
                ))
            } else {
                f()
            };
            let _ = tx.send(r);
        })?;
    rx.await
        .unwrap_or_else(|_| Err(io::Error::other("the netns thread ended without an answer")))
}

/// Open a network namespace file; the error says which.
pub fn open(netns: &Path) -> io::Result<File> {
    File::open(netns).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("network namespace {}: {e}", netns.display()),
        )
    })
}

/// True when `netns` still names a network namespace.
pub fn exists(netns: &Path) -> bool {
    let Ok(f) = File::open(netns) else {
        return false;
    };
    // NS_GET_NSTYPE (_IO(0xb7, 0x3)) tells a namespace from a plain file left behind
    // by a bind mount that is gone.
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: an ioctl without argument on a valid fd.
    let t = unsafe { libc::ioctl(f.as_raw_fd(), NS_GET_NSTYPE as _) };
    t == libc::CLONE_NEWNET
}

/// The index of `ifname` in the current thread's namespace.
pub fn ifindex(ifname: &str) -> io::Result<u32> {
    let c = std::ffi::CString::new(ifname)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name with NUL"))?;
    // SAFETY: a valid C string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("interface {ifname}: {e}")));
    }
    Ok(i)
}

/// Set `ifname` up or down (SIOCSIFFLAGS) in the current thread's namespace.
pub fn set_up(ifname: &str, up: bool) -> io::Result<()> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "bad interface name",
        ));
    }
    for (d, s) in req.ifr_name.iter_mut().zip(ifname.bytes()) {
        *d = s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads ifr_name and writes ifru_flags within `req`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: after SIOCGIFFLAGS the union holds ifru_flags.
    let mut flags = unsafe { req.ifr_ifru.ifru_flags };
    if up {
        flags |= libc::IFF_UP as libc::c_short;
    } else {
        flags &= !(libc::IFF_UP as libc::c_short);
    }
    req.ifr_ifru.ifru_flags = flags;
    // SAFETY: as above, SIOCSIFFLAGS reads `req`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &mut req) } < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("setting {ifname} up/down: {e}"),
        ));
    }
    Ok(())
}

/// The addresses on `ifname` in the current thread's namespace.
pub fn addresses(ifname: &str) -> io::Result<Vec<IpAddr>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut p = head;
    while !p.is_null() {
        // SAFETY: `p` is a node of the list getifaddrs returned, alive until freeifaddrs.
        let ifa = unsafe { &*p };
        p = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string in the list.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
        if name.to_bytes() != ifname.as_bytes() {
            continue;
        }
        // SAFETY: ifa_addr points to a sockaddr whose family says its real type.
        match i32::from(unsafe { (*ifa.ifa_addr).sa_family }) {
            libc::AF_INET => {
                // SAFETY: family AF_INET means sockaddr_in.
                let sa = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                out.push(IpAddr::from(u32::from_be(sa.sin_addr.s_addr).to_be_bytes()));
            }
            libc::AF_INET6 => {
                // SAFETY: family AF_INET6 means sockaddr_in6.
                let sa = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                out.push(IpAddr::from(sa.sin6_addr.s6_addr));
            }
            _ => {}
        }
    }
    // SAFETY: the list from getifaddrs, freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// The kernel driver of `ifname` (ETHTOOL_GDRVINFO: "veth", "macvlan", "ipvlan", ...)
/// in the current thread's namespace.
pub fn driver(ifname: &str) -> io::Result<String> {
    #[repr(C)]
    struct DrvInfo {
        cmd: u32,
        driver: [u8; 32],
        version: [u8; 32],
        fw_version: [u8; 32],
        bus_info: [u8; 32],
        erom_version: [u8; 32],
        reserved2: [u8; 12],
        n_priv_flags: u32,
        n_stats: u32,
        testinfo_len: u32,
        eedump_len: u32,
        regdump_len: u32,
    }
    const ETHTOOL_GDRVINFO: u32 = 3;
    const SIOCETHTOOL: libc::c_ulong = 0x8946;
    if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "bad interface name",
        ));
    }
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
    // SAFETY: both are plain old data; zeroed is a valid value.
    let mut info: DrvInfo = unsafe { std::mem::zeroed() };
    info.cmd = ETHTOOL_GDRVINFO;
    // SAFETY: as above.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(ifname.bytes()) {
        *d = s as libc::c_char;
    }
    req.ifr_ifru.ifru_data = (&mut info as *mut DrvInfo).cast();
    // SAFETY: SIOCETHTOOL reads ifr_name and fills `info` (which outlives the call)
    // through ifru_data.
    if unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL as _, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let end = info.driver.iter().position(|b| *b == 0).unwrap_or(32);
    Ok(String::from_utf8_lossy(&info.driver[..end]).into_owned())
}

/// What the kernel learnt from Router Advertisements for `addr` on `ifname`, read from
/// the current thread's namespace: the length of the on-link prefix that holds `addr`
/// and the default router (a link-local address), when there are such routes.
pub fn ra_routes(
    ifname: &str,
    addr: std::net::Ipv6Addr,
) -> io::Result<(Option<u8>, Option<std::net::Ipv6Addr>)> {
    // /proc/thread-self/net is this thread's namespace (/proc/self/net would be the
    // main thread's).
    let text = std::fs::read_to_string("/proc/thread-self/net/ipv6_route")?;
    Ok(parse_ipv6_route(&text, ifname, addr))
}

fn parse_ipv6_route(
    text: &str,
    ifname: &str,
    addr: std::net::Ipv6Addr,
) -> (Option<u8>, Option<std::net::Ipv6Addr>) {
    let hex = |s: &str| u128::from_str_radix(s, 16).ok();
    let mut prefix = None;
    let mut router = None;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 || f[9] != ifname {
            continue;
        }
        let (Some(dst), Some(plen), Some(gw)) =
            (hex(f[0]), u8::from_str_radix(f[1], 16).ok(), hex(f[4]))
        else {
            continue;
        };
        if plen == 0 && gw != 0 {
            router = router.or(Some(std::net::Ipv6Addr::from(gw)));
        } else if (1..128).contains(&plen) && gw == 0 {
            let mask = u128::MAX << (128 - u32::from(plen));
            // The longest on-link prefix holding the address; never link-local.
            if u128::from(addr) & mask == dst
                && dst >> 118 != 0x3fa
                && prefix.is_none_or(|p| plen > p)
            {
                prefix = Some(plen);
            }
        }
    }
    (prefix, router)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_link_prefix_and_router_from_ipv6_route() {
        let t = "\
fd770000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0
fd990000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth1
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe8000000000000000000000000000aa 00000400 00000002 00000000 00000003     eth0
";
        let a: std::net::Ipv6Addr = "fd77::123".parse().unwrap();
        assert_eq!(
            parse_ipv6_route(t, "eth0", a),
            (Some(64), Some("fe80::aa".parse().unwrap()))
        );
        assert_eq!(parse_ipv6_route(t, "eth1", a), (None, None));
    }
}
