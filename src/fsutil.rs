//! Atomic file writes: results and statistics are never left half-written.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The temporary sibling a file is written to before it is renamed into place.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
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
}
