//! The discriminator used to train generators: the generator's layout mirrored (convs at each
//! resolution, 2× average-pool down to 4×4, a minibatch standard-deviation feature, two dense
//! layers), with the same equalised learning rate (weights N(0, 1), scaled at run time by
//! He's constant).

use tch::{Kind, Tensor, nn};

/// LeakyReLU(0.2) written with twice-differentiable pieces (for the gradient penalty).
fn lrelu(x: &Tensor) -> Tensor {
    x.relu() * 0.8 + x * 0.2
}

struct Layer {
    weight: Tensor,
    bias: Tensor,
    scale: f64,
}

impl Layer {
    fn new(p: &nn::Path, name: &str, shape: &[i64]) -> Self {
        let p = name.split('.').fold(p.clone(), |p, part| &p / part);
        let fan_in: i64 = shape[1..].iter().product();
        Self {
            weight: p.randn("weight", shape, 0.0, 1.0),
            bias: p.zeros("bias", &[shape[0]]),
            scale: (2.0 / fan_in as f64).sqrt(),
        }
    }

    fn conv(&self, x: &Tensor) -> Tensor {
        let pad = self.weight.size()[2] / 2;
        let y = x.conv2d(
            &(&self.weight * self.scale),
            Some(&self.bias),
            [1, 1],
            [pad, pad],
            [1, 1],
            1,
        );
        lrelu(&y)
    }

    fn linear(&self, x: &Tensor) -> Tensor {
        x.linear(&(&self.weight * self.scale), Some(&self.bias))
    }
}

/// The discriminator.
pub struct Discriminator {
    from_rgb: Layer,
    blocks: Vec<(Layer, Layer)>,
    last_conv: Layer,
    dense: Layer,
    out: Layer,
}

impl Discriminator {
    /// A discriminator mirroring a generator with channel `sizes` `[z, 4×4, 8×8, …]`.
    pub fn new(vs: &nn::Path, sizes: &[i64]) -> Self {
        let chans: Vec<i64> = sizes[1..].to_vec();
        let top = *chans.last().unwrap();
        let from_rgb = Layer::new(vs, "from_rgb", &[top, 3, 1, 1]);
        let mut blocks = Vec::new();
        for (i, w) in chans.windows(2).rev().enumerate() {
            let (lo, hi) = (w[0], w[1]);
            let a = Layer::new(vs, &format!("block{i}.conv0"), &[hi, hi, 3, 3]);
            let b = Layer::new(vs, &format!("block{i}.conv1"), &[lo, hi, 3, 3]);
            blocks.push((a, b));
        }
        let c4 = chans[0];
        let last_conv = Layer::new(vs, "last_conv", &[c4, c4 + 1, 3, 3]);
        let dense = Layer::new(vs, "dense", &[c4, c4 * 16]);
        let out = Layer::new(vs, "out", &[1, c4]);
        Self {
            from_rgb,
            blocks,
            last_conv,
            dense,
            out,
        }
    }

    /// Realness logits `[N]` for images `[N, 3, R, R]` in [−1, 1].
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = self.from_rgb.conv(x);
        for (a, b) in &self.blocks {
            h = b
                .conv(&a.conv(&h))
                .avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None::<i64>);
        }
        // minibatch standard deviation: one extra feature map, the mean std over the batch
        let std = (h.var_dim([0i64].as_slice(), false, false) + 1e-8)
            .sqrt()
            .mean(Kind::Float);
        let s = h.size();
        let extra = std.view([1, 1, 1, 1]).expand([s[0], 1, s[2], s[3]], false);
        let h = self.last_conv.conv(&Tensor::cat(&[h, extra], 1));
        let h = lrelu(&self.dense.linear(&h.flatten(1, -1)));
        self.out.linear(&h).view([-1])
    }
}
