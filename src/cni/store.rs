//! The attachments' leases on disk, one file per attachment keyed by network name,
//! container ID and interface, so that a restarted daemon resumes (or releases) them.

use crate::state::atomic::write_file_atomic;
use crate::state::store::SavedLease4;
use netbond_proto::dhcp6::Lease6;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

const FORMAT: &str = "netbond-cni-v1";
/// A larger file is not ours.
const MAX_FILE: u64 = 64 * 1024;

/// Which attachment: the CNI spec's key for IPAM state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    pub network: String,
    pub container_id: String,
    pub ifname: String,
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.network, self.container_id, self.ifname)
    }
}

/// A saved DHCPv6 lease with its acquisition time as Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedLease6 {
    pub lease: Lease6,
    pub acquired_unix: u64,
}

/// Everything needed to resume or release an attachment after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub format: String,
    pub key: Key,
    pub netns: PathBuf,
    /// The configuration the attachment was added with.
    pub spec: super::attach::Settings,
    #[serde(default)]
    pub lease4: Option<SavedLease4>,
    #[serde(default)]
    pub lease6: Option<SavedLease6>,
    /// A lease was lost and the link taken down: nothing to resume until DEL and ADD.
    #[serde(default)]
    pub down: bool,
}

impl Record {
    /// A record with no lease yet.
    pub fn new(key: Key, netns: PathBuf, spec: super::attach::Settings) -> Self {
        Record {
            format: FORMAT.into(),
            key,
            netns,
            spec,
            lease4: None,
            lease6: None,
            down: false,
        }
    }
}

/// The directory of records.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Use (and create, mode 0700) `dir`.
    pub fn open(dir: &Path) -> io::Result<Store> {
        fs::create_dir_all(dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("creating state directory {}: {e}", dir.display()),
            )
        })?;
        use std::os::unix::fs::PermissionsExt;
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
        Ok(Store {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of `key`: a hash, since container IDs and network names may hold any
    /// character; the key itself is inside the file.
    fn path(&self, key: &Key) -> PathBuf {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in key.to_string().bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.dir.join(format!("attachment-{h:016x}.json"))
    }

    /// Write `rec` (atomically, synced).
    pub fn save(&self, rec: &Record) -> io::Result<()> {
        let mut json = serde_json::to_vec_pretty(rec).map_err(io::Error::other)?;
        json.push(b'\n');
        write_file_atomic(&self.path(&rec.key), &json, 0o600)
    }

    /// Write `rec`, durable except for its directory entry (see [`Store::sync_dir`]):
    /// the record writer fsyncs the directory once for a batch.
    pub fn save_unsynced(&self, rec: &Record) -> io::Result<()> {
        let mut json = serde_json::to_vec_pretty(rec).map_err(io::Error::other)?;
        json.push(b'\n');
        crate::state::atomic::replace_file(&self.path(&rec.key), &json, 0o600)
    }

    /// Delete `key`'s record; durable after [`Store::sync_dir`].
    pub fn remove_unsynced(&self, key: &Key) -> io::Result<()> {
        match fs::remove_file(self.path(key)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// fsync the directory: the renames and removals before it are durable.
    pub fn sync_dir(&self) -> io::Result<()> {
        fs::File::open(&self.dir)?.sync_all()
    }

    /// Forget `key`.
    pub fn remove(&self, key: &Key) -> io::Result<()> {
        let p = self.path(key);
        match fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => crate::state::atomic::sync_parent(&p),
        }
    }

    /// Every readable record; unreadable files are logged and skipped.
    pub fn load_all(&self) -> Vec<Record> {
        let mut out = Vec::new();
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return out;
        };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            if !name.starts_with("attachment-") || !name.ends_with(".json") {
                continue;
            }
            let too_big = e.metadata().map(|m| m.len() > MAX_FILE).unwrap_or(true);
            if too_big {
                crate::logging::warn!(file = %p.display(), "ignoring attachment file: too large or unreadable");
                continue;
            }
            match fs::read(&p)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Record>(&b).map_err(|e| e.to_string()))
            {
                Ok(r) if r.format == FORMAT && self.path(&r.key) == p => out.push(r),
                Ok(_) => {
                    crate::logging::warn!(file = %p.display(), "ignoring attachment file: not {FORMAT} or misnamed")
                }
                Err(e) => {
                    crate::logging::warn!(file = %p.display(), "ignoring attachment file: {e}")
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    /// An attachment's DHCPv6 lease as the CNI daemon wrote it before the v6 lease type
    /// got its own file shape (server DUID as a list of numbers, `preferred`/`valid`):
    /// a daemon upgraded in place must still resume it.
    #[test]
    fn lease6_record_in_the_v1_format_still_loads() {
        let text = include_str!("testdata/lease6-v1.json");
        let l: SavedLease6 = serde_json::from_str(text).unwrap();
        assert_eq!(l.lease, crate::state::store::tests::lease6_engine());
        assert_eq!(l.acquired_unix, 1_700_000_000);
        let again = serde_json::to_string(&l).unwrap();
        assert_eq!(serde_json::from_str::<SavedLease6>(&again).unwrap(), l);
    }
}
