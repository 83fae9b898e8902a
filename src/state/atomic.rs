//! The one way netbond replaces a file durably: write a temporary file beside it, fsync
//! it, rename it over the target, fsync the directory. Used by the lease store, the
//! DUID, resolv.conf and its saved original, the chrony sources file, the CNI records
//! and `netbond import --force`. Also counts durable writes made on the event loop
//! (`stats.saves_on_loop` in `netbond status`), which must stay 0.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::thread::ThreadId;

/// The temporary name used while atomically replacing `path`:
/// `.<file name>.netbond.tmp.<pid>` in the same directory, so the rename cannot cross
/// file systems.
pub fn temp_path(path: &Path) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} has no file name", path.display()),
        )
    })?;
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".netbond.tmp.{}", std::process::id()));
    Ok(path.with_file_name(tmp))
}

/// The event-loop thread, once the daemon has said which it is.
static LOOP_THREAD: OnceLock<ThreadId> = OnceLock::new();
/// Durable writes (lease files, the DUID, resolv.conf) done on the event-loop thread.
static WRITES_ON_LOOP: AtomicU64 = AtomicU64::new(0);

/// The calling thread is the daemon's event loop: from now on a durable write made on
/// it is counted (and logged), since it would stall every interface.
pub fn mark_loop_thread() {
    let _ = LOOP_THREAD.set(std::thread::current().id());
}

/// How many durable writes ran on the event-loop thread (0 unless something regressed).
pub fn writes_on_loop() -> u64 {
    WRITES_ON_LOOP.load(Ordering::Relaxed)
}

pub(crate) fn note_write(path: &Path) {
    if LOOP_THREAD.get() == Some(&std::thread::current().id()) {
        WRITES_ON_LOOP.fetch_add(1, Ordering::Relaxed);
        crate::logging::error!(
            "internal error: {} was written on the event loop (it should be queued to a writer thread); please report this",
            path.display()
        );
    }
}

/// fsync the directory containing `path`, making a rename in it durable.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// Replace `path` with `data` atomically with permissions `mode` (the umask does not
/// apply): write a temp file in the same directory, fsync it, rename it over `path`,
/// fsync the directory. On failure the temp file is removed and `path` is untouched.
pub fn write_file_atomic(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    replace_file(path, data, mode)?;
    sync_parent(path)
}

/// [`write_file_atomic`] without the final directory fsync: the file is durable, the
/// rename only once the caller has fsynced the directory (once for a batch of files).
pub(crate) fn replace_file(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    note_write(path);
    let tmp = temp_path(path)?;
    // A leftover from a crashed process with the same pid; create_new below also
    // refuses to follow a symlink planted there.
    let _ = fs::remove_file(&tmp);
    let res = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.set_permissions(Permissions::from_mode(mode))?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(io::Error::new(
            e.kind(),
            format!("cannot write {}: {e}", path.display()),
        ));
    }
    Ok(())
}

/// Replace `path` with a symlink to `target` atomically (a symlink itself cannot be
/// fsynced; the directory is).
pub fn replace_with_symlink(path: &Path, target: &Path) -> io::Result<()> {
    let tmp = temp_path(path)?;
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_parent(path)
}
