//! Time estimates before long work: images/s measured on the first batches, turned into the
//! expected time of each pass, of this shard and of the whole run, so that a user knows early
//! whether to shard the run or move it to a GPU.

use super::passes::Shard;
use std::time::Instant;

/// Batches after the first (a warm-up, left out) that a rate is measured over.
pub const MEASURED_BATCHES: u64 = 2;
/// Seconds after the warm-up after which one measured batch is enough.
pub const MEASURE_SECONDS: f64 = 10.0;

/// Measures images/s over the batches after the first.
#[derive(Debug)]
pub struct RateMeter {
    since: Option<Instant>,
    last: Option<Instant>,
    batches: u64,
    images: u64,
}

impl RateMeter {
    /// A meter that has seen no batch.
    pub fn new() -> Self {
        Self {
            since: None,
            last: None,
            batches: 0,
            images: 0,
        }
    }

    /// Records a finished batch of `images`; the first only starts the clock.
    pub fn batch_done(&mut self, images: u64) {
        match self.since {
            None => self.since = Some(Instant::now()),
            Some(_) => {
                self.batches += 1;
                self.images += images;
                self.last = Some(Instant::now());
            }
        }
    }

    /// The measured rate once enough batches are in ([`MEASURED_BATCHES`], or one taking
    /// [`MEASURE_SECONDS`]), else `None`.
    pub fn rate(&self) -> Option<f64> {
        let seconds = self.seconds()?;
        let enough = self.batches >= MEASURED_BATCHES || seconds >= MEASURE_SECONDS;
        enough.then(|| self.images as f64 / seconds)
    }

    /// The rate over every batch after the first, once there is one.
    pub fn final_rate(&self) -> Option<f64> {
        Some(self.images as f64 / self.seconds()?)
    }

    fn seconds(&self) -> Option<f64> {
        let s = self.last?.duration_since(self.since?).as_secs_f64();
        (s > 0.0).then_some(s)
    }

    /// Images measured so far (after the warm-up).
    pub fn images(&self) -> u64 {
        self.images
    }
}

impl Default for RateMeter {
    fn default() -> Self {
        Self::new()
    }
}

/// A dissection's expected time, from measured rates.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Images of the whole run.
    pub samples: u64,
    /// The shard this plan is for.
    pub shard: Shard,
    /// Images of this shard.
    pub shard_images: u64,
    /// Pass 1 images/s (forward, upsampling, quantile sketch, top images).
    pub pass1_rate: f64,
    /// Pass 2 images/s (forward, segmentation, upsampling, IoU tallies).
    pub pass2_rate: f64,
    /// Images each rate was measured on.
    pub measured_images: u64,
}

impl Plan {
    /// Expected seconds of pass `pass` (1 or 2) of this shard.
    pub fn pass_seconds(&self, pass: u8) -> f64 {
        let rate = if pass == 1 {
            self.pass1_rate
        } else {
            self.pass2_rate
        };
        self.shard_images as f64 / rate
    }

    /// Expected seconds of this shard (both passes).
    pub fn shard_seconds(&self) -> f64 {
        self.pass_seconds(1) + self.pass_seconds(2)
    }

    /// Expected machine time of the whole run (every shard, on machines like this one).
    pub fn total_seconds(&self) -> f64 {
        self.samples as f64 / self.pass1_rate + self.samples as f64 / self.pass2_rate
    }

    /// The plan as lines for a person.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec![
            format!(
                "measured on {} images per pass: pass 1 {:.2} images/s, pass 2 {:.2} images/s",
                self.measured_images, self.pass1_rate, self.pass2_rate
            ),
            format!(
                "pass 1: {} for {} images",
                duration(self.pass_seconds(1)),
                self.shard_images
            ),
            format!(
                "pass 2: {} for {} images",
                duration(self.pass_seconds(2)),
                self.shard_images
            ),
        ];
        if self.shard.count > 1 {
            lines.push(format!(
                "shard {}: {} (both passes); all {} shards: {} of machine time, about {} each \
                 when they run at once on machines like this",
                self.shard,
                duration(self.shard_seconds()),
                self.shard.count,
                duration(self.total_seconds()),
                duration(self.shard_seconds())
            ));
        } else {
            lines.push(format!(
                "whole run: {} for {} images (--shard i/N splits it across machines)",
                duration(self.total_seconds()),
                self.samples
            ));
        }
        lines
    }
}

/// A duration for a person: `42 s`, `3 min 20 s`, `2 h 05 min`, `3 d 04 h`.
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "an unknown time".into();
    }
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        3600..86400 => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {:02} h", s / 86400, (s % 86400) / 3600),
    }
}

/// What the run prints once a pass's rate is measured: the rate, the time left in this pass,
/// and for pass 1 the expected pass 2 (each image also segmented, `seg_seconds` an image as
/// measured on the first image) and the shard's total.
pub fn running_estimate(
    pass: u8,
    rate: f64,
    left: u64,
    shard_images: u64,
    seg_seconds: Option<f64>,
) -> String {
    let this = left as f64 / rate;
    let mut line = format!(
        "pass {pass}: {rate:.2} images/s measured; about {} left in this pass ({left} images)",
        duration(this)
    );
    if pass == 1
        && let Some(seg) = seg_seconds
    {
        let pass2 = shard_images as f64 * (1.0 / rate + seg);
        line.push_str(&format!(
            "; pass 2 about {} (it also segments each image, {seg:.3} s on the first one), \
             about {} in all",
            duration(pass2),
            duration(this + pass2)
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(42.4), "42 s");
        assert_eq!(duration(200.0), "3 min 20 s");
        assert_eq!(duration(2.0 * 3600.0 + 5.0 * 60.0), "2 h 05 min");
        assert_eq!(duration(3.0 * 86400.0 + 4.0 * 3600.0), "3 d 04 h");
        assert_eq!(duration(f64::NAN), "an unknown time");
    }

    #[test]
    fn a_plan_adds_up_per_pass_shard_and_run() {
        let plan = Plan {
            samples: 10_000,
            shard: Shard { index: 3, count: 4 },
            shard_images: 2500,
            pass1_rate: 50.0,
            pass2_rate: 0.25,
            measured_images: 64,
        };
        assert_eq!(plan.pass_seconds(1), 50.0);
        assert_eq!(plan.pass_seconds(2), 10_000.0);
        assert_eq!(plan.shard_seconds(), 10_050.0);
        assert_eq!(plan.total_seconds(), 200.0 + 40_000.0);
        let text = plan.describe().join("\n");
        assert!(text.contains("shard 3/4: 2 h 47 min"), "{text}");
        assert!(text.contains("all 4 shards: 11 h 10 min"), "{text}");
    }

    #[test]
    fn the_meter_leaves_out_the_first_batch() {
        let mut m = RateMeter::new();
        m.batch_done(32);
        assert_eq!(m.rate(), None);
        m.batch_done(32);
        assert_eq!(m.rate(), None);
        assert!(m.final_rate().is_some());
        m.batch_done(16);
        assert_eq!(m.images(), 48);
        let r = m.rate().expect("two batches after the warm-up");
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(m.rate(), Some(r), "the rate is taken at the last batch");
    }

    #[test]
    fn the_running_estimate_adds_pass_two_from_the_segmenter_time() {
        let line = running_estimate(1, 10.0, 900, 1000, Some(0.4));
        assert!(line.contains("about 1 min 30 s left"), "{line}");
        // pass 2: 1000 × (0.1 + 0.4) s
        assert!(line.contains("pass 2 about 8 min 20 s"), "{line}");
        assert!(line.contains("about 9 min 50 s in all"), "{line}");
        assert!(!running_estimate(2, 10.0, 900, 1000, Some(0.4)).contains("pass 2 about"));
    }
}
