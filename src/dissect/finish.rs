//! Writing the results of complete statistics: `dissect.json`, the unit images and the report.

use super::passes::{Pass1, Pass2};
use super::result::{self, DissectResult};
use super::settings::{Pass2Settings, ResultSettings, Settings};
use super::source::Model;
use super::{images, report};
use anyhow::Result;
use std::path::Path;
use tch::{Device, Tensor};

/// Where and how the results of complete statistics are written.
pub struct Finish<'a> {
    /// The output directory.
    pub dir: &'a Path,
    /// The settings the statistics were computed with.
    pub common: &'a Settings,
    /// The pass-2 settings.
    pub pass2: &'a Pass2Settings,
    /// IoU cut-off for "interpretable".
    pub miniou: f64,
    /// Top images shown per unit in the report.
    pub report_images: usize,
    /// Where tensors live.
    pub device: Device,
}

impl Finish<'_> {
    /// Labels every unit from the merged statistics at `levels`, draws its top images with
    /// `model`, and writes `dissect.json` and `report.html`.
    pub fn write(
        &self,
        model: &Model,
        pass1: &Pass1,
        pass2: &Pass2,
        levels: &[Tensor],
    ) -> Result<DissectResult> {
        let names = &self.common.layers;
        let labels = &self.pass2.labels;
        let mut layers = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            layers.push(result::layer_result(
                name,
                &pass2.tallies[i],
                &levels[i],
                &pass1.topk[i],
                labels,
                self.miniou,
            )?);
        }
        let result = DissectResult {
            settings: ResultSettings {
                common: self.common.clone(),
                quantile: self.pass2.quantile,
                segmenter: self.pass2.segmenter.clone(),
                miniou: self.miniou,
            },
            quantile: self.pass2.quantile,
            miniou: self.miniou,
            labels: labels.clone(),
            layers,
            dir: self.dir.to_path_buf(),
            timings: Vec::new(),
        };
        let resolved = model.resolve_layers(names)?;
        for (layer, (index, _)) in result.layers.iter().zip(&resolved) {
            images::write_unit_images(
                model,
                *index,
                layer,
                self.report_images,
                self.dir,
                self.device,
            )?;
        }
        crate::fsutil::write_json(&self.dir.join("dissect.json"), &result)?;
        report::write_report(&result, self.dir)?;
        Ok(result)
    }
}
