//! Helpers shared by the integration tests: running the binary, scratch directories, the
//! project's Python and cached fixtures made by Python scripts.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// Serialises fixture generation between the tests of one test binary.
static FIXTURE_LOCK: Mutex<()> = Mutex::new(());

/// Runs the `gandissect` binary with `args`.
pub fn gandissect(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gandissect"))
        .args(args)
        .output()
        .expect("the binary runs")
}

pub use gandissect::scratch::ScratchDir as Scratch;

/// A fresh, empty scratch directory for one test (unique per test process and `name`), removed
/// with its contents when dropped.
pub fn scratch(name: &str) -> Scratch {
    Scratch::new(&format!("test-{name}")).unwrap()
}

/// Whether the shipped generator and segmenter are installed; says so on stderr when not, for
/// the tests that check them to skip.
pub fn shipped_models_installed() -> bool {
    let home = gandissect::zoo::home();
    let installed = home.join("models/world-proggan/model.json").exists()
        && home.join("segmenters/world-seg/segmenter.json").exists();
    if !installed {
        eprintln!("skipped: models/world-proggan or segmenters/world-seg is not installed");
    }
    installed
}

/// The crate's root directory.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python of the project's virtualenv (`.venv/bin/python`, or `$VIRTUAL_ENV/bin/python`),
/// which has the torch and numpy the fixtures are made with.
pub fn python() -> PathBuf {
    let local = repo_root().join(".venv/bin/python");
    if local.exists() {
        return local;
    }
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        let python = PathBuf::from(venv).join("bin/python");
        if python.exists() {
            return python;
        }
    }
    panic!("no project Python: run scripts/bootstrap.sh to create .venv");
}

/// 64-bit FNV-1a: a stable hash for cache keys.
fn fnv1a(bytes: &[u8], mut hash: u64) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The directory `target/fixtures/<name>` filled by `python <script> <dir> <args...>`.
///
/// The script runs only when the directory is missing or was made by a different script
/// content, content of the Python modules beside it, or arguments (the cache key is a hash of
/// them, kept in `<dir>/.cache-key`). It writes into a fresh temporary directory that is
/// renamed into place on success, so a failed or interrupted run never leaves a half-made
/// fixture behind.
pub fn cached_fixture(name: &str, script: &Path, args: &[&str]) -> PathBuf {
    let _guard = FIXTURE_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let source =
        std::fs::read(script).unwrap_or_else(|e| panic!("cannot read {}: {e}", script.display()));
    let mut hash = fnv1a(&source, 0xcbf2_9ce4_8422_2325);
    // the Python modules beside the script are imported by it
    let mut modules: Vec<PathBuf> = std::fs::read_dir(script.parent().expect("script directory"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    modules.retain(|p| p.extension().is_some_and(|x| x == "py") && p != script);
    modules.sort();
    for m in &modules {
        let bytes = std::fs::read(m).unwrap_or_else(|e| panic!("cannot read {}: {e}", m.display()));
        hash = fnv1a(&bytes, fnv1a(b"\0", hash));
    }
    for arg in args {
        hash = fnv1a(arg.as_bytes(), fnv1a(b"\0", hash));
    }
    let key = format!("{hash:016x}");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| repo_root().join("target"), PathBuf::from);
    let dir = target.join("fixtures").join(name);
    let key_file = dir.join(".cache-key");
    if std::fs::read_to_string(&key_file).is_ok_and(|k| k == key) {
        return dir;
    }
    let tmp = target
        .join("fixtures")
        .join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("create the fixture directory");
    let output = Command::new(python())
        .arg(script)
        .arg(&tmp)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    if !output.status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        panic!(
            "fixture script {} failed:\n{}{}",
            script.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    std::fs::write(tmp.join(".cache-key"), &key).expect("write the cache key");
    let _ = std::fs::remove_dir_all(&dir);
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another test binary made the same fixture at the same time; keep theirs if it matches.
        let _ = std::fs::remove_dir_all(&tmp);
        assert!(
            std::fs::read_to_string(&key_file).is_ok_and(|k| k == key),
            "cannot move the fixture into {}",
            dir.display()
        );
    }
    dir
}
