//! Saving and loading statistics: named tensors in a safetensors file whose `__metadata__`
//! carries a JSON header of the settings the statistics were computed with and a SHA-256
//! checksum over the tensors. A file whose tensors do not match their checksum is refused on
//! load, and each statistic's loader checks its counts for sense (no negative count, no
//! intersection larger than its marginals), so damaged statistics never turn into results.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use safetensors::tensor::{Dtype, SafeTensors, View};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tch::{Device, Kind, Tensor};

/// Tensors by name, as read back from a statistics file.
pub type NamedTensors = BTreeMap<String, Tensor>;

/// A statistic that converts to and from named tensors, bit for bit.
pub trait Statistic: Sized {
    /// The statistic's whole state as tensors named `prefix.<part>`.
    fn to_tensors(&self, prefix: &str) -> Vec<(String, Tensor)>;
    /// Rebuilds a statistic from the tensors written by [`Statistic::to_tensors`] under
    /// `prefix`, placing its state on `device`.
    fn from_tensors(tensors: &NamedTensors, prefix: &str, device: Device) -> Result<Self>;
}

/// The error for statistics whose values make no sense: `what` says which, and the fix is to
/// delete the file.
pub(crate) fn damaged(what: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("{what}; the statistics file is damaged: delete it and run again")
}

/// Refuses a count tensor `name` holding a negative value.
pub(crate) fn check_counts(t: &Tensor, name: &str) -> Result<()> {
    if t.numel() > 0 && t.min().int64_value(&[]) < 0 {
        return Err(damaged(format!(
            "statistics tensor {name} holds a negative count"
        )));
    }
    Ok(())
}

/// The tensor `name` from `tensors`, or an error naming what is missing.
pub(crate) fn fetch<'a>(tensors: &'a NamedTensors, name: &str) -> Result<&'a Tensor> {
    tensors.get(name).ok_or_else(|| {
        anyhow!("statistics lack the tensor {name}; the file is incomplete or was written for other statistics")
    })
}

/// The values of a small 1-D integer tensor `name`, checked to have `len` entries.
pub(crate) fn fetch_i64s(tensors: &NamedTensors, name: &str, len: usize) -> Result<Vec<i64>> {
    let t = fetch(tensors, name)?;
    if t.kind() != Kind::Int64 || t.size() != [len as i64] {
        bail!(
            "statistics tensor {name} should be {len} int64 values, found {:?} {:?}; the file is damaged",
            t.kind(),
            t.size()
        );
    }
    Ok(Vec::<i64>::try_from(t)?)
}

/// The tensor `name` moved to `device`, checked to have `kind` and `shape`.
pub(crate) fn fetch_shaped(
    tensors: &NamedTensors,
    name: &str,
    kind: Kind,
    shape: &[i64],
    device: Device,
) -> Result<Tensor> {
    let t = fetch(tensors, name)?;
    if t.kind() != kind || t.size() != shape {
        bail!(
            "statistics tensor {name} should be {kind:?} {shape:?}, found {:?} {:?}; the file is damaged",
            t.kind(),
            t.size()
        );
    }
    Ok(t.to_device(device))
}

/// A set of statistics with the settings they were computed for, saved as one safetensors file.
pub struct StatsFile {
    settings: Map<String, Value>,
    tensors: NamedTensors,
}

/// The metadata key holding the settings header.
const SETTINGS_KEY: &str = "settings";
/// The metadata key holding the format tag.
const FORMAT_KEY: &str = "format";
/// The format tag of statistics files.
const FORMAT: &str = "gandissect-stats-1";
/// The metadata key holding the checksum over the tensors.
const CHECKSUM_KEY: &str = "sha256";

/// SHA-256 over the tensors in name order: each name, dtype, shape and raw bytes.
fn checksum<'a>(tensors: impl Iterator<Item = (&'a str, Dtype, &'a [usize], &'a [u8])>) -> String {
    let mut hash = Sha256::new();
    for (name, dtype, shape, bytes) in tensors {
        hash.update((name.len() as u64).to_le_bytes());
        hash.update(name.as_bytes());
        hash.update(format!("{dtype:?}").as_bytes());
        hash.update((shape.len() as u64).to_le_bytes());
        for &d in shape {
            hash.update((d as u64).to_le_bytes());
        }
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl StatsFile {
    /// An empty set of statistics for `settings`, which must be a JSON object (layer, sample
    /// size, quantile resolution, ...).
    pub fn new(settings: Value) -> Result<Self> {
        let Value::Object(settings) = settings else {
            bail!("statistics settings must be a JSON object of named values, got {settings}");
        };
        Ok(Self {
            settings,
            tensors: NamedTensors::new(),
        })
    }

    /// The settings header.
    pub fn settings(&self) -> &Map<String, Value> {
        &self.settings
    }

    /// The names of all stored tensors.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Stores `stat` under `prefix`, replacing whatever was stored there before.
    pub fn insert<S: Statistic>(&mut self, prefix: &str, stat: &S) {
        let dotted = format!("{prefix}.");
        self.tensors.retain(|name, _| !name.starts_with(&dotted));
        for (name, t) in stat.to_tensors(prefix) {
            self.tensors.insert(name, t.to_device(Device::Cpu));
        }
    }

    /// Rebuilds the statistic stored under `prefix` on `device`.
    pub fn get<S: Statistic>(&self, prefix: &str, device: Device) -> Result<S> {
        S::from_tensors(&self.tensors, prefix, device)
            .with_context(|| format!("cannot read the statistics stored as {prefix}"))
    }

    /// Writes the file atomically (a crash leaves the previous file or none).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut views = Vec::with_capacity(self.tensors.len());
        for (name, t) in &self.tensors {
            views.push((
                name.clone(),
                TensorBytes::new(t).with_context(|| format!("cannot save {name}"))?,
            ));
        }
        let sum = checksum(
            views
                .iter()
                .map(|(n, v)| (n.as_str(), v.dtype, v.shape.as_slice(), v.bytes.as_slice())),
        );
        let metadata = HashMap::from([
            (FORMAT_KEY.to_string(), FORMAT.to_string()),
            (CHECKSUM_KEY.to_string(), sum),
            (
                SETTINGS_KEY.to_string(),
                Value::Object(self.settings.clone()).to_string(),
            ),
        ]);
        let bytes = safetensors::tensor::serialize(views, &Some(metadata))
            .map_err(|e| anyhow!("cannot encode statistics for {}: {e:?}", path.display()))?;
        crate::fsutil::atomic_write(path, &bytes)
    }

    /// Reads a statistics file and refuses it unless its settings equal `expected` (a JSON
    /// object); the error names the first differing setting and how to proceed.
    pub fn load(path: &Path, expected: &Value) -> Result<Self> {
        let file = Self::load_any(path)?;
        file.check_settings(expected, path)?;
        Ok(file)
    }

    /// Reads a statistics file whatever its settings (for tools that merge or inspect files).
    pub fn load_any(path: &Path) -> Result<Self> {
        let bytes = {
            use std::io::Read;
            let mut file = crate::fsutil::open_regular(path, "statistics file")?;
            let mut bytes = Vec::with_capacity(file.metadata()?.len() as usize);
            file.read_to_end(&mut bytes)
                .with_context(|| format!("cannot read statistics file {}", path.display()))?;
            bytes
        };
        let parsed = SafeTensors::deserialize(&bytes).map_err(|e| {
            anyhow!(
                "{} is not a safetensors file ({e:?}); delete it or point elsewhere",
                path.display()
            )
        })?;
        let (_, header) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| anyhow!("{} has an unreadable header: {e:?}", path.display()))?;
        let meta = header.metadata().clone().unwrap_or_default();
        if meta.get(FORMAT_KEY).map(String::as_str) != Some(FORMAT) {
            bail!(
                "{} is a safetensors file but not a statistics file of this tool (no {FORMAT:?} tag); delete it or use --out elsewhere",
                path.display()
            );
        }
        let settings: Value = meta
            .get(SETTINGS_KEY)
            .map(|s| serde_json::from_str(s))
            .transpose()
            .with_context(|| format!("{} has a damaged settings header", path.display()))?
            .unwrap_or(Value::Object(Map::new()));
        let Value::Object(settings) = settings else {
            bail!(
                "{} has a settings header that is not a JSON object",
                path.display()
            );
        };
        let mut views = parsed.tensors();
        views.sort_by(|a, b| a.0.cmp(&b.0));
        let sum = checksum(
            views
                .iter()
                .map(|(n, v)| (n.as_str(), v.dtype(), v.shape(), v.data())),
        );
        match meta.get(CHECKSUM_KEY) {
            Some(stored) if *stored == sum => {}
            Some(_) => {
                bail!(
                    "{} does not match its checksum: its statistics were changed or damaged after \
                     they were written; delete it and run again",
                    path.display()
                )
            }
            None => bail!(
                "{} has no checksum (an older or foreign statistics file); delete it and run again",
                path.display()
            ),
        }
        let mut tensors = NamedTensors::new();
        for (name, view) in views {
            let kind = kind_of(view.dtype()).with_context(|| format!("in {}", path.display()))?;
            let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
            let t = Tensor::f_from_data_size(view.data(), &shape, kind)
                .with_context(|| format!("cannot read tensor {name} from {}", path.display()))?;
            tensors.insert(name, t);
        }
        Ok(Self { settings, tensors })
    }

    /// Checks the stored settings against `expected`, naming the first difference.
    pub fn check_settings(&self, expected: &Value, path: &Path) -> Result<()> {
        let Value::Object(expected) = expected else {
            bail!("expected statistics settings must be a JSON object, got {expected}");
        };
        let stored = describe(&self.settings);
        let fix = format!("delete {} or use --out elsewhere", path.display());
        for (key, want) in expected {
            match self.settings.get(key) {
                None => bail!(
                    "statistics in {} were computed without a {key} setting ({stored}), not with {key} {}; {fix}",
                    path.display(),
                    show(want)
                ),
                Some(have) if have != want => bail!(
                    "statistics in {} were computed for {key} {} ({stored}), not {}; {fix}",
                    path.display(),
                    show(have),
                    show(want)
                ),
                Some(_) => {}
            }
        }
        if let Some(extra) = self.settings.keys().find(|k| !expected.contains_key(*k)) {
            bail!(
                "statistics in {} were computed with an extra setting {extra} ({stored}) that this run does not use; {fix}",
                path.display()
            );
        }
        Ok(())
    }
}

/// A JSON value shown without quotes when it is a string.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// "key value, key value" for a settings header.
fn describe(settings: &Map<String, Value>) -> String {
    settings
        .iter()
        .map(|(k, v)| format!("{k} {}", show(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The tch kind of a safetensors dtype this format uses.
fn kind_of(dtype: Dtype) -> Result<Kind> {
    Ok(match dtype {
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        Dtype::I64 => Kind::Int64,
        Dtype::BOOL => Kind::Bool,
        other => bail!("statistics tensors are f32, f64, i64 or bool, found {other:?}"),
    })
}

/// A tensor's bytes on the host, ready for safetensors.
struct TensorBytes {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl TensorBytes {
    fn new(t: &Tensor) -> Result<Self> {
        let dtype = match t.kind() {
            Kind::Float => Dtype::F32,
            Kind::Double => Dtype::F64,
            Kind::Int64 => Dtype::I64,
            Kind::Bool => Dtype::BOOL,
            other => bail!("statistics tensors are f32, f64, i64 or bool, not {other:?}"),
        };
        let t = t.to_device(Device::Cpu).contiguous();
        let numel = t.numel();
        let mut bytes = vec![0u8; numel * t.kind().elt_size_in_bytes()];
        if numel > 0 {
            t.f_copy_data_u8(&mut bytes, numel)?;
        }
        let shape = t.size().iter().map(|&d| d as usize).collect();
        Ok(Self {
            dtype,
            shape,
            bytes,
        })
    }
}

impl View for TensorBytes {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{ConditionalMean, IouTally, RunningMean, RunningQuantile, RunningTopK};
    use serde_json::json;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("gd-store-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn same<S: Statistic>(a: &S, b: &S) {
        let (ta, tb) = (a.to_tensors("s"), b.to_tensors("s"));
        assert_eq!(ta.len(), tb.len());
        for ((na, xa), (nb, xb)) in ta.iter().zip(tb.iter()) {
            assert_eq!(na, nb);
            assert_eq!(xa.kind(), xb.kind(), "{na}");
            assert!(xa.equal(xb), "{na} changed in the round trip");
        }
    }

    #[test]
    fn every_statistic_round_trips_bit_for_bit() {
        let dir = temp_dir("roundtrip");
        let path = dir.join("stats.safetensors");
        let cpu = Device::Cpu;
        let x = (Tensor::arange(6000, (Kind::Float, cpu)) * 0.731)
            .sin()
            .view([1000, 6]);
        let mut rq = RunningQuantile::new(64, 3, cpu).unwrap();
        rq.add(&x).unwrap();
        let empty_rq = RunningQuantile::new(64, 3, cpu).unwrap();
        let mut topk = RunningTopK::new(5, cpu).unwrap();
        topk.add(&x, 10).unwrap();
        let mut iou = IouTally::new(3, cpu).unwrap();
        iou.add(
            &x.view([10, 6, 10, 10]).gt(0.2),
            &(x.narrow(1, 0, 2).reshape([10, 2, 10, 10]).abs() * 2.9).to_kind(Kind::Int64),
        )
        .unwrap();
        let mut mean = RunningMean::new(cpu);
        mean.add(&x).unwrap();
        let mut cond = ConditionalMean::new(cpu);
        cond.add(4, &x).unwrap();
        cond.add(-1, &x.narrow(0, 0, 3)).unwrap();
        let empty_cond = ConditionalMean::new(cpu);

        let settings = json!({"layer": "layer4", "quantile_resolution": 64, "sample_size": 1000});
        let mut file = StatsFile::new(settings.clone()).unwrap();
        file.insert("rq", &rq);
        file.insert("rq_empty", &empty_rq);
        file.insert("topk", &topk);
        file.insert("iou", &iou);
        file.insert("mean", &mean);
        file.insert("cond", &cond);
        file.insert("cond_empty", &empty_cond);
        file.save(&path).unwrap();

        let back = StatsFile::load(&path, &settings).unwrap();
        assert_eq!(back.settings(), file.settings());
        same(&rq, &back.get::<RunningQuantile>("rq", cpu).unwrap());
        same(
            &empty_rq,
            &back.get::<RunningQuantile>("rq_empty", cpu).unwrap(),
        );
        same(&topk, &back.get::<RunningTopK>("topk", cpu).unwrap());
        same(&iou, &back.get::<IouTally>("iou", cpu).unwrap());
        same(&mean, &back.get::<RunningMean>("mean", cpu).unwrap());
        same(&cond, &back.get::<ConditionalMean>("cond", cpu).unwrap());
        same(
            &empty_cond,
            &back.get::<ConditionalMean>("cond_empty", cpu).unwrap(),
        );
        let q = back
            .get::<RunningQuantile>("rq", cpu)
            .unwrap()
            .quantiles(&[0.2, 0.7])
            .unwrap();
        assert!(q.equal(&rq.quantiles(&[0.2, 0.7]).unwrap()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn mismatched_settings_name_the_field_and_the_fix() {
        let dir = temp_dir("settings");
        let path = dir.join("stats.safetensors");
        let mut file =
            StatsFile::new(json!({"layer": "layer4", "quantile_resolution": 2048})).unwrap();
        file.insert("mean", &RunningMean::new(Device::Cpu));
        file.save(&path).unwrap();
        let err = StatsFile::load(
            &path,
            &json!({"layer": "layer5", "quantile_resolution": 2048}),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("computed for layer layer4"), "{err}");
        assert!(err.contains("not layer5"), "{err}");
        assert!(err.contains("quantile_resolution 2048"), "{err}");
        assert!(err.contains(&format!("delete {}", path.display())), "{err}");
        let err = StatsFile::load(&path, &json!({"layer": "layer4"}))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("extra setting quantile_resolution"), "{err}");
        let err = StatsFile::load(
            &path,
            &json!({"layer": "layer4", "quantile_resolution": 2048, "seed": 1}),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("without a seed setting"), "{err}");
        assert!(
            StatsFile::load(
                &path,
                &json!({"layer": "layer4", "quantile_resolution": 2048})
            )
            .is_ok()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn foreign_damaged_or_incomplete_files_are_refused() {
        let dir = temp_dir("foreign");
        let path = dir.join("x.safetensors");
        std::fs::write(&path, b"not a tensor file").unwrap();
        let err = StatsFile::load_any(&path).err().unwrap().to_string();
        assert!(err.contains("not a safetensors file"), "{err}");
        let t = TensorBytes::new(&Tensor::from_slice(&[1f32, 2.0])).unwrap();
        let bytes = safetensors::tensor::serialize([("w", t)], &None).unwrap();
        std::fs::write(&path, bytes).unwrap();
        let err = StatsFile::load_any(&path).err().unwrap().to_string();
        assert!(err.contains("not a statistics file"), "{err}");
        let file = StatsFile::new(json!({})).unwrap();
        let err = file.get::<RunningTopK>("topk", Device::Cpu).err().unwrap();
        assert!(
            format!("{err:#}").contains("lack the tensor topk.state"),
            "{err:#}"
        );
        assert!(StatsFile::new(json!([1, 2])).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
