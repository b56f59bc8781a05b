//! The land layers: mountain ranges with snow caps, the ground, lakes and seas, and roads.

use super::SIZE;
use super::concepts::{MOUNTAIN, ROAD, SNOW, WATER};
use super::light::{Light, TimeOfDay, jitter, mix, scale};
use super::raster::{Canvas, Rgb};
use crate::prng::SplitMix64;

/// Side length as a signed coordinate.
const N: i32 = SIZE as i32;

/// A per-column row position (a silhouette or a shore line).
pub type Profile = [i32; SIZE];

/// A line wandering around `base` by at most `amp` rows, changing by at most one row per
/// column.
pub fn wavy_line(rng: &mut SplitMix64, base: i32, amp: i32) -> Profile {
    let mut line = [base; SIZE];
    let mut y = base + rng.range(-amp, amp);
    let mut dir = if rng.chance(0.5) { 1 } else { -1 };
    for v in line.iter_mut() {
        *v = y;
        if rng.chance(0.3) {
            dir = -dir;
        }
        if rng.chance(0.5) {
            y = (y + dir).clamp(base - amp, base + amp);
        }
    }
    line
}

/// Settings of one mountain range.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    /// Row of the range's foot (the horizon it stands on).
    pub foot: i32,
    /// Highest row a peak may reach.
    pub highest: i32,
    /// Whether the peaks carry snow caps.
    pub snowy: bool,
    /// A far range is paler and bluer.
    pub far: bool,
}

/// Draws a range of two to four peaks (jagged or smooth) standing on `range.foot`, shaded on
/// the side away from the light, with snow caps labelled snow when `range.snowy`.
pub fn mountains(canvas: &mut Canvas, rng: &mut SplitMix64, light: &Light, range: Range) {
    let peaks = rng.range(2, 4) as usize;
    let jagged = rng.chance(0.6);
    let mut px = [0f32; 4];
    let mut py = [0f32; 4];
    let mut slope = [0f32; 4];
    let low = (range.foot - 6).max(range.highest + 1);
    for i in 0..peaks {
        px[i] = (i as f32 + rng.uniform(0.1, 0.9)) * (N as f32 + 16.0) / peaks as f32 - 8.0;
        py[i] = rng.range(range.highest, low) as f32;
        slope[i] = rng.uniform(0.6, 1.3);
    }
    let mut top = [0i32; SIZE];
    let mut owner = [0usize; SIZE];
    let mut wobble = 0i32;
    for x in 0..SIZE {
        let xc = x as f32 + 0.5;
        let mut best = f32::INFINITY;
        for i in 0..peaks {
            let d = (xc - px[i]).abs();
            let y = if jagged {
                py[i] + d * slope[i]
            } else {
                py[i] + d * d * slope[i] * 0.045
            };
            if y < best {
                best = y;
                owner[x] = i;
            }
        }
        if jagged && rng.chance(0.45) {
            wobble = (wobble + rng.range(-1, 1)).clamp(-1, 1);
        }
        top[x] = (best.round() as i32 + if jagged { wobble } else { 0 }).min(range.foot);
    }
    let palette: [Rgb; 3] = [
        [105.0, 110.0, 130.0],
        [120.0, 104.0, 92.0],
        [92.0, 108.0, 100.0],
    ];
    let rock = rng.pick(&palette);
    let mut rock = jitter(rng, rock, 10.0);
    let sky_haze: Rgb = match light.time {
        TimeOfDay::Evening => [170.0, 130.0, 150.0],
        _ => [170.0, 190.0, 215.0],
    };
    if range.far {
        rock = mix(rock, sky_haze, 0.4);
    }
    let mut snow: Rgb = jitter(rng, [238.0, 243.0, 252.0], 5.0);
    if range.far {
        snow = mix(snow, sky_haze, 0.2);
    }
    let depth: Vec<f32> = (0..peaks).map(|_| rng.uniform(4.0, 9.0)).collect();
    let mut snow_edge = [0i32; SIZE];
    let mut jag = 0;
    for x in 0..SIZE {
        if rng.chance(0.5) {
            jag = (jag + rng.range(-1, 1)).clamp(-2, 2);
        }
        let i = owner[x];
        let capped = range.snowy && py[i] < (range.foot - 10) as f32;
        snow_edge[x] = if capped {
            (py[i] + depth[i]).round() as i32 + jag
        } else {
            i32::MIN
        };
    }
    let bottom = [range.foot; SIZE];
    canvas.columns(&top, &bottom, MOUNTAIN, |x, y| {
        let i = owner[x as usize];
        let side = light.side(light.lit_side(x as f32 + 0.5, px[i]));
        let fade = (y - top[x as usize]) as f32 / (range.foot - top[x as usize]).max(1) as f32;
        scale(mix(rock, scale(rock, 0.85), fade), side)
    });
    for x in 0..N {
        for y in top[x as usize]..snow_edge[x as usize].min(range.foot) {
            let i = owner[x as usize];
            let lit = light.lit_side(x as f32 + 0.5, px[i]);
            let c = if lit {
                snow
            } else {
                mix(snow, [150.0, 165.0, 200.0], 0.3)
            };
            canvas.put(x, y, SNOW, c);
        }
    }
}

/// Fills everything from `horizon` down with ground of concept `label` (grass, sand or snow),
/// slightly paler towards the horizon.
pub fn ground(canvas: &mut Canvas, rng: &mut SplitMix64, light: &Light, horizon: i32, label: u8) {
    let base: Rgb = match label {
        super::concepts::GRASS => rng.pick(&[
            [80.0, 150.0, 55.0],
            [100.0, 160.0, 60.0],
            [70.0, 135.0, 65.0],
        ]),
        super::concepts::SAND => [228.0, 204.0, 150.0],
        _ => [236.0, 241.0, 250.0],
    };
    let near = jitter(rng, base, 8.0);
    let far = mix(
        near,
        if light.time == TimeOfDay::Evening {
            [220.0, 180.0, 150.0]
        } else {
            [200.0, 215.0, 220.0]
        },
        0.25,
    );
    let span = (N - horizon).max(1) as f32;
    canvas.rect(0, horizon, N, N, label, |_, y| {
        mix(far, near, ((y - horizon) as f32 / span * 2.0).min(1.0))
    });
}

/// Fills water from `horizon` down to `shore[x]` (exclusive) in each column: paler at the
/// horizon, with a few light ripples; a foam line at the shore when `foam`. Where the canvas
/// above the horizon shows one of `mirror` (for example mountains), the water shows a dim
/// reflection.
pub fn water(
    canvas: &mut Canvas,
    rng: &mut SplitMix64,
    light: &Light,
    horizon: i32,
    shore: &Profile,
    foam: bool,
    mirror: &[u8],
) {
    let deep = jitter(rng, [35.0, 95.0, 160.0], 10.0);
    let pale = match light.time {
        TimeOfDay::Evening => mix(deep, [230.0, 160.0, 120.0], 0.45),
        _ => mix(deep, [170.0, 205.0, 235.0], 0.5),
    };
    let mut reflect = [[false; SIZE]; SIZE / 2];
    for x in 0..N {
        for d in 0..(SIZE as i32 / 2) {
            let above = horizon - 1 - d;
            reflect[d as usize][x as usize] = mirror.contains(&canvas.label(x, above));
        }
    }
    let bottom = shore;
    let top = [horizon; SIZE];
    canvas.columns(&top, bottom, WATER, |x, y| {
        let t = ((y - horizon) as f32 / 12.0).min(1.0);
        let c = mix(pale, deep, t);
        let d = (y - horizon) as usize;
        if d < SIZE / 2 && reflect[d][x as usize] {
            scale(c, 0.82)
        } else {
            c
        }
    });
    let ripples = rng.range(3, 8);
    for _ in 0..ripples {
        let y = rng.range(horizon + 2, horizon + 14);
        let x0 = rng.range(0, N - 4);
        let len = rng.range(3, 6);
        for x in x0..(x0 + len).min(N) {
            if y < shore[x as usize] - 1 && canvas.label(x, y) == WATER {
                let c = canvas.colour(x, y);
                canvas.put(x, y, WATER, mix(c, [220.0, 235.0, 250.0], 0.25));
            }
        }
    }
    if foam {
        for x in 0..N {
            let y = shore[x as usize] - 1;
            if y > horizon {
                canvas.put(x, y, WATER, [225.0, 235.0, 240.0]);
            }
        }
    }
}

/// Settings of a road running from the bottom edge towards a far point.
#[derive(Debug, Clone, Copy)]
pub struct Road {
    /// Column of the road's centre at the bottom edge.
    pub bottom_x: f32,
    /// Half width at the bottom edge.
    pub bottom_half: f32,
    /// Column of the road's centre at its far end.
    pub far_x: f32,
    /// Half width at its far end.
    pub far_half: f32,
    /// Row of the far end.
    pub far_y: i32,
    /// Sideways bulge of the road's middle (a winding road), in columns.
    pub bend: f32,
}

/// A road surface colour: tarmac grey, or a dirt track.
pub fn road_colour(rng: &mut SplitMix64, dirt: bool) -> Rgb {
    let base = if dirt {
        [150.0, 125.0, 95.0]
    } else {
        [112.0, 110.0, 108.0]
    };
    jitter(rng, base, 10.0)
}

/// Draws a road in perspective from the bottom edge up to `road.far_y`, darker at the edges.
pub fn road(canvas: &mut Canvas, road: Road, colour: Rgb) {
    for y in road.far_y..N {
        let t = (y - road.far_y) as f32 / (N - 1 - road.far_y).max(1) as f32;
        let centre =
            road.far_x + (road.bottom_x - road.far_x) * t + road.bend * 4.0 * t * (1.0 - t);
        let half = road.far_half + (road.bottom_half - road.far_half) * t;
        let x0 = (centre - half).round() as i32;
        let x1 = ((centre + half).round() as i32).max(x0 + 1);
        canvas.span(y, x0, x1, ROAD, &mut |x, _| {
            let edge = (x - x0).min(x1 - 1 - x);
            if edge == 0 {
                scale(colour, 0.9)
            } else {
                colour
            }
        });
    }
}

/// Draws a horizontal street band on rows `y0..y1`.
pub fn street(canvas: &mut Canvas, y0: i32, y1: i32, colour: Rgb) {
    canvas.rect(0, y0, N, y1, ROAD, |_, y| {
        if y == y0 { scale(colour, 0.92) } else { colour }
    });
}

/// Sprinkles the sun's glitter on the water below column `sun_x`: light pixels in a column
/// that widens towards the shore.
pub fn glitter(
    canvas: &mut Canvas,
    rng: &mut SplitMix64,
    sun_x: f32,
    horizon: i32,
    shore: &Profile,
) {
    for y in horizon..N {
        let half = 1.0 + (y - horizon) as f32 * 0.3;
        for x in (sun_x - half).round() as i32..(sun_x + half).round() as i32 {
            if (0..N).contains(&x)
                && y < shore[x as usize] - 1
                && canvas.label(x, y) == WATER
                && rng.chance(0.35)
            {
                let c = canvas.colour(x, y);
                canvas.put(x, y, WATER, mix(c, [255.0, 240.0, 200.0], 0.45));
            }
        }
    }
}
