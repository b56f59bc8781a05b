//! `gandissect generate` end to end, and its answers to bad input.

mod common;

use common::{gandissect, scratch};
use std::path::Path;
use std::process::Output;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn pngs(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn writes_one_png_per_id_and_a_grid_reproducibly() {
    let dir = scratch("gen");
    let a = dir.join("a");
    let o = gandissect(&[
        "generate",
        "--model",
        "random:3",
        "--seeds",
        "0..3,9",
        "--grid",
        "2",
        "--out",
        a.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        pngs(&a),
        [
            "000000.png",
            "000001.png",
            "000002.png",
            "000009.png",
            "grid.png"
        ]
    );
    let img = image::open(a.join("000009.png")).unwrap();
    assert_eq!((img.width(), img.height()), (64, 64));
    let grid = image::open(a.join("grid.png")).unwrap();
    assert_eq!((grid.width(), grid.height()), (2 + 2 * 66, 2 + 2 * 66));
    // the same command gives the same bytes
    let b = dir.join("b");
    let o = gandissect(&[
        "generate",
        "--model",
        "random:3",
        "--seeds",
        "0..3,9",
        "--out",
        b.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let same = std::fs::read(a.join("000009.png")).unwrap()
        == std::fs::read(b.join("000009.png")).unwrap();
    assert!(same, "image 9 differs between runs");
    // the same id alone in a batch of one gives the same image up to float rounding (±1 level)
    let c = dir.join("c1");
    let o = gandissect(&[
        "generate",
        "--model",
        "random:3",
        "--seeds",
        "9",
        "--batch",
        "1",
        "--out",
        c.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let x = image::open(a.join("000009.png")).unwrap().to_rgb8();
    let y = image::open(c.join("000009.png")).unwrap().to_rgb8();
    let max_diff = x
        .as_raw()
        .iter()
        .zip(y.as_raw())
        .map(|(p, q)| p.abs_diff(*q))
        .max()
        .unwrap();
    assert!(
        max_diff <= 1,
        "image 9 differs by {max_diff} levels between batch layouts"
    );
    // another model seed gives other images
    let c = dir.join("c");
    let o = gandissect(&[
        "generate",
        "--model",
        "random:4",
        "--seeds",
        "9",
        "--out",
        c.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    assert_ne!(
        std::fs::read(a.join("000009.png")).unwrap(),
        std::fs::read(c.join("000009.png")).unwrap()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_gives_one_line_errors_and_no_output() {
    let dir = scratch("bad");
    let out = dir.join("out");
    let out_s = out.to_str().unwrap();
    let junk = dir.join("junk.pth");
    std::fs::write(&junk, vec![7u8; 1000]).unwrap();
    let junk_st = dir.join("junk.safetensors");
    std::fs::write(&junk_st, b"\x10\0\0\0\0\0\0\0{not json at all").unwrap();
    let missing = dir.join("missing.pth");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--model", missing.to_str().unwrap()], "unknown model"),
        (vec!["--model", junk_st.to_str().unwrap()], "corrupted"),
        (vec!["--model", junk.to_str().unwrap()], "junk.pth"),
        (
            vec!["--model", "random", "--seeds", "x..y"],
            "cannot read 'x..y' as ids",
        ),
        (
            vec!["--model", "random", "--device", "tpu"],
            "unknown device 'tpu'",
        ),
        (
            vec!["--model", "random", "--z", "nothere.npy"],
            "does not exist",
        ),
    ];
    for (args, expect) in cases {
        let mut full = vec!["generate", "--out", out_s];
        full.extend(args.iter());
        let o = gandissect(&full);
        let err = stderr(&o);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(err.contains(expect), "{args:?}: {err}");
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{args:?}: not one line: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(!out.exists(), "{args:?} left output behind");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn latents_can_come_from_a_file() {
    let dir = scratch("z");
    let z = tch::Tensor::randn([2, 128], (tch::Kind::Float, tch::Device::Cpu));
    let file = dir.join("z.npy");
    z.write_npy(&file).unwrap();
    let out = dir.join("out");
    let o = gandissect(&[
        "generate",
        "--model",
        "random",
        "--z",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(pngs(&out), ["z000000.png", "z000001.png"]);
    let wrong = dir.join("wrong.npy");
    tch::Tensor::zeros([2, 7], (tch::Kind::Float, tch::Device::Cpu))
        .write_npy(&wrong)
        .unwrap();
    let o = gandissect(&[
        "generate",
        "--model",
        "random",
        "--z",
        wrong.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(stderr(&o).contains("needs [N, 128]"), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}
