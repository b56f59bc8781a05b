//! Named weight tensors read from a checkpoint, and strict matching against what a network needs.
//!
//! A checkpoint file is opened lazily: its tensors' names, dtypes and shapes are known first,
//! and a tensor's data is read only when a network takes it, after its name and shape have
//! been checked against what the network needs. A file that claims gigabytes of tensors under
//! names or shapes no network of this tool has therefore costs nothing to refuse.

use crate::nets::pth::PthFile;
use anyhow::{Context, Result, anyhow, bail};
use safetensors::tensor::{Dtype, SafeTensors};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use tch::{Device, Kind, Tensor};

/// The tensors of a checkpoint by name, with the file they came from (for error messages).
pub struct StateDict {
    entries: BTreeMap<String, Entry>,
    source: PathBuf,
    /// The file tensors not yet read come from.
    reader: Option<Mutex<Box<dyn TensorReader>>>,
    /// Whether the note on converted dtypes has been printed.
    noted: AtomicBool,
}

/// One named tensor: its dtype and shape, and its data or where to read it.
struct Entry {
    kind: Kind,
    shape: Vec<i64>,
    data: Data,
}

enum Data {
    Loaded(Tensor),
    /// Index of the tensor in the reader's list.
    Stored(usize),
}

/// A checkpoint file whose tensors are read one at a time.
trait TensorReader: Send {
    /// Reads tensor `i` (in the order the file lists them).
    fn read(&mut self, i: usize) -> Result<Tensor>;
}

impl TensorReader for PthFile {
    fn read(&mut self, i: usize) -> Result<Tensor> {
        PthFile::read(self, i)
    }
}

/// A tensor as a file lists it: name, dtype, shape.
type Described = (String, Kind, Vec<i64>);

/// Largest safetensors header read: far more than any model's list of tensors needs.
const MAX_SAFETENSORS_HEADER: u64 = 16 << 20;

/// A safetensors file in memory: its bytes and each tensor's dtype, shape and byte range.
struct SafetensorsFile {
    bytes: Vec<u8>,
    tensors: Vec<(Kind, Vec<i64>, std::ops::Range<usize>)>,
}

impl TensorReader for SafetensorsFile {
    fn read(&mut self, i: usize) -> Result<Tensor> {
        let (kind, shape, range) = &self.tensors[i];
        Ok(Tensor::f_from_data_size(
            &self.bytes[range.clone()],
            shape,
            *kind,
        )?)
    }
}

/// The tch kind of a safetensors dtype a weight can have.
fn safetensors_kind(dtype: Dtype) -> Option<Kind> {
    Some(match dtype {
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        Dtype::I64 => Kind::Int64,
        Dtype::I32 => Kind::Int,
        Dtype::I16 => Kind::Int16,
        Dtype::I8 => Kind::Int8,
        Dtype::U8 => Kind::Uint8,
        Dtype::BOOL => Kind::Bool,
        _ => return None,
    })
}

/// Opens a safetensors file: reads it (a regular file, its header at most 16 MiB) and checks
/// every tensor's dtype, shape and byte range; builds no tensor.
fn open_safetensors(path: &Path) -> Result<(SafetensorsFile, Vec<Described>)> {
    use std::io::Read;
    let bad = |e: &dyn std::fmt::Display| {
        anyhow!(
            "cannot read {} as safetensors ({e}); the file is corrupted or not a safetensors file",
            path.display()
        )
    };
    let mut file = crate::fsutil::open_regular(path, "checkpoint")?;
    let len = file.metadata()?.len();
    let mut head = [0u8; 8];
    file.read_exact(&mut head).map_err(|e| bad(&e))?;
    let header = u64::from_le_bytes(head);
    if header > MAX_SAFETENSORS_HEADER {
        return Err(bad(&format!(
            "its header claims {header} bytes, more than the {MAX_SAFETENSORS_HEADER} any model's \
             tensor list needs"
        )));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    bytes.extend_from_slice(&head);
    file.read_to_end(&mut bytes).map_err(|e| bad(&e))?;
    let parsed = SafeTensors::deserialize(&bytes).map_err(|e| bad(&format!("{e:?}")))?;
    let base = bytes.as_ptr() as usize;
    let mut tensors = Vec::new();
    let mut described = Vec::new();
    for (name, view) in parsed.tensors() {
        let kind = safetensors_kind(view.dtype()).ok_or_else(|| {
            anyhow!(
                "{}: tensor '{name}' has dtype {:?}, which no weight of this tool has; save the \
                 weights as float32, float16, bfloat16 or float64",
                path.display(),
                view.dtype()
            )
        })?;
        let shape = view
            .shape()
            .iter()
            .map(|&d| i64::try_from(d))
            .collect::<std::result::Result<Vec<i64>, _>>()
            .map_err(|e| bad(&e))?;
        let start = view.data().as_ptr() as usize - base;
        let range = start..start + view.data().len();
        described.push((name, kind, shape.clone()));
        tensors.push((kind, shape, range));
    }
    drop(parsed);
    Ok((SafetensorsFile { bytes, tensors }, described))
}

/// One expected tensor: its name and shape.
pub type Expected = (String, Vec<i64>);

impl StateDict {
    /// Opens a checkpoint: `.safetensors`, or a PyTorch `.pth`/`.pt`/`.bin` file (zip or legacy
    /// format). A `state_dict` wrapper and a `module.` prefix (DataParallel) are removed. Only
    /// names, dtypes and shapes are read here; [`Self::tensor`] reads a tensor's data.
    pub fn load(path: &Path) -> Result<Self> {
        let is_safetensors = path.extension().is_some_and(|e| e == "safetensors");
        let (reader, described): (Box<dyn TensorReader>, Vec<Described>) = if is_safetensors {
            let (file, described) = open_safetensors(path)?;
            (Box::new(file), described)
        } else {
            let file = PthFile::open(path)?;
            let described = (0..file.len())
                .map(|i| {
                    let (name, kind, shape) = file.describe(i);
                    (name.to_string(), kind, shape.to_vec())
                })
                .collect();
            (Box::new(file), described)
        };
        let named = described
            .into_iter()
            .enumerate()
            .map(|(i, (name, kind, shape))| {
                (
                    name,
                    Entry {
                        kind,
                        shape,
                        data: Data::Stored(i),
                    },
                )
            })
            .collect();
        Ok(Self::build(named, path, Some(Mutex::new(reader))))
    }

    /// Builds a state dict from named tensors, removing a `state_dict.` wrapper and a common
    /// `module.` prefix.
    pub fn from_tensors(tensors: Vec<(String, Tensor)>, source: impl Into<PathBuf>) -> Self {
        let named = tensors
            .into_iter()
            .map(|(name, t)| {
                let entry = Entry {
                    kind: t.kind(),
                    shape: t.size(),
                    data: Data::Loaded(t),
                };
                (name, entry)
            })
            .collect();
        Self::build(named, &source.into(), None)
    }

    fn build(
        named: Vec<(String, Entry)>,
        source: &Path,
        reader: Option<Mutex<Box<dyn TensorReader>>>,
    ) -> Self {
        let wrapped =
            |prefix: &str, t: &[(String, Entry)]| t.iter().any(|(k, _)| k.starts_with(prefix));
        let mut named = named;
        for prefix in ["state_dict.", "model.state_dict.", "module."] {
            if wrapped(prefix, &named) {
                named = named
                    .into_iter()
                    .filter_map(|(k, t)| k.strip_prefix(prefix).map(|s| (s.to_string(), t)))
                    .collect();
            }
        }
        Self {
            entries: named.into_iter().collect(),
            source: source.to_path_buf(),
            reader,
            noted: AtomicBool::new(false),
        }
    }

    /// The file the tensors came from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Tensor names, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Whether a tensor of this name exists.
    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// The shape of a tensor, if present (known without reading its data).
    pub fn shape(&self, key: &str) -> Option<Vec<i64>> {
        self.entries.get(key).map(|e| e.shape.clone())
    }

    /// The stored dtype of a tensor, if present.
    pub fn kind(&self, key: &str) -> Option<Kind> {
        self.entries.get(key).map(|e| e.kind)
    }

    /// Renames every key with `f` (for legacy layouts).
    pub fn rename(self, f: impl Fn(&str) -> String) -> Self {
        let entries = self.entries.into_iter().map(|(k, t)| (f(&k), t)).collect();
        Self {
            entries,
            source: self.source,
            reader: self.reader,
            noted: self.noted,
        }
    }

    /// Checks that the checkpoint holds exactly the expected tensors with the expected shapes.
    /// The error lists every missing, unexpected and mis-shaped tensor at once.
    pub fn check_strict(&self, what: &str, expected: &[Expected]) -> Result<()> {
        let mut missing = Vec::new();
        let mut misshaped = Vec::new();
        for (name, shape) in expected {
            match self.entries.get(name) {
                None => missing.push(name.clone()),
                Some(t) if t.shape != *shape => {
                    misshaped.push(format!("{name} is {:?}, expected {:?}", t.shape, shape))
                }
                Some(_) => {}
            }
        }
        let unexpected: Vec<&String> = self
            .entries
            .keys()
            .filter(|k| !expected.iter().any(|(n, _)| n == *k))
            .collect();
        if missing.is_empty() && unexpected.is_empty() && misshaped.is_empty() {
            return Ok(());
        }
        let mut parts = Vec::new();
        let show = |v: Vec<String>| {
            let n = v.len();
            let mut s = v.into_iter().take(8).collect::<Vec<_>>().join(", ");
            if n > 8 {
                s.push_str(&format!(", … ({n} in all)"));
            }
            s
        };
        if !missing.is_empty() {
            parts.push(format!("missing: {}", show(missing)));
        }
        if !unexpected.is_empty() {
            parts.push(format!(
                "unexpected: {}",
                show(unexpected.into_iter().cloned().collect())
            ));
        }
        if !misshaped.is_empty() {
            parts.push(format!("wrong shape: {}", show(misshaped)));
        }
        bail!(
            "{} does not match a {what}: {}; is it a checkpoint of another architecture?",
            self.source.display(),
            parts.join("; ")
        )
    }

    /// Takes a tensor as f32 on `device`, reading it from the file if needed. Call after
    /// [`Self::check_strict`]. Other floating-point dtypes are converted (with a note on
    /// stderr, once per file), as PyTorch's `load_state_dict` converts them; integer, bool and
    /// complex tensors are refused, since no weight is stored as one.
    pub fn tensor(&self, key: &str, device: Device) -> Result<Tensor> {
        let entry = self
            .entries
            .get(key)
            .with_context(|| format!("{} has no tensor '{key}'", self.source.display()))?;
        match entry.kind {
            Kind::Float => {}
            Kind::Half | Kind::BFloat16 | Kind::Double => {
                if !self.noted.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "note: {} stores its weights as {:?} (first: '{key}'); they are converted \
                         to float32",
                        self.source.display(),
                        entry.kind
                    );
                }
            }
            other => bail!(
                "tensor '{key}' of {} is stored as {other:?}, but a weight is a floating-point \
                 number; the file is not a checkpoint of this network (or was saved wrongly)",
                self.source.display()
            ),
        }
        let t = match &entry.data {
            Data::Loaded(t) => t.shallow_clone(),
            Data::Stored(i) => {
                let reader = self
                    .reader
                    .as_ref()
                    .context("no file to read tensors from")?;
                let mut reader = reader.lock().unwrap_or_else(|p| p.into_inner());
                reader.read(*i)?
            }
        };
        if t.size() != entry.shape {
            bail!(
                "tensor '{key}' of {} reads as {:?} but was listed as {:?}; the file is corrupted",
                self.source.display(),
                t.size(),
                entry.shape
            );
        }
        let t = t.to_kind(Kind::Float).to_device(device);
        let finite = bool::try_from(t.isfinite().all())?;
        if !finite {
            bail!(
                "tensor '{key}' of {} holds NaN or infinite values; the checkpoint is corrupted",
                self.source.display()
            );
        }
        Ok(t)
    }
}
