//! Embeds an rpath to the libtorch libraries of the Python environment that torch-sys builds
//! against, so that the binaries, tests and benches find libtorch without `LD_LIBRARY_PATH`.

use std::path::PathBuf;
use std::process::Command;

fn python() -> PathBuf {
    match std::env::var_os("VIRTUAL_ENV") {
        Some(venv) => PathBuf::from(venv).join("bin").join("python"),
        None => PathBuf::from("python3"),
    }
}

fn main() {
    println!("cargo:rerun-if-env-changed=VIRTUAL_ENV");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed=build.rs");
    let lib_dir = if let Some(libtorch) = std::env::var_os("LIBTORCH") {
        PathBuf::from(libtorch).join("lib")
    } else {
        let out = Command::new(python())
            .args([
                "-c",
                "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))",
            ])
            .output();
        match out {
            Ok(o) if o.status.success() => {
                PathBuf::from(String::from_utf8_lossy(&o.stdout).trim().to_string())
            }
            _ => {
                println!(
                    "cargo:warning=could not locate torch via python; run scripts/bootstrap.sh and `source scripts/env.sh`"
                );
                return;
            }
        }
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
}
