//! Where a dissection keeps its statistics under `DIR/stats/`.
//!
//! - `pass1.shard-I-of-N.safetensors`: pass-1 statistics of shard I (resumable);
//! - `pass1.safetensors`: pass 1 merged over all shards (the levels come from here);
//! - `pass2-qQ.shard-I-of-N.safetensors`: pass-2 tallies of shard I at quantile Q;
//! - `pass2-qQ.safetensors`: pass 2 merged.

use super::passes::Shard;
use std::path::{Path, PathBuf};

/// The statistics directory of an output directory.
pub fn stats_dir(dir: &Path) -> PathBuf {
    dir.join("stats")
}

/// The lock a run of one shard holds while it works.
pub fn lock(dir: &Path, shard: Shard) -> PathBuf {
    stats_dir(dir).join(format!("shard-{}-of-{}.lock", shard.index, shard.count))
}

/// Pass-1 statistics of one shard.
pub fn pass1_shard(dir: &Path, shard: Shard) -> PathBuf {
    stats_dir(dir).join(format!(
        "pass1.shard-{}-of-{}.safetensors",
        shard.index, shard.count
    ))
}

/// Merged pass-1 statistics.
pub fn pass1_merged(dir: &Path) -> PathBuf {
    stats_dir(dir).join("pass1.safetensors")
}

fn q_tag(q: f64) -> String {
    format!("q{q}")
}

/// Pass-2 tallies of one shard at quantile `q`.
pub fn pass2_shard(dir: &Path, q: f64, shard: Shard) -> PathBuf {
    stats_dir(dir).join(format!(
        "pass2-{}.shard-{}-of-{}.safetensors",
        q_tag(q),
        shard.index,
        shard.count
    ))
}

/// Merged pass-2 tallies at quantile `q`.
pub fn pass2_merged(dir: &Path, q: f64) -> PathBuf {
    stats_dir(dir).join(format!("pass2-{}.safetensors", q_tag(q)))
}

/// Shard files of a pass in `dir`: `(path, shard, tag)` where `tag` is `pass1` or `pass2-qQ`.
pub fn shard_files(dir: &Path) -> Vec<(PathBuf, Shard, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(stats_dir(dir)) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".safetensors") else {
            continue;
        };
        let Some((tag, shard)) = stem.split_once(".shard-") else {
            continue;
        };
        let Some((i, n)) = shard.split_once("-of-") else {
            continue;
        };
        if let (Ok(index), Ok(count)) = (i.parse(), n.parse())
            && index < count
        {
            out.push((e.path(), Shard { index, count }, tag.to_string()));
        }
    }
    out.sort_by(|a, b| (a.2.as_str(), a.1.index).cmp(&(b.2.as_str(), b.1.index)));
    out
}
