//! Scratch directories for the unit tests: unique to the test process and a name, empty when
//! made, and removed with everything in them when dropped.

use std::ops::Deref;
use std::path::{Path, PathBuf};

/// A test's own directory under the system's temporary directory.
pub(crate) struct ScratchDir(PathBuf);

impl ScratchDir {
    /// A fresh, empty directory named after `name` and this process.
    pub(crate) fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("gd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the temporary directory is writable");
        Self(dir)
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
