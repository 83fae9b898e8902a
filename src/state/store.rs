//! The state directory: the persistent DUID and the last lease of each interface.
//!
//! Leases are kept so that after a restart or reboot the clients can ask for the same
//! address again (DHCPv4 INIT-REBOOT, DHCPv6 Confirm/Rebind) and adopt the addresses
//! still configured in the kernel instead of flushing them. A lease file is therefore
//! a hint, never a requirement: anything wrong with one (corrupt, truncated by a crash
//! on a file system without ordered writes, written by something else, oversized) is
//! logged and ignored, and the client starts from scratch.
//!
//! Files are written atomically (temp file, fsync, rename, directory fsync) with mode
//! 0600 in a 0700 directory: leases reveal the host's addresses and servers.
//!
//! The daemon never writes on its event loop: lease saves go through a `LeaseWriter` (`lease_writer.rs`)
//! (a background thread, coalesced per file, see `worker.rs`), and every durable write
//! counts whether it ran on the loop thread ([`writes_on_loop`], in `netbond status`),
//! which must stay 0.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::state::atomic::{note_write, replace_file, write_file_atomic};
use netbond_proto::dhcp4::Lease4;
use netbond_proto::dhcp6::Lease6;
use netbond_proto::Duid;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// The `format` tag of every lease file; files with another tag are ignored.
pub const LEASE_FORMAT: &str = "netbond-lease-v1";

/// Lease files larger than this are not read (a lease is well under 4 KiB).
pub const MAX_LEASE_FILE: u64 = 64 * 1024;

/// The DUID file is one line of at most 130 hex octets.
const MAX_DUID_FILE: u64 = 1024;

/// A DHCPv4 lease as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedLease4 {
    /// The lease. Its `acquired` field is relative to the engine clock of the process
    /// that saved it and is meaningless after a restart; use `acquired_unix`.
    pub lease: Lease4,
    /// Wall-clock time (seconds since the Unix epoch) at which the lease was acquired,
    /// so the daemon can rebase the lease onto its new engine clock.
    pub acquired_unix: u64,
}

/// A DHCPv6 lease as persisted: the engine's lease in its own serde shape (see
/// [`Lease6`]) with the wall-clock acquisition time beside its fields, in one object, as
/// lease files have always had it. The lease's `acquired` is relative to the engine
/// clock of the process that saved it; use `acquired_unix`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedLease6 {
    #[serde(flatten)]
    pub lease: Lease6,
    /// Wall-clock acquisition time, seconds since the Unix epoch.
    pub acquired_unix: u64,
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    format: String,
    ifname: String,
    lease: T,
}

/// Only the identifying fields, checked before the body is parsed.
#[derive(Deserialize)]
struct Header {
    format: String,
    ifname: String,
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

use crate::net::ifname::valid_ifname;

fn bad_ifname(name: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{name:?} is not a valid interface name"),
    )
}

/// Read at most `max` bytes of `path`. `Ok(None)` if it does not exist; an error
/// string (for the log) if it is larger than `max` or unreadable.
fn read_capped(path: &Path, max: u64) -> Result<Option<Vec<u8>>, String> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot open: {e}")),
    };
    let mut buf = Vec::new();
    // Read one byte past the limit so a file that grows after a stat is still caught.
    f.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read: {e}"))?;
    if buf.len() as u64 > max {
        return Err(format!("larger than {max} bytes"));
    }
    Ok(Some(buf))
}

impl Store {
    /// Open (and create, mode 0700, if missing) the state directory.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| {
                io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display()))
            })?;
        if !fs::metadata(&dir)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory", dir.display()),
            ));
        }
        Ok(Store { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn duid_path(&self) -> PathBuf {
        self.dir.join("duid")
    }

    /// The persisted DUID, or `None` if there is none yet or the file is unusable
    /// (logged). The caller then generates one and saves it.
    pub fn load_duid(&self) -> Option<Duid> {
        let path = self.duid_path();
        let bytes = match read_capped(&path, MAX_DUID_FILE) {
            Ok(Some(b)) => b,
            Ok(None) => return None,
            Err(why) => {
                crate::logging::warn!(file = %path.display(), "ignoring DUID file: {why}");
                return None;
            }
        };
        let text = match std::str::from_utf8(&bytes) {
            Ok(t) => t.trim(),
            Err(_) => {
                crate::logging::warn!(file = %path.display(), "ignoring DUID file: not text");
                return None;
            }
        };
        match text.parse::<Duid>() {
            Ok(d) => Some(d),
            Err(e) => {
                crate::logging::warn!(file = %path.display(), "ignoring DUID file: {e}");
                None
            }
        }
    }

    /// Persist the DUID as one line of colon-separated hex.
    pub fn save_duid(&self, duid: &Duid) -> io::Result<()> {
        write_file_atomic(&self.duid_path(), format!("{duid}\n").as_bytes(), 0o600)
    }

    fn lease_path(&self, family: &str, ifname: &str) -> io::Result<PathBuf> {
        if !valid_ifname(ifname) {
            return Err(bad_ifname(ifname));
        }
        Ok(self.dir.join(format!("lease{family}-{ifname}.json")))
    }

    // The daemon writes through LeaseWriter (batched); tests use these directly.
    #[cfg(test)]
    fn save<T: Serialize>(&self, family: &str, ifname: &str, lease: T) -> io::Result<()> {
        self.save_unsynced(family, ifname, lease)?;
        crate::state::atomic::sync_parent(&self.lease_path(family, ifname)?)
    }

    /// Write a lease file, durable except for the directory entry (see
    /// [`Store::sync_dir`]).
    pub(crate) fn save_unsynced<T: Serialize>(
        &self,
        family: &str,
        ifname: &str,
        lease: T,
    ) -> io::Result<()> {
        let path = self.lease_path(family, ifname)?;
        let env = Envelope {
            format: LEASE_FORMAT.to_string(),
            ifname: ifname.to_string(),
            lease,
        };
        let mut json = serde_json::to_vec_pretty(&env).map_err(io::Error::other)?;
        json.push(b'\n');
        replace_file(&path, &json, 0o600)
    }

    fn load<T: DeserializeOwned>(&self, family: &str, ifname: &str) -> Option<T> {
        let path = match self.lease_path(family, ifname) {
            Ok(p) => p,
            Err(e) => {
                crate::logging::warn!("not loading a lease: {e}");
                return None;
            }
        };
        let warn = |why: &str| {
            crate::logging::warn!(file = %path.display(), "ignoring lease file: {why}");
        };
        let bytes = match read_capped(&path, MAX_LEASE_FILE) {
            Ok(Some(b)) => b,
            Ok(None) => return None,
            Err(why) => {
                warn(&why);
                return None;
            }
        };
        let header: Header = match serde_json::from_slice(&bytes) {
            Ok(h) => h,
            Err(e) => {
                warn(&format!("not a netbond lease file ({e})"));
                return None;
            }
        };
        if header.format != LEASE_FORMAT {
            warn(&format!(
                "format {:?}, expected {LEASE_FORMAT:?}",
                header.format
            ));
            return None;
        }
        if header.ifname != ifname {
            warn(&format!(
                "written for interface {:?}, not {ifname:?}",
                header.ifname
            ));
            return None;
        }
        match serde_json::from_slice::<Envelope<T>>(&bytes) {
            Ok(env) => Some(env.lease),
            Err(e) => {
                warn(&format!("malformed lease ({e})"));
                None
            }
        }
    }

    #[cfg(test)]
    fn remove(&self, family: &str, ifname: &str) -> io::Result<()> {
        self.remove_unsynced(family, ifname)?;
        crate::state::atomic::sync_parent(&self.lease_path(family, ifname)?)
    }

    pub(crate) fn remove_unsynced(&self, family: &str, ifname: &str) -> io::Result<()> {
        let path = self.lease_path(family, ifname)?;
        note_write(&path);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Where the MTU from before DHCP option 26 is kept (`mtu4-<ifname>`).
    fn mtu_path(&self, ifname: &str) -> io::Result<PathBuf> {
        if !valid_ifname(ifname) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not an interface name: {ifname:?}"),
            ));
        }
        Ok(self.dir.join(format!("mtu4-{ifname}")))
    }

    /// The saved original MTU of `ifname`, if there is a sane one (68 is the IPv4
    /// minimum).
    pub fn load_original_mtu(&self, ifname: &str) -> Option<u32> {
        let text = fs::read_to_string(self.mtu_path(ifname).ok()?).ok()?;
        text.trim()
            .parse::<u32>()
            .ok()
            .filter(|m| (68..=65535).contains(m))
    }

    /// Keep `ifname`'s MTU from before option 26 changed it (None: forget it).
    pub fn save_original_mtu(&self, ifname: &str, mtu: Option<u32>) -> io::Result<()> {
        let path = self.mtu_path(ifname)?;
        match mtu {
            Some(m) => write_file_atomic(&path, format!("{m}\n").as_bytes(), 0o600),
            None => {
                note_write(&path);
                match fs::remove_file(&path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                }
            }
        }
    }

    /// fsync the state directory: makes the renames and removals before it durable.
    pub(crate) fn sync_dir(&self) -> io::Result<()> {
        note_write(&self.dir);
        File::open(&self.dir)?.sync_all()
    }

    /// Persist the DHCPv4 lease of `ifname` (`lease4-<ifname>.json`).
    #[cfg(test)]
    pub fn save_lease4(&self, ifname: &str, lease: &SavedLease4) -> io::Result<()> {
        self.save("4", ifname, lease)
    }

    /// The saved DHCPv4 lease of `ifname`, if there is a usable one.
    pub fn load_lease4(&self, ifname: &str) -> Option<SavedLease4> {
        self.load("4", ifname)
    }

    /// Forget the DHCPv4 lease of `ifname` (after a release, NAK or expiry).
    #[cfg(test)]
    pub fn remove_lease4(&self, ifname: &str) -> io::Result<()> {
        self.remove("4", ifname)
    }

    /// Persist the DHCPv6 lease of `ifname` (`lease6-<ifname>.json`).
    #[cfg(test)]
    pub fn save_lease6(&self, ifname: &str, lease: &SavedLease6) -> io::Result<()> {
        self.save("6", ifname, lease)
    }

    /// The saved DHCPv6 lease of `ifname`, if there is a usable one.
    pub fn load_lease6(&self, ifname: &str) -> Option<SavedLease6> {
        self.load("6", ifname)
    }

    /// Forget the DHCPv6 lease of `ifname`.
    #[cfg(test)]
    pub fn remove_lease6(&self, ifname: &str) -> io::Result<()> {
        self.remove("6", ifname)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use netbond_proto::dhcp4::Route4;
    use netbond_proto::Instant;
    use std::fs::Permissions;
    use std::net::Ipv4Addr;
    use std::os::unix::fs::PermissionsExt;

    pub(crate) fn tmpdir(tag: &str) -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let d = std::env::temp_dir().join(format!(
            "netbond-store-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&d);
        d
    }

    pub(crate) fn lease4() -> SavedLease4 {
        SavedLease4 {
            lease: Lease4 {
                address: Ipv4Addr::new(192, 0, 2, 10),
                prefix_len: 24,
                server: Ipv4Addr::new(192, 0, 2, 1),
                routers: vec![Ipv4Addr::new(192, 0, 2, 1)],
                dns: vec![Ipv4Addr::new(192, 0, 2, 53)],
                domain: Some("example.com".into()),
                search: vec!["corp.example".into()],
                hostname: None,
                mtu: Some(1500),
                ntp: vec![],
                routes: vec![Route4 {
                    dest: Ipv4Addr::new(10, 0, 0, 0),
                    prefix_len: 8,
                    gateway: Ipv4Addr::new(192, 0, 2, 254),
                }],
                static_routes: vec![],
                lease_secs: Some(3600),
                t1_secs: 1800,
                t2_secs: 3150,
                acquired: Instant::from_millis(12_345),
                chaddr: [2, 0, 0, 0, 0, 1],
                captive_portal: None,
            },
            acquired_unix: 1_700_000_000,
        }
    }

    /// The engine's lease behind [`lease6`] (acquired at engine time 12.345 s).
    pub(crate) fn lease6_engine() -> netbond_proto::dhcp6::Lease6 {
        use netbond_proto::dhcp6::{Addr6, Lease6, Prefix6};
        Lease6 {
            server_id: vec![0, 1, 0, 1, 0x2e, 0x2d, 1, 0xbd, 2, 0, 0, 0, 0, 1],
            addresses: vec![Addr6 {
                addr: "2001:db8::10".parse().unwrap(),
                preferred: 3600,
                valid: 7200,
            }],
            prefixes: vec![Prefix6 {
                prefix: "2001:db8:100::".parse().unwrap(),
                len: 56,
                preferred: 3600,
                valid: 7200,
            }],
            t1: 1800,
            t2: 2880,
            dns: vec!["2001:db8::53".parse().unwrap()],
            domains: vec!["example.com".into()],
            ntp: vec![],
            captive_portal: None,
            acquired: Instant::from_millis(12_345),
        }
    }

    pub(crate) fn lease6() -> SavedLease6 {
        SavedLease6 {
            lease: lease6_engine(),
            acquired_unix: 1_700_000_000,
        }
    }

    #[test]
    fn open_creates_private_dir() {
        let d = tmpdir("open").join("nested");
        let s = Store::open(&d).unwrap();
        assert_eq!(
            fs::metadata(s.dir()).unwrap().permissions().mode() & 0o777,
            0o700
        );
        Store::open(&d).unwrap(); // idempotent
        fs::remove_dir_all(d.parent().unwrap()).unwrap();
    }

    /// A DHCPv6 lease file as netbond wrote it before the lease was saved through the
    /// engine's own type: it must still load after an upgrade (the next start confirms
    /// the address instead of soliciting a new one).
    #[test]
    fn lease6_file_in_the_v1_format_still_loads() {
        let d = tmpdir("v1");
        let s = Store::open(&d).unwrap();
        fs::write(
            d.join("lease6-eth0.json"),
            include_str!("testdata/lease6-eth0-v1.json"),
        )
        .unwrap();
        // The v1 file has no engine-time `acquired`: it reads as the origin (the daemon
        // rebases from acquired_unix anyway).
        let mut want = lease6();
        want.lease.acquired = Instant::ZERO;
        assert_eq!(s.load_lease6("eth0"), Some(want));
        fs::remove_dir_all(&d).unwrap();
    }

    /// What is written now reads the same as before for the fields v1 had (a downgraded
    /// netbond still loads it), plus `acquired`.
    #[test]
    fn lease6_file_keeps_the_v1_shape() {
        let d = tmpdir("v1w");
        let s = Store::open(&d).unwrap();
        s.save_lease6("eth0", &lease6()).unwrap();
        let now: serde_json::Value =
            serde_json::from_slice(&fs::read(d.join("lease6-eth0.json")).unwrap()).unwrap();
        let mut v1: serde_json::Value =
            serde_json::from_str(include_str!("testdata/lease6-eth0-v1.json")).unwrap();
        v1["lease"]["acquired"] = serde_json::json!({ "millis": 12_345 });
        assert_eq!(now, v1);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn round_trips() {
        let d = tmpdir("rt");
        let s = Store::open(&d).unwrap();
        assert_eq!(s.load_lease4("eth0"), None);
        s.save_lease4("eth0", &lease4()).unwrap();
        s.save_lease6("eth0", &lease6()).unwrap();
        assert_eq!(s.load_lease4("eth0"), Some(lease4()));
        assert_eq!(s.load_lease6("eth0"), Some(lease6()));
        let p = d.join("lease4-eth0.json");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let text = fs::read_to_string(&p).unwrap();
        assert!(text.contains("\"format\": \"netbond-lease-v1\""), "{text}");
        assert!(text.contains("\"ifname\": \"eth0\""), "{text}");
        // The other interface's lease is separate.
        assert_eq!(s.load_lease4("eth1"), None);
        s.remove_lease4("eth0").unwrap();
        s.remove_lease4("eth0").unwrap();
        assert_eq!(s.load_lease4("eth0"), None);
        s.remove_lease6("eth0").unwrap();
        // Only the lease files were ever there: no temp files left.
        assert_eq!(fs::read_dir(&d).unwrap().count(), 0);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn lease_file_without_static_routes_still_loads() {
        // Lease files written before option 33 was kept have no `static_routes` key.
        fn strip(v: &mut serde_json::Value) -> bool {
            match v {
                serde_json::Value::Object(m) => {
                    let mut hit = m.remove("static_routes").is_some();
                    for x in m.values_mut() {
                        hit |= strip(x);
                    }
                    hit
                }
                _ => false,
            }
        }
        let d = tmpdir("old");
        let s = Store::open(&d).unwrap();
        s.save_lease4("eth0", &lease4()).unwrap();
        let p = d.join("lease4-eth0.json");
        let mut v: serde_json::Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
        assert!(strip(&mut v), "the field is written");
        fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
        assert_eq!(s.load_lease4("eth0"), Some(lease4()));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn duid_round_trip_and_garbage() {
        let d = tmpdir("duid");
        let s = Store::open(&d).unwrap();
        assert_eq!(s.load_duid(), None);
        let duid = Duid::ll(1, &[2, 0, 0, 0, 0, 1]).unwrap();
        s.save_duid(&duid).unwrap();
        assert_eq!(
            fs::read_to_string(d.join("duid")).unwrap(),
            format!("{duid}\n")
        );
        assert_eq!(s.load_duid(), Some(duid));
        fs::write(d.join("duid"), "zz:top\n").unwrap();
        assert_eq!(s.load_duid(), None);
        fs::write(d.join("duid"), vec![b'0'; 5000]).unwrap();
        assert_eq!(s.load_duid(), None);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn bad_files_are_ignored() {
        let d = tmpdir("bad");
        let s = Store::open(&d).unwrap();
        s.save_lease4("eth0", &lease4()).unwrap();
        let p = d.join("lease4-eth0.json");
        let good = fs::read(&p).unwrap();

        // Truncated at every length: never a panic, never a lease.
        for n in 0..good.len() - 2 {
            fs::write(&p, &good[..n]).unwrap();
            assert_eq!(s.load_lease4("eth0"), None, "truncated at {n}");
        }
        // Garbage.
        fs::write(&p, b"\x00\xff\xfe garbage").unwrap();
        assert_eq!(s.load_lease4("eth0"), None);
        fs::write(&p, b"[1,2,3]").unwrap();
        assert_eq!(s.load_lease4("eth0"), None);
        // Wrong format tag.
        let text = String::from_utf8(good.clone()).unwrap();
        fs::write(&p, text.replace("netbond-lease-v1", "netbond-lease-v9")).unwrap();
        assert_eq!(s.load_lease4("eth0"), None);
        // Written for another interface (e.g. a file copied by hand).
        fs::write(
            &p,
            text.replace("\"ifname\": \"eth0\"", "\"ifname\": \"eth1\""),
        )
        .unwrap();
        assert_eq!(s.load_lease4("eth0"), None);
        // A v6 lease under the v4 name.
        s.save_lease6("eth0", &lease6()).unwrap();
        fs::copy(d.join("lease6-eth0.json"), &p).unwrap();
        assert_eq!(s.load_lease4("eth0"), None);
        // Oversize, even if it would parse.
        let mut big = text.clone().into_bytes();
        big.truncate(big.len() - 2); // drop "}\n"
        big.extend_from_slice(b", \"pad\": \"");
        big.extend(std::iter::repeat_n(b'x', 70 * 1024));
        big.extend_from_slice(b"\"}\n");
        fs::write(&p, &big).unwrap();
        assert_eq!(s.load_lease4("eth0"), None);
        // And the good file still loads.
        fs::write(&p, &good).unwrap();
        assert_eq!(s.load_lease4("eth0"), Some(lease4()));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn hostile_ifnames_are_refused() {
        let d = tmpdir("ifname");
        let s = Store::open(&d).unwrap();
        for bad in [
            "",
            "../etc",
            "a/b",
            "..",
            ".",
            "sixteen-chars-xx",
            "a b",
            "eth0\n",
            "a:b",
        ] {
            assert!(!valid_ifname(bad), "{bad:?}");
            assert!(s.save_lease4(bad, &lease4()).is_err(), "{bad:?}");
            assert_eq!(s.load_lease4(bad), None);
            assert!(s.remove_lease6(bad).is_err());
        }
        assert!(valid_ifname("bond0.100"));
        assert!(valid_ifname("wlp0s20f3"));
        assert_eq!(fs::read_dir(&d).unwrap().count(), 0);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn unwritable_dir_is_an_error_not_a_panic() {
        let d = tmpdir("ro");
        let s = Store::open(&d).unwrap();
        // Root ignores permission bits, so also make the directory vanish and turn
        // into a file: every write must fail cleanly.
        fs::set_permissions(&d, Permissions::from_mode(0o500)).unwrap();
        let is_root = unsafe { libc::geteuid() } == 0;
        if !is_root {
            assert!(s.save_lease4("eth0", &lease4()).is_err());
            assert!(s
                .save_duid(&Duid::ll(1, &[2, 0, 0, 0, 0, 1]).unwrap())
                .is_err());
        }
        fs::set_permissions(&d, Permissions::from_mode(0o700)).unwrap();
        fs::remove_dir_all(&d).unwrap();
        fs::write(&d, b"not a dir").unwrap();
        let e = s.save_lease4("eth0", &lease4()).unwrap_err();
        assert!(e.to_string().contains("lease4-eth0.json"), "{e}");
        assert!(s.save_lease6("eth0", &lease6()).is_err());
        assert_eq!(s.load_lease4("eth0"), None);
        assert!(Store::open(&d).is_err());
        fs::remove_file(&d).unwrap();
    }
}
