//! Drawing primitives on a labelled canvas: every painted pixel gets a colour and a concept
//! label together, so the label map is exactly what the picture shows (later layers occlude).

use super::SIZE;

/// A linear colour with channels in `0.0..=255.0` (before lighting and quantisation).
pub type Rgb = [f32; 3];

/// A SIZE×SIZE canvas of colours and concept labels, painted back to front.
#[derive(Debug, Clone)]
pub struct Canvas {
    rgb: Vec<Rgb>,
    labels: Vec<u8>,
}

/// Side length as a signed coordinate.
const N: i32 = SIZE as i32;

impl Default for Canvas {
    fn default() -> Self {
        Self::new()
    }
}

impl Canvas {
    /// A black canvas with every label 0 ("-").
    pub fn new() -> Self {
        Canvas {
            rgb: vec![[0.0; 3]; SIZE * SIZE],
            labels: vec![0; SIZE * SIZE],
        }
    }

    /// The label at `(x, y)`, or 0 outside the canvas.
    pub fn label(&self, x: i32, y: i32) -> u8 {
        if (0..N).contains(&x) && (0..N).contains(&y) {
            self.labels[(y * N + x) as usize]
        } else {
            0
        }
    }

    /// The colour at `(x, y)`, or black outside the canvas.
    pub fn colour(&self, x: i32, y: i32) -> Rgb {
        if (0..N).contains(&x) && (0..N).contains(&y) {
            self.rgb[(y * N + x) as usize]
        } else {
            [0.0; 3]
        }
    }

    /// Paints one pixel; pixels outside the canvas are ignored.
    pub fn put(&mut self, x: i32, y: i32, label: u8, colour: Rgb) {
        if (0..N).contains(&x) && (0..N).contains(&y) {
            let i = (y * N + x) as usize;
            self.rgb[i] = colour;
            self.labels[i] = label;
        }
    }

    /// Paints the pixels `x0..x1` of row `y` (clipped), colouring each with `colour(x, y)`.
    pub fn span(
        &mut self,
        y: i32,
        x0: i32,
        x1: i32,
        label: u8,
        colour: &mut impl FnMut(i32, i32) -> Rgb,
    ) {
        if !(0..N).contains(&y) {
            return;
        }
        for x in x0.max(0)..x1.min(N) {
            let i = (y * N + x) as usize;
            self.rgb[i] = colour(x, y);
            self.labels[i] = label;
        }
    }

    /// Paints the rectangle `x0..x1` × `y0..y1` (clipped).
    pub fn rect(
        &mut self,
        x0: i32,
        y0: i32,
        x1: i32,
        y1: i32,
        label: u8,
        mut colour: impl FnMut(i32, i32) -> Rgb,
    ) {
        for y in y0.max(0)..y1.min(N) {
            self.span(y, x0, x1, label, &mut colour);
        }
    }

    /// Paints every pixel whose centre lies inside the axis-aligned ellipse centred at
    /// `(cx, cy)` with radii `rx`, `ry`.
    pub fn ellipse(
        &mut self,
        cx: f32,
        cy: f32,
        rx: f32,
        ry: f32,
        label: u8,
        mut colour: impl FnMut(i32, i32) -> Rgb,
    ) {
        if rx <= 0.0 || ry <= 0.0 {
            return;
        }
        let y0 = (cy - ry).floor() as i32;
        let y1 = (cy + ry).ceil() as i32;
        for y in y0.max(0)..y1.min(N) {
            let dy = (y as f32 + 0.5 - cy) / ry;
            let t = 1.0 - dy * dy;
            if t <= 0.0 {
                continue;
            }
            let half = rx * t.sqrt();
            let (xa, xb) = centre_span(cx - half, cx + half);
            self.span(y, xa, xb, label, &mut colour);
        }
    }

    /// Paints every pixel whose centre lies inside the polygon `points` (even-odd rule).
    pub fn polygon(
        &mut self,
        points: &[(f32, f32)],
        label: u8,
        mut colour: impl FnMut(i32, i32) -> Rgb,
    ) {
        if points.len() < 3 {
            return;
        }
        let ymin = points.iter().map(|p| p.1).fold(f32::INFINITY, f32::min);
        let ymax = points.iter().map(|p| p.1).fold(f32::NEG_INFINITY, f32::max);
        let mut crossings: Vec<f32> = Vec::with_capacity(8);
        for y in (ymin.floor() as i32).max(0)..(ymax.ceil() as i32).min(N) {
            let yc = y as f32 + 0.5;
            crossings.clear();
            for (i, &(xa, ya)) in points.iter().enumerate() {
                let (xb, yb) = points[(i + 1) % points.len()];
                if (ya <= yc) != (yb <= yc) {
                    crossings.push(xa + (yc - ya) * (xb - xa) / (yb - ya));
                }
            }
            crossings.sort_by(f32::total_cmp);
            for pair in crossings.chunks_exact(2) {
                let (xa, xb) = centre_span(pair[0], pair[1]);
                self.span(y, xa, xb, label, &mut colour);
            }
        }
    }

    /// Paints, for each column `x`, the rows `top[x]..bottom[x]`.
    pub fn columns(
        &mut self,
        top: &[i32; SIZE],
        bottom: &[i32; SIZE],
        label: u8,
        mut colour: impl FnMut(i32, i32) -> Rgb,
    ) {
        for x in 0..N {
            for y in top[x as usize].max(0)..bottom[x as usize].min(N) {
                self.put(x, y, label, colour(x, y));
            }
        }
    }

    /// The colours and labels, row-major.
    pub fn into_parts(self) -> (Vec<Rgb>, Vec<u8>) {
        (self.rgb, self.labels)
    }
}

/// The pixel columns whose centres lie in `[xa, xb)`.
fn centre_span(xa: f32, xb: f32) -> (i32, i32) {
    ((xa - 0.5).ceil() as i32, (xb - 0.5).ceil() as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(c: &Canvas, label: u8) -> usize {
        (0..N)
            .flat_map(|y| (0..N).map(move |x| (x, y)))
            .filter(|&(x, y)| c.label(x, y) == label)
            .count()
    }

    #[test]
    fn shapes_cover_their_area_and_clip() {
        let mut c = Canvas::new();
        c.rect(-5, -5, 3, 2, 1, |_, _| [1.0; 3]);
        assert_eq!(count(&c, 1), 6);
        c.polygon(
            &[(10.0, 10.0), (20.0, 10.0), (20.0, 20.0), (10.0, 20.0)],
            2,
            |_, _| [2.0; 3],
        );
        assert_eq!(count(&c, 2), 100);
        c.polygon(&[(30.0, 30.0), (40.0, 30.0), (30.0, 40.0)], 3, |_, _| {
            [3.0; 3]
        });
        let tri = count(&c, 3);
        assert!(
            (45..=55).contains(&tri),
            "triangle of area 50 covers {tri} pixels"
        );
        c.ellipse(50.0, 50.0, 5.0, 5.0, 4, |_, _| [4.0; 3]);
        let disk = count(&c, 4);
        assert!(
            (72..=86).contains(&disk),
            "disk of area 78.5 covers {disk} pixels"
        );
        c.ellipse(64.0, 64.0, 4.0, 4.0, 5, |_, _| [5.0; 3]);
        let quarter = count(&c, 5);
        assert!(
            (9..=16).contains(&quarter),
            "quarter disk of area 12.6 covers {quarter} pixels"
        );
        assert_eq!(c.label(-1, 0), 0);
        assert_eq!(c.colour(11, 11), [2.0; 3]);
    }
}
