//! Writing outputs safely: every file is written atomically (a temporary file beside it, synced, renamed into
//! place, as checkpoints are), an output folder is checked before any training, and the temporary files a
//! killed process left behind are removed on the next start. Every error names the path.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

fn named(path: &Path, action: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("cannot {action} {}: {e}", path.display()))
}

/// The temporary file that an atomic write of `path` by this process goes through: `.NAME.tmp-PID` beside
/// it (the name [`models::Checkpoint::save`] uses too).
fn temporary(path: &Path) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{} has no file name", path.display())))?;
    Ok(path.with_file_name(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id())))
}

/// Write `bytes` to `path` atomically: a reader (or a crash) sees the old file or the new one, never half.
pub fn write_atomic(path: impl AsRef<Path>, bytes: impl AsRef<[u8]>) -> io::Result<()> {
    let path = path.as_ref();
    let tmp = temporary(path)?;
    let write = || -> io::Result<()> {
        let mut f = fs::File::create(&tmp).map_err(|e| named(&tmp, "create", e))?;
        f.write_all(bytes.as_ref()).map_err(|e| named(&tmp, "write", e))?;
        f.sync_all().map_err(|e| named(&tmp, "sync", e))?;
        fs::rename(&tmp, path).map_err(|e| named(path, "rename a temporary file into", e))
    };
    write().inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// Create `dir` (and its parents) and check that a file can be written in it, before hours of training
/// find out.
pub fn ensure_writable(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir).map_err(|e| named(dir, "create the output folder", e))?;
    let probe = dir.join(format!(".write-probe-{}", std::process::id()));
    fs::write(&probe, b"probe").map_err(|e| named(dir, "write a file in the output folder", e))?;
    fs::remove_file(&probe).map_err(|e| named(&probe, "remove the probe file", e))
}

/// The process id in a temporary file's name `.NAME.tmp-PID`, if the name has exactly that form.
fn orphan_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let (stem, pid) = rest.rsplit_once(".tmp-")?;
    if stem.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Remove the temporary files (`.NAME.tmp-PID`) that a process killed while saving left in `dir`, except
/// those of a process still running (on Linux, where /proc tells). Returns how many were removed; a
/// missing folder has none.
pub fn clean_orphans(dir: &Path) -> io::Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(named(dir, "list", e)),
    };
    let proc = Path::new("/proc/self").exists();
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| named(dir, "list", e))?;
        let Some(pid) = entry.file_name().to_str().and_then(orphan_pid) else { continue };
        let alive = pid == std::process::id() || (proc && Path::new("/proc").join(pid.to_string()).exists());
        if alive || !entry.file_type().map_err(|e| named(&entry.path(), "inspect", e))?.is_file() {
            continue;
        }
        fs::remove_file(entry.path()).map_err(|e| named(&entry.path(), "remove the leftover temporary file", e))?;
        eprintln!("removed {}, left by an interrupted save", entry.path().display());
        removed += 1;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("srn-files-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn atomic_writes_replace_the_file_and_leave_no_temporary() {
        let d = scratch("atomic");
        let path = d.join("table.md");
        write_atomic(&path, "old").unwrap();
        write_atomic(&path, "new").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        let err = write_atomic(d.join("missing").join("x.md"), "x").unwrap_err().to_string();
        assert!(err.contains("missing") && err.contains("x.md"), "{err}");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn only_orphans_of_exactly_the_pattern_of_dead_processes_are_removed() {
        let d = scratch("orphans");
        // A pid far above Linux's pid_max: no such process.
        let dead = ".checkpoint.safetensors.tmp-4999999";
        let keep = [
            "checkpoint.safetensors",
            "checkpoint.safetensors.tmp-12",
            ".checkpoint.safetensors.tmp-",
            ".checkpoint.safetensors.tmp-12x",
            ".tmp-12",
            "notes.tmp-12",
        ];
        for f in keep.iter().chain([&dead]) {
            fs::write(d.join(f), "x").unwrap();
        }
        let mine = format!(".curve.csv.tmp-{}", std::process::id());
        fs::write(d.join(&mine), "x").unwrap();
        assert_eq!(clean_orphans(&d).unwrap(), 1);
        assert!(!d.join(dead).exists());
        for f in keep.iter().chain([&mine.as_str()]) {
            assert!(d.join(f).exists(), "{f} was removed");
        }
        assert_eq!(clean_orphans(&d.join("absent")).unwrap(), 0);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_unwritable_output_folder_is_named() {
        let d = scratch("unwritable");
        let file = d.join("a-file");
        fs::write(&file, "x").unwrap();
        let err = ensure_writable(&file.join("out")).unwrap_err().to_string();
        assert!(err.contains("a-file") && err.contains("output folder"), "{err}");
        ensure_writable(&d.join("fresh").join("deeper")).unwrap();
        assert_eq!(fs::read_dir(d.join("fresh").join("deeper")).unwrap().count(), 0, "no probe left");
        fs::remove_dir_all(&d).unwrap();
    }
}
