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
