//! DHCPv6 client socket: UDP `[::]:546` on one interface, sending to
//! All_DHCP_Relay_Agents_and_Servers (`ff02::1:2`, port 547).
//!
//! DHCPv6 needs no packet socket: a client always has a link-local address,
//! servers answer to it by unicast, and the kernel chooses the link-local
//! source for the link-scoped multicast destination. Binding to `[::]` works
//! before any global address exists.
//!
//! Right after the link comes up the link-local address may still be
//! tentative (duplicate address detection, about one second). The kernel then
//! has no usable source and `send` fails with `EADDRNOTAVAIL`; that error keeps
//! [`io::ErrorKind::AddrNotAvailable`] so the daemon can tell it apart (see
//! [`is_address_not_ready`]) and retry after a short delay.

use std::io;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

/// DHCPv6 client port.
pub const CLIENT_PORT: u16 = 546;
/// DHCPv6 server/relay port.
pub const SERVER_PORT: u16 = 547;
// All_DHCP_Relay_Agents_and_Servers (RFC 8415 section 7.1): the engine defines it.
use netbond_proto::dhcp6::ALL_DHCP_SERVERS;

/// UDP socket for a DHCPv6 client on one interface.
#[derive(Debug)]
pub struct Udp6Socket {
    sock: UdpSocket,
    ifindex: u32,
    ifname: String,
}

impl Udp6Socket {
    /// Binds `[::]:546` on `ifname`/`ifindex`: `SO_BINDTODEVICE` (needs
    /// `CAP_NET_RAW`) so another interface's traffic never reaches this
    /// client, `SO_REUSEADDR` so one client per interface can each bind port
    /// 546, `IPV6_V6ONLY`, multicast sent out of `ifindex` with hop limit 1
    /// and not looped back. Port 546 is privileged (`CAP_NET_BIND_SERVICE`).
    ///
    /// Must be called within a tokio runtime with IO enabled.
    pub fn open(ifindex: u32, ifname: &str) -> io::Result<Self> {
        let what = || format!("opening DHCPv6 socket [::]:{CLIENT_PORT} on {ifname}");
        let step = |e: io::Error, opt: &str| ctx(e, format!("{}: {opt}", what()));
        let sock = Socket::new(Domain::IPV6, Type::DGRAM.cloexec(), Some(Protocol::UDP))
            .map_err(|e| ctx(e, what()))?;
        sock.set_only_v6(true).map_err(|e| step(e, "IPV6_V6ONLY"))?;
        sock.set_reuse_address(true)
            .map_err(|e| step(e, "SO_REUSEADDR"))?;
        sock.bind_device(Some(ifname.as_bytes()))
            .map_err(|e| step(e, "SO_BINDTODEVICE"))?;
        sock.set_multicast_if_v6(ifindex)
            .map_err(|e| step(e, "IPV6_MULTICAST_IF"))?;
        sock.set_multicast_hops_v6(1)
            .map_err(|e| step(e, "IPV6_MULTICAST_HOPS"))?;
        sock.set_multicast_loop_v6(false)
            .map_err(|e| step(e, "IPV6_MULTICAST_LOOP"))?;
        sock.set_nonblocking(true).map_err(|e| ctx(e, what()))?;
        let bind = SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, CLIENT_PORT, 0, 0);
        sock.bind(&SocketAddr::V6(bind).into())
            .map_err(|e| step(e, "binding"))?;
        let sock = UdpSocket::from_std(sock.into()).map_err(|e| ctx(e, what()))?;
        Ok(Udp6Socket {
            sock,
            ifindex,
            ifname: ifname.to_owned(),
        })
    }

    /// Sends `payload` to `[ff02::1:2%ifindex]:547`.
    ///
    /// Fails with [`io::ErrorKind::AddrNotAvailable`] while the link-local
    /// address is tentative; retry later.
    pub async fn send(&self, payload: &[u8]) -> io::Result<()> {
        let dst = SocketAddrV6::new(ALL_DHCP_SERVERS, SERVER_PORT, 0, self.ifindex);
        self.sock
            .send_to(payload, dst)
            .await
            .map(|_| ())
            .map_err(|e| {
                let hint = if e.kind() == io::ErrorKind::AddrNotAvailable {
                    " (no usable link-local source yet: tentative?)"
                } else {
                    ""
                };
                ctx(
                    e,
                    format!("sending DHCPv6 to {dst} on {}{hint}", self.ifname),
                )
            })
    }

    /// Receives one datagram: (source address with scope, payload).
    pub async fn recv(&self) -> io::Result<(SocketAddrV6, Vec<u8>)> {
        let what = || format!("receiving on DHCPv6 socket on {}", self.ifname);
        loop {
            self.sock.readable().await.map_err(|e| ctx(e, what()))?;
            // Into the thread's shared buffer; only the datagram itself is copied out.
            let got = crate::net::sock::with_recv_buf(|buf| {
                self.sock
                    .try_recv_from(buf)
                    .map(|(n, from)| (from, buf[..n].to_vec()))
            });
            match got {
                Ok((SocketAddr::V6(a), data)) => return Ok((a, data)),
                Ok((SocketAddr::V4(a), _)) => {
                    crate::logging::debug!(%a, "dropping datagram with IPv4 source on an IPv6-only socket");
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ctx(e, what())),
            }
        }
    }
}

/// True when `e` means the interface has no usable IPv6 source address yet
/// (`EADDRNOTAVAIL`, typically a tentative link-local): retry shortly.
pub fn is_address_not_ready(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::AddrNotAvailable
}

/// Adds context to an error (see [`crate::net::sock::ctx`]).
fn ctx(e: io::Error, what: impl std::fmt::Display) -> io::Error {
    crate::net::sock::ctx(e, what, "CAP_NET_RAW and CAP_NET_BIND_SERVICE")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_not_ready_survives_context() {
        let e = io::Error::from_raw_os_error(libc::EADDRNOTAVAIL);
        let e = ctx(e, "sending");
        assert!(is_address_not_ready(&e));
        assert!(!is_address_not_ready(&io::Error::from_raw_os_error(
            libc::ENETDOWN
        )));
        assert_eq!(ALL_DHCP_SERVERS, "ff02::1:2".parse::<Ipv6Addr>().unwrap());
    }
}
