//! Buildings: walls (labelled building) with roofs on top, doors at ground level and windows
//! above the door tops. Houses and chalets, and the church with its spired tower.

use super::concepts::{BUILDING, DOOR, ROOF, WINDOW};
use super::light::{Light, TimeOfDay, jitter, mix, scale};
use super::raster::{Canvas, Rgb};
use crate::prng::SplitMix64;

/// A wall rectangle: columns `x0..x1`, rows `top..base` (its bottom row is `base - 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wall {
    /// First column.
    pub x0: i32,
    /// One past the last column.
    pub x1: i32,
    /// First row.
    pub top: i32,
    /// One past the bottom row: the ground row the wall stands on.
    pub base: i32,
}

impl Wall {
    /// Width in columns.
    pub fn width(&self) -> i32 {
        self.x1 - self.x0
    }

    /// Height in rows.
    pub fn height(&self) -> i32 {
        self.base - self.top
    }
}

/// Colours of one building.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Wall colour.
    pub wall: Rgb,
    /// Roof colour.
    pub roof: Rgb,
    /// Door colour.
    pub door: Rgb,
    /// Window glass colour.
    pub window: Rgb,
}

/// The kinds of building the world has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Plaster or brick house of a village.
    House,
    /// Wooden chalet of a ski resort.
    Chalet,
    /// Stone church.
    Church,
}

impl Style {
    /// Draws colours fitting a building of `kind` under `light`.
    pub fn sample(rng: &mut SplitMix64, light: &Light, kind: Kind) -> Style {
        let wall: Rgb = match kind {
            Kind::House => {
                let walls = [
                    [232.0, 222.0, 196.0],
                    [214.0, 178.0, 120.0],
                    [200.0, 120.0, 90.0],
                    [225.0, 205.0, 205.0],
                    [190.0, 190.0, 180.0],
                ];
                rng.pick(&walls)
            }
            Kind::Chalet => [150.0, 100.0, 60.0],
            Kind::Church => [205.0, 198.0, 180.0],
        };
        let roof: Rgb = match kind {
            Kind::Church => [95.0, 100.0, 115.0],
            _ => {
                let roofs = [
                    [165.0, 55.0, 40.0],
                    [120.0, 60.0, 45.0],
                    [80.0, 80.0, 95.0],
                    [150.0, 80.0, 50.0],
                ];
                rng.pick(&roofs)
            }
        };
        let door: Rgb = {
            let doors = [
                [85.0, 50.0, 30.0],
                [110.0, 35.0, 35.0],
                [40.0, 75.0, 55.0],
                [45.0, 55.0, 105.0],
            ];
            rng.pick(&doors)
        };
        let window: Rgb = if light.time == TimeOfDay::Evening && rng.chance(0.6) {
            [250.0, 210.0, 110.0]
        } else {
            [60.0, 85.0, 120.0]
        };
        Style {
            wall: jitter(rng, wall, 10.0),
            roof: jitter(rng, roof, 10.0),
            door: jitter(rng, door, 8.0),
            window: jitter(rng, window, 6.0),
        }
    }
}

/// The shape of a house roof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoofShape {
    /// A triangle with its apex over the middle of the wall.
    Gable,
    /// A trapezoid with a flat ridge.
    Hip,
}

/// The parts of a drawn building that later layers must respect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// Columns covered by the building's walls.
    pub x0: i32,
    /// One past the last wall column.
    pub x1: i32,
    /// Columns `door.0..door.1` of the door, if any.
    pub door: Option<(i32, i32)>,
    /// Row the building stands on.
    pub base: i32,
}

/// Paints a wall, lit flat with a slightly darker bottom and a darker side edge.
fn paint_wall(canvas: &mut Canvas, light: &Light, wall: Wall, colour: Rgb) {
    let shade_x = if light.from_left {
        wall.x1 - 1
    } else {
        wall.x0
    };
    let dark = scale(colour, light.side(false).max(0.85));
    canvas.rect(wall.x0, wall.top, wall.x1, wall.base, BUILDING, |x, y| {
        if x == shade_x || y == wall.base - 1 {
            dark
        } else {
            colour
        }
    });
}

/// Paints a roof over `wall` reaching `height` rows above it, overhanging by `overhang`.
fn paint_roof(
    canvas: &mut Canvas,
    light: &Light,
    wall: Wall,
    height: i32,
    overhang: i32,
    shape: RoofShape,
    colour: Rgb,
) {
    let left = (wall.x0 - overhang) as f32;
    let right = (wall.x1 + overhang) as f32;
    let mid = (left + right) / 2.0;
    let top = wall.top as f32;
    let ridge = (wall.top - height) as f32;
    let dark = scale(colour, light.side(false));
    let bright = scale(colour, light.side(true));
    let shade = |x: i32, _y: i32| {
        if light.lit_side(x as f32 + 0.5, mid) {
            bright
        } else {
            dark
        }
    };
    match shape {
        RoofShape::Gable => canvas.polygon(&[(left, top), (right, top), (mid, ridge)], ROOF, shade),
        RoofShape::Hip => {
            let inset = height as f32 * 0.9;
            canvas.polygon(
                &[
                    (left, top),
                    (right, top),
                    (right - inset, ridge),
                    (left + inset, ridge),
                ],
                ROOF,
                shade,
            );
        }
    }
}

/// A door of 5–7 × 8–11 pixels (about one cell of an 8×8 layer; smaller on small walls) standing
/// on the wall's bottom row, centred on `at` or placed at random: its columns and top row.
fn plan_door(rng: &mut SplitMix64, wall: Wall, at: Option<i32>) -> (i32, i32, i32) {
    let w = rng.range(5, 7).min(wall.width() - 4);
    let h = rng.range(8, 11).min(wall.height() - 5);
    let x0 = match at {
        Some(centre) => (centre - w / 2).clamp(wall.x0 + 1, wall.x1 - 1 - w),
        None => rng.range(wall.x0 + 1, wall.x1 - 1 - w),
    };
    (x0, x0 + w, wall.base - h)
}

/// Paints the door `(x0, x1, top)` planned by [`plan_door`] on `wall`, with a darker frame.
fn paint_door(canvas: &mut Canvas, wall: Wall, door: (i32, i32, i32), colour: Rgb) {
    let (x0, x1, top) = door;
    let frame = scale(colour, 0.8);
    canvas.rect(x0, top, x1, wall.base, DOOR, |x, y| {
        if y == top || x == x0 { frame } else { colour }
    });
}

/// Draws rows of windows on `wall`, all between the row below the wall's top and
/// `lowest` (inclusive), with at least two wall columns on each side.
fn paint_windows(
    canvas: &mut Canvas,
    rng: &mut SplitMix64,
    wall: Wall,
    lowest: i32,
    size: (i32, i32),
    colour: Rgb,
) {
    let first = wall.top + 1;
    let avail_h = lowest - first + 1;
    let avail_w = wall.width() - 4;
    if avail_h < 2 || avail_w < 2 {
        return;
    }
    let ww = size.0.min(avail_w);
    let wh = size.1.min(avail_h);
    let max_cols = (avail_w + 2) / (ww + 2);
    let cols = if max_cols > 1 && rng.chance(0.3) {
        max_cols - 1
    } else {
        max_cols
    };
    let rows = if avail_h >= 2 * wh + 2 && rng.chance(0.7) {
        2
    } else {
        1
    };
    let pitch_y = (avail_h - rows * wh) / (rows + 1);
    let glint = mix(colour, [235.0, 240.0, 250.0], 0.35);
    for r in 0..rows {
        let y0 = first + pitch_y + r * (wh + pitch_y);
        for c in 0..cols {
            let x0 = wall.x0 + 2 + ((2 * c + 1) * avail_w / cols - ww) / 2;
            canvas.rect(x0, y0, x0 + ww, y0 + wh, WINDOW, |x, y| {
                if x == x0 && y == y0 { glint } else { colour }
            });
        }
    }
}

/// Settings of a house or chalet.
#[derive(Debug, Clone, Copy)]
pub struct House {
    /// The wall.
    pub wall: Wall,
    /// Roof height in rows.
    pub roof_height: i32,
    /// Roof overhang in columns on each side.
    pub overhang: i32,
    /// Roof shape.
    pub roof: RoofShape,
    /// Whether the house has a door.
    pub door: bool,
}

/// Draws a house: wall, roof, door (if any) and windows above the door top.
pub fn draw_house(
    canvas: &mut Canvas,
    rng: &mut SplitMix64,
    light: &Light,
    house: &House,
    style: &Style,
) -> Footprint {
    let wall = house.wall;
    paint_wall(canvas, light, wall, style.wall);
    paint_roof(
        canvas,
        light,
        wall,
        house.roof_height,
        house.overhang,
        house.roof,
        style.roof,
    );
    let (door, lowest) = if house.door {
        let (x0, x1, top) = plan_door(rng, wall, None);
        paint_door(canvas, wall, (x0, x1, top), style.door);
        (Some((x0, x1)), top - 2)
    } else {
        (None, wall.base - 3)
    };
    let size = (rng.range(3, 5), rng.range(3, 5));
    paint_windows(canvas, rng, wall, lowest, size, style.window);
    Footprint {
        x0: wall.x0,
        x1: wall.x1,
        door,
        base: wall.base,
    }
}

/// Settings of a church: a tall tower with a spire and a door, and an optional nave beside it.
#[derive(Debug, Clone, Copy)]
pub struct Church {
    /// The tower's wall.
    pub tower: Wall,
    /// Spire height in rows.
    pub spire: i32,
    /// The nave's wall, if any (it shares the tower's base).
    pub nave: Option<Wall>,
    /// The nave's roof height.
    pub nave_roof: i32,
}

/// Draws a church: nave (if any), then the tower in front of it with its spire, a door at the
/// foot of the tower, tall windows in the nave and belfry windows high in the tower.
pub fn draw_church(
    canvas: &mut Canvas,
    rng: &mut SplitMix64,
    light: &Light,
    church: &Church,
    style: &Style,
) -> Footprint {
    let tower = church.tower;
    let centre = (tower.x0 + tower.x1) / 2;
    let door = plan_door(rng, tower, Some(centre));
    let lowest = door.2 - 2;
    if let Some(nave) = church.nave {
        paint_wall(canvas, light, nave, style.wall);
        paint_roof(
            canvas,
            light,
            nave,
            church.nave_roof,
            1,
            RoofShape::Gable,
            style.roof,
        );
        let size = (3, rng.range(4, 6));
        paint_windows(canvas, rng, nave, lowest, size, style.window);
    }
    paint_wall(canvas, light, tower, style.wall);
    paint_roof(
        canvas,
        light,
        tower,
        church.spire,
        1,
        RoofShape::Gable,
        style.roof,
    );
    paint_door(canvas, tower, door, style.door);
    let belfry = Wall {
        base: (tower.top + 6).min(lowest + 1),
        ..tower
    };
    paint_windows(canvas, rng, belfry, belfry.base - 1, (3, 4), style.window);
    let (x0, x1) = match church.nave {
        Some(n) => (n.x0.min(tower.x0), n.x1.max(tower.x1)),
        None => (tower.x0, tower.x1),
    };
    Footprint {
        x0,
        x1,
        door: Some((door.0, door.1)),
        base: tower.base,
    }
}
