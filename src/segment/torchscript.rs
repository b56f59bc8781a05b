//! Segmenters brought as TorchScript modules.
//!
//! The contract: `forward(images)` takes `[N, 3, H, W]` float32 images in [−1, 1] (RGB) and
//! returns one of
//! - integer label maps `[N, K, h, w]` (or `[N, h, w]` for K = 1): K categories per pixel (an
//!   object, its part, its material …), each value a label id, 0 = none;
//! - float per-class scores `[N, L, h, w]`, one channel per label of the label list; the
//!   argmax over the channels is the pixel's label;
//! - a dict (string keys) or a tuple / list holding one of the above, chosen by name or index
//!   with `--segmenter-output` (or `"output"` in a segmenter card).
//!
//! Labels come from a `labels.json` beside the module: a list of `{"name", "category"}` objects,
//! label id = position, id 0 being "none" (see [`super::check_labels`]).

use super::{Label, Segmenter, check_labels};
use anyhow::{Context, Result, bail};
use std::path::Path;
use tch::{CModule, Device, IValue, Kind, Tensor};

/// A TorchScript segmenter.
pub struct TorchScriptSegmenter {
    module: CModule,
    labels: Vec<Label>,
    name: String,
    output: Option<String>,
    input_size: Option<i64>,
}

/// Reads a `labels.json`: a list of `{"name", "category"}` objects, id 0 being "none".
pub fn read_labels_json(path: &Path) -> Result<Vec<Label>> {
    let bytes = crate::fsutil::read_regular(path, "label list", 64 << 20).with_context(|| {
        format!(
            "a TorchScript segmenter needs its labels in {} (a list of {{\"name\", \"category\"}} \
             objects, id 0 = none)",
            path.display()
        )
    })?;
    let labels: Vec<Label> = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} must be a list of {{\"name\": …, \"category\": \"object\" | \"part\" | \
             \"material\" …}} objects, id 0 being \"none\"",
            path.display()
        )
    })?;
    check_labels(labels, &path.display().to_string())
}

impl TorchScriptSegmenter {
    /// Loads `path` and the `labels.json` next to it.
    pub fn load(path: &Path, output: Option<&str>, device: Device) -> Result<Self> {
        let labels = read_labels_json(&path.with_file_name("labels.json"))?;
        Self::with_labels(path, labels, output, device)
    }

    /// Loads `path` with the given labels; `output` names the entry of a dict or tuple output.
    pub fn with_labels(
        path: &Path,
        labels: Vec<Label>,
        output: Option<&str>,
        device: Device,
    ) -> Result<Self> {
        drop(crate::fsutil::open_regular(path, "TorchScript segmenter")?);
        let mut module = CModule::load_on_device(path, device).map_err(|e| {
            anyhow::anyhow!(
                "cannot load {} as a TorchScript module ({}); save it with \
                 torch.jit.trace(...).save(path) or torch.jit.script",
                path.display(),
                first_line(&e.to_string())
            )
        })?;
        module.set_eval();
        let labels = check_labels(labels, &path.display().to_string())?;
        let name = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        Ok(Self {
            module,
            labels,
            name,
            output: output.map(str::to_string),
            input_size: None,
        })
    }

    /// Resizes images to `size`×`size` before they are segmented.
    pub fn with_input_size(mut self, size: Option<i64>) -> Self {
        self.input_size = size;
        self
    }

    /// The tensor the module's output holds: the output itself, or the `--segmenter-output`
    /// entry of a dict, tuple or list.
    fn select(&self, out: IValue) -> Result<Tensor> {
        let entries: Vec<(String, IValue)> = match out {
            IValue::Tensor(t) => {
                if let Some(o) = &self.output {
                    bail!(
                        "{} returns a single tensor, which has no entry '{o}'; drop \
                         --segmenter-output",
                        self.name
                    );
                }
                return Ok(t);
            }
            IValue::Tuple(v) | IValue::GenericList(v) => v
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
            IValue::TensorList(v) => v
                .into_iter()
                .enumerate()
                .map(|(i, t)| (i.to_string(), IValue::Tensor(t)))
                .collect(),
            IValue::GenericDict(v) => v.into_iter().map(|(k, v)| (describe_key(&k), v)).collect(),
            other => bail!(
                "{} returned {}; a segmenter returns label maps [N, K, h, w], per-class scores \
                 [N, L, h, w], or a dict or tuple holding one of them",
                self.name,
                describe(&other)
            ),
        };
        let listing = entries
            .iter()
            .map(|(k, v)| format!("{k}: {}", describe(v)))
            .collect::<Vec<_>>()
            .join(", ");
        let Some(wanted) = &self.output else {
            bail!(
                "{} returns several outputs ({listing}); name the one holding label maps or \
                 scores with --segmenter-output NAME (a dict key or a tuple index)",
                self.name
            );
        };
        match entries.into_iter().find(|(k, _)| k == wanted) {
            Some((_, IValue::Tensor(t))) => Ok(t),
            Some((_, other)) => bail!(
                "{}'s output '{wanted}' is {}, not a tensor of label maps or scores",
                self.name,
                describe(&other)
            ),
            None => bail!(
                "{} has no output '{wanted}'; its outputs are {listing}",
                self.name
            ),
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

fn describe_key(k: &IValue) -> String {
    match k {
        IValue::String(s) => s.clone(),
        IValue::Int(i) => i.to_string(),
        other => describe(other),
    }
}

/// A short description of a TorchScript value for messages: a tensor by kind and shape.
fn describe(v: &IValue) -> String {
    match v {
        IValue::Tensor(t) => format!("a {:?} tensor {:?}", t.kind(), t.size()),
        IValue::Tuple(v) => format!("a tuple of {}", v.len()),
        IValue::GenericList(v) => format!("a list of {}", v.len()),
        IValue::TensorList(v) => format!("a list of {} tensors", v.len()),
        IValue::GenericDict(v) => format!("a dict of {}", v.len()),
        IValue::None => "None".into(),
        IValue::String(_) => "a string".into(),
        IValue::Int(_) | IValue::Double(_) | IValue::Bool(_) => "a number".into(),
        _ => "a value of another kind".into(),
    }
}

/// Label maps `[N, K, h, w]` (i64) from a segmenter's output tensor for `n` images and
/// `num_labels` labels: integer maps taken as they are (`[N, h, w]` as K = 1), float scores
/// `[N, num_labels, h, w]` by their argmax. Anything else is refused with what was expected.
pub fn label_maps(out: &Tensor, n: i64, num_labels: i64, name: &str) -> Result<Tensor> {
    let size = out.size();
    let floating = matches!(
        out.kind(),
        Kind::Float | Kind::Half | Kind::Double | Kind::BFloat16
    );
    let maps = if floating {
        if size.len() != 4 {
            bail!(
                "{name} returned float {size:?}; float outputs are per-class scores [N, L, h, w] \
                 (L = {num_labels}, one per label of its label list); label maps must be integers"
            );
        }
        if size[1] != num_labels {
            bail!(
                "{name} returned scores for {} classes ({size:?}) but its label list has \
                 {num_labels} labels; scores need one channel per label, id 0 = none",
                size[1]
            );
        }
        out.argmax(1, true)
    } else if matches!(
        out.kind(),
        Kind::Int64 | Kind::Int | Kind::Int16 | Kind::Int8 | Kind::Uint8
    ) {
        match size.len() {
            3 => out.unsqueeze(1).to_kind(Kind::Int64),
            4 => out.to_kind(Kind::Int64),
            _ => bail!(
                "{name} returned integer {size:?}; label maps are [N, K, h, w] (K categories) or \
                 [N, h, w]"
            ),
        }
    } else {
        bail!(
            "{name} returned a {:?} tensor; a segmenter returns integer label maps [N, K, h, w] \
             or float scores [N, L, h, w]",
            out.kind()
        );
    };
    let s = maps.size();
    if s[0] != n {
        bail!("{name} returned {} label maps for {n} images", s[0]);
    }
    if s[2] == 0 || s[3] == 0 || s[1] == 0 {
        bail!("{name} returned empty label maps {s:?}");
    }
    let (lo, hi) = (maps.min().int64_value(&[]), maps.max().int64_value(&[]));
    if lo < 0 {
        bail!("{name} returned label {lo}; label ids are 0 (none) or more");
    }
    if hi >= num_labels {
        bail!(
            "{name} returned label {hi} but its label list has only {num_labels} labels (ids \
             0..{}); the label list does not match the segmenter",
            num_labels - 1
        );
    }
    Ok(maps)
}

impl Segmenter for TorchScriptSegmenter {
    fn name(&self) -> &str {
        &self.name
    }
    fn labels(&self) -> &[Label] {
        &self.labels
    }
    fn input_size(&self) -> Option<i64> {
        self.input_size
    }
    fn segment(&self, images: &Tensor) -> Result<Tensor> {
        let _g = tch::no_grad_guard();
        let images = match self.input_size {
            Some(n) => crate::imageio::to_input_size(images, n),
            None => images.shallow_clone(),
        };
        let out = self
            .module
            .forward_is(&[IValue::Tensor(images.shallow_clone())])
            .map_err(|e| {
                anyhow::anyhow!(
                    "{} failed on images {:?} in [-1, 1]: {}",
                    self.name,
                    images.size(),
                    first_line(&e.to_string())
                )
            })?;
        let t = self.select(out)?;
        label_maps(&t, images.size()[0], self.labels.len() as i64, &self.name)
    }
}
