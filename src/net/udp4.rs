//! Unicast DHCPv4 (RENEWING requests, RELEASE) over an ordinary UDP socket,
//! once the interface has its address.
//!
//! This socket is for *sending*. Replies to unicast renewals arrive at
//! `local:68`, and the [`crate::net::packet`] socket sees every inbound UDP/68
//! frame on the interface, so the daemon reads all DHCPv4 replies there. Two
//! receive paths would deliver each reply twice.
//!
//! A UDP socket that is never read still queues whatever arrives for it, up
//! to its receive buffer. `shutdown(SHUT_RD)` does not help on Linux: on an
//! unconnected UDP socket it fails with `ENOTCONN` and does not stop the
//! kernel from queueing datagrams. So the receive buffer is set to the
//! kernel's minimum instead: at most a couple of stale datagrams are held
//! (the rest are dropped by the kernel), memory stays bounded, and
//! [`Udp4Socket::recv`] still works for the most recent datagram (tests and
//! diagnostics).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

const CLIENT_PORT: u16 = 68;
const SERVER_PORT: u16 = 67;

/// UDP socket bound to `local:68` on one interface.
#[derive(Debug)]
pub struct Udp4Socket {
    sock: UdpSocket,
    ifname: String,
    local: Ipv4Addr,
}

impl Udp4Socket {
    /// Binds `local:68` on `ifname` (`SO_BINDTODEVICE`, which needs
    /// `CAP_NET_RAW`, and `SO_REUSEADDR` so a restarting daemon or the packet
    /// socket's exchange never blocks the bind). Non-blocking, close-on-exec.
    ///
    /// Port 68 is privileged: binding needs `CAP_NET_BIND_SERVICE`.
    /// Must be called within a tokio runtime with IO enabled.
    pub fn open(ifname: &str, local: Ipv4Addr) -> io::Result<Self> {
        let what = || format!("opening UDP socket {local}:{CLIENT_PORT} on {ifname}");
        let sock = Socket::new(Domain::IPV4, Type::DGRAM.cloexec(), Some(Protocol::UDP))
            .map_err(|e| ctx(e, what()))?;
        sock.set_reuse_address(true)
            .map_err(|e| ctx(e, format!("{}: SO_REUSEADDR", what())))?;
        sock.bind_device(Some(ifname.as_bytes()))
            .map_err(|e| ctx(e, format!("{}: SO_BINDTODEVICE", what())))?;
        // The kernel rounds this up to its minimum (SOCK_MIN_RCVBUF).
        sock.set_recv_buffer_size(1)
            .map_err(|e| ctx(e, format!("{}: SO_RCVBUF", what())))?;
        sock.set_nonblocking(true).map_err(|e| ctx(e, what()))?;
        sock.bind(&SocketAddr::V4(SocketAddrV4::new(local, CLIENT_PORT)).into())
            .map_err(|e| ctx(e, format!("{}: binding", what())))?;
        let sock = UdpSocket::from_std(sock.into()).map_err(|e| ctx(e, what()))?;
        Ok(Udp4Socket {
            sock,
            ifname: ifname.to_owned(),
            local,
        })
    }

    /// Sends `payload` to `dst:67`.
    pub async fn send(&self, dst: Ipv4Addr, payload: &[u8]) -> io::Result<()> {
        self.sock
            .send_to(payload, SocketAddrV4::new(dst, SERVER_PORT))
            .await
            .map(|_| ())
            .map_err(|e| {
                ctx(
                    e,
                    format!(
                        "sending to {dst}:{SERVER_PORT} from {}:{CLIENT_PORT} on {}",
                        self.local, self.ifname
                    ),
                )
            })
    }
}

/// Adds context to an error (see [`crate::net::sock::ctx`]).
fn ctx(e: io::Error, what: impl std::fmt::Display) -> io::Error {
    crate::net::sock::ctx(e, what, "CAP_NET_RAW and CAP_NET_BIND_SERVICE")
}
