//! Files from strangers, made hostile on purpose: every crafted input is built here as readable
//! code (pickle opcodes written out, archives made with the zip crate, PNG chunks written by
//! hand), given to the binary as a child process, and must end in a clear error (or, where the
//! input is merely unusual, a result) within bounded memory: the child's own peak resident
//! memory, from `wait4`, stays under 1.5 GB.

mod common;

use common::{Scratch, scratch, tiny_generator, tiny_segmenter};
use gandissect::dissect::{DissectOptions, Outcome, Shard, Sketch, run};
use gandissect::nets::proggan::ProGan;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tch::{Device, Kind, Tensor};

/// Peak resident memory a hostile input may cost the binary.
const MEMORY_LIMIT: u64 = 1_500_000_000;

/// What a run of the binary did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    /// The child's peak resident memory in bytes.
    peak_rss: u64,
}

impl Run {
    /// Asserts a failure whose message contains every phrase, within the memory limit.
    fn refused(&self, phrases: &[&str]) {
        assert_eq!(self.code, Some(1), "expected a refusal:\n{}", self.stderr);
        for p in phrases {
            assert!(
                self.stderr.contains(p),
                "'{p}' missing from: {}",
                self.stderr
            );
        }
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        self.bounded();
    }

    fn bounded(&self) {
        assert!(
            self.peak_rss < MEMORY_LIMIT,
            "peak resident memory {} MB",
            self.peak_rss / 1_000_000
        );
    }
}

/// Runs the binary with `args` and collects its output and its own resource usage (`wait4` on
/// its pid, so tests running in parallel do not mix their numbers). A run still going after
/// five minutes is killed, so a hang fails the test instead of stalling the suite.
// the child is reaped by wait4 below, not by `Child::wait`, so that its own rusage comes back
#[allow(clippy::zombie_processes)]
fn gandissect(args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gandissect"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let pid = child.id() as libc::pid_t;
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            for _ in 0..3000 {
                if done.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            // SAFETY: the child has not been reaped (done is false), so the pid is still ours.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        })
    };
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, writing into the two locals.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    done.store(true, Ordering::SeqCst);
    watchdog.join().unwrap();
    assert_eq!(rc, pid, "wait4 failed");
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    // the numbers docs/reliability.md quotes (`-- --nocapture` shows them)
    eprintln!(
        "{:?}: exit {code:?}, peak resident memory {} MB",
        args.first().copied().unwrap_or(""),
        usage.ru_maxrss / 1024
    );
    Run {
        code,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        // ru_maxrss is in kilobytes on Linux
        peak_rss: usage.ru_maxrss as u64 * 1024,
    }
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

// ---- pickles, written opcode by opcode ----

/// A pickle (protocol 2) written opcode by opcode.
#[derive(Default)]
struct Pickle(Vec<u8>);

impl Pickle {
    fn new() -> Self {
        Pickle(vec![0x80, 2]) // PROTO 2
    }
    fn op(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(bytes);
        self
    }
    /// BINUNICODE: a string.
    fn str(&mut self, s: &str) -> &mut Self {
        self.op(b"X")
            .op(&(s.len() as u32).to_le_bytes())
            .op(s.as_bytes())
    }
    /// BININT: a signed 32-bit int.
    fn int(&mut self, v: i32) -> &mut Self {
        self.op(b"J").op(&v.to_le_bytes())
    }
    /// GLOBAL module.name
    fn global(&mut self, module: &str, name: &str) -> &mut Self {
        self.op(b"c")
            .op(module.as_bytes())
            .op(b"\n")
            .op(name.as_bytes())
            .op(b"\n")
    }
    /// MARK ints TUPLE
    fn int_tuple(&mut self, values: &[i32]) -> &mut Self {
        self.op(b"(");
        for &v in values {
            self.int(v);
        }
        self.op(b"t")
    }
    /// `_rebuild_tensor_v2(storage, offset, size, stride, False)` for a float storage `key` of
    /// `numel` elements, as torch.save writes a tensor.
    fn tensor(
        &mut self,
        key: &str,
        numel: i32,
        offset: i32,
        size: &[i32],
        stride: &[i32],
    ) -> &mut Self {
        self.global("torch._utils", "_rebuild_tensor_v2").op(b"(");
        // the persistent id ('storage', FloatStorage, key, 'cpu', numel), then BINPERSID
        self.op(b"(").str("storage").global("torch", "FloatStorage");
        self.str(key).str("cpu").int(numel).op(b"t").op(b"Q");
        self.int(offset).int_tuple(size).int_tuple(stride);
        self.op(b"\x89") // NEWFALSE: requires_grad
            .op(b"t") // the argument tuple
            .op(b"R") // REDUCE: call the rebuild function
    }
    /// STOP
    fn stop(&mut self) -> Vec<u8> {
        self.op(b".");
        std::mem::take(&mut self.0)
    }
}

/// A `torch.save` zip archive: `archive/data.pkl` and `archive/data/<key>` records.
fn pth_zip(path: &Path, pickle: &[u8], records: &[(&str, &[u8])]) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let stored =
        zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("archive/data.pkl", stored).unwrap();
    zip.write_all(pickle).unwrap();
    for (key, bytes) in records {
        zip.start_file(format!("archive/data/{key}"), stored)
            .unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

fn generate_with(model: &Path, out: &Path) -> Run {
    gandissect(&[
        "generate",
        "--model",
        p(model),
        "--seeds",
        "0",
        "--out",
        p(out),
    ])
}

#[test]
fn a_deeply_nested_pickle_is_refused_without_overflowing_the_stack() {
    let dir = scratch("hostile-nested");
    // an empty tuple wrapped in a million one-element tuples: about 1 MB of pickle
    let mut pickle = Pickle::new();
    pickle.op(b")"); // EMPTY_TUPLE
    for _ in 0..1_000_000 {
        pickle.op(b"\x85"); // TUPLE1
    }
    let file = dir.join("nested.pth");
    pth_zip(&file, &pickle.stop(), &[]);
    generate_with(&file, &dir.join("out")).refused(&["nested.pth", "more than 64 deep"]);
}

#[test]
fn lists_reused_through_the_memo_cannot_multiply_the_work() {
    let dir = scratch("hostile-memo");
    // L0 = [tensor]; L(i) = [L(i-1), L(i-1)] for 64 levels: 2^64 paths to one tensor, < 1 KB
    // (the lists stay on the stack, inside one MARK … TUPLE)
    let mut pickle = Pickle::new();
    pickle.op(b"(").op(b"]").op(b"q\x00"); // MARK, EMPTY_LIST, BINPUT 0
    pickle.tensor("0", 1, 0, &[1], &[1]).op(b"a"); // APPEND
    for level in 1..=64u8 {
        pickle.op(b"]").op(b"(");
        pickle.op(&[b'h', level - 1]).op(&[b'h', level - 1]); // BINGET twice
        pickle.op(b"e").op(&[b'q', level]); // APPENDS, BINPUT
    }
    pickle.op(b"t"); // TUPLE of all the lists
    let bytes = pickle.stop();
    assert!(bytes.len() < 1024);
    let file = dir.join("memo.pth");
    pth_zip(&file, &bytes, &[("0", &1f32.to_le_bytes())]);
    generate_with(&file, &dir.join("out")).refused(&["memo.pth", "reuses its dicts and lists"]);
}

#[test]
fn a_view_claiming_gigabytes_from_four_bytes_is_refused_before_allocation() {
    let dir = scratch("hostile-stride0");
    // {'layer1.conv.weight': 805 306 368 floats (3.2 GB) of stride 0 over one stored float}
    let mut pickle = Pickle::new();
    pickle.op(b"}").str("layer1.conv.weight");
    pickle.tensor("0", 1, 0, &[805_306_368], &[0]).op(b"s"); // SETITEM
    let file = dir.join("stride0.pth");
    pth_zip(&file, &pickle.stop(), &[("0", &1f32.to_le_bytes())]);
    assert!(std::fs::metadata(&file).unwrap().len() < 1024);
    generate_with(&file, &dir.join("out")).refused(&["stride0.pth", "repeats its storage"]);
}

#[test]
fn a_storage_record_that_inflates_to_gigabytes_is_not_inflated() {
    let dir = scratch("hostile-zipbomb");
    // a whole 8→4→4 ProGAN whose every tensor reads the start of one record, deflated from
    // 2.5 GiB of zeros
    let expected = ProGan::expected_tensors(&[8, 4, 4]);
    let mut pickle = Pickle::new();
    pickle.op(b"}");
    for (name, shape) in &expected {
        let size: Vec<i32> = shape.iter().map(|&d| d as i32).collect();
        let mut stride = vec![1i32; size.len()];
        for d in (0..size.len().saturating_sub(1)).rev() {
            stride[d] = stride[d + 1] * size[d + 1];
        }
        pickle
            .str(name)
            .tensor("0", 1 << 29, 0, &size, &stride)
            .op(b"s");
    }
    let file = dir.join("bomb.pth");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&file).unwrap());
    let stored =
        zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("archive/data.pkl", stored).unwrap();
    zip.write_all(&pickle.stop()).unwrap();
    let deflated = zip::write::FileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1));
    zip.start_file("archive/data/0", deflated).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..2560 {
        zip.write_all(&zeros).unwrap();
    }
    zip.finish().unwrap();
    assert!(std::fs::metadata(&file).unwrap().len() < 16 << 20);
    generate_with(&file, &dir.join("out"))
        .refused(&["bomb.pth", "claims to inflate to 2684354560 bytes"]);
}

#[test]
fn weights_of_other_dtypes_are_converted_with_a_note_or_refused() {
    let dir = scratch("hostile-dtypes");
    let g = ProGan::random(&[8, 4, 4], 0, Device::Cpu).unwrap();
    let cast = |kind: Kind| -> Vec<(String, Tensor)> {
        g.named_tensors()
            .into_iter()
            .map(|(n, t)| (n, t.to_kind(kind)))
            .collect()
    };
    let half = dir.join("half.safetensors");
    Tensor::write_safetensors(&cast(Kind::Half), &half).unwrap();
    let run = generate_with(&half, &dir.join("out-half"));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("are converted to float32"),
        "{}",
        run.stderr
    );
    let ints = dir.join("ints.safetensors");
    Tensor::write_safetensors(&cast(Kind::Int64), &ints).unwrap();
    generate_with(&ints, &dir.join("out-int")).refused(&["stored as Int64", "floating-point"]);
}

#[test]
fn impossible_sizes_are_refused_up_front() {
    let dir = scratch("hostile-sizes");
    let out = dir.join("out");
    let run = gandissect(&[
        "dissect",
        "--model",
        "random:0",
        "--layer",
        "layer4",
        "--samples",
        "18446744073709551615",
        "--out",
        p(&out),
    ]);
    run.refused(&["--samples 18446744073709551615 is more than a dissection can hold"]);
    let run = gandissect(&[
        "generate",
        "--model",
        "random:0",
        "--seeds",
        "0..18446744073709551615",
        "--out",
        p(&out),
    ]);
    run.refused(&["beyond the largest id"]);
    for (flag, phrase) in [
        ("--grid", "--grid must be at least 1"),
        ("--batch", "--batch must be at least 1"),
    ] {
        let run = gandissect(&[
            "generate",
            "--model",
            "random:0",
            "--seeds",
            "0..2",
            flag,
            "0",
            "--out",
            p(&out),
        ]);
        run.refused(&[phrase]);
    }
}

// ---- masks, pictures and batch scripts on a tiny generator ----

/// A PNG chunk: length, type, data, CRC.
fn png_chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    png.extend((data.len() as u32).to_be_bytes());
    png.extend(&body);
    let mut crc = flate2::Crc::new();
    crc.update(&body);
    png.extend(crc.sum().to_be_bytes());
}

/// A `side` × `side` black 8-bit grayscale PNG, written chunk by chunk: its pixel data is a
/// zlib stream of rows (a filter byte, then `side` zeros), so a large side compresses to little.
fn black_png(side: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = side.to_be_bytes().to_vec();
    ihdr.extend(side.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]); // 8-bit, grayscale, deflate, adaptive filters, no interlace
    png_chunk(&mut png, b"IHDR", &ihdr);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let row = vec![0u8; side as usize + 1];
    for _ in 0..side {
        z.write_all(&row).unwrap();
    }
    png_chunk(&mut png, b"IDAT", &z.finish().unwrap());
    png_chunk(&mut png, b"IEND", &[]);
    png
}

/// A random 16×16 generator, a random world segmenter and a 12-image dissection of them.
struct Painting {
    dir: Scratch,
    args: Vec<String>,
}

fn painting(name: &str) -> Painting {
    let dir = scratch(name);
    let model = tiny_generator(&dir, "g.safetensors", 1);
    let seg = tiny_segmenter(&dir, None);
    let dissection = dir.join("dissection");
    let mut o = DissectOptions::new(&model, &["layer4"], &seg, 12, &dissection);
    o.seg_size = 16;
    o.batch = 8;
    o.topk = 4;
    o.miniou = 0.0;
    o.report_images = 1;
    o.shard = Shard::default();
    o.sketch = Sketch {
        resolution: 1 << 14,
        sample_floor: None,
    };
    assert!(matches!(run(&o).unwrap(), Outcome::Finished(_)));
    let mut left = image::GrayImage::new(16, 16);
    for y in 0..16 {
        for x in 0..8 {
            left.put_pixel(x, y, image::Luma([255]));
        }
    }
    left.save(dir.join("left.png")).unwrap();
    let args = [
        "--model",
        &model,
        "--segmenter",
        &seg,
        "--dissection",
        p(&dissection),
        "--units",
        "0,1",
    ]
    .map(String::from)
    .to_vec();
    Painting { dir, args }
}

impl Painting {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn run(&self, head: &[&str]) -> Run {
        let mut args: Vec<&str> = head.to_vec();
        args.extend(self.args.iter().map(String::as_str));
        gandissect(&args)
    }

    fn edit_with_mask(&self, mask: &Path) -> Run {
        let out = self.path("edit/e.png");
        self.run(&[
            "edit",
            "--remove",
            "tree",
            "--mask",
            p(mask),
            "--out",
            p(&out),
        ])
    }

    fn batch(&self, script: &str, out: &Path) -> Run {
        let file = self.path("script.jsonl");
        std::fs::write(&file, script).unwrap();
        self.run(&["batch", p(&file), "--out", p(out), "--json"])
    }
}

#[test]
fn masks_too_large_for_their_use_fifos_and_devices_are_refused() {
    let f = painting("hostile-masks");
    // 20000 × 20000 pixels (400 MB decoded) in a few hundred kilobytes
    let big = f.path("big.png");
    std::fs::write(&big, black_png(20_000)).unwrap();
    assert!(std::fs::metadata(&big).unwrap().len() < 1 << 20);
    f.edit_with_mask(&big)
        .refused(&["big.png is 20000×20000 pixels", "scale it down"]);
    let fifo = f.path("fifo.png");
    let c = std::ffi::CString::new(p(&fifo)).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    f.edit_with_mask(&fifo).refused(&["fifo.png is a FIFO"]);
    f.edit_with_mask(Path::new("/dev/zero"))
        .refused(&["/dev/zero is a device"]);
    // a mask at the image's size still paints
    let run = f.edit_with_mask(&f.path("left.png"));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
}

fn line(seed: u64, out: &str) -> String {
    format!(
        r#"{{"seed": {seed}, "edits": [{{"op": "remove", "concept": "tree", "mask": "left.png"}}], "out": "{out}"}}"#
    )
}

fn summary(run: &Run) -> serde_json::Value {
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    run.bounded();
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

fn failures(s: &serde_json::Value) -> Vec<(u64, String)> {
    s["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["line"].as_u64().unwrap(),
                f["error"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn batch_outputs_never_collide_escape_or_go_stale() {
    let f = painting("hostile-batch");
    let out = f.path("out");
    let outside = f.path("outside");
    std::fs::create_dir_all(out.join("sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, out.join("link")).unwrap();
    std::os::unix::fs::symlink(out.join("sub"), out.join("alias")).unwrap();
    // a temporary file left by a writer killed before its rename
    let stale = out.join("a.png.99999999.tmp");
    std::fs::write(&stale, b"half a picture").unwrap();
    let script = [
        line(1, "a.png"),
        line(2, "a-original.png"), // another scene's original
        line(3, "manifest.png"),   // its record would be the manifest
        line(4, "link/x.png"),     // through a link to outside --out
        line(5, "sub/s.png"),
        line(6, "alias/s.png"), // the same file as line 5's, through a link inside --out
    ]
    .join("\n");
    // a byte-order mark, as some editors write
    let s = summary(&f.batch(&format!("\u{feff}{script}"), &out));
    let failed = failures(&s);
    let lines: Vec<u64> = failed.iter().map(|f| f.0).collect();
    assert_eq!(lines, [2, 3, 4, 6], "{failed:?}");
    assert!(
        failed[0].1.contains("-original picture of line 1's scene"),
        "{failed:?}"
    );
    assert!(
        failed[1].1.contains("the batch's manifest.json"),
        "{failed:?}"
    );
    assert!(
        failed[2].1.contains("outside the output directory"),
        "{failed:?}"
    );
    assert!(
        failed[3].1.contains("already written by line 5"),
        "{failed:?}"
    );
    assert_eq!(s["painted"], 2);
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "a file was written outside --out"
    );
    assert!(!stale.exists(), "the stale temporary file is still there");
    // a changed line is painted again, with a note; an unchanged one is done
    let before = std::fs::read(out.join("a.png")).unwrap();
    let s = summary(&f.batch(&[line(9, "a.png"), line(5, "sub/s.png")].join("\n"), &out));
    assert_eq!(
        (s["painted"].as_u64(), s["already_done"].as_u64()),
        (Some(1), Some(1))
    );
    let warnings = s["warnings"].to_string();
    assert!(
        warnings.contains("another version of this line"),
        "{warnings}"
    );
    assert_ne!(std::fs::read(out.join("a.png")).unwrap(), before);
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("a.json")).unwrap()).unwrap();
    assert_eq!(record["seed"], 9);
}

#[test]
fn damaged_statistics_are_refused_with_the_fix() {
    let f = painting("hostile-stats");
    let stats = f.path("dissection/stats");
    let file = std::fs::read_dir(&stats)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .expect("a statistics file");
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40; // one bit of the last tensor
    std::fs::write(&file, bytes).unwrap();
    let err = gandissect::stats::StatsFile::load_any(&file)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("does not match its checksum") && err.contains("delete it"),
        "{err}"
    );
}

#[test]
fn json_files_of_a_model_or_a_dissection_that_are_fifos_or_devices_are_refused() {
    let dir = scratch("hostile-json");
    // a model directory whose card is a FIFO with no writer: reading it must not wait forever
    let model = dir.join("model");
    std::fs::create_dir_all(&model).unwrap();
    let c = std::ffi::CString::new(p(&model.join("model.json"))).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    gandissect(&[
        "generate",
        "--model",
        p(&model),
        "--seeds",
        "0",
        "--out",
        p(&dir.join("gen")),
    ])
    .refused(&["model.json is a FIFO"]);
    // a dissection whose summary is an endless device
    let dissection = dir.join("dissection");
    std::fs::create_dir_all(&dissection).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dissection.join("dissect.json")).unwrap();
    let Err(err) = gandissect::dissect::DissectResult::load(&dissection) else {
        panic!("a device is no dissection");
    };
    assert!(format!("{err:#}").contains("is a device"), "{err:#}");
}
