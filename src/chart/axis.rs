//! Axes: what an analysis says about an axis (its label with units, linear, base-2 log or
//! categories, an optional fixed range or ticks), and how that resolves against the data into a
//! range, tick positions and tick labels.

/// How values are placed along an axis.
#[derive(Clone, Debug, PartialEq)]
pub enum Scale {
    /// Evenly.
    Linear,
    /// By their base-2 logarithm (values must be positive).
    Log2,
    /// One slot per name; value `i` is the centre of slot `i`.
    Categories(Vec<String>),
}

/// One axis of a chart: its label (name and unit, e.g. `"tree pixels removed (%)"`), its scale,
/// and optionally a fixed range and tick positions (chosen from the data otherwise).
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    /// Axis label, with the unit in parentheses.
    pub label: String,
    /// Placement of values.
    pub scale: Scale,
    /// Shown range; from the data (with a margin) when `None`.
    pub range: Option<(f64, f64)>,
    /// Tick positions; round numbers inside the range when `None`.
    pub ticks: Option<Vec<f64>>,
}

impl Axis {
    /// A linear axis.
    pub fn linear(label: &str) -> Self {
        Self {
            label: label.to_string(),
            scale: Scale::Linear,
            range: None,
            ticks: None,
        }
    }

    /// A base-2 logarithmic axis (ticks at the powers of two in range unless given).
    pub fn log2(label: &str) -> Self {
        Self {
            scale: Scale::Log2,
            ..Self::linear(label)
        }
    }

    /// A categorical axis: `names[i]` labels position `i`.
    pub fn categories(label: &str, names: &[String]) -> Self {
        Self {
            scale: Scale::Categories(names.to_vec()),
            ..Self::linear(label)
        }
    }

    /// Fixes the range shown.
    pub fn range(mut self, lo: f64, hi: f64) -> Self {
        self.range = Some((lo.min(hi), lo.max(hi)));
        self
    }

    /// Fixes the tick positions.
    pub fn ticks(mut self, ticks: &[f64]) -> Self {
        self.ticks = Some(ticks.to_vec());
        self
    }

    /// Resolves the axis against the data values it must show (non-finite ones ignored);
    /// `from_zero` keeps zero in range without a margin beyond it (bars).
    pub(crate) fn resolve(&self, data: &[f64], from_zero: bool) -> Resolved {
        let finite = data.iter().copied().filter(|v| v.is_finite());
        match &self.scale {
            Scale::Categories(names) => {
                let n = names.len().max(1) as f64;
                Resolved {
                    lo: -0.5,
                    hi: n - 0.5,
                    ticks: (0..names.len()).map(|i| i as f64).collect(),
                    labels: names.clone(),
                    log2: false,
                    categorical: true,
                }
            }
            Scale::Log2 => {
                let pos: Vec<f64> = finite.filter(|v| *v > 0.0).collect();
                let (lo, hi) = self.range.unwrap_or_else(|| {
                    let lo = pos.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = pos.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    if lo.is_finite() { (lo, hi) } else { (1.0, 2.0) }
                });
                let (l2lo, l2hi) = (lo.max(1e-300).log2(), hi.max(1e-300).log2());
                let pad = ((l2hi - l2lo) * 0.05).max(0.1);
                let (a, b) = if self.range.is_some() {
                    (l2lo, l2hi)
                } else {
                    (l2lo - pad, l2hi + pad)
                };
                let ticks: Vec<f64> = match &self.ticks {
                    Some(t) => t.iter().filter(|v| **v > 0.0).copied().collect(),
                    None => (l2lo.ceil() as i32..=l2hi.floor() as i32)
                        .map(|e| 2f64.powi(e))
                        .collect(),
                };
                let labels = ticks.iter().map(|&t| number(t, t)).collect();
                Resolved {
                    lo: a,
                    hi: b,
                    ticks: ticks.iter().map(|t| t.log2()).collect(),
                    labels,
                    log2: true,
                    categorical: false,
                }
            }
            Scale::Linear => {
                let values: Vec<f64> = finite.collect();
                let (lo, hi) = self.range.unwrap_or_else(|| {
                    let mut lo = values.iter().copied().fold(f64::INFINITY, f64::min);
                    let mut hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    if !lo.is_finite() {
                        (lo, hi) = (0.0, 1.0);
                    }
                    if from_zero {
                        lo = lo.min(0.0);
                        hi = hi.max(0.0);
                    }
                    if hi - lo < 1e-12 {
                        (lo, hi) = (lo - 0.5, hi + 0.5);
                    }
                    let pad = (hi - lo) * 0.05;
                    let lo = if from_zero && lo == 0.0 {
                        0.0
                    } else {
                        lo - pad
                    };
                    let hi = if from_zero && hi == 0.0 {
                        0.0
                    } else {
                        hi + pad
                    };
                    (lo, hi)
                });
                let ticks = self.ticks.clone().unwrap_or_else(|| nice_ticks(lo, hi));
                let step = ticks
                    .windows(2)
                    .map(|w| (w[1] - w[0]).abs())
                    .fold(f64::INFINITY, f64::min);
                let step = if step.is_finite() { step } else { hi - lo };
                let labels = ticks.iter().map(|&t| number(t, step)).collect();
                Resolved {
                    lo,
                    hi,
                    ticks,
                    labels,
                    log2: false,
                    categorical: false,
                }
            }
        }
    }
}

/// An axis resolved against its data: the range and ticks in plot coordinates (log2 of the
/// value on a log axis) and the tick labels.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    pub lo: f64,
    pub hi: f64,
    pub ticks: Vec<f64>,
    pub labels: Vec<String>,
    pub log2: bool,
    pub categorical: bool,
}

impl Resolved {
    /// A data value in plot coordinates (not finite for values a log axis cannot show).
    pub fn pos(&self, v: f64) -> f64 {
        match (self.log2, v > 0.0) {
            (false, _) => v,
            (true, true) => v.log2(),
            (true, false) => f64::NAN,
        }
    }

    /// The label of the tick at plot coordinate `p` (empty if there is none there).
    pub fn label_at(&self, p: f64) -> String {
        let tol = (self.hi - self.lo).abs() * 1e-9;
        self.ticks
            .iter()
            .position(|t| (t - p).abs() <= tol)
            .and_then(|i| self.labels.get(i).cloned())
            .unwrap_or_default()
    }
}

/// Round tick values covering `[min, max]` (steps of 1, 2, 2.5 or 5 × 10ⁿ, 4 to 8 ticks).
pub fn nice_ticks(min: f64, max: f64) -> Vec<f64> {
    let span = (max - min).abs().max(1e-12);
    let raw = span / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw * 0.999)
        .unwrap_or(10.0 * mag);
    let mut out = Vec::new();
    let mut i = (min / step - 1e-9).ceil();
    while i * step <= max + step * 1e-9 {
        let t = i * step;
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        i += 1.0;
    }
    out
}

/// `v` written with as many decimals as ticks `step` apart need (every tick of an axis gets the
/// same number, as in matplotlib), with a true minus sign.
pub fn number(v: f64, step: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e6 || v.abs() < 1e-4) {
        return format!("{v:.1e}").replace('-', "\u{2212}");
    }
    let decimals = if step > 0.0 && step.is_finite() {
        (0..6)
            .find(|&d| {
                let s = step * 10f64.powi(d);
                (s - s.round()).abs() < 1e-6 * s.max(1.0)
            })
            .unwrap_or(6) as usize
    } else {
        3
    };
    let s = format!("{v:.decimals$}");
    if s.trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        return s.trim_start_matches('-').to_string();
    }
    s.replace('-', "\u{2212}")
}
