//! The file system: reading a source (bounded, never a special file) and writing
//! the result (never replacing a file without `--force`, and then atomically).

use super::{NoteKind, Notes, MAX_SOURCE_BYTES};
use std::io::{self, Read};
use std::path::Path;

/// Write `text` to `path` with mode 0644. Without `force` an existing file (or
/// symlink) is never touched; with it, the file is replaced atomically.
pub fn write_config(path: &Path, text: &str, force: bool) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let shown = show(path);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", show(dir)))?;
    }
    let open = |p: &Path| {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(p)
    };
    let write = |mut f: std::fs::File, p: &Path| {
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| format!("cannot write {}: {e}", show(p)))
    };
    if !force {
        return match open(path) {
            Ok(f) => write(f, path),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(format!(
                "{shown} exists; not overwritten (use --force, or --output - to print)"
            )),
            Err(e) => Err(format!("cannot create {shown}: {e}")),
        };
    }
    crate::state::atomic::write_file_atomic(path, text.as_bytes(), 0o644)
        .map_err(|e| format!("cannot replace {shown}: {e}"))
}

/// A path as the notes and messages show it.
pub(super) fn show(p: &Path) -> String {
    p.display().to_string()
}

/// The bytes of one source file, or `None` with a note saying why not.
pub(super) fn read_source(path: &Path, what: &str, notes: &mut Notes) -> Option<Vec<u8>> {
    let shown = show(path);
    let too_big = |notes: &mut Notes| {
        notes.push(
            NoteKind::Ignored,
            format!(
                "{what}: {shown} is larger than {} KiB, which no configuration file is; nothing was read from it",
                MAX_SOURCE_BYTES / 1024
            ),
        )
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            notes.push(
                NoteKind::Missing,
                format!("{what}: {shown} does not exist; nothing imported from it"),
            );
            return None;
        }
        Err(e) => {
            notes.push(
                NoteKind::Warning,
                format!("{what}: cannot read {shown}: {e}"),
            );
            return None;
        }
    };
    if !meta.is_file() {
        notes.push(
            NoteKind::Ignored,
            format!("{what}: {shown} is not a regular file"),
        );
        return None;
    }
    if meta.len() > MAX_SOURCE_BYTES {
        too_big(notes);
        return None;
    }
    let mut buf = Vec::new();
    let read =
        std::fs::File::open(path).and_then(|f| f.take(MAX_SOURCE_BYTES + 1).read_to_end(&mut buf));
    if let Err(e) = read {
        notes.push(
            NoteKind::Warning,
            format!("{what}: cannot read {shown}: {e}"),
        );
        return None;
    }
    if buf.len() as u64 > MAX_SOURCE_BYTES {
        too_big(notes);
        return None;
    }
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::import::testutil::*;
    use crate::tools::import::MAX_SOURCE_BYTES;

    #[test]
    fn huge_and_special_files_are_not_read() {
        let dir = Scratch::new("huge");
        let mut big = b"reboot 3;\n".to_vec();
        big.resize(MAX_SOURCE_BYTES as usize + 10, b'#');
        let sources = ImportSources {
            dhclient_conf: Some(dir.file("dhclient.conf", &big)),
            dhcp6c_conf: Some(dir.0.clone()),
            dhcp6c_duid: Some(dir.0.join("absent")),
            primary_conf: None,
            master_unit: None,
            bonding_conf: None,
            wpa_conf: None,
            supplicant_unit: None,
            unit_dir: Some(dir.0.clone()),
            wifi_ifaces: Vec::new(),
            dhclient_hooks: None,
        };
        let e = import(&sources).unwrap_err();
        assert!(e.contains("nothing to import"), "{e}");

        let sources = ImportSources {
            primary_conf: Some(dir.file("primary.conf", b"PRI=eth0\n")),
            ..sources
        };
        let r = import(&sources).unwrap();
        assert_eq!(r.config.dhcp4.reboot, 10, "the big file was not read");
        assert!(has(&r, NoteKind::Ignored, "larger than 1024 KiB"));
        assert!(has(&r, NoteKind::Ignored, "not a regular file"));
        assert!(has(&r, NoteKind::Missing, "absent"));
    }

    #[test]
    fn output_is_not_overwritten_without_force() {
        let dir = Scratch::new("out");
        let p = dir.0.join("sub/netbond.toml");
        write_config(&p, "a = 1\n", false).unwrap();
        let e = write_config(&p, "b = 2\n", false).unwrap_err();
        assert!(e.contains("--force"), "{e}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a = 1\n");
        write_config(&p, "b = 2\n", true).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "b = 2\n");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o644, 0o644);
        assert_eq!(
            std::fs::read_dir(dir.0.join("sub")).unwrap().count(),
            1,
            "no temp left"
        );
    }
}
