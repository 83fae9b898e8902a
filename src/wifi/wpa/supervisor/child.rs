//! The supervised wpa_supplicant process: spawned in its own process group with
//! `PR_SET_PDEATHSIG`, its output forwarded to the log (the last lines kept for the
//! exit message), its exit awaited through a pidfd, signalled only while not reaped.

use super::super::parse;
use super::SuperviseConfig;
use crate::logging::{debug, warn};
use std::collections::VecDeque;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, Interest};
use tokio::time::Instant;

/// Lines of the child's output kept for the exit report.
const TAIL_LINES: usize = 20;

pub(super) async fn wait_child(child: &mut Option<Child>) -> io::Result<ExitStatus> {
    match child {
        Some(c) => c.wait().await,
        None => std::future::pending().await,
    }
}

pub(super) fn describe_exit(s: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        _ => format!("ended ({s})"),
    }
}

/// One wpa_supplicant child.
pub(super) struct Child {
    proc: std::process::Child,
    pub(super) pid: u32,
    pidfd: Option<AsyncFd<OwnedFd>>,
    pub(super) started: Instant,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl Child {
    pub(super) fn spawn(
        sc: &SuperviseConfig,
        ifname: &str,
        extra_conf: Option<&Path>,
    ) -> io::Result<Child> {
        let mut cmd = std::process::Command::new(&sc.binary);
        cmd.arg("-c").arg(&sc.config);
        cmd.arg("-D").arg(&sc.drivers);
        cmd.arg("-i").arg(ifname);
        if let Some(extra) = extra_conf {
            cmd.arg("-I").arg(extra);
        }
        cmd.args(&sc.extra_args);
        // Output goes to one pipe, forwarded to the log at debug and kept for exit reports.
        let (read_end, write_end) = pipe()?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(write_end.try_clone()?))
            .stderr(Stdio::from(write_end))
            .process_group(0);
        // SAFETY: prctl is async-signal-safe; the closure touches no shared state.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let proc = cmd
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", sc.binary.display())))?;
        drop(cmd); // closes our copies of the pipe's write end
        let pid = proc.id();
        let pidfd = pidfd_open(pid)
            .and_then(|fd| {
                // SAFETY: the OwnedFd is a valid pidfd, owned by the AsyncFd from now on.
                unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
                    .map_err(io::Error::from)
            })
            .map_err(|e| debug!("pidfd for {pid}: {e}; polling instead"))
            .ok();
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        forward_output(read_end, ifname.to_string(), pid, tail.clone());
        Ok(Child {
            proc,
            pid,
            pidfd,
            started: Instant::now(),
            tail,
        })
    }

    pub(super) fn tail(&self) -> Vec<String> {
        self.tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Wait for exit and reap. Cancel-safe.
    async fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            if let Some(st) = self.proc.try_wait()? {
                return Ok(st);
            }
            match &self.pidfd {
                Some(fd) => {
                    let mut guard = fd.readable().await?;
                    if self.proc.try_wait()?.is_none() {
                        guard.clear_ready();
                    }
                }
                None => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }

    pub(super) async fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        tokio::time::timeout(limit, self.wait()).await.ok()?.ok()
    }

    /// Signal the child, only if it has not been reaped (so the PID is still ours).
    pub(super) fn signal(&mut self, sig: libc::c_int) {
        if let Ok(None) = self.proc.try_wait() {
            // SAFETY: kill(2) on our own unreaped child's PID.
            unsafe {
                libc::kill(self.pid as libc::pid_t, sig);
            }
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // Only when the supervisor task is dropped without stopping (runtime shutdown,
        // abort): do not leave wpa_supplicant behind.
        if let Ok(None) = self.proc.try_wait() {
            warn!(
                "wpa_supplicant (pid {}) left running; sending SIGTERM",
                self.pid
            );
            self.signal(libc::SIGTERM);
        }
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two new descriptors that we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; a non-negative result is a new descriptor that we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: see above.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// Read the child's output until EOF: each line at debug, the last lines kept.
fn forward_output(fd: OwnedFd, ifname: String, pid: u32, tail: Arc<Mutex<VecDeque<String>>>) {
    let rx = match tokio::net::unix::pipe::Receiver::from_owned_fd(fd) {
        Ok(rx) => rx,
        Err(e) => {
            warn!("{ifname}: cannot read wpa_supplicant's output: {e}");
            return;
        }
    };
    tokio::spawn(async move {
        let mut rx = rx;
        let mut buf = vec![0u8; 4096];
        let mut pending: Vec<u8> = Vec::new();
        let emit = |line: &[u8]| {
            let line = parse::sanitize(line, parse::MAX_EVENT_LEN);
            if line.is_empty() {
                return;
            }
            debug!("{ifname}: wpa_supplicant[{pid}]: {line}");
            if let Ok(mut t) = tail.lock() {
                if t.len() == TAIL_LINES {
                    t.pop_front();
                }
                t.push_back(line);
            }
        };
        loop {
            let n = match rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            pending.extend_from_slice(&buf[..n]);
            while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
                emit(&pending[..nl]);
                pending.drain(..=nl);
            }
            if pending.len() > parse::MAX_EVENT_LEN {
                emit(&pending);
                pending.clear();
            }
        }
        emit(&pending);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_descriptions() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            describe_exit(ExitStatus::from_raw(255 << 8)),
            "exited with status 255"
        );
        assert_eq!(
            describe_exit(ExitStatus::from_raw(9)),
            "was killed by signal 9"
        );
    }
}
