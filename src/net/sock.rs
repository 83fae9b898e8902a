//! What the socket drivers share: one `recvmsg(2)` with a source address and a control
//! message (the packet socket's PACKET_AUXDATA, the RA socket's IPV6_HOPLIMIT), integer
//! socket options, and errors that say what was being done.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, RawFd};

/// Set an integer socket option (`setsockopt(2)` with a C `int`).
pub fn set_int_opt(
    sock: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: passes a pointer to a live c_int with its exact size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Adds what was being done to an error, keeping its kind, and names the capabilities
/// `needs` when the kernel refused for lack of privilege.
pub fn ctx(e: io::Error, what: impl std::fmt::Display, needs: &str) -> io::Error {
    let hint = if e.kind() == io::ErrorKind::PermissionDenied {
        format!(" (needs {needs})")
    } else {
        String::new()
    };
    io::Error::new(e.kind(), format!("{what}: {e}{hint}"))
}

/// What one `recvmsg` returned besides the data.
pub struct Received<A> {
    /// Bytes written into the buffer.
    pub len: usize,
    /// The datagram was longer than the buffer (MSG_TRUNC).
    pub truncated: bool,
    /// The source address as the kernel filled it in.
    pub addr: A,
    /// The first 4-byte value of the wanted control message, if present.
    pub cmsg_u32: Option<u32>,
}

/// Receive one datagram into `buf`, with a source address of type `A` (a plain C
/// sockaddr struct such as `sockaddr_ll` or `sockaddr_in6`) and the 4-byte payload of
/// the control message `(level, kind)`, if the kernel sent one.
pub fn recv_with_cmsg<A: Copy>(
    fd: RawFd,
    buf: &mut [u8],
    level: libc::c_int,
    kind: libc::c_int,
) -> io::Result<Received<A>> {
    // SAFETY: the sockaddr types used here (sockaddr_ll, sockaddr_in6) and msghdr
    // are plain C structs for which all-zero is a valid value.
    let mut addr: A = unsafe { mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // u64 elements keep the control buffer aligned for cmsghdr.
    let mut control = [0u64; 16];
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_name = (&mut addr as *mut A).cast();
    msg.msg_namelen = mem::size_of::<A>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = mem::size_of_val(&control) as _;

    // SAFETY: every pointer in `msg` refers to a live local or to `buf`, with the
    // lengths given; the kernel writes only within them.
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }

    let mut value = None;
    // SAFETY: `msg` was filled by a successful recvmsg, so msg_control and
    // msg_controllen describe valid cmsgs inside `control`; the CMSG macros stay
    // within msg_controllen, and the u32 is read only when cmsg_len says it is there.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let c = &*cmsg;
            if c.cmsg_level == level
                && c.cmsg_type == kind
                && c.cmsg_len as usize >= libc::CMSG_LEN(4) as usize
            {
                value = Some(std::ptr::read_unaligned(
                    libc::CMSG_DATA(cmsg).cast::<u32>(),
                ));
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok(Received {
        len: n as usize,
        truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
        addr,
        cmsg_u32: value,
    })
}

/// Room for the largest datagram any driver accepts (a 64 KiB UDP payload plus
/// link-layer headers).
pub const RECV_BUF_LEN: usize = 65_536 + 64;

thread_local! {
    /// One receive buffer for every socket of the thread. The daemon runs on one thread
    /// and copies what it keeps out of the buffer before the next receive, so 64 KiB
    /// serves every interface: a waiting receive holds no buffer, which is what keeps an
    /// extra interface in multi-interface mode down to a few KiB.
    static RECV_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Run `f` with the thread's receive buffer ([`RECV_BUF_LEN`] bytes). `f` must not call
/// `with_recv_buf` again (it would panic on the nested borrow); the drivers only call
/// `recvmsg` and a parser inside it.
pub fn with_recv_buf<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    RECV_BUF.with(|b| {
        let mut b = b.borrow_mut();
        if b.len() < RECV_BUF_LEN {
            b.resize(RECV_BUF_LEN, 0);
        }
        f(&mut b)
    })
}

/// Receive on a registered socket until `read` keeps something. `read` does one
/// `recvmsg` and the parse, inside the thread's receive buffer ([`with_recv_buf`]), and
/// returns `None` for what it drops. EINTR and spurious readiness are retried; other
/// errors go through `err`, which says what was being done.
pub async fn recv_until<T>(
    fd: &tokio::io::unix::AsyncFd<socket2::Socket>,
    read: impl Fn(RawFd, &mut [u8]) -> io::Result<Option<T>>,
    err: impl Fn(io::Error) -> io::Error,
) -> io::Result<T> {
    use std::os::fd::AsRawFd;
    loop {
        let mut guard = fd.readable().await.map_err(&err)?;
        let got = guard.try_io(|s| with_recv_buf(|buf| read(s.as_raw_fd(), buf)));
        match got {
            Ok(Ok(Some(v))) => return Ok(v),
            Ok(Ok(None)) => {}
            Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Ok(Err(e)) => return Err(err(e)),
            Err(_would_block) => {}
        }
    }
}

/// Send one datagram to `dest` on a registered socket, waiting until it is writable.
/// EINTR is retried; other errors go through `err`, which says what was being done.
pub async fn send_to(
    fd: &tokio::io::unix::AsyncFd<socket2::Socket>,
    data: &[u8],
    dest: &socket2::SockAddr,
    err: impl Fn(io::Error) -> io::Error,
) -> io::Result<()> {
    loop {
        let mut guard = fd.writable().await.map_err(&err)?;
        match guard.try_io(|s| s.get_ref().send_to(data, dest)) {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Ok(Err(e)) => return Err(err(e)),
            Err(_would_block) => {}
        }
    }
}

/// A registered packet socket that is closed on a blocking thread.
///
/// Closing an AF_PACKET socket waits for an RCU grace period in the kernel
/// (`packet_release` calls `synchronize_net`): 10-30 ms. On the daemon's one thread that
/// stalls every interface, and at N interfaces (each conflict check closes one, a stop
/// closes all) it adds up to seconds. Closed on the blocking pool, the waits overlap.
pub struct PacketFd(Option<tokio::io::unix::AsyncFd<socket2::Socket>>);

impl PacketFd {
    /// Wrap a registered socket.
    pub fn new(fd: tokio::io::unix::AsyncFd<socket2::Socket>) -> Self {
        PacketFd(Some(fd))
    }
}

impl std::ops::Deref for PacketFd {
    type Target = tokio::io::unix::AsyncFd<socket2::Socket>;
    fn deref(&self) -> &Self::Target {
        // Only `drop` takes it out.
        self.0.as_ref().expect("PacketFd used after drop")
    }
}

impl std::fmt::Debug for PacketFd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PacketFd")
    }
}

impl Drop for PacketFd {
    fn drop(&mut self) {
        let Some(fd) = self.0.take() else { return };
        // Deregister here (the reactor is this thread's); close elsewhere.
        let sock = fd.into_inner();
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn_blocking(move || drop(sock));
            }
            Err(_) => drop(sock),
        }
    }
}
