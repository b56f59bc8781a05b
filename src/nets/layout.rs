//! Channels-last memory layout for convolution-heavy forwards on the CPU.
//!
//! A tensor keeps its logical `[n, c, h, w]` shape and only its strides change: in memory it
//! is `[n, h, w, c]`, so each pixel's channels are contiguous. libtorch's CPU convolutions
//! (oneDNN) run faster that way on the narrow, wide-grid layers of a generator, and
//! elementwise operations and reductions over channels keep the layout of their input. Values
//! are the same as in the default layout up to float rounding (a convolution may sum in
//! another order).

use tch::{Device, Tensor};

/// Whether `x` is a 4-d tensor laid out channels-last (`[n, h, w, c]` in memory).
pub fn is_channels_last(x: &Tensor) -> bool {
    if x.dim() != 4 {
        return false;
    }
    let (sz, st) = (x.size(), x.stride());
    st[1] == 1 && st[3] == sz[1] && st[2] == sz[1] * sz[3] && st[0] == sz[1] * sz[2] * sz[3]
}

/// The same values laid out channels-last (a copy unless they already are). Tensors that are
/// not 4-d are returned as they are.
pub fn to_channels_last(x: &Tensor) -> Tensor {
    if x.dim() != 4 || is_channels_last(x) {
        return x.shallow_clone();
    }
    x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// The same values channels-last (`true`) or contiguous in the default layout (`false`).
pub fn to_layout(x: &Tensor, channels_last: bool) -> Tensor {
    if channels_last {
        to_channels_last(x)
    } else {
        x.contiguous()
    }
}

/// Whether forwards on `device` run channels-last by default: on the CPU, where it was
/// measured to be faster (`gandissect bench` reports both layouts).
pub fn preferred(device: Device) -> bool {
    device == Device::Cpu
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn conversion_keeps_values_and_shape_and_changes_strides() {
        let x = Tensor::randn([2, 5, 3, 4], (Kind::Float, Device::Cpu));
        assert!(!is_channels_last(&x));
        let y = to_channels_last(&x);
        assert!(is_channels_last(&y));
        assert_eq!(y.size(), x.size());
        assert_eq!(y.stride(), [60, 1, 20, 5]);
        assert!(y.equal(&x));
        assert!(y.contiguous().is_contiguous());
        assert_eq!(to_channels_last(&y).data_ptr(), y.data_ptr());
    }

    #[test]
    fn convolution_and_elementwise_ops_keep_the_layout() {
        let x = to_channels_last(&Tensor::randn([2, 6, 7, 7], (Kind::Float, Device::Cpu)));
        let w = to_channels_last(&Tensor::randn([4, 6, 3, 3], (Kind::Float, Device::Cpu)));
        let y = x.conv2d(&w, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1);
        assert!(is_channels_last(&y));
        let z = &y / (y.square().mean_dim(1, true, Kind::Float) + 1e-8).sqrt();
        assert!(is_channels_last(&z));
        let plain =
            x.contiguous()
                .conv2d(&w.contiguous(), None::<Tensor>, [1, 1], [1, 1], [1, 1], 1);
        let err = f64::try_from((&y - &plain).abs().max()).unwrap();
        assert!(err < 1e-4, "{err}");
    }
}
