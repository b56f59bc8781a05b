//! Measures how fast the statistics absorb dissection-sized streams on this machine.
//!
//! `cargo run --release --example quantile_throughput [rows] [batch]` prints rows per second
//! for the quantile sketch and top-k at 256 and 512 columns (default 10,000,000 rows in
//! batches of 50,000). A few distinct random batches are cycled so that generating data does
//! not dominate the timing.

use std::time::Instant;

use anyhow::Result;
use gandissect::stats::{RunningQuantile, RunningTopK};
use tch::{Device, Kind, Tensor};

fn main() -> Result<()> {
    let args: Vec<i64> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let rows = args.first().copied().unwrap_or(10_000_000);
    let batch = args.get(1).copied().unwrap_or(50_000);
    tch::manual_seed(1);
    for columns in [256i64, 512] {
        let pool: Vec<Tensor> = (0..4)
            .map(|_| Tensor::randn([batch, columns], (Kind::Float, Device::Cpu)).exp())
            .collect();
        // The floor: one pass computing per-column minimum and maximum.
        let start = Instant::now();
        let mut done = 0;
        while done < rows {
            let len = batch.min(rows - done);
            let x = pool[(done / batch) as usize % pool.len()].narrow(0, 0, len);
            let _ = (x.amin(0, false), x.amax(0, false));
            done += len;
        }
        let floor = start.elapsed().as_secs_f64();
        println!(
            "min/max pass C={columns}: {:.0} rows/s",
            rows as f64 / floor
        );
        let mut sketch = RunningQuantile::new(2048, 1, Device::Cpu)?;
        let start = Instant::now();
        let mut done = 0;
        while done < rows {
            let len = batch.min(rows - done);
            sketch.add(&pool[(done / batch) as usize % pool.len()].narrow(0, 0, len))?;
            done += len;
        }
        let q = sketch.quantiles(&[0.99])?;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "quantile sketch C={columns}: {rows} rows in {secs:.2} s = {:.0} rows/s ({:.0} M values/s); retained {} per column; q99[0] = {:.3}",
            rows as f64 / secs,
            rows as f64 * columns as f64 / secs / 1e6,
            sketch.retained(),
            q.double_value(&[0, 0])
        );
        let mut topk = RunningTopK::new(100, Device::Cpu)?;
        let start = Instant::now();
        let mut done = 0;
        while done < rows {
            let len = batch.min(rows - done);
            topk.add(
                &pool[(done / batch) as usize % pool.len()].narrow(0, 0, len),
                done,
            )?;
            done += len;
        }
        let secs = start.elapsed().as_secs_f64();
        println!("top-100 C={columns}: {:.0} rows/s", rows as f64 / secs);
    }
    Ok(())
}
