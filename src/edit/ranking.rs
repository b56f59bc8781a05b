//! How the units an intervention sets are chosen: the concept's top units by IoU from the
//! dissection (the PNAS criterion), or units chosen by their ablation effect on the concept
//! ([`super::unit_effect`]). Plain options, shared by stroke planning and the removal curve.

/// Images the effects are measured on by default.
pub const DEFAULT_EFFECT_SAMPLES: u64 = 100;

/// The first image id of the effect measurement by default, clear of the ids `0..N` measured
/// by the removal curves, the context table and the cached dissection.
pub const DEFAULT_EFFECT_FIRST_ID: u64 = 100_000;

/// Units chosen per round by default (1 is plain greedy selection).
pub const DEFAULT_EFFECT_STEP: usize = 2;

/// Candidates after the first round by default: the units with the largest single effects.
pub const DEFAULT_EFFECT_POOL: usize = 48;

/// How units are chosen.
#[derive(Clone, Debug, Default)]
pub enum UnitRanking {
    /// The concept's top units by IoU, from the dissection.
    #[default]
    Iou,
    /// Units chosen by their effect on the concept with these options (their concept is
    /// replaced by the one the units are chosen for); keep their images clear of the images an
    /// analysis measures.
    Effect(EffectOptions),
}

impl UnitRanking {
    /// `iou` or `effect`.
    pub fn name(&self) -> &'static str {
        match self {
            UnitRanking::Iou => "iou",
            UnitRanking::Effect(_) => "effect",
        }
    }
}

/// What the effects are measured on and how the work is batched.
#[derive(Clone, Debug)]
pub struct EffectOptions {
    /// The concept whose pixels are counted.
    pub concept: String,
    /// The first image id.
    pub first_id: u64,
    /// Images: ids `first_id .. first_id + samples`.
    pub samples: u64,
    /// Units added to the ranking per round.
    pub step: usize,
    /// Candidates after the first round: the units with the largest single effects.
    pub pool: usize,
    /// Images per prefix forward.
    pub batch: usize,
    /// Ablated copies per suffix forward.
    pub copies: usize,
    /// Show a progress bar.
    pub progress: bool,
}

impl EffectOptions {
    /// The defaults for `concept`: 100 images from id 100,000, 2 units a round from a pool of
    /// 48, 25 images × 8 copies a forward.
    pub fn new(concept: &str) -> Self {
        Self {
            concept: concept.to_string(),
            first_id: DEFAULT_EFFECT_FIRST_ID,
            samples: DEFAULT_EFFECT_SAMPLES,
            step: DEFAULT_EFFECT_STEP,
            pool: DEFAULT_EFFECT_POOL,
            batch: 25,
            copies: 8,
            progress: false,
        }
    }

    /// The same options for `concept`.
    pub fn for_concept(&self, concept: &str) -> Self {
        Self {
            concept: concept.to_string(),
            ..self.clone()
        }
    }

    /// The image ids measured: `first_id .. first_id + samples`.
    pub fn ids(&self) -> std::ops::Range<u64> {
        self.first_id..self.first_id.saturating_add(self.samples)
    }
}
