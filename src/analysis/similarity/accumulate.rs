//! Streaming the probe activations into the moments every pair needs: per layer and grid the
//! count, sums and Gram matrix, per pair the cross product, on the common grid of the pair.
//! Memory: `8·p²` bytes per layer (of `p` units) and grid it is seen on, plus `8·p·q` per pair,
//! plus one batch of activations — never the whole probe set ([`super::memory`] has the whole
//! estimate). With a position sample ([`Accumulator::sample_positions`]) each input keeps `K`
//! positions per grid, the same for every layer on that grid.

use super::grid::{Resize, common_grid, grid_of, rows_on_grid};
use super::measures::{Cross, Moments, PairCovariance};
use super::memory::sample_positions;
use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use tch::Device;

type Grid = (i64, i64);

/// Moments of a set of layer outputs ("sources") and of the pairs of them to compare.
pub struct Accumulator {
    pairs: Vec<(usize, usize)>,
    resize: Resize,
    device: Device,
    shapes: Vec<Option<(i64, Grid)>>,
    moments: HashMap<(usize, Grid), Moments>,
    cross: HashMap<(usize, usize), Cross>,
    sample: Option<(u64, u64)>,
    inputs: u64,
}

impl Accumulator {
    /// Moments for `sources` outputs and `pairs` of them (indices into the outputs; a pair
    /// may be a source with itself).
    pub fn new(sources: usize, pairs: Vec<(usize, usize)>, resize: Resize, device: Device) -> Self {
        Self {
            pairs,
            resize,
            device,
            shapes: vec![None; sources],
            moments: HashMap::new(),
            cross: HashMap::new(),
            sample: None,
            inputs: 0,
        }
    }

    /// Keeps `positions` positions per input on every larger grid, sampled from `seed` and
    /// each input's place in the stream of added inputs (see [`sample_positions`]).
    pub fn sample_positions(&mut self, positions: Option<u64>, seed: u64) {
        self.sample = positions.map(|k| (seed, k));
    }

    /// Positions kept per input on grid `g`.
    pub fn positions_on(&self, g: Grid) -> u64 {
        let area = (g.0 * g.1) as u64;
        self.sample.map_or(area, |(_, k)| area.min(k))
    }

    /// The pairs, in the order given.
    pub fn pairs(&self) -> &[(usize, usize)] {
        &self.pairs
    }

    /// Adds one probe batch: the outputs of every source for the same inputs.
    pub fn add(&mut self, outputs: &[tch::Tensor]) -> Result<()> {
        let _guard = tch::no_grad_guard();
        if outputs.len() != self.shapes.len() {
            bail!(
                "{} outputs given for {} sources",
                outputs.len(),
                self.shapes.len()
            );
        }
        for (i, x) in outputs.iter().enumerate() {
            let shape = (x.size()[1], grid_of(x));
            match self.shapes[i] {
                None => self.shapes[i] = Some(shape),
                Some(s) if s != shape => {
                    bail!("layer output {i} changed shape between batches: {s:?} then {shape:?}")
                }
                Some(_) => {}
            }
        }
        let batch = outputs.first().map_or(0, |x| x.size()[0]);
        let mut rows: HashMap<(usize, Grid), tch::Tensor> = HashMap::new();
        let mut kept: HashMap<Grid, Option<tch::Tensor>> = HashMap::new();
        for &(i, j) in &self.pairs {
            let g = common_grid(grid_of(&outputs[i]), grid_of(&outputs[j]));
            let index = kept.entry(g).or_insert_with(|| {
                self.sample.and_then(|(seed, k)| {
                    sample_positions(seed, self.inputs, batch, g, Some(k), outputs[i].device())
                })
            });
            for s in [i, j] {
                if let std::collections::hash_map::Entry::Vacant(e) = rows.entry((s, g)) {
                    let r = rows_on_grid(&outputs[s], g, self.resize)?;
                    let r = match index {
                        Some(index) => r.index_select(0, index),
                        None => r,
                    }
                    .to_device(self.device);
                    let units = r.size()[1];
                    self.moments
                        .entry((s, g))
                        .or_insert_with(|| Moments::new(units, self.device))
                        .add(&r);
                    e.insert(r);
                }
            }
            let (x, y) = (&rows[&(i, g)], &rows[&(j, g)]);
            self.cross
                .entry((i, j))
                .or_insert_with(|| Cross::new(x.size()[1], y.size()[1], self.device))
                .add(x, y);
        }
        self.inputs += batch as u64;
        Ok(())
    }

    /// The grid a pair is compared on (once a batch was added).
    pub fn grid(&self, i: usize, j: usize) -> Option<Grid> {
        let (a, b) = (self.shapes[i]?, self.shapes[j]?);
        Some(common_grid(a.1, b.1))
    }

    /// Units and grid of a source (once a batch was added).
    pub fn shape(&self, i: usize) -> Option<(i64, Grid)> {
        self.shapes[i]
    }

    /// The covariances of pair `(i, j)`.
    pub fn covariance(&self, i: usize, j: usize) -> Result<PairCovariance> {
        let g = self.grid(i, j).context("no probe batch was added")?;
        let (a, b) = (&self.moments[&(i, g)], &self.moments[&(j, g)]);
        let c = self
            .cross
            .get(&(i, j))
            .with_context(|| format!("the pair ({i}, {j}) was not accumulated"))?;
        Ok(PairCovariance::from_moments(a, b, c))
    }

    /// Bytes held by the moments.
    pub fn bytes(&self) -> u64 {
        let m: i64 = self
            .moments
            .values()
            .map(|m| m.units() * (m.units() + 1))
            .sum();
        let c: i64 = self.cross.values().map(|c| c.xy.numel() as i64).sum();
        8 * (m + c) as u64
    }
}
