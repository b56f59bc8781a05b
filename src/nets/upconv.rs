//! Nearest 2× upsampling followed by a 3×3 convolution (padding 1), computed without the
//! upsampling: as four 2×2 convolutions on the input, one per output phase.
//!
//! With `u[2i+a, 2j+b] = x[i, j]`, the 3×3 window around `(2i+a, 2j+b)` in `u` covers only 2×2
//! distinct pixels of `x`, so output phase `(a, b)` (a, b ∈ {0, 1}) is a 2×2 convolution on `x`
//! whose taps are sums of the original taps: along each axis phase 0 takes `[W0, W1 + W2]` on
//! input rows `i − 1, i` and phase 1 `[W0 + W1, W2]` on rows `i, i + 1`. The four phase kernels
//! are stacked into one convolution with 4× the output channels on `x` padded by one pixel (the
//! zero padding of `u` is exactly the zero padding of `x`), and its outputs are interleaved into
//! the `2h × 2w` grid by one strided copy. Multiply-adds per output pixel drop from `9·C_in` to
//! `4·C_in` (2.25× fewer); the result equals the plain path's up to float rounding.
//!
//! The kernels are made once from the plain weights ([`phase_kernels`]); the checkpoint layout
//! does not change.

use super::activation;
use super::layout;
use anyhow::{Result, bail};
use std::sync::atomic::{AtomicBool, Ordering};
use tch::{Kind, Tensor};

/// How a block that upsamples before its 3×3 convolution computes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum UpsampleConv {
    /// Four 2×2 phase convolutions on the input, interleaved (the default).
    #[default]
    Fused,
    /// Upsample the input, then run the 3×3 convolution (the reference's way; for A/B runs).
    Plain,
}

impl UpsampleConv {
    /// The mode's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fused => "fused",
            Self::Plain => "plain",
        }
    }
}

impl std::str::FromStr for UpsampleConv {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fused" => Ok(Self::Fused),
            "plain" => Ok(Self::Plain),
            _ => bail!("unknown upsampling convolution '{s}': use fused or plain"),
        }
    }
}

impl std::fmt::Display for UpsampleConv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

static PLAIN_BY_DEFAULT: AtomicBool = AtomicBool::new(false);

/// Sets the mode generators built from now on use (the command line's `--upsample-conv`).
pub fn set_default(mode: UpsampleConv) {
    PLAIN_BY_DEFAULT.store(mode == UpsampleConv::Plain, Ordering::Relaxed);
}

/// The mode new generators use: [`UpsampleConv::Fused`] unless [`set_default`] chose otherwise.
pub fn default_mode() -> UpsampleConv {
    if PLAIN_BY_DEFAULT.load(Ordering::Relaxed) {
        UpsampleConv::Plain
    } else {
        UpsampleConv::Fused
    }
}

/// How the three taps of one axis collapse onto two input pixels, per phase: `[phase, tap of
/// the 2×2 kernel, tap of the 3×3 kernel]`.
fn collapse(device: tch::Device) -> Tensor {
    Tensor::from_slice(&[
        1.0f64, 0.0, 0.0, // phase 0, first tap: W0 (input row i − 1)
        0.0, 1.0, 1.0, // phase 0, second tap: W1 + W2 (row i)
        1.0, 1.0, 0.0, // phase 1, first tap: W0 + W1 (row i)
        0.0, 0.0, 1.0, // phase 1, second tap: W2 (row i + 1)
    ])
    .view([2, 2, 3])
    .to_device(device)
}

/// The stacked phase kernels `[4·out, in, 2, 2]` of 3×3 weights `[out, in, 3, 3]`, in phase
/// order `(a, b)` = (0, 0), (0, 1), (1, 0), (1, 1), each block of `out` channels in the weights'
/// order. The tap sums are formed in double precision and rounded once.
pub fn phase_kernels(weight: &Tensor) -> Result<Tensor> {
    let size = weight.size();
    if size.len() != 4 || size[2] != 3 || size[3] != 3 {
        bail!("phase kernels need 3×3 convolution weights, not {size:?}");
    }
    let (out, cin) = (size[0], size[1]);
    let c = collapse(weight.device());
    let k = Tensor::einsum(
        "ary,ocyx,bsx->abocrs",
        &[&c, &weight.to_kind(Kind::Double), &c],
        None::<&[i64]>,
    );
    Ok(k.reshape([4 * out, cin, 2, 2])
        .to_kind(weight.kind())
        .contiguous())
}

/// Interleaves the stacked phase outputs `[n, 4·out, h+1, w+1]` into `[n, out, 2h, 2w]`:
/// output pixel `(2i+a, 2j+b)` is phase `(a, b)`'s value at `(i + a, j + b)`. A channels-last
/// input gives a channels-last output.
pub fn interleave_phases(y: &Tensor, h: i64, w: i64) -> Tensor {
    if layout::is_channels_last(y) {
        return phase_view(y, h, w)
            .reshape([y.size()[0], 2 * h, 2 * w, y.size()[1] / 4])
            .permute([0, 3, 1, 2]);
    }
    let y = y.contiguous();
    let size = y.size();
    let (n, out) = (size[0], size[1] / 4);
    let plane = (h + 1) * (w + 1);
    // index (n, o, i, a, j, b) → ((2a + b)·out + o)·plane + (i + a)·(w + 1) + (j + b)
    y.as_strided(
        [n, out, h, 2, w, 2],
        [
            4 * out * plane,
            plane,
            w + 1,
            2 * out * plane + w + 1,
            1,
            out * plane + 1,
        ],
        None,
    )
    .reshape([n, out, 2 * h, 2 * w])
}

/// The channels-last phase outputs `[n, 4·out, h+1, w+1]` seen as `[n, h, 2, w, 2, out]`
/// in the interleaved order: `(n, i, a, j, b, o)` is output pixel `(2i+a, 2j+b)`, channel `o`.
fn phase_view(y: &Tensor, h: i64, w: i64) -> Tensor {
    let size = y.size();
    let (n, c4) = (size[0], size[1]);
    let out = c4 / 4;
    let row = (w + 1) * c4;
    // memory [n, h+1, w+1, 4·out]; (n, 2i+a, 2j+b, o) ← (n, i+a, j+b, (2a+b)·out + o)
    y.as_strided(
        [n, h, 2, w, 2, out],
        [(h + 1) * row, row, row + 2 * out, c4, c4 + out, 1],
        None,
    )
}

/// [`interleave_phases`] followed by a leaky ReLU of slope `slope`, in one pass over the
/// activations ([`activation::leaky_relu_into`] writing straight into the interleaved grid),
/// for channels-last outputs that need no gradient; `None` otherwise (the caller interleaves,
/// then applies the activation).
pub fn interleave_phases_leaky(y: &Tensor, h: i64, w: i64, slope: f64) -> Option<Tensor> {
    if !layout::is_channels_last(y) || y.requires_grad() {
        return None;
    }
    let size = y.size();
    let (n, out) = (size[0], size[1] / 4);
    let dest = Tensor::empty([n, 2 * h, 2 * w, out], (y.kind(), y.device()));
    let src = phase_view(y, h, w);
    activation::leaky_relu_into(&src, &dest.view([n, h, 2, w, 2, out]), slope);
    Some(dest.permute([0, 3, 1, 2]))
}

/// `conv3×3(upsample2×(x)) + bias` from the stacked phase kernels and the bias repeated four
/// times (`bias.repeat([4])`).
pub fn fused_upsample_conv(x: &Tensor, kernels: &Tensor, bias4: &Tensor) -> Tensor {
    let (h, w) = (x.size()[2], x.size()[3]);
    interleave_phases(&phase_conv(x, kernels, bias4), h, w)
}

/// The stacked phase convolution alone: `[n, 4·out, h+1, w+1]` from `x` `[n, c, h, w]`, to be
/// interleaved by [`interleave_phases`] (or [`interleave_phases_leaky`]).
pub fn phase_conv(x: &Tensor, kernels: &Tensor, bias4: &Tensor) -> Tensor {
    x.conv2d(kernels, Some(bias4), [1, 1], [1, 1], [1, 1], 1)
}

/// `conv3×3(upsample2×(x)) + bias` the plain way: upsample, then convolve.
pub fn plain_upsample_conv(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
    let (h, w) = (x.size()[2], x.size()[3]);
    x.upsample_nearest2d([2 * h, 2 * w], Some(2.0), Some(2.0))
        .conv2d(weight, bias, [1, 1], [1, 1], [1, 1], 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
        assert_eq!(a.size(), b.size());
        let err = f64::try_from((a - b).abs().max()).unwrap();
        err / f64::try_from(b.abs().max()).unwrap()
    }

    #[test]
    fn fused_equals_upsample_then_convolve_on_every_shape() {
        let _g = tch::no_grad_guard();
        tch::manual_seed(7);
        let opts = (Kind::Float, Device::Cpu);
        // batch, in, out, side (including a 1×1 input, odd sides and non-square grids)
        for (n, cin, out, h, w) in [
            (1, 3, 2, 1, 1),
            (2, 8, 5, 4, 4),
            (3, 16, 8, 5, 7),
            (1, 32, 32, 8, 8),
            (4, 7, 9, 16, 3),
        ] {
            let x = Tensor::randn([n, cin, h, w], opts);
            let weight = Tensor::randn([out, cin, 3, 3], opts);
            let bias = Tensor::randn([out], opts);
            let plain = plain_upsample_conv(&x, &weight, Some(&bias));
            let fused =
                fused_upsample_conv(&x, &phase_kernels(&weight).unwrap(), &bias.repeat([4]));
            assert_eq!(fused.size(), [n, out, 2 * h, 2 * w]);
            let rel = max_rel(&fused, &plain);
            assert!(
                rel < 1e-5,
                "{n}×{cin}→{out} at {h}×{w}: relative error {rel}"
            );
            // channels-last input and kernels: the same values, still channels-last
            let cl = fused_upsample_conv(
                &layout::to_channels_last(&x),
                &layout::to_channels_last(&phase_kernels(&weight).unwrap()),
                &bias.repeat([4]),
            );
            assert_eq!(cl.size(), [n, out, 2 * h, 2 * w]);
            assert!(layout::is_channels_last(&cl) || h * w == 1);
            let rel = max_rel(&cl, &plain);
            assert!(
                rel < 1e-5,
                "channels-last {n}×{cin}→{out} at {h}×{w}: {rel}"
            );
        }
    }

    #[test]
    fn each_phase_reads_the_documented_input_pixels() {
        let _g = tch::no_grad_guard();
        // One input pixel set at (1, 2) of a 3×4 grid, one channel, weights numbering the taps
        // 1..9: the output pixel (2i+a, 2j+b) sees the pixel through the taps whose upsampled
        // offsets land on it.
        let x = Tensor::zeros([1, 1, 3, 4], (Kind::Float, Device::Cpu));
        let _ = x.get(0).get(0).get(1).get(2).fill_(1.0);
        let weight = Tensor::arange_start(1, 10, (Kind::Float, Device::Cpu)).view([1, 1, 3, 3]);
        let plain = plain_upsample_conv(&x, &weight, None);
        let fused = fused_upsample_conv(
            &x,
            &phase_kernels(&weight).unwrap(),
            &Tensor::zeros([4], (Kind::Float, Device::Cpu)),
        );
        assert!(fused.equal(&plain));
        let at = |r: i64, c: i64| f64::try_from(fused.get(0).get(0).get(r).get(c)).unwrap();
        // row 2 (phase 0 of row 1): the pixel is row i, taps W1 + W2 (rows 1, 2 of W);
        // column 4 (phase 0 of column 2): taps W·1 + W·2. Sum of W[1..3][1..3] = 5+6+8+9.
        assert_eq!(at(2, 4), 28.0);
        // row 1 (phase 1 of row 0): the pixel is row i + 1, tap W2; column 5 (phase 1 of
        // column 2): taps W·0 + W·1 → W[2][0] + W[2][1] = 7 + 8.
        assert_eq!(at(1, 5), 15.0);
        // far away, nothing
        assert_eq!(at(5, 0), 0.0);
    }

    #[test]
    fn interleaving_with_the_activation_equals_interleaving_then_the_activation() {
        let opts = (Kind::Float, Device::Cpu);
        let slope = Tensor::from_slice(&[0.2f32]);
        for (n, c4, h, w) in [(1, 8, 1, 1), (2, 12, 4, 4), (3, 20, 5, 7), (1, 256, 16, 3)] {
            let y = layout::to_channels_last(&Tensor::randn([n, c4, h + 1, w + 1], opts));
            let expected = interleave_phases(&y, h, w).prelu(&slope);
            let fused = {
                let _g = tch::no_grad_guard();
                interleave_phases_leaky(&y, h, w, 0.2).expect("a channels-last input")
            };
            assert_eq!(fused.size(), [n, c4 / 4, 2 * h, 2 * w]);
            assert!(layout::is_channels_last(&fused));
            // the same values to the bit, negative inputs included
            assert!(fused.equal(&expected), "{n}×{c4} at {h}×{w}");
        }
        // the other layout, and anything a gradient flows through, take the ordinary path
        let y = Tensor::randn([1, 8, 3, 3], opts);
        assert!(interleave_phases_leaky(&y, 2, 2, 0.2).is_none());
        let y =
            layout::to_channels_last(&Tensor::randn([1, 8, 3, 3], opts)).set_requires_grad(true);
        assert!(interleave_phases_leaky(&y, 2, 2, 0.2).is_none());
    }

    #[test]
    fn bad_weights_and_names_are_refused() {
        let w = Tensor::zeros([2, 2, 4, 4], (Kind::Float, Device::Cpu));
        let err = phase_kernels(&w).unwrap_err().to_string();
        assert!(err.contains("3×3"), "{err}");
        let err = "fast".parse::<UpsampleConv>().unwrap_err().to_string();
        assert!(err.contains("use fused or plain"), "{err}");
        assert_eq!(
            "plain".parse::<UpsampleConv>().unwrap(),
            UpsampleConv::Plain
        );
        assert_eq!(UpsampleConv::Fused.to_string(), "fused");
    }
}
