//! Atomic file writes (results and statistics are never left half-written), the clean-up of
//! what a killed writer left, file locks, and opening files from strangers (regular files only).

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// The temporary sibling a file is written to before it is renamed into place:
/// `<name>.<pid>.tmp`.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
}

/// The process id in the name of a temporary file [`atomic_write`] made, if `name` is one.
fn temp_owner(name: &str) -> Option<u32> {
    let stem = name.strip_suffix(".tmp")?;
    let (target, pid) = stem.rsplit_once('.')?;
    if target.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether a process with this id is running (or exists under another user).
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks whether the process exists; it sends nothing.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Removes the temporary files that writers killed before their rename left in `dir` (not
/// those of a process still running) and returns how many it removed. A missing directory has
/// none.
pub fn remove_stale_temps(dir: &Path) -> Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temp_owner) else {
            continue;
        };
        if pid == std::process::id() || process_alive(pid) {
            continue;
        }
        if entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path()).with_context(|| {
                format!(
                    "cannot remove the stale temporary file {}",
                    entry.path().display()
                )
            })?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Opens a file to read, refusing anything but a regular file (a FIFO, a device, a socket or a
/// directory) before reading a byte of it, so a path from a stranger can neither hang the
/// process nor stream endlessly. `what` names the file in errors ("mask", "checkpoint").
pub fn open_regular(path: &Path, what: &str) -> Result<std::fs::File> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    // non-blocking, so that opening a FIFO with no writer returns at once instead of waiting
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!("{what} {} does not exist; check the path", path.display())
            } else {
                anyhow::anyhow!("cannot open {what} {}: {e}", path.display())
            }
        })?;
    let kind = file
        .metadata()
        .with_context(|| format!("cannot read the metadata of {what} {}", path.display()))?
        .file_type();
    let other = if kind.is_file() {
        return Ok(file);
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    bail!(
        "{what} {} is {other}, not a regular file; give the path of a file",
        path.display()
    )
}

/// Reads a whole regular file ([`open_regular`]) of at most `limit` bytes; a larger file is
/// refused with its size before it is read.
pub fn read_regular(path: &Path, what: &str, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = open_regular(path, what)?;
    let len = file.metadata()?.len();
    if len > limit {
        bail!(
            "{what} {} is {len} bytes, more than the {limit} bytes a {what} can need; it is not \
             a {what} of this tool",
            path.display()
        );
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limit)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    Ok(bytes)
}

/// The most bytes a JSON file this tool reads (a model card, a dissection summary, a saved
/// ranking) may have: far above any it writes, far below what would strain memory.
pub const MAX_JSON_BYTES: u64 = 256 << 20;

/// Reads a whole regular text file ([`read_regular`]) of at most [`MAX_JSON_BYTES`] bytes,
/// refusing invalid UTF-8 with the file's name.
pub fn read_text(path: &Path, what: &str) -> Result<String> {
    let bytes = read_regular(path, what, MAX_JSON_BYTES)?;
    String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{what} {} is not UTF-8 text", path.display()))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory is written,
/// flushed to disk, then renamed over `path`. A crash or a full disk leaves either the old
/// file or no file, never a truncated one.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic_write_with(path, |tmp| {
        std::fs::write(tmp, bytes)?;
        Ok(())
    })
}

/// Runs `write` on a temporary path next to `path`, syncs it, and renames it into place.
/// Use this for writers that want a path (PNG encoders, safetensors).
pub fn atomic_write_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
    }
    let tmp = temp_path(path);
    let result = write(&tmp).and_then(|()| {
        let file = std::fs::File::open(&tmp)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// Serialises `value` as pretty JSON and writes it atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    atomic_write(path, text.as_bytes())
}

/// An exclusive lock on a file, held until dropped. The operating system releases it when the
/// process exits, so a killed run never leaves it stuck.
#[derive(Debug)]
pub struct FileLock {
    _file: std::fs::File,
}

/// Locks `path` (created if missing) for this process alone, waiting for whoever holds it; says
/// on stderr that it waits, naming `what` the lock guards. Where the file system offers no
/// locks, warns and returns unlocked.
pub fn lock_file(path: &Path, what: &str) -> Result<FileLock> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            eprintln!("waiting for another process working on {what} to finish");
            file.lock()
                .with_context(|| format!("cannot lock {}", path.display()))?;
        }
        Err(std::fs::TryLockError::Error(e)) => {
            // some network file systems offer no locks; working unguarded beats not working
            eprintln!(
                "warning: cannot lock {} ({e}); going on without the lock: make sure no other \
                 process works on {what} at the same time",
                path.display()
            );
        }
    }
    Ok(FileLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_leaves_no_file_and_no_temp() {
        let dir = std::env::temp_dir().join(format!("gd-fsutil-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("out.bin");
        let err = atomic_write_with(&target, |tmp| {
            std::fs::write(tmp, b"partial")?;
            anyhow::bail!("disk full")
        });
        assert!(err.is_err());
        assert!(!target.exists());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        atomic_write(&target, b"whole").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"whole");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stale_temps_of_dead_writers_are_removed_and_live_ones_kept() {
        let dir = crate::scratch::ScratchDir::new("fsutil-stale").unwrap();
        // pid_max is at most 2^22 on Linux: this writer cannot be running
        let dead = dir.join("scene.png.99999999.tmp");
        let mine = dir.join(format!("scene.json.{}.tmp", std::process::id()));
        let other = dir.join("notes.tmp");
        for p in [&dead, &mine, &other] {
            std::fs::write(p, b"x").unwrap();
        }
        assert_eq!(remove_stale_temps(&dir).unwrap(), 1);
        assert!(!dead.exists() && mine.exists() && other.exists());
        assert_eq!(remove_stale_temps(&dir.join("missing")).unwrap(), 0);
        assert_eq!(temp_owner("a.png.123.tmp"), Some(123));
        assert_eq!(temp_owner(".123.tmp"), None);
        assert_eq!(temp_owner("a.png.12x.tmp"), None);
    }

    #[test]
    fn fifos_devices_and_directories_are_refused_before_reading() {
        let dir = crate::scratch::ScratchDir::new("fsutil-regular").unwrap();
        let fifo = dir.join("pipe.png");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads a NUL-terminated path and creates a FIFO there.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = open_regular(&fifo, "mask").unwrap_err().to_string();
        assert!(
            err.contains("is a FIFO") && err.contains("pipe.png"),
            "{err}"
        );
        let err = open_regular(Path::new("/dev/zero"), "mask")
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a device"), "{err}");
        let err = open_regular(&dir, "mask").unwrap_err().to_string();
        assert!(err.contains("is a directory"), "{err}");
        let err = open_regular(&dir.join("none.png"), "mask")
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not exist"), "{err}");
        std::fs::write(dir.join("big.bin"), [0u8; 100]).unwrap();
        let err = read_regular(&dir.join("big.bin"), "script", 10)
            .unwrap_err()
            .to_string();
        assert!(err.contains("100 bytes"), "{err}");
        assert_eq!(
            read_regular(&dir.join("big.bin"), "script", 100)
                .unwrap()
                .len(),
            100
        );
    }
}
