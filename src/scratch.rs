//! Scratch directories for tests and throwaway work: unique to the process and a name, empty
//! when made, and removed with everything in them when dropped.

use anyhow::{Context, Result};
use std::ops::Deref;
use std::path::{Path, PathBuf};

/// A directory of its own under the system's temporary directory.
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    /// A fresh, empty directory named after `name` and this process (`gd-NAME-PID`).
    pub fn new(name: &str) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("gd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the scratch directory {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Deref for ScratchDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for ScratchDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_directory_starts_empty_and_is_removed_when_dropped() {
        let count = |p: &Path| std::fs::read_dir(p).unwrap().count();
        let dir = ScratchDir::new("scratch-self-test").unwrap();
        assert_eq!(count(&dir), 0);
        std::fs::create_dir_all(dir.join("nested")).unwrap();
        std::fs::write(dir.join("nested/file.txt"), "x").unwrap();
        // Another one of the same name and process takes the place over, empty again.
        let again = ScratchDir::new("scratch-self-test").unwrap();
        assert_eq!(again.to_path_buf(), dir.to_path_buf());
        assert_eq!(count(&again), 0);
        drop(again);
        assert!(!dir.exists());
        // Dropping a directory that is already gone is harmless.
        drop(dir);
    }
}
