//! The two radio settings the classic unit applied with `iw`, sent over nl80211
//! (generic netlink) directly: legacy 2.4 GHz bitrates off, and the coverage distance.
//!
//! These are tuning: a driver that refuses them (EOPNOTSUPP, or wext-only hardware with
//! no nl80211 at all) gets a note in the log and netbond carries on.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

// The attribute codec is route-netlink's: generic netlink frames attributes the same way.
use crate::net::netlink::attr::{attrs, put as attr, NLA_F_NESTED, NLMSG_ERROR};

const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const NL80211_CMD_SET_WIPHY: u8 = 2;
const NL80211_CMD_SET_TX_BITRATE_MASK: u8 = 57;
const NL80211_ATTR_IFINDEX: u16 = 3;
const NL80211_ATTR_WIPHY_COVERAGE_CLASS: u16 = 89;
const NL80211_ATTR_TX_RATES: u16 = 90;
const NL80211_BAND_2GHZ: u16 = 0;
const NL80211_TXRATE_LEGACY: u16 = 1;

/// 6, 9, 12, 18, 24, 36, 48, 54 Mb/s in 500 kb/s units: the OFDM rates the classic
/// unit kept (`iw set bitrates legacy-2.4 6 9 12 18 24 36 48 54`).
pub const OFDM_RATES: [u8; 8] = [12, 18, 24, 36, 48, 72, 96, 108];

/// The coverage class for a distance, as `iw phy set distance` computes it (each class
/// adds 3 us of slot time, i.e. 450 m of round trip).
pub fn coverage_class(distance_m: u32) -> u8 {
    u8::try_from(distance_m.div_ceil(450)).unwrap_or(u8::MAX)
}

/// A generic netlink request: header, genl header (cmd, version), attributes.
fn message(family: u16, cmd: u8, version: u8, seq: u32, attrs: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(20 + attrs.len());
    let len = (16 + 4 + attrs.len()) as u32;
    m.extend_from_slice(&len.to_ne_bytes());
    m.extend_from_slice(&family.to_ne_bytes());
    let flags: u16 = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[cmd, version, 0, 0]);
    m.extend_from_slice(attrs);
    m
}

struct Genl {
    fd: OwnedFd,
    seq: u32,
}

impl Genl {
    fn open() -> io::Result<Genl> {
        // SAFETY: socket(2) with constant arguments; the result is checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_GENERIC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh, owned descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let tv = libc::timeval {
            tv_sec: 1,
            tv_usec: 0,
        };
        // SAFETY: setsockopt with a timeval that lives for the call.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as u32,
            );
        }
        Ok(Genl { fd, seq: 1 })
    }

    /// Send a request and collect the replies until the ACK; returns the payloads
    /// (after the genl header) of the data replies.
    fn request(&mut self, family: u16, cmd: u8, version: u8, a: &[u8]) -> io::Result<Vec<Vec<u8>>> {
        self.seq += 1;
        let msg = message(family, cmd, version, self.seq, a);
        // SAFETY: send(2) of a buffer that lives for the call.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut out = Vec::new();
        let mut buf = vec![0u8; 16384];
        loop {
            // SAFETY: recv(2) into a buffer we own.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut b = &buf[..n as usize];
            while b.len() >= 16 {
                let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
                let kind = u16::from_ne_bytes([b[4], b[5]]);
                let seq = u32::from_ne_bytes([b[8], b[9], b[10], b[11]]);
                if len < 16 || len > b.len() {
                    return Err(io::Error::other("malformed netlink reply"));
                }
                let body = &b[16..len];
                if seq == self.seq {
                    if kind == NLMSG_ERROR {
                        let code = body
                            .get(..4)
                            .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                            .unwrap_or(-libc::EPROTO);
                        if code == 0 {
                            return Ok(out);
                        }
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                    if body.len() >= 4 {
                        out.push(body[4..].to_vec());
                    }
                }
                b = &b[len.next_multiple_of(4).min(b.len())..];
            }
        }
    }

    fn family(&mut self, name: &str) -> io::Result<u16> {
        let mut a = Vec::new();
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        attr(&mut a, CTRL_ATTR_FAMILY_NAME, &n);
        for reply in self.request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, &a)? {
            for (k, v) in attrs(&reply) {
                if k == CTRL_ATTR_FAMILY_ID && v.len() >= 2 {
                    return Ok(u16::from_ne_bytes([v[0], v[1]]));
                }
            }
        }
        Err(io::Error::other("no nl80211 family in the reply"))
    }
}

fn explain(e: io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EOPNOTSUPP) => "the driver does not support it".to_string(),
        Some(libc::ENOENT) => "no nl80211 (a wext-only driver?)".to_string(),
        _ => e.to_string(),
    }
}

/// Apply the settings to `ifname`; returns what was done, or why nothing could be.
/// A setting the driver refuses is reported in the list, not as an error.
pub fn apply(ifname: &str, no_legacy: bool, distance: Option<u32>) -> Result<Vec<String>, String> {
    let c = std::ffi::CString::new(ifname).map_err(|e| e.to_string())?;
    // SAFETY: if_nametoindex with a valid C string.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        return Err(format!("{ifname} does not exist"));
    }
    let mut g = Genl::open().map_err(|e| format!("generic netlink: {e}"))?;
    let fam = g.family("nl80211").map_err(explain)?;
    let mut done = Vec::new();
    if no_legacy {
        let mut band = Vec::new();
        attr(&mut band, NL80211_TXRATE_LEGACY, &OFDM_RATES);
        let mut rates = Vec::new();
        attr(&mut rates, NL80211_BAND_2GHZ | NLA_F_NESTED, &band);
        let mut a = Vec::new();
        attr(&mut a, NL80211_ATTR_IFINDEX, &index.to_ne_bytes());
        attr(&mut a, NL80211_ATTR_TX_RATES | NLA_F_NESTED, &rates);
        done.push(
            match g.request(fam, NL80211_CMD_SET_TX_BITRATE_MASK, 0, &a) {
                Ok(_) => "legacy 2.4 GHz bitrates (1, 2, 5.5, 11 Mb/s) disabled".to_string(),
                Err(e) => format!("legacy bitrates left as they are: {}", explain(e)),
            },
        );
    }
    if let Some(d) = distance {
        let mut a = Vec::new();
        attr(&mut a, NL80211_ATTR_IFINDEX, &index.to_ne_bytes());
        attr(
            &mut a,
            NL80211_ATTR_WIPHY_COVERAGE_CLASS,
            &[coverage_class(d)],
        );
        done.push(match g.request(fam, NL80211_CMD_SET_WIPHY, 0, &a) {
            Ok(_) => format!("coverage distance {d} m (class {})", coverage_class(d)),
            Err(e) => format!("distance left as it is: {}", explain(e)),
        });
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_classes_match_iw() {
        assert_eq!(coverage_class(0), 0);
        assert_eq!(coverage_class(10), 1);
        assert_eq!(coverage_class(450), 1);
        assert_eq!(coverage_class(451), 2);
        assert_eq!(coverage_class(1_000_000), 255);
    }

    #[test]
    fn attributes_are_padded_and_walk_back() {
        let mut a = Vec::new();
        attr(&mut a, 3, &7u32.to_ne_bytes());
        attr(&mut a, 2, b"nl80211\0");
        attr(&mut a, 89, &[5]);
        assert_eq!(a.len() % 4, 0);
        let got: Vec<(u16, Vec<u8>)> = attrs(&a).map(|(k, v)| (k, v.to_vec())).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[2], (89, vec![5]));
        // Truncated or lying lengths end the walk without panicking.
        for cut in 0..a.len() {
            let _ = attrs(&a[..cut]).count();
        }
        assert_eq!(attrs(&[0xff, 0xff, 1, 0]).count(), 0);
    }

    #[test]
    fn the_nl80211_family_resolves_or_fails_cleanly() {
        // On a kernel without cfg80211 the family is missing: an error, not a panic.
        let r = Genl::open().and_then(|mut g| g.family("nl80211"));
        if let Err(e) = r {
            assert!(!explain(e).is_empty());
        }
        assert!(apply("no-such-wlan9", true, Some(10)).is_err());
    }
}
