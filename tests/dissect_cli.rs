//! The `dissect` and `merge` commands end to end: bad input ends with one clear line
//! (clap adds a `--help` hint to arguments it cannot parse).

mod common;

use common::{gandissect, scratch};
use std::process::Output;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_dissect_and_merge_input_fails_with_one_line() {
    let dir = scratch("bad");
    let out = dir.join("out");
    let out_s = out.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "dissect",
                "--model",
                "random:0",
                "--layer",
                "layer99",
                "--segmenter",
                "truth",
                "--out",
                out_s,
            ],
            "unknown layer 'layer99'",
        ),
        (
            &[
                "dissect",
                "--model",
                "random:0",
                "--layer",
                "layer4",
                "--samples",
                "0",
                "--out",
                out_s,
            ],
            "--samples must be at least 1",
        ),
        (
            &[
                "dissect", "--model", "random:0", "--layer", "layer4", "--shard", "4/4", "--out",
                out_s,
            ],
            "cannot read shard '4/4'",
        ),
        (&["merge", out_s], "no shard statistics"),
    ];
    for (args, want) in cases {
        let o = gandissect(args);
        let err = stderr(&o);
        // 1 for refused input, 2 for arguments clap cannot parse.
        assert!(matches!(o.status.code(), Some(1 | 2)), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        let lines = err.lines().filter(|l| !l.trim().is_empty()).count();
        assert!(lines <= 2, "{args:?}: {err}");
    }
    assert!(!out.join("dissect.json").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
