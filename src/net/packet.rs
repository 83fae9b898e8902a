//! DHCPv4 over an `AF_PACKET` socket.
//!
//! Before the interface has an IPv4 address (DISCOVER/REQUEST in INIT,
//! REBOOT and REBINDING) a normal UDP socket cannot be used: the kernel has no
//! source address to put in the IP header and may not deliver replies that are
//! unicast to an address it does not own yet. So the whole Ethernet/IPv4/UDP
//! stack is done here, on a raw link-layer socket.
//!
//! The 42 bytes of headers are built and parsed by hand rather than with
//! `pnet` packet builders (pnet is unmaintained since 2024 and heavy).
//!
//! The packet socket sees *every* inbound IPv4 UDP datagram to port 68 on the
//! interface, including unicast replies to renewals sent through
//! [`crate::net::udp4`]; the daemon therefore receives all DHCPv4 replies here.

use std::io;
use std::mem;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, Socket, Type};
use tokio::io::unix::AsyncFd;

mod frame;

pub use frame::{build_frame, parse_frame, HEADERS_LEN, MAX_PAYLOAD};
use frame::{ETHERTYPE_IPV4, FILTER};

// Kernel ABI constants from <linux/if_packet.h>, defined here because not
// every libc release exports them for every target.
const PACKET_AUXDATA: libc::c_int = 8;
const TP_STATUS_CSUMNOTREADY: u32 = 1 << 3;
const TP_STATUS_CSUM_VALID: u32 = 1 << 7;
const PACKET_HOST: u8 = 0;
const PACKET_BROADCAST: u8 = 1;
const PACKET_MULTICAST: u8 = 2;
const PACKET_OUTGOING: u8 = 4;

/// A validated DHCPv4 datagram received on the packet socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// IPv4 source address of the datagram (the server or relay).
    pub src_ip: Ipv4Addr,
    /// Ethernet source address of the frame.
    pub src_mac: [u8; 6],
    /// UDP payload: the DHCP message.
    pub payload: Vec<u8>,
}

/// Raw `AF_PACKET` socket bound to one interface, carrying DHCPv4.
#[derive(Debug)]
pub struct PacketSocket {
    fd: crate::net::sock::PacketFd,
    ifindex: u32,
    /// Broadcast link-layer destination on `ifindex`, used for every send.
    dest: SockAddr,
}

impl PacketSocket {
    /// Opens a `SOCK_RAW` packet socket on `ifindex` for DHCPv4.
    ///
    /// Order matters: the socket is created with protocol 0, so the kernel
    /// does not hook it into packet delivery yet; the BPF filter is attached;
    /// only then does `bind(ETH_P_IP, ifindex)` start delivery. Binding first
    /// would let every IPv4 frame on the link queue up before the filter
    /// exists. Whatever might still have been queued before the filter (the
    /// classic race, e.g. on kernels or code paths that start delivery early)
    /// is drained afterwards.
    ///
    /// Must be called within a tokio runtime with IO enabled (as for any
    /// tokio socket).
    pub fn open(ifindex: u32) -> io::Result<Self> {
        let what = || format!("opening packet socket on ifindex {ifindex}");
        let sock = Socket::new(Domain::PACKET, Type::RAW.cloexec(), Some(Protocol::from(0)))
            .map_err(|e| ctx(e, what()))?;
        sock.set_nonblocking(true).map_err(|e| ctx(e, what()))?;
        sock.attach_filter(&FILTER)
            .map_err(|e| ctx(e, format!("{}: attaching BPF filter", what())))?;
        // Tells us when the kernel left the UDP checksum to the NIC
        // (veth, virtio, local senders): then the on-wire field is not a
        // final checksum and must not be verified.
        crate::net::sock::set_int_opt(&sock, libc::SOL_PACKET, PACKET_AUXDATA, 1)
            .map_err(|e| ctx(e, format!("{}: setting PACKET_AUXDATA", what())))?;
        let bind_addr = ll_addr(ifindex, [0; 6], 0);
        sock.bind(&bind_addr)
            .map_err(|e| ctx(e, format!("{}: binding", what())))?;
        let dest = ll_addr(ifindex, [0xff; 6], 6);

        let mut drained = 0usize;
        loop {
            match crate::net::sock::with_recv_buf(|buf| recv_frame(sock.as_raw_fd(), buf)) {
                Ok(_) => drained += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A down link reports ENETDOWN once as a pending socket error; the
                // socket works again when the link comes up.
                Err(e) if e.raw_os_error() == Some(libc::ENETDOWN) => break,
                Err(e) => return Err(ctx(e, format!("{}: draining", what()))),
            }
        }
        if drained > 0 {
            crate::logging::debug!(
                ifindex,
                drained,
                "discarded frames queued before the filter"
            );
        }

        // SAFETY: socket2::Socket owns its descriptor; it stays open and
        // `as_raw_fd` returns that same descriptor until the Socket is
        // dropped together with the AsyncFd.
        let fd = unsafe { AsyncFd::register(sock) }.map_err(|e| ctx(e.into(), what()))?;
        let fd = crate::net::sock::PacketFd::new(fd);
        Ok(PacketSocket { fd, ifindex, dest })
    }

    /// Sends `payload` (a complete DHCP message, already padded by the
    /// engine) as a UDP 68 -> 67 datagram from `src_ip` to `dst_ip`, in an
    /// Ethernet frame from `src_mac` to the broadcast address.
    pub async fn send(
        &self,
        src_mac: [u8; 6],
        src_ip: Ipv4Addr,
        dst_ip: Ipv4Addr,
        payload: &[u8],
    ) -> io::Result<()> {
        let frame = build_frame(src_mac, src_ip, dst_ip, rand::random(), payload).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("sending on packet socket on ifindex {}: {e}", self.ifindex),
            )
        })?;
        crate::net::sock::send_to(&self.fd, &frame, &self.dest, |e| ctx(e, self.send_ctx())).await
    }

    /// Receives the next valid DHCPv4 datagram (UDP to port 68).
    ///
    /// Invalid frames (bad headers, checksum mismatch, fragments, truncated)
    /// and frames not addressed to this host (our own transmissions seen as
    /// `PACKET_OUTGOING`, other hosts' unicasts seen in promiscuous mode as
    /// `PACKET_OTHERHOST`) are skipped and logged at debug level.
    ///
    /// When the link goes down the kernel reports `ENETDOWN` once; the socket
    /// stays bound and receives again when the link comes back up.
    pub async fn recv(&self) -> io::Result<Received> {
        // Receive and parse inside the thread's shared buffer; only the DHCP
        // payload is copied out.
        crate::net::sock::recv_until(
            &self.fd,
            |fd, buf| recv_frame(fd, buf).map(|meta| self.accept(meta, buf)),
            |e| ctx(e, self.recv_ctx()),
        )
        .await
    }

    /// Keep a received frame if it is a valid DHCPv4 datagram for this host.
    fn accept(&self, meta: FrameMeta, buf: &[u8]) -> Option<Received> {
        let ifindex = self.ifindex;
        if !matches!(
            meta.pkttype,
            PACKET_HOST | PACKET_BROADCAST | PACKET_MULTICAST
        ) {
            let reason = if meta.pkttype == PACKET_OUTGOING {
                "own transmission (PACKET_OUTGOING)"
            } else {
                "not addressed to this host"
            };
            crate::logging::debug!(ifindex, pkttype = meta.pkttype, "dropping frame: {reason}");
            return None;
        }
        if meta.truncated {
            crate::logging::debug!(
                ifindex,
                len = meta.len,
                "dropping frame: larger than buffer"
            );
            return None;
        }
        let frame = &buf[..meta.len.min(buf.len())];
        match parse_frame(frame, !meta.csum_unverifiable) {
            Ok((src_ip, src_mac, payload)) => Some(Received {
                src_ip,
                src_mac,
                payload: payload.to_vec(),
            }),
            Err(reason) => {
                crate::logging::debug!(ifindex, len = frame.len(), "dropping frame: {reason}");
                None
            }
        }
    }

    fn send_ctx(&self) -> String {
        format!("sending on packet socket on ifindex {}", self.ifindex)
    }

    fn recv_ctx(&self) -> String {
        format!("receiving on packet socket on ifindex {}", self.ifindex)
    }
}

/// Metadata of one received frame.
struct FrameMeta {
    /// Bytes in the frame (may exceed the buffer when `truncated`).
    len: usize,
    truncated: bool,
    pkttype: u8,
    /// The kernel says the UDP checksum field is not final (offloaded) or
    /// was already verified; either way it must not be checked here.
    csum_unverifiable: bool,
}

/// One `recvmsg` on the packet socket, collecting `sll_pkttype` and the
/// `PACKET_AUXDATA` status.
fn recv_frame(fd: RawFd, buf: &mut [u8]) -> io::Result<FrameMeta> {
    let r = crate::net::sock::recv_with_cmsg::<libc::sockaddr_ll>(
        fd,
        buf,
        libc::SOL_PACKET,
        PACKET_AUXDATA,
    )?;
    let status = r.cmsg_u32.unwrap_or(0);
    Ok(FrameMeta {
        len: r.len,
        truncated: r.truncated,
        pkttype: r.addr.sll_pkttype,
        csum_unverifiable: status & (TP_STATUS_CSUMNOTREADY | TP_STATUS_CSUM_VALID) != 0,
    })
}

/// Builds a `sockaddr_ll` for ETH_P_IP on `ifindex` with the given hardware
/// address (`halen` 0 for bind, 6 for a destination).
fn ll_addr(ifindex: u32, mac: [u8; 6], halen: u8) -> SockAddr {
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: sockaddr_ll is a sockaddr type of this platform and fits in
    // sockaddr_storage.
    let ll = unsafe { storage.view_as::<libc::sockaddr_ll>() };
    ll.sll_family = libc::AF_PACKET as libc::sa_family_t;
    ll.sll_protocol = (ETHERTYPE_IPV4).to_be();
    ll.sll_ifindex = ifindex as libc::c_int;
    ll.sll_halen = halen;
    ll.sll_addr[..6].copy_from_slice(&mac);
    let len = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: storage holds an initialised sockaddr_ll of length `len`.
    unsafe { SockAddr::new(storage, len) }
}

/// Adds context to an error (see [`crate::net::sock::ctx`]).
fn ctx(e: io::Error, what: impl std::fmt::Display) -> io::Error {
    crate::net::sock::ctx(e, what, "CAP_NET_RAW")
}
