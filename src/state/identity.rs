//! The host's DHCP identity: one DUID for both families, and the IAID.
//!
//! Precedence: a DUID in the config file; else the one saved in the state dir; else a
//! new DUID-UUID, derived from /etc/machine-id when it exists (so reinstalling netbond
//! on the same system keeps the identity) or random, saved for next time.

use crate::config::Config;
use crate::logging::{info, warn};
use crate::state::store::Store;
use netbond_proto::duid::{Duid, Iaid};

/// The host name to send: `[dhcp4] hostname`, else the system's (gethostname), when it
/// is a valid DNS name and not a placeholder such as `localhost`.
pub fn host_name(cfg: &Config) -> Option<String> {
    let name = match &cfg.dhcp4.hostname {
        Some(h) => h.clone(),
        None => {
            let mut buf = [0u8; 256];
            // SAFETY: gethostname writes at most buf.len() bytes into buf.
            let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
            if rc != 0 {
                return None;
            }
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            String::from_utf8_lossy(&buf[..end]).into_owned()
        }
    };
    let valid = netbond_proto::name::host_name(name.as_bytes());
    match valid {
        Some(n) if !matches!(n.as_str(), "localhost" | "localhost.localdomain") => Some(n),
        _ => {
            crate::logging::debug!("host name {name:?} is not sent (not a usable DNS name)");
            None
        }
    }
}

/// Resolve the DUID per the precedence above. Saving failures are warnings: the
/// identity still works for this run.
pub fn load_or_create_duid(cfg: &Config, store: &Store) -> Duid {
    if let Some(text) = &cfg.identity.duid {
        if let Ok(d) = text.parse::<Duid>() {
            return d;
        }
    }
    if let Some(d) = store.load_duid() {
        return d;
    }
    let d = Duid::uuid(machine_uuid().unwrap_or_else(random_uuid));
    info!(duid = %d, "generated a new DUID");
    // Saving means two fsyncs (file and directory), milliseconds on a slow disk: keep
    // them off the path to the first DISCOVER. Losing the save to a crash only costs a
    // regeneration, which gives the same DUID whenever /etc/machine-id exists.
    let store = store.clone();
    let saved = d.clone();
    std::thread::spawn(move || {
        if let Err(e) = store.save_duid(&saved) {
            warn!(
                "could not save the DUID in {}: {e}; a new one will be made at the next start",
                store.dir().display()
            );
        }
    });
    d
}

/// The IAID from config, or the stable default for this interface name.
pub fn iaid(cfg: &Config, ifname: &str) -> Iaid {
    cfg.identity
        .iaid
        .as_deref()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| Iaid::from_name(ifname))
}

fn machine_uuid() -> Option<[u8; 16]> {
    let text = std::fs::read_to_string("/etc/machine-id").ok()?;
    let hex = text.trim();
    if hex.len() != 32 {
        return None;
    }
    let bytes = netbond_proto::duid::parse_hex_octets(hex).ok()?;
    let mut out = [0u8; 16];
    out.copy_from_slice(&bytes);
    // Do not publish the machine-id itself: mix it (FNV-1a over the bytes, per half)
    // with a netbond-specific salt, as systemd does with its application-specific ids.
    let mut h1: u64 = 0xcbf2_9ce4_8422_2325 ^ 0x6e65_7462_6f6e_6431;
    let mut h2: u64 = 0xcbf2_9ce4_8422_2325 ^ 0x6475_6964_7575_6964;
    for b in out {
        h1 = (h1 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        h2 = (h2 ^ u64::from(b.rotate_left(3))).wrapping_mul(0x0100_0000_01b3);
    }
    out[..8].copy_from_slice(&h1.to_be_bytes());
    out[8..].copy_from_slice(&h2.to_be_bytes());
    // RFC 4122 version 4 / variant bits, so it reads as a UUID.
    out[6] = (out[6] & 0x0f) | 0x40;
    out[8] = (out[8] & 0x3f) | 0x80;
    Some(out)
}

fn random_uuid() -> [u8; 16] {
    let mut out: [u8; 16] = rand::random();
    out[6] = (out[6] & 0x0f) | 0x40;
    out[8] = (out[8] & 0x3f) | 0x80;
    out
}
