//! Least privilege: once netbond has set itself up, it keeps only the capabilities a
//! DHCP client and bond manager needs, and optionally runs as a dedicated user.
//!
//! - CAP_NET_ADMIN: addresses, routes, MTU, the bond (rtnetlink).
//! - CAP_NET_RAW: the AF_PACKET socket for DHCPv4, the raw ICMPv6 socket for router
//!   advertisements, SO_BINDTODEVICE.
//! - CAP_NET_BIND_SERVICE: UDP ports 68 and 546.
//!
//! Everything else is dropped from the effective, permitted, inheritable and bounding
//! sets, and `no_new_privs` is set, so a compromise of the packet parser cannot load
//! modules, read other users' files or gain privileges through exec.

use std::io;

const CAP_NET_BIND_SERVICE: u32 = 10;
const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
/// The capabilities netbond keeps.
pub const KEPT: [u32; 3] = [CAP_NET_ADMIN, CAP_NET_RAW, CAP_NET_BIND_SERVICE];

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;

fn mask(caps: &[u32]) -> [u32; 2] {
    let mut m = [0u32; 2];
    for c in caps {
        m[(*c / 32) as usize] |= 1 << (c % 32);
    }
    m
}

fn capset(effective: [u32; 2], permitted: [u32; 2], inheritable: [u32; 2]) -> io::Result<()> {
    let hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: effective[0],
            permitted: permitted[0],
            inheritable: inheritable[0],
        },
        CapData {
            effective: effective[1],
            permitted: permitted[1],
            inheritable: inheritable[1],
        },
    ];
    // SAFETY: capset reads a v3 header and two data structs, which live for the call.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Look up a user: (uid, primary gid).
fn user_ids(name: &str) -> Option<(u32, u32)> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: getpwnam takes a valid C string; the result is read at once.
    let pw = unsafe { libc::getpwnam(c.as_ptr()) };
    if pw.is_null() {
        return None;
    }
    // SAFETY: non-null result of getpwnam.
    Some(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

/// Drop to the kept capabilities, optionally switching to `user`. A no-op (with `Ok`)
/// when not running as root: an unprivileged netbond has nothing to drop.
pub fn drop_privileges(user: Option<&str>) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let keep = mask(&KEPT);
    // The bounding set first (needs CAP_SETPCAP, which we still have).
    for cap in 0..=last_cap() {
        if KEPT.contains(&cap) {
            continue;
        }
        // Already outside the bounding set (systemd's CapabilityBoundingSet=): nothing
        // to drop, and dropping it again would need CAP_SETPCAP, which we may lack.
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) } == 0 {
            continue;
        }
        // SAFETY: prctl with integer arguments.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        if rc != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINVAL) {
                return Err(format!(
                    "cannot drop capability {cap} from the bounding set: {e}"
                ));
            }
        }
    }
    if let Some(name) = user {
        let (uid, gid) = user_ids(name).ok_or_else(|| {
            format!("[daemon] user {name:?} does not exist; create it or remove the setting")
        })?;
        // Keep the permitted set across setuid, then restore the effective set.
        // SAFETY: prctl/setgroups/setgid/setuid with plain arguments.
        unsafe {
            if libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 {
                return Err(format!("PR_SET_KEEPCAPS: {}", io::Error::last_os_error()));
            }
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(format!(
                    "cannot switch to user {name}: {}",
                    io::Error::last_os_error()
                ));
            }
        }
    }
    capset(keep, keep, [0, 0]).map_err(|e| format!("cannot drop capabilities: {e}"))?;
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    }
    Ok(())
}

/// The effective capability mask of this process (from /proc), for tests and status.
pub fn effective_caps() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line.split_whitespace().nth(1)?, 16).ok()
}

/// Give the state and run dirs to the unprivileged user netbond is about to become.
pub fn hand_dirs_to(cfg: &crate::config::Config, user: &str) {
    let Some((uid, gid)) = user_ids(user) else {
        return;
    };
    for dir in [&cfg.daemon.state_dir, &cfg.daemon.run_dir] {
        let mut paths = vec![dir.clone()];
        if let Ok(rd) = std::fs::read_dir(dir) {
            paths.extend(rd.flatten().map(|e| e.path()));
        }
        for p in paths {
            if let Err(e) = std::os::unix::fs::chown(&p, Some(uid), Some(gid)) {
                crate::logging::warn!("cannot hand {} to {user}: {e}", p.display());
            }
        }
    }
}

/// The numeric gid of a group name.
pub fn gid_of(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: getgrnam takes a valid C string and returns NULL or a pointer into
    // static storage that we read at once, before any other call could reuse it.
    let gr = unsafe { libc::getgrnam(c.as_ptr()) };
    if gr.is_null() {
        None
    } else {
        // SAFETY: non-null result of getgrnam.
        Some(unsafe { (*gr).gr_gid })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_mask_is_the_three_network_capabilities() {
        let m = mask(&KEPT);
        assert_eq!(u64::from(m[0]) | (u64::from(m[1]) << 32), 0x3400);
        assert!(effective_caps().is_some());
    }
}
