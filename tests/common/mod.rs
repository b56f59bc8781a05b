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

/// Checks that the shipped models are where the library looks for them. They are part of the
/// repository, so a missing one is a failure, never a reason to skip.
pub fn require_shipped_models() {
    let home = gandissect::zoo::home();
    for card in [
        "models/world-proggan/model.json",
        "models/world-vgg16/model.json",
        "segmenters/world-seg/segmenter.json",
    ] {
        assert!(
            home.join(card).exists(),
            "{} is missing: the shipped models belong to the repository",
            home.join(card).display()
        );
    }
}

/// Images the shared dissection of the shipped generator covers (the painting default).
pub const SHIPPED_DISSECTION_SAMPLES: u64 = gandissect::edit::units_source::DEFAULT_CACHE_SAMPLES;

/// The cache of dissections that painting sessions on the shipped generator use, shared by
/// every test binary of one build: a scratch directory under the target directory's `tmp/`,
/// keyed by the build of the binary (size and modification time), so that a rebuilt library
/// dissects again. Caches of other builds are removed.
pub fn shipped_dissection_cache() -> PathBuf {
    let binary = std::fs::metadata(env!("CARGO_BIN_EXE_gandissect")).expect("the binary exists");
    let modified = binary
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let key = fnv1a(
        format!("{}:{modified}", binary.len()).as_bytes(),
        0xcbf2_9ce4_8422_2325,
    );
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let name = format!("shipped-dissections-{key:016x}");
    if let Ok(entries) = std::fs::read_dir(&root) {
        for e in entries.flatten() {
            let other = e.file_name().to_string_lossy().into_owned();
            if other.starts_with("shipped-dissections-") && other != name {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    root.join(name)
}

/// A painting session on the shipped generator with units inserted at quantile `q`, its
/// dissection taken from (or run once into) [`shipped_dissection_cache`].
pub fn shipped_session(q: f64) -> gandissect::edit::Session {
    require_shipped_models();
    let mut o = gandissect::edit::SessionOptions::new("world-proggan");
    o.value_quantile = q;
    o.dissection.cache_root = shipped_dissection_cache();
    o.dissection.samples = SHIPPED_DISSECTION_SAMPLES;
    gandissect::edit::Session::open(&o).expect("a session on the shipped generator")
}

/// The dissection of the shipped generator's layer4 that [`shipped_session`] uses.
pub fn shipped_dissection() -> gandissect::dissect::DissectResult {
    let s = shipped_session(gandissect::edit::plan::DEFAULT_VALUE_QUANTILE);
    let dir = gandissect::edit::units_source::cache_dir(
        &s.options.dissection.cache_root,
        &s.options.model,
        &s.weights_digest,
        &s.catalog.layer,
        &s.options.segmenter,
        s.options.dissection.samples,
    );
    gandissect::dissect::DissectResult::load(&dir).expect("the shared dissection")
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

/// Debian's Chromium for the browser tests (`$CHROMIUM`, else `/usr/bin/chromium`), which
/// `scripts/test.sh` installs when missing: its absence is a failure, never a reason to skip.
pub fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.is_file(),
        "no Chromium at {}: install Debian's chromium (scripts/test.sh does) or set CHROMIUM",
        path.display()
    );
    path
}

/// A random 16×16 generator (layer2: 8 units at 4×4, layer4: 8 units at 8×8) from `seed`, saved
/// as `dir/file`; returns its path.
pub fn tiny_generator(dir: &Path, file: &str, seed: i64) -> String {
    use gandissect::nets::proggan::ProGan;
    let g = ProGan::random(&[16, 8, 8, 4], seed, tch::Device::Cpu).unwrap();
    let path = dir.join(file);
    tch::Tensor::write_safetensors(&g.named_tensors(), &path).unwrap();
    path.to_string_lossy().into_owned()
}

/// A random world segmenter (the shipped geometry's labels) saved as the segmenter directory
/// `dir/seg`; `labels` overrides the listed label count. Returns its path.
pub fn tiny_segmenter(dir: &Path, labels: Option<usize>) -> String {
    use gandissect::segment::worldseg::WorldSegNet;
    use gandissect::segment::{SegmenterCard, world_labels};
    tch::manual_seed(7);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let all = world_labels();
    let net = WorldSegNet::trainable(&vs.root(), 4, all.len() as i64);
    let seg_dir = dir.join("seg");
    std::fs::create_dir_all(&seg_dir).unwrap();
    tch::Tensor::write_safetensors(&net.named_tensors(), seg_dir.join("w.safetensors")).unwrap();
    let card = SegmenterCard {
        architecture: "world-seg".into(),
        weights: "w.safetensors".into(),
        labels: all[..labels.unwrap_or(all.len())].to_vec(),
        input_size: None,
        rest: Default::default(),
    };
    std::fs::write(
        seg_dir.join("segmenter.json"),
        serde_json::to_string(&card).unwrap(),
    )
    .unwrap();
    seg_dir.to_string_lossy().into_owned()
}
