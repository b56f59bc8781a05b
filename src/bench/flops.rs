//! Floating-point operation counts of convolutions, from layer shapes.
//!
//! A convolution costs `2 · C_in · C_out · k² · H_out · W_out` operations per image (one
//! multiply and one add per weight and output pixel). Bias additions, normalisation, upsampling
//! and activations are not counted: they are a few operations per output element, under 1% of
//! the convolutions in every ProGAN block.

use crate::nets::proggan::resolution_for_layers;
use anyhow::{Result, bail};

/// The shape of one 2-D convolution and its output grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    /// Input channels.
    pub cin: i64,
    /// Output channels.
    pub cout: i64,
    /// Kernel side.
    pub kernel: i64,
    /// Output height.
    pub out_h: i64,
    /// Output width.
    pub out_w: i64,
}

impl ConvShape {
    /// Operations (multiplies and adds) of one image through this convolution.
    pub fn flops(&self) -> f64 {
        2.0 * (self.cin * self.cout * self.kernel * self.kernel) as f64
            * (self.out_h * self.out_w) as f64
    }
}

/// The convolutions of a ProGAN generator of channel `sizes` (`[z, 4×4, 8×8, …]`), one per
/// layer in order (`layer1 … layerN`, then the 1×1 output convolution), with their names.
pub fn proggan_convs(sizes: &[i64]) -> Result<Vec<(String, ConvShape)>> {
    if sizes.len() < 2 || sizes.iter().any(|&s| s <= 0) {
        bail!(
            "ProGAN sizes must list the latent size and at least one resolution, all positive; got {sizes:?}"
        );
    }
    let mut convs = Vec::new();
    let mut push = |cin, cout, kernel, side| {
        let name = format!("layer{}", convs.len() + 1);
        convs.push((
            name,
            ConvShape {
                cin,
                cout,
                kernel,
                out_h: side,
                out_w: side,
            },
        ));
    };
    push(sizes[0], sizes[1], 4, 4);
    push(sizes[1], sizes[1], 3, 4);
    let mut side = 4;
    for w in sizes[1..].windows(2) {
        side *= 2;
        push(w[0], w[1], 3, side);
        push(w[1], w[1], 3, side);
    }
    let res = resolution_for_layers(convs.len());
    let last = *sizes.last().unwrap_or(&1);
    convs.push((
        format!("output_{res}x{res}"),
        ConvShape {
            cin: last,
            cout: 3,
            kernel: 1,
            out_h: res,
            out_w: res,
        },
    ));
    Ok(convs)
}

/// Operations per image of the layers after `layer` (the part a cut at `layer` runs again).
pub fn proggan_suffix_flops(sizes: &[i64], layer: &str) -> Result<f64> {
    let convs = proggan_convs(sizes)?;
    let Some(at) = convs.iter().position(|(n, _)| n == layer) else {
        bail!(
            "unknown layer '{layer}' for ProGAN sizes {sizes:?}; its layers are layer1..layer{}",
            convs.len() - 1
        );
    };
    Ok(convs[at + 1..].iter().map(|(_, c)| c.flops()).sum())
}

/// The convolution the device peak is measured with: 512 → 512 channels, 3×3, on a 16×16 grid.
pub const PEAK_CONV: ConvShape = ConvShape {
    cin: 512,
    cout: 512,
    kernel: 3,
    out_h: 16,
    out_w: 16,
};

/// The batch of the peak measurement.
pub const PEAK_BATCH: i64 = 8;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::layered::LayeredNet;
    use crate::nets::proggan::ProGan;
    use tch::{Device, Kind, Tensor};

    #[test]
    fn a_known_convolution_is_counted_exactly() {
        // 512→512 3×3 at 16×16: 2 · 512 · 512 · 9 · 256 = 1 207 959 552 per image.
        assert_eq!(PEAK_CONV.flops(), 1_207_959_552.0);
        let one_by_one = ConvShape {
            cin: 64,
            cout: 3,
            kernel: 1,
            out_h: 256,
            out_w: 256,
        };
        assert_eq!(one_by_one.flops(), 2.0 * 64.0 * 3.0 * 65536.0);
    }

    #[test]
    fn counted_shapes_match_the_generator_layer_outputs() {
        let sizes = [16, 8, 8, 4];
        let g = ProGan::random(&sizes, 0, Device::Cpu).unwrap();
        let convs = proggan_convs(&sizes).unwrap();
        assert_eq!(convs.len(), g.num_layers());
        let mut x = Tensor::randn([1, 16], (Kind::Float, Device::Cpu));
        for (i, (name, c)) in convs.iter().enumerate() {
            assert_eq!(name, &g.layer_names()[i]);
            x = g.forward_range(&x, i, i + 1);
            assert_eq!(x.size(), [1, c.cout, c.out_h, c.out_w], "{name}");
        }
    }

    #[test]
    fn the_suffix_of_the_256_model_after_layer4_is_the_sum_of_its_blocks() {
        let sizes = [512, 512, 512, 512, 512, 256, 128, 64];
        let got = proggan_suffix_flops(&sizes, "layer4").unwrap();
        let conv = |cin: f64, cout: f64, k: f64, side: f64| 2.0 * cin * cout * k * k * side * side;
        let want = conv(512.0, 512.0, 3.0, 16.0) * 2.0
            + conv(512.0, 512.0, 3.0, 32.0) * 2.0
            + conv(512.0, 256.0, 3.0, 64.0)
            + conv(256.0, 256.0, 3.0, 64.0)
            + conv(256.0, 128.0, 3.0, 128.0)
            + conv(128.0, 128.0, 3.0, 128.0)
            + conv(128.0, 64.0, 3.0, 256.0)
            + conv(64.0, 64.0, 3.0, 256.0)
            + conv(64.0, 3.0, 1.0, 256.0);
        assert_eq!(got, want);
        let err = proggan_suffix_flops(&sizes, "layer40")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown layer 'layer40'"), "{err}");
    }
}
