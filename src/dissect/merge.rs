//! Merging the statistics of shards: pass 1 when every pass-1 shard is complete, then pass 2
//! (and the results) when every pass-2 shard is complete too.

use super::finish::Finish;
use super::options::MergeOptions;
use super::passes::{Pass1, Pass2, Progress, Shard, levels_digest};
use super::settings::{Header, Part};
use super::source::Model;
use super::{Outcome, stats_paths};
use crate::stats::StatsFile;
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};

/// One shard's statistics file with its header.
struct ShardFile {
    path: PathBuf,
    shard: Shard,
    header: Header,
    file: StatsFile,
}

/// The header of a group of shard files as merged, checked to agree in everything but the shard
/// and to cover shards `0..N` once.
fn check_group(files: &[ShardFile]) -> Result<Header> {
    let first = &files[0];
    let merged = first.header.with_part(Part::Merged);
    for f in files {
        if f.shard.count != first.shard.count {
            bail!(
                "{} belongs to a run in {} shards but {} to one in {}; merge one run at a time",
                f.path.display(),
                f.shard.count,
                first.path.display(),
                first.shard.count
            );
        }
        Header::check(&f.file, &f.path, &merged.with_part(Part::Shard(f.shard)))?;
    }
    let count = first.shard.count;
    let mut seen = vec![false; count as usize];
    for f in files {
        if std::mem::replace(&mut seen[f.shard.index as usize], true) {
            bail!(
                "shard {} appears twice (again in {}); merge each shard once",
                f.shard,
                f.path.display()
            );
        }
    }
    let missing: Vec<String> = (0..count)
        .filter(|&i| !seen[i as usize])
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        bail!(
            "shards {} are missing; run them (gandissect dissect --shard i/{count}) before merging",
            missing.join(", ")
        );
    }
    Ok(merged)
}

fn check_complete(progress: Progress, shard: Shard, samples: u64, path: &Path) -> Result<()> {
    let want = shard.ids(samples).len() as i64;
    if progress.images != want {
        bail!(
            "shard {shard} is incomplete ({} of {want} images in {}); run it again to finish before merging",
            progress.images,
            path.display()
        );
    }
    Ok(())
}

/// Merges shard statistics: pass 1 when all pass-1 shards are complete, and pass 2 (then writing
/// the results) when all pass-2 shards are complete too.
pub fn merge(opts: &MergeOptions) -> Result<Outcome> {
    opts.validate()?;
    let first_dir = &opts.dirs[0];
    let out = opts.out_dir().unwrap_or(first_dir).to_path_buf();
    let device = opts.device;
    let mut found: Vec<(PathBuf, Shard, String)> = opts
        .dirs
        .iter()
        .flat_map(|d| stats_paths::shard_files(d))
        .collect();
    found.sort_by(|a, b| (a.2.as_str(), a.1.index).cmp(&(b.2.as_str(), b.1.index)));
    let load = |tag: &str| -> Result<Vec<ShardFile>> {
        found
            .iter()
            .filter(|f| f.2 == tag)
            .map(|(path, shard, _)| {
                let file = StatsFile::load_any(path)?;
                Ok(ShardFile {
                    path: path.clone(),
                    shard: *shard,
                    header: Header::from_file(&file, path)?,
                    file,
                })
            })
            .collect()
    };
    let p1 = load("pass1")?;
    if p1.is_empty() {
        bail!(
            "no shard statistics under {}/stats; run gandissect dissect --shard i/N --out DIR first",
            first_dir.display()
        );
    }
    let merged1_header = check_group(&p1)?;
    let common = &merged1_header.common;
    let names = &common.layers;
    let mut merged1: Option<Pass1> = None;
    for f in &p1 {
        let stats = Pass1::from_file(&f.file, names, device)?;
        check_complete(stats.progress, f.shard, common.samples, &f.path)?;
        match merged1.as_mut() {
            None => merged1 = Some(stats),
            Some(m) => m.merge(&stats)?,
        }
    }
    let pass1 = merged1.expect("at least one shard");
    pass1.save(
        &stats_paths::pass1_merged(&out),
        &merged1_header.to_json(),
        names,
    )?;

    let mut tags: Vec<&str> = found
        .iter()
        .map(|f| f.2.as_str())
        .filter(|t| t.starts_with("pass2-"))
        .collect();
    tags.dedup();
    let Some(&tag) = tags.first() else {
        return Ok(Outcome::Pass1Merged);
    };
    if tags.len() > 1 {
        bail!(
            "shard statistics of several quantile levels ({}) are present; merge one level at a time from separate directories",
            tags.join(", ")
        );
    }
    let p2 = load(tag)?;
    let merged2_header = check_group(&p2)?;
    let pass2 = merged2_header.pass2_settings(&p2[0].path)?;
    if merged2_header.common != *common {
        bail!(
            "the pass-2 shards in {} were run with other settings than the pass-1 shards; \
             delete the pass2 shard files and run the shards again",
            p2[0].path.display()
        );
    }
    let levels = pass1.levels(pass2.quantile)?;
    if pass2.levels != levels_digest(&levels)? {
        bail!(
            "the pass-2 shards were tallied at levels other than those of the merged pass 1; \
             delete the pass2 shard files and run the shards again"
        );
    }
    let mut merged2: Option<Pass2> = None;
    for f in &p2 {
        let stats = Pass2::from_file(&f.file, names, device)?;
        check_complete(stats.progress, f.shard, common.samples, &f.path)?;
        match merged2.as_mut() {
            None => merged2 = Some(stats),
            Some(m) => m.merge(&stats)?,
        }
    }
    let tallies = merged2.expect("at least one shard");
    if tallies
        .tallies
        .iter()
        .any(|t| t.num_labels() != pass2.labels.len() as i64)
    {
        bail!("the pass-2 tallies do not match their label list; the files are damaged");
    }
    tallies.save(
        &stats_paths::pass2_merged(&out, pass2.quantile),
        &merged2_header.to_json(),
        names,
    )?;
    if !matches!(common.images.as_str(), "latent stream" | "world seeds") {
        bail!(
            "these shards dissected images of their own ({}); merging is for latent or world-seed runs, \
             so run a dissection over an image folder in one piece",
            common.images
        );
    }
    let model = Model::load_sized(&common.model, common.stream, common.input_size, device)?;
    if common.weights != model.digest()? {
        bail!(
            "the model {} has changed since the shards ran (other weights); rerun the shards with it",
            common.model
        );
    }
    let finish = Finish {
        dir: &out,
        common,
        pass2,
        miniou: opts.miniou,
        report_images: opts.report_images,
        device,
    };
    Ok(Outcome::Finished(Box::new(
        finish.write(&model, &pass1, &tallies, &levels)?,
    )))
}
