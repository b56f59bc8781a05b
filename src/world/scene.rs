//! Scene composition: for each class, which objects appear, where, and in which order
//! (painter's algorithm: sky, mountains, ground, water, roads, far trees, buildings, near trees).

use super::SIZE;
use super::buildings::{
    Church, Footprint, House, Kind, RoofShape, Style, Wall, draw_church, draw_house,
};
use super::class::SceneClass;
use super::concepts::{GRASS, MOUNTAIN, SAND, SNOW};
use super::light::{Light, TimeOfDay};
use super::raster::Canvas;
use super::sky::{clouds, sky, sun};
use super::terrain::{
    Range, Road, glitter, ground, mountains, road, road_colour, street, water, wavy_line,
};
use super::trees::{Tree, TreeKind, draw_tree};
use crate::prng::SplitMix64;

/// Side length as a signed coordinate.
const N: i32 = SIZE as i32;

/// Paints a scene of `class`'s painted kind onto `canvas`.
pub fn compose(canvas: &mut Canvas, rng: &mut SplitMix64, light: &Light, class: SceneClass) {
    match class.painted() {
        SceneClass::SkiResort => ski_resort(canvas, rng, light),
        SceneClass::Church => church(canvas, rng, light),
        SceneClass::Village => village(canvas, rng, light),
        SceneClass::Forest => forest(canvas, rng, light),
        SceneClass::Lakeside => lakeside(canvas, rng, light),
        SceneClass::Beach => beach(canvas, rng, light),
        fine => unreachable!("{fine} is not a painted kind"),
    }
}

/// Sky, clouds and (with probability `sun_chance`, never when overcast unless `force_sun`)
/// the sun; returns the sun's column if one was drawn.
fn weather(
    canvas: &mut Canvas,
    rng: &mut SplitMix64,
    light: &Light,
    horizon: i32,
    sun_chance: f32,
    force_sun: bool,
) -> Option<f32> {
    sky(canvas, rng, light, horizon);
    let count = match light.time {
        TimeOfDay::Day => rng.range(0, 3),
        TimeOfDay::Evening => rng.range(0, 2),
        TimeOfDay::Overcast => rng.range(3, 5),
    };
    clouds(canvas, rng, light, horizon, count as u32);
    let shows = force_sun || (light.time != TimeOfDay::Overcast && rng.chance(sun_chance));
    shows.then(|| sun(canvas, rng, light, horizon).0)
}

/// Draws `trees` back to front (by the row they stand on).
fn draw_trees(canvas: &mut Canvas, rng: &mut SplitMix64, light: &Light, mut trees: Vec<Tree>) {
    trees.sort_by_key(|t| t.base);
    for t in &trees {
        draw_tree(canvas, rng, light, t);
    }
}

/// Whether a tree covering columns `cols` keeps clear of every door in `buildings` (with one
/// column to spare) and of the column spans in `keep_clear`.
fn clear_of(cols: (i32, i32), buildings: &[Footprint], keep_clear: &[(i32, i32)]) -> bool {
    let doors = buildings
        .iter()
        .filter_map(|b| b.door)
        .map(|(a, b)| (a - 1, b + 1));
    doors
        .chain(keep_clear.iter().copied())
        .all(|(a, b)| cols.1 <= a || cols.0 >= b)
}

/// Up to `count` foreground trees standing on rows `bases`, kept clear of doors and `keep_clear`.
fn foreground_trees(
    rng: &mut SplitMix64,
    count: i32,
    bases: (i32, i32),
    heights: (f32, f32),
    conifer: f32,
    buildings: &[Footprint],
    keep_clear: &[(i32, i32)],
) -> Vec<Tree> {
    let mut trees = Vec::new();
    for _ in 0..count {
        for _attempt in 0..8 {
            let tree = Tree {
                x: rng.uniform(-2.0, N as f32 + 2.0),
                base: rng.range(bases.0, bases.1),
                height: rng.uniform(heights.0, heights.1),
                kind: if rng.chance(conifer) {
                    TreeKind::Conifer
                } else {
                    TreeKind::Broadleaf
                },
            };
            if clear_of(tree.columns(), buildings, keep_clear) {
                trees.push(tree);
                break;
            }
        }
    }
    trees
}

/// `count` trees anywhere across the width, standing on rows `bases`.
fn scattered_trees(
    rng: &mut SplitMix64,
    count: i32,
    bases: (i32, i32),
    heights: (f32, f32),
    conifer: f32,
) -> Vec<Tree> {
    foreground_trees(rng, count, bases, heights, conifer, &[], &[])
}

/// Snow ground under snowy mountains, conifers and one or two wooden chalets.
fn ski_resort(canvas: &mut Canvas, rng: &mut SplitMix64, light: &Light) {
    let h = rng.range(26, 34);
    weather(canvas, rng, light, h, 0.4, false);
    if rng.chance(0.5) {
        mountains(
            canvas,
            rng,
            light,
            Range {
                foot: h,
                highest: 2,
                snowy: true,
                far: true,
            },
        );
    }
    let highest = rng.range(5, 12);
    mountains(
        canvas,
        rng,
        light,
        Range {
            foot: h,
            highest,
            snowy: true,
            far: false,
        },
    );
    ground(canvas, rng, light, h, SNOW);
    let count = rng.range(2, 6);
    let back = scattered_trees(rng, count, (h + 2, h + 6), (5.0, 9.0), 1.0);
    draw_trees(canvas, rng, light, back);
    let base = rng.range(h + 10, h + 17);
    let count = if rng.chance(0.5) { 1 } else { 2 };
    let style = Style::sample(rng, light, Kind::Chalet);
    let mut built = Vec::new();
    for i in 0..count {
        let w = rng.range(12, 18);
        let (lo, hi) = if count == 1 {
            (3, N - w - 3)
        } else if i == 0 {
            (1, 30 - w)
        } else {
            (34, N - 1 - w)
        };
        let x0 = rng.range(lo, hi.max(lo));
        let house = House {
            wall: Wall {
                x0,
                x1: x0 + w,
                top: base - rng.range(14, 17),
                base,
            },
            roof_height: rng.range(5, 8),
            overhang: 2,
            roof: RoofShape::Gable,
            door: rng.chance(0.9),
        };
        built.push(draw_house(canvas, rng, light, &house, &style));
    }
    let count = rng.range(1, 4);
    let front = foreground_trees(
        rng,
        count,
        (base + 6, N + 4),
        (12.0, 24.0),
        1.0,
        &built,
        &[],
    );
    draw_trees(canvas, rng, light, front);
}

/// One tall church (tower with spire, door, windows) on grass, often with a path to its door.
fn church(canvas: &mut Canvas, rng: &mut SplitMix64, light: &Light) {
    let h = rng.range(34, 42);
    weather(canvas, rng, light, h, 0.4, false);
    if rng.chance(0.25) {
        mountains(
            canvas,
            rng,
            light,
            Range {
                foot: h,
                highest: h - 14,
                snowy: false,
                far: true,
            },
        );
    }
    ground(canvas, rng, light, h, GRASS);
    let count = rng.range(0, 3);
    let back = scattered_trees(rng, count, (h + 2, h + 6), (7.0, 12.0), 0.4);
    draw_trees(canvas, rng, light, back);
    let base = rng.range(h + 8, (h + 16).min(N - 6));
    let tw = rng.range(9, 12);
    let top = (base - rng.range(22, 32)).max(10);
    let spire = rng.range(8, 14).min(top);
    let nave_w = if rng.chance(0.8) {
        rng.range(14, 22)
    } else {
        0
    };
    let span = tw + (nave_w - 2).max(0);
    let left = rng.range(3, N - 3 - span);
    let nave_right = rng.chance(0.5);
    let tx0 = if nave_w > 0 && !nave_right {
        left + nave_w - 2
    } else {
        left
    };
    let tower = Wall {
        x0: tx0,
        x1: tx0 + tw,
        top,
        base,
    };
    let nave = (nave_w > 0).then(|| {
        let x0 = if nave_right { tower.x1 - 2 } else { left };
        Wall {
            x0,
            x1: x0 + nave_w,
            top: base - rng.range(16, 20),
            base,
        }
    });
    let path = rng.chance(0.7).then(|| Road {
        bottom_x: rng.uniform(16.0, 48.0),
        bottom_half: rng.uniform(4.0, 7.0),
        far_x: (tower.x0 + tower.x1) as f32 / 2.0,
        far_half: 1.5,
        far_y: base,
        bend: rng.uniform(-6.0, 6.0),
    });
    if let Some(p) = path {
        let dirt = rng.chance(0.6);
        let colour = road_colour(rng, dirt);
        road(canvas, p, colour);
    }
    let style = Style::sample(rng, light, Kind::Church);
    let plan = Church {
        tower,
        spire,
        nave,
        nave_roof: rng.range(5, 8),
    };
    let built = [draw_church(canvas, rng, light, &plan, &style)];
    let count = rng.range(0, 2);
    let front = foreground_trees(
        rng,
        count,
        (base + 4, N + 4),
        (10.0, 20.0),
        0.3,
        &built,
        &[],
    );
    draw_trees(canvas, rng, light, front);
}

/// Several houses along a street on grass, a road, trees behind and in front.
fn village(canvas: &mut Canvas, rng: &mut SplitMix64, light: &Light) {
    let h = rng.range(24, 32);
    weather(canvas, rng, light, h, 0.4, false);
    if rng.chance(0.25) {
        let snowy = rng.chance(0.5);
        mountains(
            canvas,
            rng,
            light,
            Range {
                foot: h,
                highest: 4,
                snowy,
                far: true,
            },
        );
    }
    ground(canvas, rng, light, h, GRASS);
    let base = rng.range(h + 9, h + 15);
    let dirt = rng.chance(0.3);
    let paving = road_colour(rng, dirt);
    let has_street = rng.chance(0.7);
    if has_street {
        street(canvas, base, base + 3, paving);
    }
    let count = rng.range(1, 4);
    let back = scattered_trees(rng, count, (h + 3, base - 3), (8.0, 14.0), 0.3);
    draw_trees(canvas, rng, light, back);
    let mut built = Vec::new();
    let mut x = rng.range(0, 4);
    while N - x >= 12 {
        let w = rng.range(12, 18).min(N - x);
        let style = Style::sample(rng, light, Kind::House);
        let house = House {
            wall: Wall {
                x0: x,
                x1: x + w,
                top: base - rng.range(13, 17),
                base,
            },
            roof_height: rng.range(3, 6),
            overhang: 1,
            roof: if rng.chance(0.7) {
                RoofShape::Gable
            } else {
                RoofShape::Hip
            },
            door: rng.chance(0.85),
        };
        built.push(draw_house(canvas, rng, light, &house, &style));
        x += w + rng.range(1, 5);
    }
    let far_y = if has_street { base + 3 } else { base };
    let target = built[rng.below(built.len() as u32) as usize];
    let far_x = match target.door {
        Some((a, b)) if !has_street => (a + b) as f32 / 2.0,
        _ => rng.uniform(16.0, 48.0),
    };
    let lane = Road {
        bottom_x: rng.uniform(20.0, 44.0),
        bottom_half: rng.uniform(6.0, 10.0),
        far_x,
        far_half: if has_street { 3.0 } else { 1.5 },
        far_y,
        bend: rng.uniform(-5.0, 5.0),
    };
    road(canvas, lane, paving);
    let keep = [(
        (lane.bottom_x - lane.bottom_half) as i32 - 2,
        (lane.bottom_x + lane.bottom_half) as i32 + 2,
    )];
    let count = rng.range(0, 3);
    let front = foreground_trees(
        rng,
        count,
        (base + 10, N + 4),
        (12.0, 22.0),
        0.3,
        &built,
        &keep,
    );
    draw_trees(canvas, rng, light, front);
}

/// Many trees on grass with little sky, sometimes a path.
fn forest(canvas: &mut Canvas, rng: &mut SplitMix64, light: &Light) {
    let h = rng.range(10, 20);
    weather(canvas, rng, light, h, 0.3, false);
    ground(canvas, rng, light, h, GRASS);
    if rng.chance(0.25) {
        let lane = Road {
            bottom_x: rng.uniform(18.0, 46.0),
            bottom_half: rng.uniform(4.0, 8.0),
            far_x: rng.uniform(20.0, 44.0),
            far_half: 1.0,
            far_y: h + 3,
            bend: rng.uniform(-10.0, 10.0),
        };
        let colour = road_colour(rng, true);
        road(canvas, lane, colour);
    }
    let conifer = rng.unit();
    let mut trees = Vec::new();
    let mut x = rng.uniform(-2.0, 2.0);
    while x < N as f32 + 2.0 {
        let kind = if rng.chance(conifer) {
            TreeKind::Conifer
        } else {
            TreeKind::Broadleaf
        };
        trees.push(Tree {
            x,
            base: h + rng.range(1, 3),
            height: rng.uniform(6.0, 10.0),
            kind,
        });
        x += rng.uniform(2.5, 5.0);
    }
    for _ in 0..rng.range(10, 18) {
        let base = rng.range(h + 4, N + 8);
        let height = (6.0 + (base - h) as f32 * rng.uniform(0.5, 0.9)).min(44.0);
        let kind = if rng.chance(conifer) {
            TreeKind::Conifer
        } else {
            TreeKind::Broadleaf
        };
        trees.push(Tree {
            x: rng.uniform(-2.0, N as f32 + 2.0),
            base,
            height,
            kind,
        });
    }
    draw_trees(canvas, rng, light, trees);
}

/// A lake below mountains (with their reflection), a grass shore and trees.
fn lakeside(canvas: &mut Canvas, rng: &mut SplitMix64, light: &Light) {
    let h = rng.range(22, 32);
    weather(canvas, rng, light, h, 0.4, false);
    if rng.chance(0.4) {
        let snowy = rng.chance(0.6);
        mountains(
            canvas,
            rng,
            light,
            Range {
                foot: h,
                highest: 2,
                snowy,
                far: true,
            },
        );
    }
    let (highest, snowy) = (rng.range(5, 14), rng.chance(0.5));
    mountains(
        canvas,
        rng,
        light,
        Range {
            foot: h,
            highest,
            snowy,
            far: false,
        },
    );
    ground(canvas, rng, light, h, GRASS);
    let shore_row = h + rng.range(10, 18);
    let shore = wavy_line(rng, shore_row, 2);
    water(canvas, rng, light, h, &shore, false, &[MOUNTAIN, SNOW]);
    let lowest_shore = *shore.iter().max().unwrap_or(&h);
    let count = rng.range(2, 6);
    let trees = scattered_trees(rng, count, (lowest_shore + 4, N + 4), (10.0, 24.0), 0.5);
    draw_trees(canvas, rng, light, trees);
}

/// Sand, the sea with a foam line and the sun's glitter, the sun, sometimes clouds or a tree.
fn beach(canvas: &mut Canvas, rng: &mut SplitMix64, light: &Light) {
    let h = rng.range(22, 34);
    let sun_x = weather(canvas, rng, light, h, 1.0, true);
    ground(canvas, rng, light, h, SAND);
    let shore_row = h + rng.range(7, 16);
    let shore = wavy_line(rng, shore_row, 2);
    water(canvas, rng, light, h, &shore, true, &[]);
    if let Some(x) = sun_x {
        glitter(canvas, rng, x, h, &shore);
    }
    if rng.chance(0.25) {
        let lowest_shore = *shore.iter().max().unwrap_or(&h);
        let trees = scattered_trees(rng, 1, (lowest_shore + 8, N + 4), (14.0, 24.0), 0.0);
        draw_trees(canvas, rng, light, trees);
    }
}
