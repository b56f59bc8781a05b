//! Upsampling of feature maps to the segmentation resolution.
//!
//! A feature map of side `s` is resized to side `t` by bilinear interpolation with pixel-centre
//! alignment: target pixel `j` samples source coordinate `(j + 0.5)·s/t − 0.5`, and coordinates
//! outside `[0, s − 1]` are clamped to the border (the edge cells keep their own value instead of
//! blending towards zero). This is PyTorch's bilinear upsampling with `align_corners = false`,
//! and the same as `grid_sample(padding_mode = 'border')` on the pixel-centre grid of the
//! reference implementation.
//!
//! Bilinear interpolation is separable: each axis is a `[target, source]` matrix with at most two
//! weights per row, so the resize is two matrix products (columns, then rows), several times
//! faster on a CPU than the general interpolation kernel and equal to it up to float rounding.

use anyhow::{Result, bail};
use tch::{Kind, Tensor};

/// Resizes `[N, C, h, w]` activations to `[N, C, size, size]` (f32), bilinear, pixel-centre
/// aligned, border-clamped. Activations already at `size` come back as they are (as f32).
pub fn upsample(act: &Tensor, size: i64) -> Result<Tensor> {
    let s = act.size();
    if s.len() != 4 {
        bail!(
            "activations must be [N, C, H, W] to be upsampled, got {s:?}; dissect a convolutional layer"
        );
    }
    if size <= 0 {
        bail!("the segmentation resolution must be positive, got {size}");
    }
    let act = act.to_kind(Kind::Float);
    if s[2] == size && s[3] == size {
        return Ok(act);
    }
    let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
    let rows = axis_weights(h, size, act.device());
    let cols = axis_weights(w, size, act.device());
    // [N·C, h, w] × [w, size] → [N·C, h, size]; then [size, h] × that → [N·C, size, size]
    let wide = act.reshape([n * c, h, w]).matmul(&cols.tr());
    Ok(rows.matmul(&wide).view([n, c, size, size]))
}

/// The `[target, source]` interpolation matrix of one axis: target pixel `j` takes source
/// coordinate `(j + 0.5)·source/target − 0.5`, clamped to `[0, source − 1]`, split between its
/// two neighbouring cells by distance.
pub fn axis_weights(source: i64, target: i64, device: tch::Device) -> Tensor {
    let mut m = vec![0.0f64; (target * source) as usize];
    for j in 0..target {
        let x = ((j as f64 + 0.5) * source as f64 / target as f64 - 0.5)
            .clamp(0.0, (source - 1) as f64);
        let lo = x.floor() as i64;
        let hi = (lo + 1).min(source - 1);
        let f = x - lo as f64;
        m[(j * source + lo) as usize] += 1.0 - f;
        m[(j * source + hi) as usize] += f;
    }
    Tensor::from_slice(&m)
        .view([target, source])
        .to_kind(Kind::Float)
        .to_device(device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn two_cells_become_four_pixels_with_centres_aligned_and_borders_clamped() {
        // Row [0, 1] at side 2 → side 4: target centres map to source −0.25, 0.25, 0.75, 1.25;
        // the outer two clamp to the border cells.
        let row = Tensor::from_slice(&[0.0f32, 1.0, 0.0, 1.0]).view([1, 1, 2, 2]);
        let up = upsample(&row, 4).unwrap();
        let got = Vec::<f32>::try_from(up.get(0).get(0).get(0)).unwrap();
        assert_eq!(got, [0.0, 0.25, 0.75, 1.0]);
        // A single cell fills the whole target.
        let one = Tensor::from_slice(&[3.5f32]).view([1, 1, 1, 1]);
        let up = upsample(&one, 3).unwrap();
        let got = Vec::<f32>::try_from(up.reshape([-1])).unwrap();
        assert!(got.iter().all(|v| (v - 3.5).abs() < 1e-5), "{got:?}");
    }

    #[test]
    fn the_matrix_products_equal_libtorch_bilinear_resizing() {
        tch::manual_seed(3);
        // up and down, square and not, a single cell
        for (h, w, size) in [
            (8, 8, 64),
            (7, 5, 56),
            (14, 14, 56),
            (16, 16, 7),
            (1, 1, 4),
            (3, 9, 9),
        ] {
            let x = Tensor::randn([2, 5, h, w], (Kind::Float, Device::Cpu));
            let ours = upsample(&x, size).unwrap();
            let torch = x.upsample_bilinear2d([size, size], false, None, None);
            let err = f64::try_from((&ours - &torch).abs().max()).unwrap();
            assert!(err < 1e-5, "{h}×{w} → {size}: {err}");
        }
        // every row of an axis matrix sums to one and has at most two weights
        let m = axis_weights(8, 64, Device::Cpu);
        let sums = m.sum_dim_intlist(1, false, Kind::Float);
        assert!(f64::try_from((sums - 1.0).abs().max()).unwrap() < 1e-6);
        let nonzero = m.ne(0.0).sum_dim_intlist(1, false, Kind::Int64).max();
        assert!(i64::try_from(nonzero).unwrap() <= 2);
    }

    #[test]
    fn three_to_six_matches_the_centre_formula() {
        let x: Vec<f32> = (0..9).map(|v| (v * v) as f32).collect();
        let t = Tensor::from_slice(&x).view([1, 1, 3, 3]);
        let up = Vec::<f32>::try_from(upsample(&t, 6).unwrap().flatten(0, -1)).unwrap();
        let src = |j: usize| ((j as f64 + 0.5) * 0.5 - 0.5).clamp(0.0, 2.0);
        for i in 0..6 {
            for j in 0..6 {
                let (y, x0) = (src(i), src(j));
                let (y0, xx0) = (y.floor() as usize, x0.floor() as usize);
                let (y1, xx1) = ((y0 + 1).min(2), (xx0 + 1).min(2));
                let (fy, fx) = (y - y0 as f64, x0 - xx0 as f64);
                let v = |r: usize, c: usize| x[r * 3 + c] as f64;
                let want = (1.0 - fy) * ((1.0 - fx) * v(y0, xx0) + fx * v(y0, xx1))
                    + fy * ((1.0 - fx) * v(y1, xx0) + fx * v(y1, xx1));
                let got = up[i * 6 + j] as f64;
                assert!((got - want).abs() < 1e-4, "({i},{j}) {got} vs {want}");
            }
        }
        let same = Tensor::ones([2, 3, 6, 6], (Kind::Float, Device::Cpu));
        assert!(upsample(&same, 6).unwrap().equal(&same));
        assert!(upsample(&Tensor::ones([2, 3], (Kind::Float, Device::Cpu)), 6).is_err());
    }
}
