//! Address conflict detection (RFC 5227) for a freshly bound DHCPv4 address.
//!
//! netbond configures the address at once (waiting 1-2 s before using it, as RFC 5227's
//! strict probing does, would undo the fast lease) and probes for it in parallel: three
//! ARP probes (sender address 0.0.0.0) over ~1 s. Any ARP packet from another hardware
//! address that claims the address, or probes for it at the same time, is a conflict,
//! and the caller declines the lease (DHCPDECLINE), removes the address and starts over.

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::mem;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use tokio::io::unix::AsyncFd;

const ETH_P_ARP: u16 = 0x0806;
pub use netbond_proto::arp::{Arp, ARP_LEN};

/// A cooked (SOCK_DGRAM) packet socket for ARP on one interface.
pub struct ArpSocket {
    fd: crate::net::sock::PacketFd,
    ifindex: u32,
}

fn ll(ifindex: u32, addr: [u8; 6]) -> SockAddr {
    let mut storage = socket2::SockAddrStorage::zeroed();
    // SAFETY: sockaddr_ll is a sockaddr type of this platform and fits in
    // sockaddr_storage.
    let sll = unsafe { storage.view_as::<libc::sockaddr_ll>() };
    sll.sll_family = libc::AF_PACKET as libc::sa_family_t;
    sll.sll_protocol = ETH_P_ARP.to_be();
    sll.sll_ifindex = ifindex as libc::c_int;
    sll.sll_halen = 6;
    sll.sll_addr[..6].copy_from_slice(&addr);
    let len = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: storage holds an initialised sockaddr_ll of length `len`.
    unsafe { SockAddr::new(storage, len) }
}

/// A classic BPF program accepting ARP packets (cooked: offsets from the ARP header)
/// whose sender address is `addr`, or whose sender is 0.0.0.0 and target `addr`.
fn about(addr: Ipv4Addr) -> [socket2::SockFilter; 7] {
    use socket2::SockFilter;
    let a = u32::from(addr);
    [
        SockFilter::new(0x20, 0, 0, 14), // ld [14]: sender protocol address
        SockFilter::new(0x15, 3, 0, a),  // jeq #addr -> accept
        SockFilter::new(0x15, 0, 3, 0),  // jeq #0 else drop
        SockFilter::new(0x20, 0, 0, 24), // ld [24]: target protocol address
        SockFilter::new(0x15, 0, 1, a),  // jeq #addr else drop
        SockFilter::new(0x06, 0, 0, 0xffff),
        SockFilter::new(0x06, 0, 0, 0),
    ]
}

impl ArpSocket {
    /// Open on `ifindex` (needs CAP_NET_RAW), seeing only ARP about `addr`: packets
    /// claiming it (sender address) and probes for it (sender 0.0.0.0, target it).
    /// The kernel filters the rest, so N interfaces on one LAN do not each wake up for
    /// every ARP packet of the others.
    pub fn open(ifindex: u32, addr: Ipv4Addr) -> io::Result<ArpSocket> {
        let what = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("opening ARP socket on ifindex {ifindex}: {e}"),
            )
        };
        // Protocol 0: the socket receives nothing until bind() names ETH_P_ARP and the
        // interface. Opened with ETH_P_ARP it would be hooked to every interface at
        // once, and bind() would then have to unhook it first, which waits for an RCU
        // grace period (synchronize_net: ~12 ms each, measured; this runs on the
        // event loop once per lease, so at 256 interfaces that was seconds).
        let sock = Socket::new(
            Domain::PACKET,
            Type::DGRAM.cloexec(),
            Some(Protocol::from(0)),
        )
        .map_err(what)?;
        sock.set_nonblocking(true).map_err(what)?;
        // The filter is in place before the socket can receive anything.
        sock.attach_filter(&about(addr)).map_err(what)?;
        sock.bind(&ll(ifindex, [0; 6])).map_err(what)?;
        Ok(ArpSocket {
            // SAFETY: the Socket owns its descriptor, which stays open for as long as
            // the AsyncFd that holds it.
            fd: crate::net::sock::PacketFd::new(
                unsafe { AsyncFd::register(sock) }.map_err(|e| what(e.into()))?,
            ),
            ifindex,
        })
    }

    /// Broadcast one ARP packet.
    pub fn send(&self, arp: Arp) -> io::Result<()> {
        self.fd
            .get_ref()
            .send_to(&arp.to_bytes(), &ll(self.ifindex, [0xff; 6]))
            .map(|_| ())
    }

    /// The next ARP packet seen on the link (invalid ones are skipped).
    pub async fn recv(&self) -> io::Result<Arp> {
        let mut buf = [0u8; 64];
        loop {
            let mut guard = self.fd.readable().await?;
            // SAFETY: recv(2) into a buffer we own, on a socket we own.
            let r = guard.try_io(|fd| {
                let n = unsafe {
                    libc::recv(
                        fd.get_ref().as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        0,
                    )
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match r {
                Ok(Ok(n)) => {
                    if let Some(a) = Arp::parse(&buf[..n]) {
                        return Ok(a);
                    }
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}
