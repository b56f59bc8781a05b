//! Where an installed binary finds its models: `--models-dir`, then `$GANDISSECT_HOME`, then the
//! user's data directory when it holds models, then the source checkout.

mod common;

use common::{repo_root, scratch};
use std::path::Path;
use std::process::{Command, Output};

/// Runs the binary with `home` as `$HOME`, no `$XDG_DATA_HOME`, and `$GANDISSECT_HOME` set to
/// `models_home` when given.
fn run(home: &Path, models_home: Option<&Path>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gandissect"));
    c.args(args)
        .env("HOME", home)
        .env_remove("XDG_DATA_HOME")
        .env_remove("GANDISSECT_HOME");
    if let Some(m) = models_home {
        c.env("GANDISSECT_HOME", m);
    }
    c.output().expect("the binary runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The line of `gandissect models` marked as the directory in use.
fn in_use(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    out.lines()
        .find(|l| l.trim_start().starts_with('→'))
        .unwrap_or_else(|| panic!("no directory marked in use:\n{out}"))
        .to_string()
}

#[test]
fn models_are_found_in_the_documented_places_in_order() {
    let dir = scratch("models-dir");
    let home = dir.join("home");
    let data = home.join(".local/share/gandissect");
    std::fs::create_dir_all(&home).unwrap();

    // nothing installed for the user: the source checkout
    let o = run(&home, None, &["models"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(in_use(&o).contains("(source checkout)"), "{}", text(&o));

    // the user's data directory, once it holds models
    std::fs::create_dir_all(&data).unwrap();
    let o = run(&home, None, &["models"]);
    assert!(in_use(&o).contains("(source checkout)"), "{}", text(&o));
    for kind in ["models", "segmenters"] {
        std::os::unix::fs::symlink(repo_root().join(kind), data.join(kind)).unwrap();
    }
    let o = run(&home, None, &["models"]);
    assert!(in_use(&o).contains("(user data directory)"), "{}", text(&o));
    assert!(
        text(&o).contains(&format!(
            "models in {}: world-proggan, world-vgg16",
            data.join("models").display()
        )),
        "{}",
        text(&o)
    );
    let out = dir.join("gen");
    let o = run(
        &home,
        None,
        &[
            "generate",
            "--seeds",
            "0..1",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(text(&o).contains("with world-proggan"), "{}", text(&o));

    // $GANDISSECT_HOME comes before it, even when it holds nothing
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = run(&home, Some(&empty), &["generate", "--model", "world-vgg16"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let want = format!(
        "not a shipped model in {} (none installed)",
        empty.join("models").display()
    );
    assert!(text(&o).contains(&want), "{}", text(&o));

    // and --models-dir before $GANDISSECT_HOME
    let o = run(
        &home,
        Some(&empty),
        &[
            "--models-dir",
            data.to_str().unwrap(),
            "generate",
            "--seeds",
            "0..1",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(text(&o).contains("with world-proggan"), "{}", text(&o));
    let o = run(
        &home,
        Some(&empty),
        &["--models-dir", data.to_str().unwrap(), "models"],
    );
    assert!(in_use(&o).contains("(--models-dir)"), "{}", text(&o));
}
