//! Reading `.pth` checkpoints written by the project's PyTorch, compared bit for bit with the
//! values PyTorch itself saved, and the errors for damaged or unsupported files.

mod common;

use gandissect::nets::pth::read_pth;
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

fn fixtures() -> PathBuf {
    let script = common::repo_root().join("tests/fixtures/make_pth.py");
    common::cached_fixture("pth", &script, &[])
}

fn expected() -> Json {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("expected.json parses")
}

fn kind_of(name: &str) -> Kind {
    match name {
        "float32" => Kind::Float,
        "float16" => Kind::Half,
        "float64" => Kind::Double,
        "bfloat16" => Kind::BFloat16,
        "int64" => Kind::Int64,
        "int32" => Kind::Int,
        "int16" => Kind::Int16,
        "int8" => Kind::Int8,
        "uint8" => Kind::Uint8,
        "bool" => Kind::Bool,
        other => panic!("unknown dtype {other} in expected.json"),
    }
}

fn raw_bytes(t: &Tensor) -> Vec<u8> {
    let numel = t.numel();
    let mut bytes = vec![0u8; numel * t.kind().elt_size_in_bytes()];
    if numel > 0 {
        t.copy_data_u8(&mut bytes, numel);
    }
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads `file` and compares every key, dtype, shape and byte with what PyTorch saved.
fn check_file(dir: &Path, file: &str, entries: &[Json]) {
    let tensors = read_pth(&dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e:#}"));
    let keys: Vec<&str> = tensors.iter().map(|(k, _)| k.as_str()).collect();
    let want: Vec<&str> = entries.iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(keys, want, "{file}: keys or their order differ");
    for ((key, tensor), entry) in tensors.iter().zip(entries) {
        assert_eq!(
            tensor.kind(),
            kind_of(entry["dtype"].as_str().unwrap()),
            "{file} {key}: dtype"
        );
        let shape: Vec<i64> = entry["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_i64().unwrap())
            .collect();
        assert_eq!(tensor.size(), shape, "{file} {key}: shape");
        assert!(tensor.is_contiguous(), "{file} {key}: not contiguous");
        assert_eq!(tensor.device(), Device::Cpu, "{file} {key}: not on the CPU");
        assert_eq!(
            hex(&raw_bytes(tensor)),
            entry["hex"].as_str().unwrap(),
            "{file} {key}: values differ"
        );
    }
}

fn check_files_starting_with(prefix: &str) {
    let dir = fixtures();
    let expected = expected();
    let good = expected["good"].as_object().unwrap();
    let files: Vec<&String> = good.keys().filter(|f| f.starts_with(prefix)).collect();
    assert!(files.len() >= 5, "too few {prefix} fixtures: {files:?}");
    for file in files {
        check_file(&dir, file, good[file].as_array().unwrap());
    }
}

#[test]
fn zip_checkpoints_read_bit_for_bit() {
    check_files_starting_with("zip_");
}

#[test]
fn legacy_checkpoints_read_bit_for_bit() {
    check_files_starting_with("legacy_");
}

#[test]
fn both_formats_of_one_object_read_the_same() {
    let dir = fixtures();
    for name in ["dtypes", "module", "wrapped"] {
        let zip = read_pth(&dir.join(format!("zip_{name}.pth"))).unwrap();
        let legacy = read_pth(&dir.join(format!("legacy_{name}.pth"))).unwrap();
        assert_eq!(zip.len(), legacy.len(), "{name}");
        for ((zk, zt), (lk, lt)) in zip.iter().zip(&legacy) {
            assert_eq!(zk, lk, "{name}");
            assert_eq!(raw_bytes(zt), raw_bytes(lt), "{name} {zk}");
        }
    }
}

#[test]
fn tensors_from_one_storage_do_not_share_memory() {
    let tensors = read_pth(&fixtures().join("zip_dtypes.pth")).unwrap();
    let get = |key: &str| {
        tensors
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, t)| t.shallow_clone())
            .unwrap()
    };
    let mut head = get("shared_head");
    let again = get("shared_again");
    let before = raw_bytes(&again);
    let _ = head.fill_(-1.0);
    assert_eq!(
        raw_bytes(&again),
        before,
        "writing one tensor changed another read from the same storage"
    );
    assert_eq!(get("shared_tail").size(), vec![3, 2]);
}

#[test]
fn damaged_and_unsupported_files_give_clear_errors() {
    let dir = fixtures();
    let expected = expected();
    let bad = expected["bad"].as_object().unwrap();
    assert!(bad.len() >= 10, "too few bad fixtures");
    for (file, phrase) in bad {
        let path = dir.join(file);
        let err = match read_pth(&path) {
            Ok(tensors) => panic!("{file} read without error as {} tensors", tensors.len()),
            Err(err) => format!("{err:#}"),
        };
        let phrase = phrase.as_str().unwrap();
        assert!(
            err.contains(phrase),
            "{file}: error lacks '{phrase}': {err}"
        );
        assert!(
            err.contains(file.as_str()),
            "{file}: error does not name the file: {err}"
        );
        if phrase.contains("truncated") {
            assert!(
                err.contains("re-download"),
                "{file}: error gives no remedy: {err}"
            );
        }
    }
}

#[test]
fn missing_file_is_named() {
    let path = fixtures().join("no_such_checkpoint.pth");
    let err = format!("{:#}", read_pth(&path).unwrap_err());
    assert!(
        err.contains("does not exist") && err.contains("no_such_checkpoint.pth"),
        "{err}"
    );
}
