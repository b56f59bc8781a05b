//! Layer outputs as data points: a conv layer's `[B, C, H, W]` gives `B·H·W` rows of `C` units
//! (every spatial position a data point), a flat layer's `[B, C]` gives `B` rows. Two layers
//! compared on different grids are first brought to the smaller grid (the common grid of a
//! pair, [`common_grid`]) by average pooling or by the DFT's low frequencies ([`Resize`]); a
//! flat layer against a conv layer sees the conv layer averaged over its positions.

use anyhow::{Result, bail};
use tch::Tensor;

/// How a layer on a finer grid is brought to a coarser one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resize {
    /// Adaptive average pooling (each coarse cell the mean of the fine cells it covers).
    Pool,
    /// The low frequencies of the 2-D DFT (crop the centred spectrum to the coarse grid and
    /// invert it; the mean is kept).
    Dft,
}

impl std::str::FromStr for Resize {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "pool" => Ok(Self::Pool),
            "dft" => Ok(Self::Dft),
            _ => bail!("unknown resizing '{s}': pool or dft"),
        }
    }
}

/// A layer output's spatial grid: `(H, W)`, or `(1, 1)` for a flat layer.
pub fn grid_of(x: &Tensor) -> (i64, i64) {
    match x.size().as_slice() {
        [_, _, h, w] => (*h, *w),
        _ => (1, 1),
    }
}

/// The grid two layers are compared on: the smaller of each side, or `(1, 1)` when either is
/// flat.
pub fn common_grid(a: (i64, i64), b: (i64, i64)) -> (i64, i64) {
    (a.0.min(b.0), a.1.min(b.1))
}

/// `x` (`[B, C, H, W]` or `[B, C]`) on grid `to` (no larger than its own) as rows
/// `[B·h·w, C]`, position-major within each image.
pub fn rows_on_grid(x: &Tensor, to: (i64, i64), resize: Resize) -> Result<Tensor> {
    let size = x.size();
    let x = match size.len() {
        2 => x.unsqueeze(-1).unsqueeze(-1),
        4 => x.shallow_clone(),
        _ => bail!(
            "a layer output of shape {size:?} cannot be compared; conv ([B, C, H, W]) or flat \
             ([B, C]) outputs only"
        ),
    };
    let from = grid_of(&x);
    if to.0 > from.0 || to.1 > from.1 || to.0 < 1 || to.1 < 1 {
        bail!("cannot bring a {from:?} grid to {to:?}; grids only shrink");
    }
    let x = if from == to {
        x
    } else {
        match resize {
            Resize::Pool => x.adaptive_avg_pool2d([to.0, to.1]),
            Resize::Dft => dft_resize(&x, to)?,
        }
    };
    let c = x.size()[1];
    Ok(x.permute([0, 2, 3, 1]).reshape([-1, c]))
}

/// The low-frequency part of `x`'s 2-D spectrum on grid `to`, back in space (mean kept).
fn dft_resize(x: &Tensor, to: (i64, i64)) -> Result<Tensor> {
    let (h, w) = grid_of(x);
    let dims = [-2i64, -1];
    let f = x
        .f_fft_fft2(None::<&[i64]>, dims, "forward")?
        .f_fft_fftshift(Some(&dims[..]))?;
    let f = f
        .narrow(-2, h / 2 - to.0 / 2, to.0)
        .narrow(-1, w / 2 - to.1 / 2, to.1);
    let y = f
        .f_fft_ifftshift(Some(&dims[..]))?
        .f_fft_ifft2(None::<&[i64]>, dims, "forward")?;
    Ok(y.real().to_kind(x.kind()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn positions_become_rows_and_grids_shrink_to_the_smaller() {
        let x = Tensor::arange(2 * 3 * 4 * 4, (Kind::Float, Device::Cpu)).view([2, 3, 4, 4]);
        let rows = rows_on_grid(&x, (4, 4), Resize::Pool).unwrap();
        assert_eq!(rows.size(), [32, 3]);
        // row 5 = image 0, position (1, 1); unit 2 there is x[0, 2, 1, 1]
        assert_eq!(
            f64::try_from(rows.get(5).get(2)).unwrap(),
            f64::try_from(x.get(0).get(2).get(1).get(1)).unwrap()
        );
        let pooled = rows_on_grid(&x, (2, 2), Resize::Pool).unwrap();
        assert_eq!(pooled.size(), [8, 3]);
        let mean = x
            .get(0)
            .get(0)
            .narrow(0, 0, 2)
            .narrow(1, 0, 2)
            .mean(Kind::Float);
        assert!(
            (f64::try_from(pooled.get(0).get(0)).unwrap() - f64::try_from(mean).unwrap()).abs()
                < 1e-6
        );
        assert_eq!(common_grid((8, 8), (2, 2)), (2, 2));
        assert_eq!(
            rows_on_grid(&x, (1, 1), Resize::Pool).unwrap().size(),
            [2, 3]
        );
        assert!(rows_on_grid(&x, (8, 8), Resize::Pool).is_err());
        let flat = Tensor::ones([5, 7], (Kind::Float, Device::Cpu));
        assert_eq!(
            rows_on_grid(&flat, (1, 1), Resize::Dft).unwrap().size(),
            [5, 7]
        );
    }

    #[test]
    fn the_dft_resize_keeps_the_mean_and_low_frequencies() {
        // a constant plus the lowest cosine survives exactly; the highest frequency vanishes
        let n = 8;
        let i = Tensor::arange(n, (Kind::Double, Device::Cpu));
        let low = (&i * (2.0 * std::f64::consts::PI / n as f64)).cos();
        let high = (&i * std::f64::consts::PI).cos(); // (−1)^i
        let img =
            (low.unsqueeze(1) + 3.0 + high.unsqueeze(1) * high.unsqueeze(0)).view([1, 1, n, n]);
        let small = dft_resize(&img, (4, 4)).unwrap();
        let j = Tensor::arange(4, (Kind::Double, Device::Cpu));
        let want = ((&j * (2.0 * std::f64::consts::PI / 4.0)).cos().unsqueeze(1) + 3.0)
            .expand([4, 4], false)
            .view([1, 1, 4, 4]);
        assert!(small.allclose(&want, 1e-9, 1e-9, false), "{small}");
    }
}
