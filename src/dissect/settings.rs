//! The settings header of dissection statistics: everything the numbers depend on, saved with
//! every statistics file and compared field by field when a run resumes, a merge gathers shards
//! or a result is written. A refusal names the field that differs.
//!
//! On disk the header is one flat JSON object (the common settings, `pass`, `shard`, and for
//! pass 2 the quantile, segmenter, labels and a digest of the levels); `dissect.json` keeps the
//! common settings with the quantile, segmenter and IoU cut-off.

use super::passes::Shard;
use crate::segment::Label;
use crate::stats::StatsFile;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::Path;

/// What pass-1 statistics depend on; shared by both passes and by the result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// The model as named to the run.
    pub model: String,
    /// `generator` or `classifier`.
    pub model_kind: String,
    /// A digest of the model's weights.
    pub weights: String,
    /// What the images are: `latent stream`, `world seeds` or an image source's description.
    pub images: String,
    /// Seed of the latent stream (generators).
    pub stream: u32,
    /// Canonical names of the dissected layers.
    pub layers: Vec<String>,
    /// Images dissected over: ids `0..samples`.
    pub samples: u64,
    /// Side of the segmentation and of the upsampled activations.
    pub seg_size: i64,
    /// Top images kept per unit.
    pub topk: usize,
    /// Images per batch.
    pub batch: usize,
    /// Values per compactor level of the quantile sketches.
    pub sketch_resolution: usize,
    /// Rows below which the sketches keep every row.
    pub sample_floor: Option<i64>,
    /// Number of shards the run is split into.
    pub shards: u64,
    /// The side a classifier's input images are resized to (absent for generators).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_size: Option<i64>,
}

/// What pass-2 tallies depend on beyond [`Settings`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pass2Settings {
    /// Quantile level of the thresholds.
    pub quantile: f64,
    /// The segmenter as named to the run (or `truth`).
    pub segmenter: String,
    /// The segmenter's labels by id, saved as `[name, category]` pairs.
    #[serde(with = "label_pairs")]
    pub labels: Vec<Label>,
    /// A digest of the per-unit levels the indicators were taken at.
    pub levels: String,
}

/// Which statistics a file holds: one shard's, or all shards merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// One shard of the images.
    Shard(Shard),
    /// Every shard merged.
    Merged,
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Shard(s) => s.fmt(f),
            Self::Merged => f.write_str("merged"),
        }
    }
}

impl std::str::FromStr for Part {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        if s == "merged" {
            Ok(Self::Merged)
        } else {
            Ok(Self::Shard(s.parse()?))
        }
    }
}

/// The header of one statistics file.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    /// The settings both passes share.
    pub common: Settings,
    /// 1 or 2.
    pub pass: u8,
    /// One shard's statistics or the merged ones.
    pub part: Part,
    /// The pass-2 settings (pass 2 only).
    pub pass2: Option<Pass2Settings>,
}

/// The first field in which two headers differ, with both values as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// The field's name as saved.
    pub field: &'static str,
    /// The value in the file.
    pub stored: String,
    /// The value this run needs.
    pub wanted: String,
}

/// A value as a refusal shows it: strings bare, labels by name, the rest as JSON.
fn show<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}

/// Returns the first differing field among the listed ones of `$a` and `$b`.
macro_rules! first_difference {
    ($a:expr, $b:expr; $($field:ident),+ $(,)?) => {
        $(
            if $a.$field != $b.$field {
                return Some(Difference {
                    field: stringify!($field),
                    stored: show(&$a.$field),
                    wanted: show(&$b.$field),
                });
            }
        )+
    };
}

impl Settings {
    /// The first field in which `self` (stored) differs from `wanted`.
    pub fn difference(&self, wanted: &Settings) -> Option<Difference> {
        first_difference!(self, wanted; model, model_kind, weights, images, stream, layers,
            samples, seg_size, topk, batch, sketch_resolution, sample_floor, shards, input_size);
        None
    }
}

impl Pass2Settings {
    /// The first field in which `self` (stored) differs from `wanted`.
    pub fn difference(&self, wanted: &Pass2Settings) -> Option<Difference> {
        let (a, b) = (self.label_names(), wanted.label_names());
        first_difference!(self, wanted; quantile, segmenter);
        if a != b || self.labels != wanted.labels {
            return Some(Difference {
                field: "labels",
                stored: a.join(" "),
                wanted: b.join(" "),
            });
        }
        first_difference!(self, wanted; levels);
        None
    }

    fn label_names(&self) -> Vec<String> {
        self.labels.iter().map(|l| l.name.clone()).collect()
    }
}

impl Header {
    /// The header of pass-1 statistics.
    pub fn pass1(common: &Settings, part: Part) -> Self {
        Self {
            common: common.clone(),
            pass: 1,
            part,
            pass2: None,
        }
    }

    /// The header of pass-2 statistics.
    pub fn pass2(common: &Settings, pass2: &Pass2Settings, part: Part) -> Self {
        Self {
            common: common.clone(),
            pass: 2,
            part,
            pass2: Some(pass2.clone()),
        }
    }

    /// The same header for another part (a shard's header as merged, and so on).
    pub fn with_part(&self, part: Part) -> Self {
        Self {
            part,
            ..self.clone()
        }
    }

    /// The first field in which `self` (stored) differs from `wanted`.
    pub fn difference(&self, wanted: &Header) -> Option<Difference> {
        if let Some(d) = self.common.difference(&wanted.common) {
            return Some(d);
        }
        first_difference!(self, wanted; pass);
        let part = |h: &Header| h.part.to_string();
        if self.part != wanted.part {
            return Some(Difference {
                field: "shard",
                stored: part(self),
                wanted: part(wanted),
            });
        }
        match (&self.pass2, &wanted.pass2) {
            (Some(a), Some(b)) => a.difference(b),
            _ => None,
        }
    }

    /// The header as the flat JSON object saved in a statistics file.
    pub fn to_json(&self) -> Value {
        let mut map = match serde_json::to_value(&self.common) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        map.insert("pass".into(), Value::from(self.pass));
        map.insert("shard".into(), Value::from(self.part.to_string()));
        if let Some(p2) = &self.pass2
            && let Ok(Value::Object(m)) = serde_json::to_value(p2)
        {
            map.extend(m);
        }
        Value::Object(map)
    }

    /// Reads the header of a statistics file (`path` names it in errors): every field present,
    /// none unknown.
    pub fn from_file(file: &StatsFile, path: &Path) -> Result<Self> {
        let map = file.settings();
        let unreadable = || {
            format!(
                "statistics in {} have a settings header this version cannot read; delete it or \
                 use --out elsewhere",
                path.display()
            )
        };
        let object = Value::Object(map.clone());
        let common: Settings = serde_json::from_value(object.clone()).with_context(unreadable)?;
        let pass = map
            .get("pass")
            .and_then(Value::as_u64)
            .filter(|p| (1..=2).contains(p))
            .with_context(unreadable)? as u8;
        let part: Part = map
            .get("shard")
            .and_then(Value::as_str)
            .with_context(unreadable)?
            .parse()
            .with_context(unreadable)?;
        let pass2 = if pass == 2 {
            Some(serde_json::from_value(object).with_context(unreadable)?)
        } else {
            None
        };
        let header = Self {
            common,
            pass,
            part,
            pass2,
        };
        let Value::Object(known) = header.to_json() else {
            unreachable!("a header is a JSON object")
        };
        if let Some(extra) = map.keys().find(|k| !known.contains_key(*k)) {
            bail!(
                "statistics in {} were computed with a setting {extra} that this version does not \
                 use; delete {} or use --out elsewhere",
                path.display(),
                path.display()
            );
        }
        Ok(header)
    }

    /// Reads the header of a statistics file and refuses it unless it equals `wanted`, naming
    /// the first field that differs and how to proceed.
    pub fn check(file: &StatsFile, path: &Path, wanted: &Header) -> Result<Self> {
        let stored = Self::from_file(file, path)?;
        if let Some(d) = stored.difference(wanted) {
            bail!(
                "statistics in {} were computed for {} {}, not {}; delete {} or use --out elsewhere",
                path.display(),
                d.field,
                d.stored,
                d.wanted,
                path.display()
            );
        }
        Ok(stored)
    }

    /// The pass-2 settings, or an error naming the file that lacks them.
    pub fn pass2_settings(&self, path: &Path) -> Result<&Pass2Settings> {
        self.pass2.as_ref().with_context(|| {
            format!(
                "{} holds pass-1 statistics where pass-2 tallies were expected; the file is misplaced",
                path.display()
            )
        })
    }
}

/// The settings of a finished dissection, as `dissect.json` records them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResultSettings {
    /// The settings both passes shared.
    #[serde(flatten)]
    pub common: Settings,
    /// Quantile level of the thresholds.
    pub quantile: f64,
    /// The segmenter as named to the run (or `truth`).
    pub segmenter: String,
    /// IoU cut-off for "interpretable".
    pub miniou: f64,
}

/// Labels saved as `[name, category]` pairs.
mod label_pairs {
    use crate::segment::Label;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(labels: &[Label], s: S) -> Result<S::Ok, S::Error> {
        labels
            .iter()
            .map(|l| (l.name.as_str(), l.category.as_str()))
            .collect::<Vec<_>>()
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Label>, D::Error> {
        let pairs = Vec::<(String, String)>::deserialize(d)?;
        Ok(pairs
            .into_iter()
            .map(|(name, category)| Label { name, category })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn common() -> Settings {
        Settings {
            model: "random:0".into(),
            model_kind: "generator".into(),
            weights: "0123456789abcdef".into(),
            images: "latent stream".into(),
            stream: 1,
            layers: vec!["layer4".into()],
            samples: 12,
            seg_size: 64,
            topk: 100,
            batch: 4,
            sketch_resolution: 2048,
            sample_floor: Some(32768),
            shards: 1,
            input_size: None,
        }
    }

    fn pass2() -> Pass2Settings {
        Pass2Settings {
            quantile: 0.99,
            segmenter: "world-seg".into(),
            labels: vec![
                Label {
                    name: "-".into(),
                    category: "-".into(),
                },
                Label {
                    name: "sky".into(),
                    category: "object".into(),
                },
            ],
            levels: "feedface".into(),
        }
    }

    fn saved(header: &Header) -> (StatsFile, std::path::PathBuf) {
        let file = StatsFile::new(header.to_json()).unwrap();
        (file, std::path::PathBuf::from("stats/x.safetensors"))
    }

    #[test]
    fn headers_round_trip_through_their_json() {
        for h in [
            Header::pass1(&common(), Part::Shard("1/3".parse().unwrap())),
            Header::pass2(&common(), &pass2(), Part::Merged),
        ] {
            let (file, path) = saved(&h);
            assert_eq!(Header::from_file(&file, &path).unwrap(), h);
            assert_eq!(Header::check(&file, &path, &h).unwrap(), h);
        }
        // the saved object is flat, labels as pairs
        let json = Header::pass2(&common(), &pass2(), Part::Merged).to_json();
        assert_eq!(json["labels"][1], serde_json::json!(["sky", "object"]));
        assert_eq!(json["shard"], "merged");
        assert_eq!(json["batch"], 4);
    }

    #[test]
    fn a_refusal_names_the_differing_field() {
        let stored = Header::pass2(&common(), &pass2(), Part::Merged);
        let (file, path) = saved(&stored);
        let mut wanted = stored.clone();
        wanted.common.batch = 8;
        let e = Header::check(&file, &path, &wanted)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("computed for batch 4, not 8") && e.contains("delete"),
            "{e}"
        );
        let mut wanted = stored.clone();
        wanted.pass2.as_mut().unwrap().labels[1].name = "cloud".into();
        let e = Header::check(&file, &path, &wanted)
            .unwrap_err()
            .to_string();
        assert!(e.contains("labels - sky, not - cloud"), "{e}");
        let e = Header::check(
            &file,
            &path,
            &stored.with_part(Part::Shard(Shard::default())),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("shard merged, not 0/1"), "{e}");
    }

    #[test]
    fn missing_and_unknown_fields_are_refused() {
        let mut json = Header::pass1(&common(), Part::Merged).to_json();
        json.as_object_mut().unwrap().remove("topk");
        let file = StatsFile::new(json.clone()).unwrap();
        let e = format!(
            "{:#}",
            Header::from_file(&file, Path::new("p")).unwrap_err()
        );
        assert!(e.contains("cannot read") && e.contains("topk"), "{e}");
        json.as_object_mut()
            .unwrap()
            .insert("topk".into(), 100.into());
        json.as_object_mut()
            .unwrap()
            .insert("colour".into(), "red".into());
        let file = StatsFile::new(json).unwrap();
        let e = Header::from_file(&file, Path::new("p"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("a setting colour"), "{e}");
    }
}
