//! The `NETLINK_ROUTE` socket on tokio's `AsyncFd`: requests (sequence number, ACK or
//! dump until `NLMSG_DONE`) on one shared socket, and multicast event streams.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use futures::stream::{BoxStream, StreamExt};
use tokio::io::unix::AsyncFd;
use tokio::sync::Mutex;

use crate::net::sock::set_int_opt;

use super::attr::{self, Message, NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR};

/// Large enough for any route-netlink message netbond asks for: the kernel sizes dump
/// chunks by the reader's buffer, capped at 32 KiB.
const RECV_BUF: usize = 64 * 1024;
/// A dump the kernel flags as inconsistent (`NLM_F_DUMP_INTR`: the table changed
/// while it was read) is read again up to this many times in all.
const DUMP_TRIES: usize = 5;
const NETLINK_EXT_ACK: libc::c_int = 11;

/// Why a request failed; [`crate::net::link::NlError`] adds the operation and the
/// interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fail {
    /// The kernel refused it: the positive errno, and its extended-ack text if any.
    Kernel { errno: i32, ext_ack: Option<String> },
    /// The socket failed or the reply made no sense.
    Other(String),
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fail::Kernel { errno, ext_ack } => {
                write!(f, "{}", io::Error::from_raw_os_error(*errno))?;
                match ext_ack {
                    Some(m) => write!(f, " (kernel: {m})"),
                    None => Ok(()),
                }
            }
            Fail::Other(d) => f.write_str(d),
        }
    }
}

impl Fail {
    /// The kernel's errno, when it refused the request.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Fail::Kernel { errno, .. } => Some(*errno),
            Fail::Other(_) => None,
        }
    }

    fn io(e: io::Error) -> Fail {
        Fail::Other(format!("netlink socket: {e}"))
    }
}

struct Sock {
    fd: AsyncFd<OwnedFd>,
}

impl Sock {
    /// A route-netlink socket bound to the multicast `groups` (`RTMGRP_*` bits; 0 for
    /// a request socket).
    fn open(groups: u32) -> io::Result<Sock> {
        // SAFETY: socket(2) with constant arguments; the result is checked.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                libc::NETLINK_ROUTE,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_nl is plain data; all-zero is a valid value.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        sa.nl_groups = groups;
        // SAFETY: bind(2) with a sockaddr_nl that lives for the call and its size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the descriptor is owned by the AsyncFd from here on and is closed
        // only when the AsyncFd drops (which deregisters it first).
        let fd = unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)?;
        Ok(Sock { fd })
    }

    async fn send(&self, msg: &[u8]) -> io::Result<()> {
        loop {
            let mut ready = self.fd.writable().await?;
            // SAFETY: send(2) of a buffer that lives for the call.
            let sent = ready.try_io(|fd| {
                let n = unsafe { libc::send(fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
                if n < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
            match sent {
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    /// One datagram from the kernel into `buf`; its length. Datagrams from other
    /// sockets (any sender but the kernel, port 0) are dropped. A datagram larger
    /// than `buf` is `EMSGSIZE`: its tail is lost.
    async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut ready = self.fd.readable().await?;
            let got = ready.try_io(|fd| {
                // SAFETY: sockaddr_nl is plain data; all-zero is a valid value.
                let mut from: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
                let mut from_len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
                // SAFETY: recvfrom(2) into a buffer and an address we own, with their
                // sizes. MSG_TRUNC makes it return the full datagram length.
                let n = unsafe {
                    libc::recvfrom(
                        fd.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        libc::MSG_TRUNC,
                        (&mut from as *mut libc::sockaddr_nl).cast(),
                        &mut from_len,
                    )
                };
                if n < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok((n as usize, from.nl_pid))
            });
            match got {
                Ok(Ok((_, pid))) if pid != 0 => continue,
                Ok(Ok((n, _))) if n > buf.len() => {
                    return Err(io::Error::from_raw_os_error(libc::EMSGSIZE))
                }
                Ok(Ok((n, _))) => return Ok(n),
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

struct Conn {
    sock: Sock,
    seq: u32,
    buf: Vec<u8>,
}

/// The request side: one socket shared by every task, one request at a time (a tokio
/// mutex, so waiting tasks do not block the runtime). Cheap to clone.
///
/// A request whose future is dropped half-way leaves its replies in the socket; the
/// next request skips them by sequence number.
#[derive(Clone)]
pub struct Handle {
    conn: Arc<Mutex<Conn>>,
}

impl Handle {
    /// A request socket with extended ack turned on, so that refusals carry the
    /// kernel's explanation.
    pub fn connect() -> io::Result<Handle> {
        let sock = Sock::open(0)?;
        // Best effort: kernels before 4.12 lack NETLINK_EXT_ACK; errors then just have
        // no kernel text.
        let _ = set_int_opt(sock.fd.get_ref(), libc::SOL_NETLINK, NETLINK_EXT_ACK, 1);
        Ok(Handle {
            conn: Arc::new(Mutex::new(Conn {
                sock,
                seq: 0,
                buf: vec![0; RECV_BUF],
            })),
        })
    }

    /// A change (`flags`: `NLM_F_CREATE` etc.) answered by an ACK.
    pub async fn ack(&self, kind: u16, flags: u16, body: &[u8]) -> Result<(), Fail> {
        self.exchange(kind, flags | NLM_F_ACK, body).await.map(drop)
    }

    /// A lookup answered by one message: its body, `None` if the kernel sent none.
    pub async fn get(&self, kind: u16, body: &[u8]) -> Result<Option<Vec<u8>>, Fail> {
        let (msgs, _) = self.exchange(kind, NLM_F_ACK, body).await?;
        Ok(msgs.into_iter().next())
    }

    /// A dump: the bodies of every message up to `NLMSG_DONE`, across as many
    /// datagrams as the kernel needs. Read again when the kernel says the table
    /// changed under it.
    pub async fn dump(&self, kind: u16, body: &[u8]) -> Result<Vec<Vec<u8>>, Fail> {
        let mut tries = 1;
        loop {
            let (msgs, interrupted) = self.exchange(kind, NLM_F_DUMP, body).await?;
            if !interrupted || tries == DUMP_TRIES {
                return Ok(msgs);
            }
            tries += 1;
            crate::logging::debug!(
                "netlink dump interrupted by a concurrent change; reading it again"
            );
        }
    }

    /// Send one request; collect the data replies until the ACK, error or
    /// `NLMSG_DONE`. Also says whether any reply carried `NLM_F_DUMP_INTR`.
    async fn exchange(
        &self,
        kind: u16,
        flags: u16,
        body: &[u8],
    ) -> Result<(Vec<Vec<u8>>, bool), Fail> {
        let mut guard = self.conn.lock().await;
        let conn = &mut *guard;
        conn.seq = conn.seq.wrapping_add(1).max(1);
        let seq = conn.seq;
        conn.sock
            .send(&attr::request(kind, flags, seq, body))
            .await
            .map_err(Fail::io)?;
        let mut out = Vec::new();
        let mut interrupted = false;
        loop {
            let n = conn.sock.recv(&mut conn.buf).await.map_err(Fail::io)?;
            for m in attr::messages(&conn.buf[..n]) {
                let m = m.map_err(|e| Fail::Other(e.to_string()))?;
                // Replies to an earlier request that was abandoned half-way.
                if m.seq != seq {
                    continue;
                }
                interrupted |= m.flags & NLM_F_DUMP_INTR != 0;
                if let Some(end) = end_of_reply(&m) {
                    return end.map(|()| (out, interrupted));
                }
                out.push(m.body.to_vec());
            }
        }
    }
}

/// `Some` when `m` ends a reply: `Ok` for an ACK or a clean `NLMSG_DONE`, the kernel's
/// error otherwise. `None` for a data message (and the no-ops, which carry nothing).
fn end_of_reply(m: &Message<'_>) -> Option<Result<(), Fail>> {
    let code = || {
        m.body
            .get(..4)
            .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
    };
    match m.kind {
        NLMSG_ERROR => Some(match code() {
            Some(0) => Ok(()),
            Some(c) => Err(Fail::Kernel {
                errno: c.unsigned_abs() as i32,
                ext_ack: attr::ext_ack(m.flags, m.body),
            }),
            None => Err(Fail::Other("truncated netlink error message".into())),
        }),
        // A dump that failed half-way ends with the negative errno in NLMSG_DONE.
        NLMSG_DONE => Some(match code() {
            Some(c) if c < 0 => Err(Fail::Kernel {
                errno: c.unsigned_abs() as i32,
                ext_ack: None,
            }),
            _ => Ok(()),
        }),
        _ => None,
    }
}

/// A stream of the events on the multicast `groups`, each message turned into
/// events by `parse`. Lost events (a full receive buffer: `ENOBUFS`, or a datagram
/// that could not be read whole or framed) come out as `overrun()`, so the consumer
/// reads the state again. The stream ends only if the socket fails otherwise.
pub fn events<T: Send + 'static>(
    groups: u32,
    parse: fn(&Message<'_>) -> Option<T>,
    overrun: fn() -> T,
) -> io::Result<BoxStream<'static, T>> {
    let sock = Sock::open(groups)?;
    // A bond flapping ports can emit bursts; a bigger buffer makes overruns rarer.
    let _ = set_int_opt(
        sock.fd.get_ref(),
        libc::SOL_SOCKET,
        libc::SO_RCVBUF,
        1 << 20,
    );
    let state = (sock, VecDeque::new(), vec![0u8; RECV_BUF]);
    let stream = futures::stream::unfold(state, move |(sock, mut queue, mut buf)| async move {
        loop {
            if let Some(ev) = queue.pop_front() {
                return Some((ev, (sock, queue, buf)));
            }
            match sock.recv(&mut buf).await {
                Ok(n) => {
                    for m in attr::messages(&buf[..n]) {
                        match m {
                            Ok(m) => queue.extend(parse(&m)),
                            Err(e) => {
                                crate::logging::warn!(
                                    "netlink event: {e}; reading the state again"
                                );
                                queue.push_back(overrun());
                                break;
                            }
                        }
                    }
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOBUFS | libc::EMSGSIZE)) => {
                    queue.push_back(overrun())
                }
                Err(e) => {
                    crate::logging::error!("the netlink event socket failed: {e}");
                    return None;
                }
            }
        }
    });
    Ok(stream.boxed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::netlink::attr::{put, request, NLMSGERR_ATTR_MSG, NLM_F_ACK_TLVS};

    fn one(d: &[u8]) -> Message<'_> {
        attr::messages(d).next().unwrap().unwrap()
    }

    #[test]
    fn acks_errors_and_done_end_a_reply() {
        let ack = request(NLMSG_ERROR, 0, 3, &[0u8; 20]);
        assert_eq!(end_of_reply(&one(&ack)), Some(Ok(())));
        let mut body = (-libc::EPERM).to_ne_bytes().to_vec();
        body.extend(request(attr::RTM_SETLINK, 0, 3, &[0u8; 16]));
        put(&mut body, NLMSGERR_ATTR_MSG, b"no\0");
        let nack = request(NLMSG_ERROR, NLM_F_ACK_TLVS, 3, &body);
        assert_eq!(
            end_of_reply(&one(&nack)),
            Some(Err(Fail::Kernel {
                errno: libc::EPERM,
                ext_ack: Some("no".into())
            }))
        );
        let done = request(NLMSG_DONE, 0, 3, &0i32.to_ne_bytes());
        assert_eq!(end_of_reply(&one(&done)), Some(Ok(())));
        let failed = request(NLMSG_DONE, 0, 3, &(-libc::EINTR).to_ne_bytes());
        assert_eq!(
            end_of_reply(&one(&failed)).unwrap().unwrap_err().errno(),
            Some(libc::EINTR)
        );
        let short = request(NLMSG_ERROR, 0, 3, &[0u8; 2]);
        assert!(matches!(
            end_of_reply(&one(&short)),
            Some(Err(Fail::Other(_)))
        ));
        let data = request(attr::RTM_NEWLINK, 0, 3, &[0u8; 16]);
        assert_eq!(end_of_reply(&one(&data)), None);
    }
}
