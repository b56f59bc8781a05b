//! Named weight tensors read from a checkpoint, and strict matching against what a network needs.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// The tensors of a checkpoint by name, with the file they came from (for error messages).
pub struct StateDict {
    tensors: BTreeMap<String, Tensor>,
    source: PathBuf,
}

/// One expected tensor: its name and shape.
pub type Expected = (String, Vec<i64>);

impl StateDict {
    /// Reads a checkpoint: `.safetensors`, or a PyTorch `.pth`/`.pt`/`.bin` file (zip or legacy
    /// format). A `state_dict` wrapper and a `module.` prefix (DataParallel) are removed.
    pub fn load(path: &Path) -> Result<Self> {
        if !path.exists() {
            bail!(
                "checkpoint {} does not exist; check the path",
                path.display()
            );
        }
        let is_safetensors = path.extension().is_some_and(|e| e == "safetensors");
        let tensors = if is_safetensors {
            Tensor::read_safetensors(path).map_err(|e| {
                anyhow::anyhow!(
                    "cannot read {} as safetensors ({e}); the file is corrupted or not a safetensors file",
                    path.display()
                )
            })?
        } else {
            crate::nets::pth::read_pth(path)?
        };
        Ok(Self::from_tensors(tensors, path))
    }

    /// Builds a state dict from named tensors, removing a `state_dict.` wrapper and a common
    /// `module.` prefix.
    pub fn from_tensors(tensors: Vec<(String, Tensor)>, source: impl Into<PathBuf>) -> Self {
        let wrapped =
            |prefix: &str, t: &[(String, Tensor)]| t.iter().any(|(k, _)| k.starts_with(prefix));
        let mut tensors = tensors;
        for prefix in ["state_dict.", "model.state_dict.", "module."] {
            if wrapped(prefix, &tensors) {
                tensors = tensors
                    .into_iter()
                    .filter_map(|(k, t)| k.strip_prefix(prefix).map(|s| (s.to_string(), t)))
                    .collect();
            }
        }
        Self {
            tensors: tensors.into_iter().collect(),
            source: source.into(),
        }
    }

    /// The file the tensors came from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Tensor names, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Whether a tensor of this name exists.
    pub fn contains(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }

    /// The shape of a tensor, if present.
    pub fn shape(&self, key: &str) -> Option<Vec<i64>> {
        self.tensors.get(key).map(Tensor::size)
    }

    /// Renames every key with `f` (for legacy layouts).
    pub fn rename(self, f: impl Fn(&str) -> String) -> Self {
        let tensors = self.tensors.into_iter().map(|(k, t)| (f(&k), t)).collect();
        Self {
            tensors,
            source: self.source,
        }
    }

    /// Checks that the checkpoint holds exactly the expected tensors with the expected shapes.
    /// The error lists every missing, unexpected and mis-shaped tensor at once.
    pub fn check_strict(&self, what: &str, expected: &[Expected]) -> Result<()> {
        let mut missing = Vec::new();
        let mut misshaped = Vec::new();
        for (name, shape) in expected {
            match self.tensors.get(name) {
                None => missing.push(name.clone()),
                Some(t) if t.size() != *shape => {
                    misshaped.push(format!("{name} is {:?}, expected {:?}", t.size(), shape))
                }
                Some(_) => {}
            }
        }
        let unexpected: Vec<&String> = self
            .tensors
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

    /// Takes a tensor as f32 on `device`. Call after [`Self::check_strict`].
    pub fn tensor(&self, key: &str, device: Device) -> Result<Tensor> {
        let t = self
            .tensors
            .get(key)
            .with_context(|| format!("{} has no tensor '{key}'", self.source.display()))?;
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
