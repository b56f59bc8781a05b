//! A mutation fuzzer for the readers of files from strangers: `.pth` checkpoints, mask images
//! and edit scripts. Inputs are the seed corpus in `fuzz/corpus/` (written by
//! `fuzz/make_corpus.py`) changed by a list of mutations that proptest draws (and shrinks to
//! the fewest that still fail). Raw byte mutations exercise the containers; structure-aware
//! ones edit one record of a checkpoint archive or one chunk of a PNG and repair the archive's
//! CRCs or the chunk's, so that the pickle reader and the image decoder see the changes too.
//!
//! Properties: every input ends in a value or an error, never a panic; a script's scenes never
//! claim one file twice nor one outside the output directory; and the whole run stays within
//! 1.5 GB of peak memory. Corpus files named `crash_*` are inputs that once failed; they must
//! now end in a clear error. Each target runs for `GANDISSECT_FUZZ_SECONDS` seconds (default 3;
//! `.ci/run` gives more) from the seed `GANDISSECT_FUZZ_SEED` (default: the clock, printed), and
//! a failing input is written to `target/fuzz-failures/` to be added to the corpus (as
//! `crash_<what>`).

mod common;

use gandissect::edit::script::{OutputPlan, parse_script};
use gandissect::imageio::mask_from_bytes;
use gandissect::nets::pth::PthFile;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use std::io::{Cursor, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// One change to an input.
#[derive(Clone, Debug)]
enum Mutation {
    /// Flip one bit.
    Flip(Index, u8),
    /// Overwrite one byte.
    Set(Index, u8),
    /// Write a boundary integer (0, 1, -1, the extremes of i32/u32/i64) little- or big-endian.
    Interesting(Index, usize, bool),
    /// Insert bytes.
    Insert(Index, Vec<u8>),
    /// Remove up to `n` bytes.
    Remove(Index, usize),
    /// Copy a run of the input elsewhere (repeats structure, such as opcodes).
    Duplicate(Index, Index, usize),
    /// Cut the input short.
    Truncate(Index),
}

const INTERESTING: [i64; 9] = [
    0,
    1,
    -1,
    0x7f,
    0xff,
    0x7fff_ffff,
    -0x8000_0000,
    0xffff_ffff,
    i64::MAX,
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::Set(i, v)),
        (any::<Index>(), 0..INTERESTING.len(), any::<bool>())
            .prop_map(|(i, k, big)| Mutation::Interesting(i, k, big)),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<Index>(), 1usize..64).prop_map(|(i, n)| Mutation::Remove(i, n)),
        (any::<Index>(), any::<Index>(), 1usize..64)
            .prop_map(|(a, b, n)| Mutation::Duplicate(a, b, n)),
        any::<Index>().prop_map(Mutation::Truncate),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..8)
}

/// Applies mutations in order.
fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len();
        let at = |i: &Index| if len == 0 { 0 } else { i.index(len) };
        match m {
            Mutation::Flip(i, bit) if len > 0 => bytes[at(i)] ^= 1 << bit,
            Mutation::Set(i, v) if len > 0 => bytes[at(i)] = *v,
            Mutation::Interesting(i, k, big) if len > 0 => {
                let v = INTERESTING[*k];
                let raw = if *big {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                };
                let start = at(i);
                let n = (len - start).min(if v.unsigned_abs() > u32::MAX as u64 {
                    8
                } else {
                    4
                });
                let src = if *big { &raw[8 - n..] } else { &raw[..n] };
                bytes[start..start + n].copy_from_slice(src);
            }
            Mutation::Insert(i, b) => {
                let start = if len == 0 { 0 } else { i.index(len + 1) };
                bytes.splice(start..start, b.iter().copied());
            }
            Mutation::Remove(i, n) if len > 0 => {
                let start = at(i);
                bytes.drain(start..(start + n).min(len));
            }
            Mutation::Duplicate(from, to, n) if len > 0 => {
                let start = at(from);
                let run: Vec<u8> = bytes[start..(start + n).min(len)].to_vec();
                let dest = at(to);
                bytes.splice(dest..dest, run);
            }
            Mutation::Truncate(i) if len > 0 => bytes.truncate(at(i)),
            _ => {}
        }
    }
    bytes
}

/// The corpus files of one target, in name order.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = common::repo_root().join("fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus in {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// Seconds each target runs.
fn budget() -> Duration {
    let secs = std::env::var("GANDISSECT_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(secs)
}

fn seed() -> u64 {
    std::env::var("GANDISSECT_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

/// Saves a failing input where it can be picked up for the corpus.
fn save_failure(target: &str, bytes: &[u8]) -> PathBuf {
    let dir = common::repo_root().join("target/fuzz-failures");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{target}-{}.bin", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Runs `check` on inputs drawn from `strategy` until the budget is spent; a failure is shrunk,
/// saved and reported. Returns the number of inputs tried.
fn fuzz<S: Strategy>(
    target: &str,
    strategy: S,
    input: impl Fn(&S::Value) -> Vec<u8>,
    check: impl Fn(&[u8]) -> Result<(), TestCaseError>,
) -> usize {
    let seed = seed();
    eprintln!("fuzz {target}: seed {seed} (GANDISSECT_FUZZ_SEED={seed} repeats it)");
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..8 + target.len().min(24)].copy_from_slice(&target.as_bytes()[..target.len().min(24)]);
    let config = Config {
        failure_persistence: None,
        max_shrink_time: 30_000,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key));
    let deadline = Instant::now() + budget();
    let mut tried = 0;
    while Instant::now() < deadline {
        let tree = strategy.new_tree(&mut runner).expect("an input");
        let outcome = runner.run_one(tree, |value| check(&input(&value)));
        if let Err(err) = outcome {
            let detail = match &err {
                proptest::test_runner::TestError::Fail(why, value) => {
                    let saved = save_failure(target, &input(value));
                    format!("{why}; minimal input saved to {}", saved.display())
                }
                other => other.to_string(),
            };
            panic!("fuzz {target}: {detail}");
        }
        tried += 1;
    }
    eprintln!("fuzz {target}: {tried} inputs");
    tried
}

/// Turns a panic or a wrong property into a test failure.
fn holds(ok: bool, why: impl Into<String>) -> Result<(), TestCaseError> {
    if ok {
        Ok(())
    } else {
        Err(TestCaseError::fail(why.into()))
    }
}

fn peak_rss_bytes() -> u64 {
    // SAFETY: an all-zero rusage is valid for getrusage to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: fills the local with this process's usage.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) }, 0);
    usage.ru_maxrss as u64 * 1024
}

fn assert_bounded_memory() {
    let peak = peak_rss_bytes();
    assert!(
        peak < 1_500_000_000,
        "peak resident memory {} MB",
        peak / 1_000_000
    );
}

// ---- checkpoints ----

/// The records of a zip archive, in order.
fn unzip(bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).ok()?;
    let mut records = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).ok()?;
        let mut data = Vec::new();
        entry.read_to_end(&mut data).ok()?;
        records.push((entry.name().to_string(), data));
    }
    Some(records)
}

/// A zip archive of `records`, stored (as torch.save writes), with fresh CRCs.
fn rezip(records: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored =
        zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in records {
        zip.start_file(name.as_str(), stored).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// How a checkpoint input is made: raw mutations of the file, or mutations of one record of
/// its archive (the archive rebuilt around it).
#[derive(Clone, Debug)]
enum PthInput {
    Raw(Index, Vec<Mutation>),
    Record(Index, Index, Vec<Mutation>),
}

fn pth_input(corpus: &[(String, Vec<u8>)], input: &PthInput) -> Vec<u8> {
    match input {
        PthInput::Raw(file, m) => mutate(file.get(corpus).1.clone(), m),
        PthInput::Record(file, record, m) => {
            let bytes = &file.get(corpus).1;
            match unzip(bytes) {
                Some(mut records) if !records.is_empty() => {
                    let r = record.index(records.len());
                    records[r].1 = mutate(std::mem::take(&mut records[r].1), m);
                    rezip(&records)
                }
                // a legacy file is a stream of pickles already: mutate it directly
                _ => mutate(bytes.clone(), m),
            }
        }
    }
}

#[test]
fn checkpoint_reader_survives_mutated_checkpoints() {
    let corpus = corpus("pth");
    // the seeds themselves read completely
    for (name, bytes) in &corpus {
        let mut file =
            PthFile::from_bytes(name, bytes.clone()).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        for i in 0..file.len() {
            let t = file
                .read(i)
                .unwrap_or_else(|e| panic!("{name} tensor {i}: {e:#}"));
            assert_eq!(t.size(), file.describe(i).2, "{name} tensor {i}");
        }
    }
    let strategy = prop_oneof![
        (any::<Index>(), mutations()).prop_map(|(f, m)| PthInput::Raw(f, m)),
        (any::<Index>(), any::<Index>(), mutations())
            .prop_map(|(f, r, m)| PthInput::Record(f, r, m)),
    ];
    let tried = fuzz(
        "pth",
        strategy,
        |input| pth_input(&corpus, input),
        |bytes| {
            if let Ok(mut file) = PthFile::from_bytes("fuzz.pth", bytes.to_vec()) {
                for i in 0..file.len() {
                    if let Ok(t) = file.read(i) {
                        let (_, kind, shape) = file.describe(i);
                        holds(
                            t.size() == shape && t.kind() == kind,
                            "a tensor reads as other than described",
                        )?;
                    }
                }
            }
            Ok(())
        },
    );
    assert!(tried > 0);
    assert_bounded_memory();
}

// ---- masks ----

/// A PNG's chunks: (type, data).
fn png_chunks(bytes: &[u8]) -> Option<Vec<([u8; 4], Vec<u8>)>> {
    let mut rest = bytes.strip_prefix(b"\x89PNG\r\n\x1a\n")?;
    let mut chunks = Vec::new();
    while rest.len() >= 12 {
        let len = u32::from_be_bytes(rest[..4].try_into().ok()?) as usize;
        let kind: [u8; 4] = rest[4..8].try_into().ok()?;
        let data = rest.get(8..8 + len)?.to_vec();
        chunks.push((kind, data));
        rest = &rest[12 + len..];
    }
    Some(chunks)
}

/// A PNG of `chunks`, each with its CRC recomputed.
fn png_of(chunks: &[([u8; 4], Vec<u8>)]) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in chunks {
        png.extend((data.len() as u32).to_be_bytes());
        png.extend(kind);
        png.extend(data);
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        png.extend(crc.sum().to_be_bytes());
    }
    png
}

#[derive(Clone, Debug)]
enum MaskInput {
    Raw(Index, Vec<Mutation>),
    /// Mutations of one chunk's data (the header's sizes and colour type among them); for
    /// the pixel data, of its inflated rows, compressed again.
    Chunk(Index, Index, Vec<Mutation>),
}

fn mask_input(corpus: &[(String, Vec<u8>)], input: &MaskInput) -> Vec<u8> {
    match input {
        MaskInput::Raw(file, m) => mutate(file.get(corpus).1.clone(), m),
        MaskInput::Chunk(file, chunk, m) => {
            let bytes = &file.get(corpus).1;
            let Some(mut chunks) = png_chunks(bytes).filter(|c| !c.is_empty()) else {
                return mutate(bytes.clone(), m);
            };
            let c = chunk.index(chunks.len());
            let data = std::mem::take(&mut chunks[c].1);
            chunks[c].1 = if &chunks[c].0 == b"IDAT" {
                let mut rows = Vec::new();
                let inflated = flate2::read::ZlibDecoder::new(&data[..]).read_to_end(&mut rows);
                if inflated.is_ok() {
                    let mut z =
                        flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                    z.write_all(&mutate(rows, m)).unwrap();
                    z.finish().unwrap()
                } else {
                    mutate(data, m)
                }
            } else {
                mutate(data, m)
            };
            png_of(&chunks)
        }
    }
}

#[test]
fn mask_reader_survives_mutated_masks() {
    let corpus = corpus("mask");
    for (name, bytes) in &corpus {
        let read = mask_from_bytes(bytes, name, 16, 16, true);
        if name.starts_with("crash_") {
            // an input that once crashed a decoder: now a clear error
            assert!(read.is_err(), "{name} reads");
        } else {
            let m = read.unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert_eq!(m.size(), [16, 16]);
        }
    }
    let strategy = prop_oneof![
        (any::<Index>(), mutations()).prop_map(|(f, m)| MaskInput::Raw(f, m)),
        (any::<Index>(), any::<Index>(), mutations())
            .prop_map(|(f, c, m)| MaskInput::Chunk(f, c, m)),
    ];
    let tried = fuzz(
        "mask",
        (strategy, any::<bool>()),
        |(input, _)| mask_input(&corpus, input),
        |bytes| {
            for stretch in [false, true] {
                if let Ok(m) = mask_from_bytes(bytes, "fuzz.png", 16, 16, stretch) {
                    let (lo, hi) = (m.min().double_value(&[]), m.max().double_value(&[]));
                    holds(
                        m.size() == [16, 16] && lo >= 0.0 && hi <= 1.0,
                        "a mask outside [0, 1] or of another size",
                    )?;
                }
            }
            Ok(())
        },
    );
    assert!(tried > 0);
    assert_bounded_memory();
}

// ---- scripts ----

/// Pieces that make script paths and lines interesting.
const SCRIPT_TOKENS: [&str; 14] = [
    "../",
    "/",
    "./",
    "\u{feff}",
    "-original",
    "-compare",
    ".png",
    ".json",
    "manifest",
    "\\",
    "\"",
    "\n",
    "sub/",
    "link/",
];

#[derive(Clone, Debug)]
struct ScriptInput {
    file: Index,
    tokens: Vec<(Index, usize)>,
    mutations: Vec<Mutation>,
}

fn script_input(corpus: &[(String, Vec<u8>)], input: &ScriptInput) -> Vec<u8> {
    let mut text = input.file.get(corpus).1.clone();
    for (at, token) in &input.tokens {
        let pos = at.index(text.len() + 1);
        text.splice(pos..pos, SCRIPT_TOKENS[*token].bytes());
    }
    mutate(text, &input.mutations)
}

#[test]
fn script_parser_never_lets_two_scenes_share_a_file_or_leave_the_output() {
    let corpus = corpus("script");
    let out = common::scratch("fuzz-script");
    std::fs::create_dir_all(out.join("sub")).unwrap();
    let outside = common::scratch("fuzz-script-outside");
    std::os::unix::fs::symlink(&*outside, out.join("link")).unwrap();
    let root = out.canonicalize().unwrap();
    let strategy = (
        any::<Index>(),
        prop::collection::vec((any::<Index>(), 0..SCRIPT_TOKENS.len()), 0..6),
        prop::collection::vec(mutation(), 0..6),
    )
        .prop_map(|(file, tokens, mutations)| ScriptInput {
            file,
            tokens,
            mutations,
        });
    let tried = fuzz(
        "script",
        strategy,
        |input| script_input(&corpus, input),
        |bytes| {
            let text = String::from_utf8_lossy(bytes);
            let mut plan = OutputPlan::new(&out).expect("a plan");
            let mut files = std::collections::HashSet::new();
            for (line, scene) in parse_script(&text) {
                let Ok(scene) = scene else { continue };
                let Ok(paths) = plan.claim_scene(&scene.out, line) else {
                    continue;
                };
                for f in paths.files() {
                    holds(
                        f.starts_with(&root),
                        format!("{} is outside the output", f.display()),
                    )?;
                    holds(
                        files.insert(f.to_path_buf()),
                        format!("{} is claimed twice", f.display()),
                    )?;
                    holds(
                        !f.ends_with("manifest.json") && !f.ends_with("manifest.jsonl")
                            || f.parent() != Some(root.as_path()),
                        "a scene claims a manifest",
                    )?;
                }
            }
            Ok(())
        },
    );
    assert!(tried > 0);
    assert_eq!(std::fs::read_dir(&*outside).unwrap().count(), 0);
    assert_bounded_memory();
}
