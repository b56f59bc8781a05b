//! Reading PyTorch `.pth` checkpoints without Python or TorchScript.
//!
//! Both formats `torch.save` has written are read: the zip archive (torch ≥ 1.6) and the older
//! "legacy" stream of pickles followed by raw storages. The pickled object is read by a
//! restricted unpickler (`pickle`) that knows only dicts, lists, tuples, scalars, strings and
//! tensors; anything else in a file is refused with an error naming it. Tensors are rebuilt
//! from their storage, offset, size and stride, so views and shared storages come out as
//! `torch.load` gives them, but always contiguous and on the CPU.
//!
//! Files are hostile until proven otherwise: [`PthFile::open`] reads the object and checks every
//! tensor's offset, size and stride against the bytes its storage really holds before any
//! tensor memory is allocated, and a tensor is read only when asked for, inflating only the
//! bytes it needs. Nothing a file controls recurses without a depth limit, and the work of
//! reading a pickle is bounded by its length.

mod legacy;
mod pickle;
mod zipfmt;

use anyhow::{Result, anyhow, bail};
use pickle::{PickleError, StorageRef, TensorRef, Value};
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use tch::{Device, Kind, Tensor};

/// Deepest nesting of dicts and lists followed when collecting tensors.
const MAX_DEPTH: usize = 64;

/// Tensors of one storage may hold at most this many times its bytes (weights tied between a
/// few names), plus a MiB for small shared storages.
const MAX_SHARING: usize = 4;

/// Longest flattened tensor name accepted.
const MAX_KEY_LEN: usize = 4096;

/// Reads every tensor of a PyTorch checkpoint, flattening nested dicts with '.'-joined keys
/// (so {"state_dict": {"a.weight": T}} gives "state_dict.a.weight"), in file order.
///
/// Lists and tuples are flattened with their indices as keys, integer dict keys are written in
/// decimal, and a tensor saved on its own gets the empty key. Entries that are not tensors
/// (epoch counters, names, `None`) are skipped. Every tensor is contiguous, on the CPU, and of
/// the stored dtype; tensors that shared a storage in the file no longer share memory.
pub fn read_pth(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let mut file = PthFile::open(path)?;
    (0..file.len())
        .map(|i| Ok((file.tensors[i].key.clone(), file.read(i)?)))
        .collect()
}

/// One tensor of a checkpoint, checked against its storage but not read yet.
struct Planned {
    key: String,
    storage: StorageRef,
    size: Vec<i64>,
    stride: Vec<i64>,
    /// Bytes of the storage record the tensor reads: its first element to one past its last.
    bytes: std::ops::Range<usize>,
    /// Whether the bytes are the tensor's elements in row-major order (no gather needed).
    dense: bool,
}

/// An opened `.pth` checkpoint: the names, dtypes and shapes of its tensors, each read on
/// demand.
pub struct PthFile {
    path: PathBuf,
    tensors: Vec<Planned>,
    source: Box<dyn StorageSource + Send>,
}

impl PthFile {
    /// Opens a checkpoint file and checks its object and every tensor against its storage;
    /// reads no tensor data.
    pub fn open(path: &Path) -> Result<PthFile> {
        let mut file = crate::fsutil::open_regular(path, "checkpoint")?;
        let mut head = Vec::with_capacity(512);
        file.by_ref().take(512).read_to_end(&mut head)?;
        match Format::detect(&head) {
            Format::Zip => {
                let checkpoint = zipfmt::ZipCheckpoint::open(path, file)?;
                Self::plan(path, checkpoint)
            }
            Format::Legacy => {
                let checkpoint = legacy::LegacyCheckpoint::open(path, file)?;
                Self::plan(path, checkpoint)
            }
            other => Err(format_error(path, other, &head)),
        }
    }

    /// Reads a checkpoint held in memory (`name` stands for its path in errors).
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<PthFile> {
        let path = Path::new(name);
        match Format::detect(&bytes[..bytes.len().min(512)]) {
            Format::Zip => {
                let checkpoint = zipfmt::ZipCheckpoint::open(path, Cursor::new(bytes))?;
                Self::plan(path, checkpoint)
            }
            Format::Legacy => {
                let checkpoint = legacy::LegacyCheckpoint::from_bytes(path, bytes)?;
                Self::plan(path, checkpoint)
            }
            other => Err(format_error(path, other, &bytes[..bytes.len().min(512)])),
        }
    }

    fn plan(path: &Path, opened: Opened<impl StorageSource + Send + 'static>) -> Result<PthFile> {
        let Opened {
            root,
            created,
            source,
        } = opened;
        let leaves = collect_leaves(path, &root, created)?;
        let mut kinds: HashMap<&str, Kind> = HashMap::new();
        for (_, leaf) in &leaves {
            let storage = leaf.storage();
            let kind = *kinds.entry(storage.key.as_str()).or_insert(storage.kind);
            if kind != storage.kind {
                return Err(corrupted(
                    path,
                    format!(
                        "storage {} is read both as {kind:?} and as {:?}",
                        storage.key, storage.kind
                    ),
                ));
            }
        }
        let mut tensors = Vec::with_capacity(leaves.len());
        // bytes the tensors of each storage will hold once read, against the bytes it holds
        let mut claimed: HashMap<&str, (usize, usize)> = HashMap::new();
        for (key, leaf) in &leaves {
            let storage = leaf.storage();
            let stored = source.storage_len(&storage.key).ok_or_else(|| {
                corrupted(
                    path,
                    format!("tensor '{key}': its storage {} has no data", storage.key),
                )
            })?;
            let planned = plan_tensor(key, leaf, stored)
                .map_err(|detail| corrupted(path, format!("tensor '{key}': {detail}")))?;
            let numel = planned.size.iter().product::<i64>() as usize;
            let entry = claimed.entry(storage.key.as_str()).or_insert((0, stored));
            entry.0 = entry
                .0
                .saturating_add(numel * storage.kind.elt_size_in_bytes());
            tensors.push(planned);
        }
        for (storage, (held, stored)) in &claimed {
            if *held > stored.saturating_mul(MAX_SHARING).saturating_add(1 << 20) {
                bail!(
                    "{}: its tensors read the {stored} bytes of storage {storage} into {held} bytes, \
                     more than {MAX_SHARING} copies of it; a checkpoint ties a weight to a few \
                     names at most, so the file is crafted or corrupted",
                    path.display()
                );
            }
        }
        drop(claimed);
        drop(leaves);
        drop(root);
        Ok(PthFile {
            path: path.to_path_buf(),
            tensors,
            source: Box::new(source),
        })
    }

    /// The number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether the file holds no tensors (never true for an opened file).
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Tensor `i`'s flattened name, dtype and shape, in file order.
    pub fn describe(&self, i: usize) -> (&str, Kind, &[i64]) {
        let t = &self.tensors[i];
        (&t.key, t.storage.kind, &t.size)
    }

    /// Reads tensor `i`: contiguous, on the CPU, of its stored dtype.
    pub fn read(&mut self, i: usize) -> Result<Tensor> {
        let planned = &self.tensors[i];
        let bytes = self
            .source
            .storage_prefix(&planned.storage.key, planned.bytes.end)?;
        materialize(planned, &bytes[planned.bytes.clone()])
            .map_err(|detail| corrupted(&self.path, format!("tensor '{}': {detail}", planned.key)))
    }
}

fn format_error(path: &Path, format: Format, head: &[u8]) -> anyhow::Error {
    match format {
        Format::Tar => anyhow!(
            "{} is a checkpoint in the tar format of PyTorch before 0.4, which is not read here; \
             load it with an old PyTorch and save it again with a current one",
            path.display()
        ),
        _ if head.is_empty() => anyhow!(
            "{} is empty, not a PyTorch checkpoint; re-download it or save it again",
            path.display()
        ),
        _ => anyhow!(
            "{} is not a PyTorch checkpoint (it starts with bytes {}); expected a file written by \
             `torch.save`",
            path.display(),
            hex_prefix(head)
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

/// An opened checkpoint container: its pickled object and the records its storages are in.
struct Opened<S> {
    /// The pickled object.
    root: Value,
    /// Values the pickle created (bounds the work of walking the object).
    created: usize,
    /// Where the storages' bytes are.
    source: S,
}

/// Where the raw bytes of each storage come from.
trait StorageSource {
    /// The bytes the storage record `key` holds, if there is one.
    fn storage_len(&self, key: &str) -> Option<usize>;
    /// The first `len` bytes of the storage record `key` (no more are read or inflated).
    fn storage_prefix(&mut self, key: &str, len: usize) -> Result<Cow<'_, [u8]>>;
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

/// Collects the tensors of the pickled object with their flattened keys, in file order. The
/// walk visits at most a few times as many values as the pickle created, so a pickle whose
/// containers refer to each other through its memo cannot multiply the work.
fn collect_leaves(path: &Path, root: &Value, created: usize) -> Result<Vec<(String, Leaf)>> {
    let mut leaves = Vec::new();
    let mut walk = Walk {
        path,
        visits_left: created.saturating_mul(4).saturating_add(64),
        out: &mut leaves,
    };
    walk.flatten(root, "", 0)?;
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

/// The name shown for a key in errors: at most 80 characters of it.
fn shown(key: &str) -> String {
    match key.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", &key[..cut]),
        None => key.to_string(),
    }
}

/// A depth-first walk over the pickled object, with its visit budget.
struct Walk<'a> {
    path: &'a Path,
    visits_left: usize,
    out: &'a mut Vec<(String, Leaf)>,
}

impl Walk<'_> {
    fn flatten(&mut self, value: &Value, prefix: &str, depth: usize) -> Result<()> {
        let path = self.path;
        if depth > MAX_DEPTH {
            bail!(
                "{} nests dicts, lists or tuples more than {MAX_DEPTH} deep (under '{}'); a \
                 checkpoint of tensors never does: the file is crafted or corrupted",
                path.display(),
                shown(prefix)
            );
        }
        if prefix.len() > MAX_KEY_LEN {
            bail!(
                "{} names a tensor with more than {MAX_KEY_LEN} characters ('{}'); the file is \
                 crafted or corrupted",
                path.display(),
                shown(prefix)
            );
        }
        self.visits_left = self.visits_left.checked_sub(1).ok_or_else(|| {
            anyhow!(
                "{} reuses its dicts and lists (through the pickle memo) so often that listing \
                 its tensors would take far more work than its size justifies; the file is \
                 crafted or corrupted",
                path.display()
            )
        })?;
        match value {
            Value::Tensor(t) => self.out.push((prefix.to_string(), Leaf::Tensor(t.clone()))),
            Value::Storage(s) => self
                .out
                .push((prefix.to_string(), Leaf::Storage(s.clone()))),
            Value::Dict(entries) => {
                for (key, item) in entries.borrow().0.iter() {
                    match key_text(key) {
                        Some(text) => self.flatten(item, &join(prefix, &text), depth + 1)?,
                        None => {
                            let before = self.out.len();
                            self.flatten(item, "", depth + 1)?;
                            if self.out.len() > before {
                                bail!(
                                    "{} has tensors under a {} dict key in '{}'; only string and \
                                     integer keys can name tensors",
                                    path.display(),
                                    key.type_name(),
                                    shown(prefix)
                                );
                            }
                        }
                    }
                }
            }
            Value::List(items) => {
                for (i, item) in items.borrow().0.iter().enumerate() {
                    self.flatten(item, &join(prefix, &i.to_string()), depth + 1)?;
                }
            }
            Value::Tuple(items) => {
                for (i, item) in items.0.iter().enumerate() {
                    self.flatten(item, &join(prefix, &i.to_string()), depth + 1)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Checks one tensor against the `stored` bytes of its storage record, before anything is
/// allocated: the view window, offset, sizes and strides must stay inside the storage, and the
/// tensor may not hold more elements than the storage does (a stride-0 view that a file could
/// use to claim gigabytes from a few bytes).
fn plan_tensor(key: &str, leaf: &Leaf, stored: usize) -> std::result::Result<Planned, String> {
    let storage = leaf.storage();
    let elem = storage.kind.elt_size_in_bytes();
    if !stored.is_multiple_of(elem) {
        return Err(format!(
            "its storage has {stored} bytes, not a multiple of the {elem}-byte {:?} element",
            storage.kind
        ));
    }
    let root_numel = i64::try_from(stored / elem).map_err(|_| "its storage is too large")?;
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
    if size.len() > 64 {
        return Err(format!("it has {} dimensions", size.len()));
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
    let planned = |bytes: std::ops::Range<usize>, dense: bool| Planned {
        key: key.to_string(),
        storage: storage.clone(),
        size: size.clone(),
        stride: stride.clone(),
        bytes,
        dense,
    };
    if numel == 0 {
        return Ok(planned(0..0, true));
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
    if numel > available {
        return Err(format!(
            "size {size:?} holds {numel} elements but its storage only {available}: a view that \
             repeats its storage (stride {stride:?}), which a saved parameter never is"
        ));
    }
    let dense = size
        .iter()
        .zip(&stride)
        .zip(contiguous_strides(&size))
        .all(|((&n, &s), c)| n == 1 || s == c);
    let used_elems = if dense { numel } else { extent };
    let start = (base + offset) as usize * elem;
    Ok(planned(start..start + used_elems as usize * elem, dense))
}

/// Row-major strides of `size`.
fn contiguous_strides(size: &[i64]) -> Vec<i64> {
    let mut strides = vec![1i64; size.len()];
    for d in (0..size.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1].saturating_mul(size[d + 1].max(1));
    }
    strides
}

/// Builds one planned tensor from the bytes it reads (checked by [`plan_tensor`]).
fn materialize(planned: &Planned, used: &[u8]) -> std::result::Result<Tensor, String> {
    let kind = planned.storage.kind;
    let size = &planned.size;
    if used.is_empty() {
        return Tensor::f_empty(size.as_slice(), (kind, Device::Cpu)).map_err(|e| e.to_string());
    }
    if kind == Kind::Bool && used.iter().any(|&b| b > 1) {
        return Err("a bool tensor holds bytes other than 0 and 1".into());
    }
    let result = if planned.dense {
        Tensor::f_from_data_size(used, size, kind)
    } else {
        let extent = (used.len() / kind.elt_size_in_bytes()) as i64;
        Tensor::f_from_data_size(used, &[extent], kind)
            .and_then(|flat| flat.f_as_strided(size.as_slice(), planned.stride.as_slice(), 0))
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

    /// Plans `leaf` against `bytes` as its whole storage, then reads it.
    fn materialize(leaf: &Leaf, bytes: &[u8]) -> std::result::Result<Tensor, String> {
        let planned = plan_tensor("t", leaf, bytes.len())?;
        super::materialize(&planned, &bytes[planned.bytes.clone()])
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
    fn a_view_repeating_its_storage_is_refused_before_allocation() {
        let bytes = f32_bytes(&[1.0]);
        // 805 million elements from one stored float: refused from the sizes alone
        let err = materialize(&leaf(Kind::Float, 0, &[805_306_368], &[0]), &bytes).unwrap_err();
        assert!(err.contains("repeats its storage"), "{err}");
        // a smaller repeat that stays within the storage's element count is an honest view
        let bytes = f32_bytes(&[1.0, 2.0]);
        let t = materialize(&leaf(Kind::Float, 0, &[2], &[0]), &bytes).unwrap();
        assert_eq!(Vec::<f32>::try_from(t).unwrap(), vec![1.0, 1.0]);
    }

    /// A zip checkpoint of one float storage of `numel` elements and `names` tensors that all
    /// view the whole of it.
    fn shared_storage_zip(numel: usize, names: usize) -> Vec<u8> {
        use std::io::Write;
        let mut pickle = b"\x80\x02}".to_vec();
        for i in 0..names {
            let key = format!("w{i}");
            pickle.extend(b"X");
            pickle.extend((key.len() as u32).to_le_bytes());
            pickle.extend(key.as_bytes());
            // _rebuild_tensor_v2(('storage', FloatStorage, '0', 'cpu', numel), 0, (numel,), (1,), False)
            pickle.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage");
            pickle.extend(b"ctorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpu");
            pickle.extend(b"J");
            pickle.extend((numel as i32).to_le_bytes());
            pickle.extend(b"tQK\x00(J");
            pickle.extend((numel as i32).to_le_bytes());
            pickle.extend(b"t(K\x01t\x89tRs");
        }
        pickle.extend(b".");
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let stored =
            zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
        zip.start_file("archive/data.pkl", stored).unwrap();
        zip.write_all(&pickle).unwrap();
        zip.start_file("archive/data/0", stored).unwrap();
        zip.write_all(&vec![0u8; numel * 4]).unwrap();
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn one_storage_read_into_many_tensors_is_refused_before_reading() {
        // tied weights read fine
        let mut file = PthFile::from_bytes("tied.pth", shared_storage_zip(1 << 20, 2)).unwrap();
        assert_eq!(file.read(1).unwrap().size(), [1 << 20]);
        // forty names for one 4 MB storage would make 160 MB of tensors from it
        let err = PthFile::from_bytes("many.pth", shared_storage_zip(1 << 20, 40))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("more than 4 copies of it"), "{err}");
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
