//! Reading PyTorch `.pth` checkpoints without Python or TorchScript.
//!
//! Both formats `torch.save` has written are read: the zip archive (torch ≥ 1.6) and the older
//! "legacy" stream of pickles followed by raw storages. The pickled object is read by a
//! restricted unpickler (`pickle`) that knows only dicts, lists, tuples, scalars, strings and
//! tensors; anything else in a file is refused with an error naming it. Tensors are rebuilt
//! from their storage, offset, size and stride, so views and shared storages come out as
//! `torch.load` gives them, but always contiguous and on the CPU.

mod legacy;
mod pickle;
mod zipfmt;

use anyhow::{Result, anyhow, bail};
use pickle::{PickleError, StorageRef, TensorRef, Value};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;
use tch::{Device, Kind, Tensor};

/// Deepest nesting of dicts and lists followed when collecting tensors.
const MAX_DEPTH: usize = 64;

/// Reads every tensor of a PyTorch checkpoint, flattening nested dicts with '.'-joined keys
/// (so {"state_dict": {"a.weight": T}} gives "state_dict.a.weight"), in file order.
///
/// Lists and tuples are flattened with their indices as keys, integer dict keys are written in
/// decimal, and a tensor saved on its own gets the empty key. Entries that are not tensors
/// (epoch counters, names, `None`) are skipped. Every tensor is contiguous, on the CPU, and of
/// the stored dtype; tensors that shared a storage in the file no longer share memory.
pub fn read_pth(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let mut file = std::fs::File::open(path).map_err(|err| {
        if err.kind() == std::io::ErrorKind::NotFound {
            anyhow!(
                "checkpoint {} does not exist; check the path",
                path.display()
            )
        } else {
            anyhow!("cannot open checkpoint {}: {err}", path.display())
        }
    })?;
    let mut head = Vec::with_capacity(512);
    file.by_ref().take(512).read_to_end(&mut head)?;
    drop(file);
    match Format::detect(&head) {
        Format::Zip => {
            let mut checkpoint = zipfmt::ZipCheckpoint::open(path)?;
            let leaves = collect_leaves(path, &checkpoint.root)?;
            materialize_all(path, leaves, &mut checkpoint)
        }
        Format::Legacy => {
            let mut checkpoint = legacy::LegacyCheckpoint::open(path)?;
            let leaves = collect_leaves(path, &checkpoint.root)?;
            materialize_all(path, leaves, &mut checkpoint)
        }
        Format::Tar => bail!(
            "{} is a checkpoint in the tar format of PyTorch before 0.4, which is not read here; \
             load it with an old PyTorch and save it again with a current one",
            path.display()
        ),
        Format::Unknown if head.is_empty() => {
            bail!(
                "{} is empty, not a PyTorch checkpoint; re-download it or save it again",
                path.display()
            )
        }
        Format::Unknown => bail!(
            "{} is not a PyTorch checkpoint (it starts with bytes {}); expected a file written by \
             `torch.save`",
            path.display(),
            hex_prefix(&head)
        ),
    }
}

/// The container formats a file may be in, told apart by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Zip,
    Legacy,
    Tar,
    Unknown,
}

impl Format {
    fn detect(head: &[u8]) -> Format {
        if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
            Format::Zip
        } else if head.len() >= 2 && head[0] == 0x80 && head[1] <= 5 {
            Format::Legacy
        } else if head.len() >= 262 && &head[257..262] == b"ustar" {
            Format::Tar
        } else {
            Format::Unknown
        }
    }
}

fn hex_prefix(head: &[u8]) -> String {
    head.iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The error for a file that is damaged: it names the file and says what to do.
fn corrupted(path: &Path, detail: impl std::fmt::Display) -> anyhow::Error {
    anyhow!(
        "{} looks truncated or corrupted ({detail}); re-download it or save it again",
        path.display()
    )
}

/// Turns an unpickling error into a message naming the file.
fn pickle_error(path: &Path, err: PickleError) -> anyhow::Error {
    match err {
        PickleError::Unsupported(message) => anyhow!("cannot read {}: {message}", path.display()),
        other => corrupted(path, other),
    }
}

/// Where the raw bytes of each storage come from.
trait StorageSource {
    /// The bytes of the storage record `key`.
    fn storage(&mut self, key: &str) -> Result<&[u8]>;
    /// Called once no further tensor needs the storage `key`.
    fn release(&mut self, _key: &str) {}
}

/// Something in the pickled object that becomes a tensor.
enum Leaf {
    Tensor(Rc<TensorRef>),
    /// A storage saved on its own: it becomes a 1-D tensor of all its elements.
    Storage(Rc<StorageRef>),
}

impl Leaf {
    fn storage(&self) -> &StorageRef {
        match self {
            Leaf::Tensor(t) => &t.storage,
            Leaf::Storage(s) => s,
        }
    }
}

/// Collects the tensors of the pickled object with their flattened keys, in file order.
fn collect_leaves(path: &Path, root: &Value) -> Result<Vec<(String, Leaf)>> {
    let mut leaves = Vec::new();
    flatten(path, root, "", 0, &mut leaves)?;
    if leaves.is_empty() {
        bail!(
            "{} holds no tensors (it is a pickled {} without any); expected a state dict saved \
             with `torch.save(model.state_dict(), path)`",
            path.display(),
            root.type_name()
        );
    }
    let mut seen = std::collections::HashSet::new();
    for (key, _) in &leaves {
        if !seen.insert(key.as_str()) {
            bail!(
                "{} has two tensors under the key '{key}' once nested keys are joined with '.'",
                path.display()
            );
        }
    }
    Ok(leaves)
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// A dict key as text, for the key kinds a checkpoint uses.
fn key_text(key: &Value) -> Option<String> {
    match key {
        Value::Str(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(format!("{f:?}")),
        Value::Bool(b) => Some(if *b { "True" } else { "False" }.into()),
        Value::Bytes(b) => String::from_utf8(b.clone()).ok(),
        _ => None,
    }
}

fn flatten(
    path: &Path,
    value: &Value,
    prefix: &str,
    depth: usize,
    out: &mut Vec<(String, Leaf)>,
) -> Result<()> {
    if depth > MAX_DEPTH {
        bail!(
            "{} nests dicts or lists more than {MAX_DEPTH} deep under '{prefix}'",
            path.display()
        );
    }
    match value {
        Value::Tensor(t) => out.push((prefix.to_string(), Leaf::Tensor(t.clone()))),
        Value::Storage(s) => out.push((prefix.to_string(), Leaf::Storage(s.clone()))),
        Value::Dict(entries) => {
            for (key, item) in entries.borrow().iter() {
                match key_text(key) {
                    Some(text) => flatten(path, item, &join(prefix, &text), depth + 1, out)?,
                    None => {
                        let mut inner = Vec::new();
                        flatten(path, item, "", depth + 1, &mut inner)?;
                        if !inner.is_empty() {
                            bail!(
                                "{} has tensors under a {} dict key in '{prefix}'; only string and \
                                 integer keys can name tensors",
                                path.display(),
                                key.type_name()
                            );
                        }
                    }
                }
            }
        }
        Value::List(items) => {
            for (i, item) in items.borrow().iter().enumerate() {
                flatten(path, item, &join(prefix, &i.to_string()), depth + 1, out)?;
            }
        }
        Value::Tuple(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten(path, item, &join(prefix, &i.to_string()), depth + 1, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Turns every leaf into a tensor, reading each storage once and releasing it after its last use.
fn materialize_all(
    path: &Path,
    leaves: Vec<(String, Leaf)>,
    source: &mut dyn StorageSource,
) -> Result<Vec<(String, Tensor)>> {
    let mut uses: HashMap<String, usize> = HashMap::new();
    for (_, leaf) in &leaves {
        *uses.entry(leaf.storage().key.clone()).or_default() += 1;
    }
    let mut tensors = Vec::with_capacity(leaves.len());
    for (key, leaf) in leaves {
        let storage_key = leaf.storage().key.clone();
        let bytes = source.storage(&storage_key)?;
        let tensor = materialize(&leaf, bytes)
            .map_err(|detail| corrupted(path, format!("tensor '{key}': {detail}")))?;
        tensors.push((key, tensor));
        let left = uses
            .get_mut(&storage_key)
            .expect("every storage key was counted");
        *left -= 1;
        if *left == 0 {
            source.release(&storage_key);
        }
    }
    Ok(tensors)
}

/// Row-major strides of `size`.
fn contiguous_strides(size: &[i64]) -> Vec<i64> {
    let mut strides = vec![1i64; size.len()];
    for d in (0..size.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1].saturating_mul(size[d + 1].max(1));
    }
    strides
}

/// Builds one tensor from its storage bytes, checking every index against the storage first.
fn materialize(leaf: &Leaf, bytes: &[u8]) -> std::result::Result<Tensor, String> {
    let storage = leaf.storage();
    let elem = storage.kind.elt_size_in_bytes();
    if !bytes.len().is_multiple_of(elem) {
        return Err(format!(
            "its storage has {} bytes, not a multiple of the {elem}-byte {:?} element",
            bytes.len(),
            storage.kind
        ));
    }
    let root_numel = (bytes.len() / elem) as i64;
    let (base, available) = match storage.view {
        None => (0, root_numel),
        Some((offset, numel)) => {
            if offset < 0
                || numel < 0
                || offset.checked_add(numel).is_none_or(|end| end > root_numel)
            {
                return Err(format!(
                    "a storage view [{offset}, +{numel}) lies outside its {root_numel}-element storage"
                ));
            }
            (offset, numel)
        }
    };
    let (offset, size, stride) = match leaf {
        Leaf::Tensor(t) => (t.offset, t.size.clone(), t.stride.clone()),
        Leaf::Storage(_) => (0, vec![available], vec![1]),
    };
    if size.len() != stride.len() {
        return Err(format!(
            "size {size:?} and stride {stride:?} differ in length"
        ));
    }
    if offset < 0 || size.iter().any(|&s| s < 0) || stride.iter().any(|&s| s < 0) {
        return Err(format!(
            "negative offset {offset}, size {size:?} or stride {stride:?}"
        ));
    }
    let numel = size
        .iter()
        .try_fold(1i64, |acc, &s| acc.checked_mul(s))
        .ok_or("its size overflows")?;
    let options = (storage.kind, Device::Cpu);
    if numel == 0 {
        return Tensor::f_empty(size.as_slice(), options).map_err(|e| e.to_string());
    }
    // One past the last element the view touches, relative to its offset.
    let extent = size
        .iter()
        .zip(&stride)
        .try_fold(1i64, |acc, (&n, &s)| {
            (n - 1)
                .checked_mul(s)
                .and_then(|span| acc.checked_add(span))
        })
        .ok_or("its strides overflow")?;
    if offset.checked_add(extent).is_none_or(|end| end > available) {
        return Err(format!(
            "offset {offset}, size {size:?} and stride {stride:?} reach past the end of its {available}-element storage"
        ));
    }
    let start = ((base + offset) as usize) * elem;
    let dense = size
        .iter()
        .zip(&stride)
        .zip(contiguous_strides(&size))
        .all(|((&n, &s), c)| n == 1 || s == c);
    let used_elems = if dense { numel } else { extent };
    let used = &bytes[start..start + used_elems as usize * elem];
    if storage.kind == Kind::Bool && used.iter().any(|&b| b > 1) {
        return Err("a bool tensor holds bytes other than 0 and 1".into());
    }
    let result = if dense {
        Tensor::f_from_data_size(used, &size, storage.kind)
    } else {
        Tensor::f_from_data_size(used, &[extent], storage.kind)
            .and_then(|flat| flat.f_as_strided(size.as_slice(), stride.as_slice(), 0))
            .and_then(|view| view.f_contiguous())
    };
    result.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(kind: Kind, offset: i64, size: &[i64], stride: &[i64]) -> Leaf {
        let storage = Rc::new(StorageRef {
            key: "0".into(),
            kind,
            view: None,
        });
        Leaf::Tensor(Rc::new(TensorRef {
            storage,
            offset,
            size: size.to_vec(),
            stride: stride.to_vec(),
        }))
    }

    fn f32_bytes(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn strided_view_with_offset_is_gathered() {
        let bytes = f32_bytes(&[0., 1., 2., 3., 4., 5., 6.]);
        // The transpose of the 2×3 matrix starting at element 1.
        let t = materialize(&leaf(Kind::Float, 1, &[3, 2], &[1, 3]), &bytes).unwrap();
        assert!(t.is_contiguous());
        assert_eq!(
            Vec::<f32>::try_from(t.flatten(0, -1)).unwrap(),
            vec![1., 4., 2., 5., 3., 6.]
        );
    }

    #[test]
    fn view_past_the_storage_is_refused() {
        let bytes = f32_bytes(&[0., 1., 2.]);
        let err = materialize(&leaf(Kind::Float, 1, &[3], &[1]), &bytes).unwrap_err();
        assert!(err.contains("past the end"), "{err}");
        let err = materialize(&leaf(Kind::Float, 0, &[2, 2], &[2, 1]), &bytes).unwrap_err();
        assert!(err.contains("past the end"), "{err}");
    }

    #[test]
    fn legacy_storage_view_shifts_the_offset() {
        let bytes = f32_bytes(&[0., 1., 2., 3., 4.]);
        let storage = Rc::new(StorageRef {
            key: "0".into(),
            kind: Kind::Float,
            view: Some((2, 3)),
        });
        let t = TensorRef {
            storage,
            offset: 1,
            size: vec![2],
            stride: vec![1],
        };
        let t = materialize(&Leaf::Tensor(Rc::new(t)), &bytes).unwrap();
        assert_eq!(Vec::<f32>::try_from(t).unwrap(), vec![3., 4.]);
    }

    #[test]
    fn formats_are_told_apart_by_their_first_bytes() {
        assert_eq!(Format::detect(b"PK\x03\x04rest"), Format::Zip);
        assert_eq!(Format::detect(b"\x80\x02\x8a\x0a"), Format::Legacy);
        assert_eq!(Format::detect(b"\x89PNG\r\n\x1a\n"), Format::Unknown);
        assert_eq!(Format::detect(b""), Format::Unknown);
    }
}
