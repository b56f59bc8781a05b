//! The leaky ReLU as the generator's forwards run it: out of place through a one-element PReLU,
//! and, where no gradient flows, in place or written straight into a given (strided) tensor.

use tch::Tensor;

/// `x > 0 ? x : slope·x`, out of place (differentiable).
pub fn leaky_relu(x: &Tensor, slope: f64) -> Tensor {
    // A one-element slope: libtorch's PReLU takes a much slower path for a 0-d one.
    let weight = Tensor::from_slice(&[slope as f32]).to_device(x.device());
    x.prelu(&weight)
}

/// Writes the leaky ReLU of `x` into `out` (same shape, any strides; `out` may be `x` itself).
/// Not differentiable: only for tensors no gradient flows through.
///
/// libtorch has no leaky ReLU that both takes the slope and writes into a given tensor, but its
/// `leaky_relu_backward` with `x` as both the gradient and the input computes
/// `x > 0 ? x : slope·x` (the same values as [`leaky_relu`], to the bit) and has such a form.
pub fn leaky_relu_into(x: &Tensor, out: &Tensor, slope: f64) {
    let _ = x.leaky_relu_backward_grad_input(out, x, slope, false);
}

/// [`leaky_relu`] on a tensor the caller owns: in place when no gradient flows through it.
pub fn leaky_relu_owned(x: Tensor, slope: f64) -> Tensor {
    if x.requires_grad() {
        return leaky_relu(&x, slope);
    }
    leaky_relu_into(&x, &x, slope);
    x
}
