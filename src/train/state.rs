//! Saving and resuming a training run: parameters, optimizer moments, the step and the run's
//! settings in one safetensors file, written atomically.

use crate::fsutil::atomic_write_with;
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Kind, Tensor};

const SETTINGS_KEY: &str = "__settings_json";
const STEP_KEY: &str = "__step";

/// A saved run: the step it reached and its tensors by name.
pub struct Saved {
    /// Completed steps.
    pub step: i64,
    /// Parameters and optimizer state.
    pub tensors: BTreeMap<String, Tensor>,
}

/// Writes the state of a run after `step` completed steps.
pub fn save(
    path: &Path,
    settings: &serde_json::Value,
    step: i64,
    tensors: Vec<(String, Tensor)>,
) -> Result<()> {
    let json = serde_json::to_vec(settings)?;
    let mut all = tensors;
    all.push((SETTINGS_KEY.into(), Tensor::from_slice(&json)));
    all.push((STEP_KEY.into(), Tensor::from(step)));
    let all: Vec<(String, Tensor)> = all
        .into_iter()
        .map(|(k, t)| (k, t.detach().to_device(tch::Device::Cpu).contiguous()))
        .collect();
    atomic_write_with(path, |tmp| {
        Tensor::write_safetensors(&all, tmp)?;
        Ok(())
    })
}

/// Reads a saved run if `path` exists. The run must have been started with the same
/// `settings` (top-level keys in `free` may differ); otherwise the error names the first
/// differing field.
pub fn load(path: &Path, settings: &serde_json::Value, free: &[&str]) -> Result<Option<Saved>> {
    if !path.exists() {
        return Ok(None);
    }
    let tensors = Tensor::read_safetensors(path).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the training state {} ({e}); delete it to start over",
            path.display()
        )
    })?;
    let mut tensors: BTreeMap<String, Tensor> = tensors.into_iter().collect();
    let json = tensors
        .remove(SETTINGS_KEY)
        .context("the training state has no settings")?;
    let mut saved: serde_json::Value = serde_json::from_slice(&Vec::<u8>::try_from(json)?)?;
    let mut now = settings.clone();
    for key in free {
        for v in [&mut saved, &mut now] {
            if let Some(map) = v.as_object_mut() {
                map.remove(*key);
            }
        }
    }
    if let Some(field) = first_difference(&saved, &now) {
        bail!(
            "{} was written by a run with other settings ({field}); delete it or use another --out",
            path.display()
        );
    }
    let step = tensors
        .remove(STEP_KEY)
        .context("the training state has no step")?;
    Ok(Some(Saved {
        step: i64::try_from(step.to_kind(Kind::Int64))?,
        tensors,
    }))
}

/// The settings a saved run was started with.
pub fn read_settings(path: &Path) -> Result<serde_json::Value> {
    let tensors = Tensor::read_safetensors(path)
        .map_err(|e| anyhow::anyhow!("cannot read the training state {} ({e})", path.display()))?;
    let json = tensors
        .into_iter()
        .find(|(k, _)| k == SETTINGS_KEY)
        .map(|(_, t)| t)
        .with_context(|| format!("the training state {} has no settings", path.display()))?;
    serde_json::from_slice(&Vec::<u8>::try_from(json)?)
        .with_context(|| format!("the settings in {} are not valid JSON", path.display()))
}

fn first_difference(a: &serde_json::Value, b: &serde_json::Value) -> Option<String> {
    match (a, b) {
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
            for (k, va) in x {
                match y.get(k) {
                    None => return Some(format!("{k} is not set now")),
                    Some(vb) => {
                        if let Some(inner) = first_difference(va, vb) {
                            return Some(format!("{k}: {inner}"));
                        }
                    }
                }
            }
            y.keys()
                .find(|k| !x.contains_key(*k))
                .map(|k| format!("{k} was not set then"))
        }
        _ if a != b => Some(format!("was {a}, now {b}")),
        _ => None,
    }
}

/// Copies saved values into live parameters (same names and shapes required).
pub fn restore_params(
    params: &[(String, Tensor)],
    saved: &BTreeMap<String, Tensor>,
    prefix: &str,
) -> Result<()> {
    tch::no_grad(|| {
        for (name, p) in params {
            let key = format!("{prefix}{name}");
            let Some(src) = saved.get(&key) else {
                bail!("the training state has no tensor {key}")
            };
            if src.size() != p.size() {
                bail!(
                    "the training state's {key} is {:?}, the model's is {:?}",
                    src.size(),
                    p.size()
                );
            }
            let mut p = p.shallow_clone();
            p.copy_(&src.to_device(p.device()));
        }
        Ok(())
    })
}

/// The resumable state of a run with one network and one optimizer: the network's parameters
/// under `net.` and the optimizer's moments under `opt`.
pub fn net_and_optimizer(vs: &tch::nn::VarStore, opt: &super::adam::Adam) -> Vec<(String, Tensor)> {
    let mut out: Vec<(String, Tensor)> = super::named_params(vs)
        .into_iter()
        .map(|(k, t)| (format!("net.{k}"), t))
        .collect();
    out.extend(opt.to_tensors("opt"));
    out
}

/// Restores [`net_and_optimizer`].
pub fn restore_net_and_optimizer(
    vs: &tch::nn::VarStore,
    opt: &mut super::adam::Adam,
    saved: &BTreeMap<String, Tensor>,
) -> Result<()> {
    restore_params(&super::named_params(vs), saved, "net.")?;
    opt.load_tensors("opt", saved)
}
