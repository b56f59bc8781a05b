//! Functional unit populations (SPEC §12.3): each unit of a conv layer described by its
//! activation profile (mean post-ReLU activation per class and per concept) and, separately, by
//! its ablation profile (each class's drop when the unit alone is ablated); units clustered on
//! each description (average-linkage agglomerative clustering on correlation distance); each
//! population reported with its members, what it responds to and what ablating it whole does to
//! each class, and the single-unit indicators (mean activation, class selectivity, single-unit
//! importance) set against the populations' effects.
//!
//! Profiles and single-unit scores come from the training split; populations are ablated on the
//! held-out split, all of them as stacked copies in one pass.

use super::ablation_curve::single_unit_sweep_on;
use super::probe::{ProbeBatch, activation_profiles, measure_ablated, probe_set};
use super::selectivity::selectivity_index;
use super::spearman::spearman;
use crate::chart::{Dendrogram, Figure, HeatMap, Merge, page_font_css};
use crate::classify::Classifier;
use crate::classify::importance::{HELDOUT_SPLIT_START, TRAIN_SPLIT_START};
use crate::classify::sweep::ImportanceMeasure;
use crate::cut::Cut;
use crate::fsutil::{atomic_write, write_json};
use crate::nets::vgg::Vgg;
use crate::world::CONCEPTS;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::Device;

/// The fewest populations the stated rule picks (a layer often splits in two halves first;
/// populations are asked to be finer than that).
pub const MIN_AUTO_POPULATIONS: usize = 4;
/// The most populations the stated rule picks.
pub const MAX_AUTO_POPULATIONS: usize = 12;
/// A unit is flagged by an indicator when it ranks in this top share of the layer's units.
pub const FLAG_SHARE: f64 = 0.1;

/// What to measure.
#[derive(Clone, Debug)]
pub struct PopulationOptions {
    /// The conv layer.
    pub layer: String,
    /// World seeds the profiles and single-unit scores are measured on.
    pub train: Range<u64>,
    /// World seeds the populations are ablated on.
    pub heldout: Range<u64>,
    /// Populations per clustering; `None`: the cut with the largest mean silhouette, from
    /// [`MIN_AUTO_POPULATIONS`] to [`MAX_AUTO_POPULATIONS`].
    pub populations: Option<usize>,
    /// Images per prefix forward.
    pub batch: usize,
    /// Ablated copies per suffix forward.
    pub copies: usize,
    /// Device.
    pub device: Device,
    /// Show progress bars.
    pub progress: bool,
}

impl PopulationOptions {
    /// `train` training-split and `heldout` held-out scenes; populations chosen by the rule.
    pub fn new(layer: &str, train: u64, heldout: u64, device: Device) -> Self {
        Self {
            layer: layer.to_string(),
            train: TRAIN_SPLIT_START..TRAIN_SPLIT_START + train,
            heldout: HELDOUT_SPLIT_START..HELDOUT_SPLIT_START + heldout,
            populations: None,
            batch: 50,
            copies: 32,
            device,
            progress: false,
        }
    }
}

/// Average-linkage agglomerative clustering of `rows` on correlation distance `1 − r`
/// (a constant row has correlation 0 with every other). Merges in SciPy's linkage layout.
pub fn cluster(rows: &[Vec<f64>]) -> Result<Dendrogram> {
    let n = rows.len();
    if n == 0 {
        bail!("no units to cluster");
    }
    let d = correlation_distances(rows);
    // active clusters: id → (members, index into the distance table)
    let mut size: Vec<usize> = vec![1; n];
    let mut ids: Vec<usize> = (0..n).collect();
    let mut dist = d;
    let mut merges = Vec::with_capacity(n.saturating_sub(1));
    let mut alive: Vec<usize> = (0..n).collect();
    for step in 0..n.saturating_sub(1) {
        let (mut bi, mut bj, mut best) = (0, 0, f64::INFINITY);
        for (x, &i) in alive.iter().enumerate() {
            for &j in &alive[x + 1..] {
                if dist[i][j] < best {
                    (bi, bj, best) = (i, j, dist[i][j]);
                }
            }
        }
        let (a, b) = if ids[bi] < ids[bj] {
            (bi, bj)
        } else {
            (bj, bi)
        };
        merges.push(Merge {
            a: ids[a],
            b: ids[b],
            height: best.max(0.0),
        });
        // the merged cluster takes slot `a`
        for &k in &alive {
            if k != a && k != b {
                let v = (dist[a][k] * size[a] as f64 + dist[b][k] * size[b] as f64)
                    / (size[a] + size[b]) as f64;
                dist[a][k] = v;
                dist[k][a] = v;
            }
        }
        size[a] += size[b];
        ids[a] = n + step;
        alive.retain(|&k| k != b);
    }
    Dendrogram::new(n, merges)
}

fn correlation_distances(rows: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let centred: Vec<Option<Vec<f64>>> = rows
        .iter()
        .map(|r| {
            let m = r.iter().sum::<f64>() / r.len().max(1) as f64;
            let c: Vec<f64> = r.iter().map(|x| x - m).collect();
            let norm = c.iter().map(|x| x * x).sum::<f64>().sqrt();
            (norm > 1e-12).then(|| c.iter().map(|x| x / norm).collect())
        })
        .collect();
    let n = rows.len();
    let mut d = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in i + 1..n {
            let r = match (&centred[i], &centred[j]) {
                (Some(a), Some(b)) => a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>(),
                _ => 0.0,
            };
            d[i][j] = 1.0 - r;
            d[j][i] = 1.0 - r;
        }
    }
    d
}

/// The number of populations by the stated rule: the cut of the tree, from
/// [`MIN_AUTO_POPULATIONS`] to [`MAX_AUTO_POPULATIONS`] populations (at most the number of
/// units), with the largest mean silhouette on the correlation distances of `rows` (the fewer
/// populations on a tie).
pub fn auto_count(tree: &Dendrogram, rows: &[Vec<f64>]) -> usize {
    let n = tree.leaves();
    let hi = MAX_AUTO_POPULATIONS.min(n);
    let lo = MIN_AUTO_POPULATIONS.min(hi);
    if n < 3 {
        return n.max(1);
    }
    let d = correlation_distances(rows);
    (lo..=hi)
        .map(|k| (k, silhouette(&d, &cut_tree(tree, k))))
        .fold((lo, f64::NEG_INFINITY), |best, (k, s)| {
            if s > best.1 + 1e-12 { (k, s) } else { best }
        })
        .0
}

/// Mean silhouette of a partition under distances `d` (a unit alone in its group scores 0).
pub fn silhouette(d: &[Vec<f64>], groups: &[Vec<usize>]) -> f64 {
    let n = d.len();
    let mut total = 0.0;
    for (gi, g) in groups.iter().enumerate() {
        for &u in g {
            if g.len() < 2 {
                continue;
            }
            let a =
                g.iter().filter(|&&v| v != u).map(|&v| d[u][v]).sum::<f64>() / (g.len() - 1) as f64;
            let b = groups
                .iter()
                .enumerate()
                .filter(|(gj, h)| *gj != gi && !h.is_empty())
                .map(|(_, h)| h.iter().map(|&v| d[u][v]).sum::<f64>() / h.len() as f64)
                .fold(f64::INFINITY, f64::min);
            if b.is_finite() && a.max(b) > 0.0 {
                total += (b - a) / a.max(b);
            }
        }
    }
    total / n.max(1) as f64
}

/// Cuts the tree into `k` clusters (undoing its last `k − 1` merges); clusters listed in the
/// tree's leaf order, members ascending.
pub fn cut_tree(tree: &Dendrogram, k: usize) -> Vec<Vec<usize>> {
    let n = tree.leaves();
    let k = k.clamp(1, n);
    let mut parent: Vec<usize> = (0..n + tree.merges().len()).collect();
    for (i, m) in tree.merges().iter().enumerate().take(n - k) {
        parent[m.a] = n + i;
        parent[m.b] = n + i;
    }
    let root = |mut x: usize| {
        while parent[x] != x {
            x = parent[x];
        }
        x
    };
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
    for leaf in tree.leaf_order() {
        let r = root(leaf);
        match groups.iter_mut().find(|g| g.0 == r) {
            Some(g) => g.1.push(leaf),
            None => groups.push((r, vec![leaf])),
        }
    }
    groups
        .into_iter()
        .map(|(_, mut v)| {
            v.sort_unstable();
            v
        })
        .collect()
}

/// Each column of `rows` standardised over the rows (so every class and concept counts alike);
/// constant columns become 0.
fn standardise_columns(rows: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n = rows.len().max(1) as f64;
    let cols = rows.first().map_or(0, Vec::len);
    let mut out = rows.to_vec();
    for c in 0..cols {
        let m = rows.iter().map(|r| r[c]).sum::<f64>() / n;
        let sd = (rows.iter().map(|r| (r[c] - m).powi(2)).sum::<f64>() / n).sqrt();
        for r in out.iter_mut() {
            r[c] = if sd > 1e-12 { (r[c] - m) / sd } else { 0.0 };
        }
    }
    out
}

/// One population.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Population {
    /// Units, ascending.
    pub units: Vec<usize>,
    /// Classes its members respond to most, relative to the layer (the population's mean
    /// activation per class over the layer's), largest first (top three).
    pub top_classes: Vec<(String, f64)>,
    /// Concepts likewise (top three).
    pub top_concepts: Vec<(String, f64)>,
    /// Held-out overall accuracy drop with the whole population ablated.
    pub accuracy_drop: f64,
    /// Held-out balanced accuracy drop per class with the whole population ablated.
    pub class_drop: Vec<f64>,
    /// The class hurt most, and by how much.
    pub most_hurt: (String, f64),
    /// Per single-unit indicator, its sum over the members.
    pub indicator_sums: Vec<(String, f64)>,
    /// The indicators for which some member ranks in the layer's top [`FLAG_SHARE`].
    pub flagged_by: Vec<String>,
}

/// A clustering of the layer's units and its populations.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Clustering {
    /// What the units were described by: "activation" or "ablation".
    pub profile: String,
    /// The profile's columns.
    pub columns: Vec<String>,
    /// The tree's merges (`a`, `b`, height), SciPy's linkage layout.
    pub merges: Vec<(usize, usize, f64)>,
    /// How the number of populations was set.
    pub count_rule: String,
    /// The populations, in the tree's leaf order.
    pub populations: Vec<Population>,
    /// Per indicator, Spearman ρ over populations of the members' sum against the
    /// population's accuracy drop.
    pub spearman_population: Vec<(String, Option<f64>)>,
    /// Per indicator, Spearman ρ over units of the unit's indicator against the accuracy drop
    /// of ablating the unit's whole population (population-level importance).
    pub spearman_unit: Vec<(String, Option<f64>)>,
    /// Populations whose ablation costs at least the median population's accuracy drop (and
    /// more than nothing) while no single indicator flags any member: indices into
    /// `populations`.
    pub unflagged: Vec<usize>,
}

/// Everything the analysis measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PopulationReport {
    /// The classifier.
    pub model: String,
    /// The layer.
    pub layer: String,
    /// Units of the layer.
    pub units: usize,
    /// Class names.
    pub classes: Vec<String>,
    /// World seeds of the profiles (`A..B`).
    pub train_seeds: String,
    /// World seeds of the population ablations (`A..B`).
    pub heldout_seeds: String,
    /// Held-out accuracy with nothing ablated.
    pub baseline_accuracy: f64,
    /// Per unit: mean activation, class selectivity and single-unit importance.
    pub indicators: Vec<(String, Vec<f64>)>,
    /// What single-unit importance measures.
    pub importance_measure: ImportanceMeasure,
    /// Activation profiles, one row per unit (per class, then per concept present).
    pub activation_profile: Vec<Vec<f64>>,
    /// Ablation profiles, one row per unit (each class's drop with the unit ablated alone).
    pub ablation_profile: Vec<Vec<f64>>,
    /// Clustering on activation profiles.
    pub by_activation: Clustering,
    /// Clustering on ablation profiles.
    pub by_ablation: Clustering,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// Runs the analysis on world scenes.
pub fn populations(clf: &Classifier, opts: &PopulationOptions) -> Result<PopulationReport> {
    if opts.train.is_empty() || opts.heldout.is_empty() {
        bail!("both splits need at least one sample: give --samples and --heldout above 0");
    }
    let cut = clf.conv_cut(&opts.layer)?;
    let train = probe_set(
        clf,
        &cut,
        opts.train.clone(),
        opts.batch,
        opts.device,
        opts.progress.then_some("profiles"),
    )?;
    let held = probe_set(
        clf,
        &cut,
        opts.heldout.clone(),
        opts.batch,
        opts.device,
        opts.progress.then_some("held-out"),
    )?;
    let mut report = populations_on(clf, &cut, &train, &held, opts.populations, opts.copies)?;
    report.layer = opts.layer.clone();
    report.train_seeds = format!("{}..{}", opts.train.start, opts.train.end);
    report.heldout_seeds = format!("{}..{}", opts.heldout.start, opts.heldout.end);
    Ok(report)
}

/// Runs the analysis on probe sets already at the cut (`train` for profiles and scores, `held`
/// for the population ablations).
pub fn populations_on(
    clf: &Classifier,
    cut: &Cut<'_, Vgg>,
    train: &[ProbeBatch],
    held: &[ProbeBatch],
    count: Option<usize>,
    copies: usize,
) -> Result<PopulationReport> {
    let start = Instant::now();
    let k = clf.classes.len();
    let units = clf.units(cut) as usize;
    if count.is_some_and(|c| c == 0 || c > units) {
        bail!("the number of populations must be between 1 and the layer's {units} units");
    }
    let prof = activation_profiles(train, k as i64)?;
    let present: Vec<usize> = (0..prof.per_concept.len())
        .filter(|&c| c > 0 && prof.per_concept[c].is_some())
        .collect();
    let mut columns: Vec<String> = clf.classes.clone();
    columns.extend(present.iter().map(|&c| CONCEPTS[c].to_string()));
    let activation: Vec<Vec<f64>> = (0..units)
        .map(|u| {
            let mut row: Vec<f64> = prof.per_class.iter().map(|r| r[u]).collect();
            row.extend(
                present
                    .iter()
                    .map(|&c| prof.per_concept[c].as_ref().map_or(0.0, |r| r[u])),
            );
            row
        })
        .collect();
    let sweep = single_unit_sweep_on(clf, cut, train, copies)?;
    let (importance, importance_measure) = sweep.importance();
    let ablation: Vec<Vec<f64>> = match importance_measure {
        ImportanceMeasure::AccuracyDrop => sweep
            .ablated
            .iter()
            .map(|row| {
                row.iter()
                    .zip(&sweep.baseline)
                    .map(|(a, b)| b - a)
                    .collect()
            })
            .collect(),
        ImportanceMeasure::LogProbDrop => sweep
            .ablated_log_prob
            .iter()
            .map(|row| {
                row.iter()
                    .zip(&sweep.baseline_log_prob)
                    .map(|(a, b)| b - a)
                    .collect()
            })
            .collect(),
    };
    let selectivity: Vec<f64> = selectivity_index(&prof.per_class)
        .into_iter()
        .map(|s| s.0)
        .collect();
    let indicators = vec![
        ("activation".to_string(), prof.mean.clone()),
        ("selectivity".to_string(), selectivity),
        ("importance".to_string(), importance),
    ];
    let act_tree = cluster(&standardise_columns(&activation))?;
    let abl_tree = cluster(&ablation)?;
    let layer_class_mean: Vec<f64> = (0..k)
        .map(|c| prof.per_class[c].iter().sum::<f64>() / units as f64)
        .collect();
    let layer_concept_mean: Vec<f64> = present
        .iter()
        .map(|&c| {
            prof.per_concept[c]
                .as_ref()
                .map_or(0.0, |r| r.iter().sum::<f64>() / units as f64)
        })
        .collect();
    let describe = Describe {
        clf,
        activation: &activation,
        present: &present,
        layer_class_mean: &layer_class_mean,
        layer_concept_mean: &layer_concept_mean,
        indicators: &indicators,
    };
    // both clusterings' populations ablated in one pass over the held-out split
    let act_rows = standardise_columns(&activation);
    let groups: Vec<(Dendrogram, Vec<Vec<usize>>, String)> = [(act_tree, &act_rows), (abl_tree, &ablation)]
        .into_iter()
        .map(|(t, rows)| {
            let (n, rule) = match count {
                Some(c) => (c, format!("{c} populations, as given")),
                None => {
                    let c = auto_count(&t, rows);
                    (c, format!("{c}: the cut with the largest mean silhouette ({MIN_AUTO_POPULATIONS} to {MAX_AUTO_POPULATIONS})"))
                }
            };
            let g = cut_tree(&t, n);
            (t, g, rule)
        })
        .collect();
    let mut sets: Vec<Vec<i64>> = vec![Vec::new()];
    for (_, g, _) in &groups {
        sets.extend(g.iter().map(|m| m.iter().map(|&u| u as i64).collect()));
    }
    let m = measure_ablated(clf, cut, held, &sets, copies)?;
    let acc = m.accuracy()?;
    let bal = m.balanced()?;
    let mut offset = 1;
    let mut clusterings = Vec::new();
    for ((tree, g, rule), (profile, cols)) in groups.into_iter().zip([
        ("activation", columns.clone()),
        ("ablation", clf.classes.clone()),
    ]) {
        let effects: Vec<(f64, Vec<f64>)> = (0..g.len())
            .map(|i| {
                let r = offset + i;
                (
                    acc[0] - acc[r],
                    bal[0].iter().zip(&bal[r]).map(|(b, a)| b - a).collect(),
                )
            })
            .collect();
        offset += g.len();
        clusterings.push(describe.clustering(profile, cols, &tree, g, rule, effects)?);
    }
    let by_ablation = clusterings.pop().expect("two clusterings");
    let by_activation = clusterings.pop().expect("two clusterings");
    Ok(PopulationReport {
        model: clf.name.clone(),
        layer: cut.layer_name().to_string(),
        units,
        classes: clf.classes.clone(),
        train_seeds: String::new(),
        heldout_seeds: String::new(),
        baseline_accuracy: acc[0],
        indicators,
        importance_measure,
        activation_profile: activation,
        ablation_profile: ablation,
        by_activation,
        by_ablation,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// What describing a population needs.
struct Describe<'a> {
    clf: &'a Classifier,
    activation: &'a [Vec<f64>],
    present: &'a [usize],
    layer_class_mean: &'a [f64],
    layer_concept_mean: &'a [f64],
    indicators: &'a [(String, Vec<f64>)],
}

impl Describe<'_> {
    fn clustering(
        &self,
        profile: &str,
        columns: Vec<String>,
        tree: &Dendrogram,
        groups: Vec<Vec<usize>>,
        count_rule: String,
        effects: Vec<(f64, Vec<f64>)>,
    ) -> Result<Clustering> {
        let units = self.activation.len();
        let k = self.clf.classes.len();
        let flag_n = ((units as f64 * FLAG_SHARE).ceil() as usize).max(1);
        let flagged: Vec<(String, Vec<bool>)> = self
            .indicators
            .iter()
            .map(|(name, v)| {
                let mut top = vec![false; units];
                for &u in super::ablation_curve::order_by(v).iter().take(flag_n) {
                    top[u as usize] = true;
                }
                (name.clone(), top)
            })
            .collect();
        let top3 = |scores: Vec<(String, f64)>| {
            let mut s = scores;
            s.sort_by(|a, b| b.1.total_cmp(&a.1));
            s.truncate(3);
            s
        };
        let mut pops = Vec::new();
        for (members, (drop, class_drop)) in groups.iter().zip(effects) {
            let mean_col = |c: usize| {
                members.iter().map(|&u| self.activation[u][c]).sum::<f64>() / members.len() as f64
            };
            let rel = |m: f64, layer: f64| if layer > 1e-12 { m / layer } else { 0.0 };
            let top_classes = top3(
                (0..k)
                    .map(|c| {
                        (
                            self.clf.classes[c].clone(),
                            rel(mean_col(c), self.layer_class_mean[c]),
                        )
                    })
                    .collect(),
            );
            let top_concepts = top3(
                self.present
                    .iter()
                    .enumerate()
                    .map(|(i, &c)| {
                        (
                            CONCEPTS[c].to_string(),
                            rel(mean_col(k + i), self.layer_concept_mean[i]),
                        )
                    })
                    .collect(),
            );
            let worst = (0..k)
                .max_by(|&a, &b| class_drop[a].total_cmp(&class_drop[b]))
                .unwrap_or(0);
            pops.push(Population {
                units: members.clone(),
                top_classes,
                top_concepts,
                accuracy_drop: drop,
                most_hurt: (self.clf.classes[worst].clone(), class_drop[worst]),
                class_drop,
                indicator_sums: self
                    .indicators
                    .iter()
                    .map(|(n, v)| (n.clone(), members.iter().map(|&u| v[u]).sum()))
                    .collect(),
                flagged_by: flagged
                    .iter()
                    .filter(|(_, top)| members.iter().any(|&u| top[u]))
                    .map(|(n, _)| n.clone())
                    .collect(),
            });
        }
        let drops: Vec<f64> = pops.iter().map(|p| p.accuracy_drop).collect();
        let mut spearman_population = Vec::new();
        let mut spearman_unit = Vec::new();
        let mut unit_effect = vec![0.0; units];
        for p in &pops {
            for &u in &p.units {
                unit_effect[u] = p.accuracy_drop;
            }
        }
        for (i, (name, v)) in self.indicators.iter().enumerate() {
            let sums: Vec<f64> = pops.iter().map(|p| p.indicator_sums[i].1).collect();
            let r = if pops.len() >= 3 {
                spearman(&sums, &drops)?
            } else {
                None
            };
            spearman_population.push((name.clone(), r));
            spearman_unit.push((name.clone(), spearman(v, &unit_effect)?));
        }
        let mut sorted = drops.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
        let unflagged = pops
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.flagged_by.is_empty() && p.accuracy_drop > 0.0 && p.accuracy_drop >= median
            })
            .map(|(i, _)| i)
            .collect();
        Ok(Clustering {
            profile: profile.to_string(),
            columns,
            merges: tree.merges().iter().map(|m| (m.a, m.b, m.height)).collect(),
            count_rule,
            populations: pops,
            spearman_population,
            spearman_unit,
            unflagged,
        })
    }
}

fn tree_of(c: &Clustering, units: usize) -> Result<Dendrogram> {
    Dendrogram::new(
        units,
        c.merges
            .iter()
            .map(|&(a, b, height)| Merge { a, b, height })
            .collect(),
    )
}

/// The activation profiles (standardised per column) as a heat map, rows in the activation
/// tree's order.
pub fn activation_map(r: &PopulationReport) -> Result<Figure> {
    let rows: Vec<String> = (0..r.units).map(|u| format!("unit {u}")).collect();
    HeatMap::new(
        &format!("{}: activation profiles (standardised per column)", r.layer),
        &rows,
        &r.by_activation.columns,
        standardise_columns(&r.activation_profile),
    )
    .diverging()
    .labels(
        "activation (z over units)",
        "units",
        "classes, then concepts",
    )
    .row_tree(tree_of(&r.by_activation, r.units)?)
    .render()
}

/// The ablation profiles as a heat map, rows in the ablation tree's order.
pub fn ablation_map(r: &PopulationReport) -> Result<Figure> {
    let rows: Vec<String> = (0..r.units).map(|u| format!("unit {u}")).collect();
    let what = match r.importance_measure {
        ImportanceMeasure::AccuracyDrop => "balanced accuracy drop",
        ImportanceMeasure::LogProbDrop => "true-class log-probability drop (nats)",
    };
    HeatMap::new(
        &format!("{}: ablation profiles (each unit ablated alone)", r.layer),
        &rows,
        &r.classes,
        r.ablation_profile.clone(),
    )
    .diverging()
    .labels(what, "units", "classes")
    .row_tree(tree_of(&r.by_ablation, r.units)?)
    .render()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn clustering_html(c: &Clustering) -> String {
    let fmt = |v: &[(String, f64)]| {
        v.iter()
            .map(|(n, x)| format!("{} ({x:.2}×)", escape(n)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut s = format!(
        "<h2>Populations by {} profile</h2><p>Number of populations: {}.</p>\
         <table><tr><th>#</th><th>units</th><th>responds to (classes)</th><th>(concepts)</th>\
         <th>accuracy drop, all ablated</th><th>class hurt most</th><th>flagged by</th></tr>",
        escape(&c.profile),
        escape(&c.count_rule)
    );
    for (i, p) in c.populations.iter().enumerate() {
        let units: Vec<String> = p.units.iter().map(usize::to_string).collect();
        s.push_str(&format!(
            "<tr{}><td>{i}</td><td>{} ({})</td><td>{}</td><td>{}</td><td>{:.3}</td><td>{} ({:.3})</td><td>{}</td></tr>",
            if c.unflagged.contains(&i) { " class=\"unflagged\"" } else { "" },
            units.join(" "),
            p.units.len(),
            fmt(&p.top_classes),
            fmt(&p.top_concepts),
            p.accuracy_drop,
            escape(&p.most_hurt.0),
            p.most_hurt.1,
            if p.flagged_by.is_empty() { "none".to_string() } else { p.flagged_by.join(", ") },
        ));
    }
    s.push_str(
        "</table><p>Spearman ρ of each single-unit indicator with the population's effect: ",
    );
    let rho = |r: &Option<f64>| r.map_or("n/a".to_string(), |r| format!("{r:.3}"));
    let parts: Vec<String> = c
        .spearman_population
        .iter()
        .zip(&c.spearman_unit)
        .map(|((n, p), (_, u))| {
            format!(
                "{} — over populations {}, over units {}",
                escape(n),
                rho(p),
                rho(u)
            )
        })
        .collect();
    s.push_str(&parts.join("; "));
    s.push_str(".</p>");
    s
}

/// Writes `populations.json`, the two heat maps (`activation_profiles`, `ablation_profiles`
/// as SVG and PNG) and `populations.html` into `dir`; returns the JSON, PNG and HTML paths.
pub fn write_populations(r: &PopulationReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = vec![dir.join("populations.json")];
    write_json(&written[0], r)?;
    let act = activation_map(r)?;
    let abl = ablation_map(r)?;
    for (fig, stem) in [(&act, "activation_profiles"), (&abl, "ablation_profiles")] {
        fig.save(&dir.join(stem))?;
        written.push(dir.join(format!("{stem}.png")));
    }
    let body = format!(
        "<h1>Unit populations of {model}, {layer}</h1>\
         <p>{units} units; profiles and single-unit indicators on world scenes {train}, populations ablated on \
         held-out scenes {held} (accuracy with nothing ablated {base:.3}). Highlighted rows: populations whose \
         ablation costs at least the median population's while no single indicator (mean activation, class \
         selectivity, single-unit importance) puts any member in the layer's top {flag:.0}%.</p>{a}{b}",
        model = escape(&r.model),
        layer = escape(&r.layer),
        units = r.units,
        train = r.train_seeds,
        held = r.heldout_seeds,
        base = r.baseline_accuracy,
        flag = FLAG_SHARE * 100.0,
        a = clustering_html(&r.by_activation),
        b = clustering_html(&r.by_ablation),
    );
    let font = page_font_css(&[&act, &abl], &body)?;
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Unit populations: {} {}</title>{font}\
         <style>body{{font-family:'DejaVu Sans',sans-serif;margin:2em;max-width:1200px}}\
         table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 6px;vertical-align:top}}\
         tr.unflagged{{background:#fff3cd}}</style></head><body>{body}{}{}</body></html>",
        escape(&r.model),
        escape(&r.layer),
        act.inline_svg(),
        abl.inline_svg(),
    );
    let path = dir.join("populations.html");
    atomic_write(&path, html.as_bytes())?;
    written.push(path);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::vgg::{Normalization, VggConfig};
    use crate::world::SceneClass;
    use tch::{Tensor, nn};

    /// Unit `u`'s planted group: six groups of 11, 11, 11, 11, 10 and 10 units, interleaved so
    /// that no group is a run of neighbouring units.
    fn group(u: usize) -> usize {
        u % 6
    }

    /// A tiny VGG whose layers after conv5_3 read the planted groups: fc6's neuron j sums
    /// group j's units, fc7 passes it on, and fc8 turns it into class j's logit (scaled so that
    /// predictions are right but not saturated, and one unit's ablation moves them).
    fn planted_net() -> (nn::VarStore, Classifier) {
        let vs = nn::VarStore::new(Device::Cpu);
        let config = VggConfig::scaled(0.125, 2, 32, 6);
        let net = Vgg::trainable(&vs.root(), config, Normalization::imagenet());
        tch::no_grad(|| {
            for (name, mut t) in vs.variables() {
                let s = t.size();
                let v: Vec<f32> = match name.as_str() {
                    "classifier.0.weight" => (0..s[0] * s[1])
                        .map(|i| {
                            let (j, col) = (i / s[1], i % s[1]);
                            (j < 6 && group((col / 4) as usize) == j as usize) as i32 as f32
                        })
                        .collect(),
                    "classifier.3.weight" => (0..s[0] * s[1])
                        .map(|i| ((i / s[1] == i % s[1]) && i / s[1] < 6) as i32 as f32)
                        .collect(),
                    "classifier.6.weight" => (0..s[0] * s[1])
                        .map(|i| if i / s[1] == i % s[1] { 0.02 } else { 0.0 })
                        .collect(),
                    n if n.starts_with("classifier") => {
                        vec![0.0; s.iter().product::<i64>() as usize]
                    }
                    _ => continue,
                };
                t.copy_(&Tensor::from_slice(&v).view(s.as_slice()));
            }
        });
        let classes = SceneClass::PAINTED
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        let clf = Classifier::new(net, 32, classes, "planted").unwrap();
        (vs, clf)
    }

    /// Features at conv5_3 (`[B, 64, 2, 2]`): on an image of class c, group c's units fire
    /// near 2 and the others near 0.1 (small seeded jitter); every pixel shows concept c + 1.
    fn planted_probe(images_per_class: usize, seed: u64) -> Vec<ProbeBatch> {
        let mut rng = crate::prng::SplitMix64::new(seed);
        (0..2)
            .map(|_| {
                let b = 6 * images_per_class;
                let classes: Vec<i64> = (0..b as i64).map(|i| i % 6).collect();
                let mut v = Vec::with_capacity(b * 64 * 4);
                for &c in &classes {
                    for u in 0..64 {
                        let base = if group(u) == c as usize { 2.0 } else { 0.1 };
                        for _ in 0..4 {
                            v.push((base + 0.2 * rng.next_open01()) as f32);
                        }
                    }
                }
                let truths = Tensor::from_slice(&classes);
                ProbeBatch {
                    features: Tensor::from_slice(&v).view([b as i64, 64, 2, 2]),
                    concepts: (&truths + 1)
                        .view([-1, 1, 1])
                        .expand([-1, 2, 2], false)
                        .contiguous(),
                    truths,
                }
            })
            .collect()
    }

    fn as_sets(c: &Clustering) -> Vec<Vec<usize>> {
        let mut v: Vec<Vec<usize>> = c.populations.iter().map(|p| p.units.clone()).collect();
        v.sort();
        v
    }

    #[test]
    fn planted_groups_are_recovered_from_both_profiles() {
        let (_vs, clf) = planted_net();
        let cut = clf.conv_cut("conv5_3").unwrap();
        let train = planted_probe(4, 1);
        let held = planted_probe(4, 2);
        let mut want: Vec<Vec<usize>> = (0..6)
            .map(|g| (0..64).filter(|&u| group(u) == g).collect())
            .collect();
        want.sort();
        for count in [Some(6), None] {
            let r = populations_on(&clf, &cut, &train, &held, count, 16).unwrap();
            assert_eq!(r.baseline_accuracy, 1.0);
            assert_eq!(r.importance_measure, ImportanceMeasure::LogProbDrop);
            assert_eq!(as_sets(&r.by_activation), want, "activation, {count:?}");
            assert_eq!(as_sets(&r.by_ablation), want, "ablation, {count:?}");
            // each population responds to its own class and concept, and its ablation hurts
            // that class most
            for p in &r.by_activation.populations {
                let g = group(p.units[0]);
                assert_eq!(p.top_classes[0].0, clf.classes[g]);
                assert_eq!(p.top_concepts[0].0, CONCEPTS[g + 1]);
                assert_eq!(p.most_hurt.0, clf.classes[g]);
                assert!(p.accuracy_drop > 0.1, "{}", p.accuracy_drop);
            }
        }
        let err = populations_on(&clf, &cut, &train, &held, Some(65), 16).unwrap_err();
        assert!(err.to_string().contains("between 1 and"), "{err}");
    }

    #[test]
    fn clustering_cuts_and_silhouettes_follow_their_definitions() {
        // two tight pairs far apart: 0 ~ 2 and 1 ~ 3
        let rows = vec![
            vec![1.0, 2.0, 3.0, 4.0],
            vec![4.0, 3.0, 2.0, 1.0],
            vec![1.0, 2.0, 3.0, 4.5],
            vec![4.0, 3.0, 2.0, 0.5],
        ];
        let tree = cluster(&rows).unwrap();
        assert_eq!(cut_tree(&tree, 2).len(), 2);
        let mut two = cut_tree(&tree, 2);
        two.sort();
        assert_eq!(two, vec![vec![0, 2], vec![1, 3]]);
        assert_eq!(cut_tree(&tree, 4).len(), 4);
        assert!(tree.merges()[0].height < 0.05 && tree.merges()[2].height > 1.9);
        let d = correlation_distances(&rows);
        assert!(silhouette(&d, &two) > 0.9);
        assert!(silhouette(&d, &[vec![0, 1], vec![2, 3]]) < 0.0);
    }
}
