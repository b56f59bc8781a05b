//! Segmenters brought as TorchScript modules: `forward(images [N,3,H,W] in [−1,1])` returning
//! either per-pixel scores `[N, L, h, w]` (float; the argmax is taken) or label maps
//! `[N, K, h, w]` / `[N, h, w]` (integers). Labels come from a `labels.json` beside the module
//! (a list of `{"name", "category"}`, id 0 being "none").

use super::{Label, Segmenter};
use anyhow::{Context, Result, bail};
use std::path::Path;
use tch::{CModule, Device, Kind, Tensor};

/// A TorchScript segmenter.
pub struct TorchScriptSegmenter {
    module: CModule,
    labels: Vec<Label>,
    name: String,
}

impl TorchScriptSegmenter {
    /// Loads `path` and the `labels.json` next to it.
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        let labels_path = path.with_file_name("labels.json");
        let text = std::fs::read_to_string(&labels_path).with_context(|| {
            format!(
                "a TorchScript segmenter needs its labels in {}",
                labels_path.display()
            )
        })?;
        let labels: Vec<Label> = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} must list {{\"name\", \"category\"}} objects",
                labels_path.display()
            )
        })?;
        Self::with_labels(path, labels, device)
    }

    /// Loads `path` with the given labels.
    pub fn with_labels(path: &Path, labels: Vec<Label>, device: Device) -> Result<Self> {
        let mut module = CModule::load_on_device(path, device).map_err(|e| {
            anyhow::anyhow!(
                "cannot load {} as a TorchScript module: {e}",
                path.display()
            )
        })?;
        module.set_eval();
        if labels.len() < 2 {
            bail!("a segmenter needs at least one label besides 'none'");
        }
        let name = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        Ok(Self {
            module,
            labels,
            name,
        })
    }
}

impl Segmenter for TorchScriptSegmenter {
    fn name(&self) -> &str {
        &self.name
    }
    fn labels(&self) -> &[Label] {
        &self.labels
    }
    fn segment(&self, images: &Tensor) -> Result<Tensor> {
        let _g = tch::no_grad_guard();
        let out = self
            .module
            .forward_ts(&[images])
            .map_err(|e| anyhow::anyhow!("{}: {e}", self.name))?;
        let out = match (out.kind(), out.dim()) {
            (Kind::Float | Kind::Half | Kind::Double | Kind::BFloat16, 4) => out.argmax(1, true),
            (_, 3) => out.unsqueeze(1),
            (_, 4) => out,
            _ => bail!(
                "{} returned {:?} {:?}; expected [N, L, h, w] scores or [N, K, h, w] labels",
                self.name,
                out.kind(),
                out.size()
            ),
        };
        let out = out.to_kind(Kind::Int64);
        let max = i64::try_from(out.max())?;
        if max >= self.labels.len() as i64 {
            bail!(
                "{} returned label {max} but lists only {} labels",
                self.name,
                self.labels.len()
            );
        }
        Ok(out)
    }
}
