//! Writes world samples and prints their statistics and the render time.
//!
//! `cargo run --release --example world_samples -- 0..64 out/world`

use anyhow::{Context, Result, bail};
use gandissect::world::{SceneClass, render, render_class, write_samples};
use std::time::Instant;

fn parse_range(text: &str) -> Result<std::ops::Range<u64>> {
    let Some((a, b)) = text.split_once("..") else {
        bail!("seed range {text:?} is not of the form START..END, e.g. 0..64");
    };
    Ok(a.parse().context("range start")?..b.parse().context("range end")?)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let seeds = parse_range(args.get(1).map_or("0..64", String::as_str))?;
    let out = std::path::PathBuf::from(args.get(2).map_or("out/world", String::as_str));
    let summary = write_samples(seeds.clone(), &out)?;
    for c in &summary.concepts {
        println!(
            "{:>9} {:>8} {:6.2}% of pixels, in {:5.1}% of scenes",
            c.name,
            c.category,
            100.0 * c.fraction,
            100.0 * c.present_in
        );
    }
    for c in &summary.classes {
        println!("{:>10} {}", c.class, c.count);
    }
    let n = 20_000u64;
    let start = Instant::now();
    let mut checksum = 0u64;
    for seed in 0..n {
        checksum = checksum.wrapping_add(u64::from(render(seed).rgb[0]));
    }
    let per = start.elapsed().as_secs_f64() / n as f64;
    println!(
        "render: {:.1} µs per scene over {n} seeds (checksum {checksum})",
        per * 1e6
    );
    for class in SceneClass::ALL {
        let start = Instant::now();
        for seed in 0..2000 {
            checksum = checksum.wrapping_add(u64::from(render_class(seed, class).rgb[0]));
        }
        let per = start.elapsed().as_secs_f64() / 2000.0;
        println!("  {:>10}: {:.1} µs per scene", class.name(), per * 1e6);
    }
    if let Some(zoom) = args.get(3) {
        let sheet = image::open(out.join("contact_sheet.png"))?.to_rgb8();
        let rows: u32 = zoom.parse().context("zoom rows")?;
        let crop = image::imageops::crop_imm(&sheet, 0, 0, sheet.width() / 2, rows * 76).to_image();
        let big = image::imageops::resize(
            &crop,
            crop.width() * 3,
            crop.height() * 3,
            image::imageops::FilterType::Nearest,
        );
        big.save(out.join("zoom.png"))?;
    }
    println!("wrote {}", out.display());
    Ok(())
}
