"""Where the 256×256 generator's forward spends its time, operation by operation.

Usage: OMP_WAIT_POLICY=PASSIVE MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647 \\
       .venv/bin/python benches/op_profile.py [BATCH]

Replays the shapes of gandissect's fused, channels-last ProGAN forward (standard sizes, random
weights, 2 threads): per block the pixel norm, the convolution (after an upsampling: the stacked
2×2 phase kernels on the un-upsampled input), the interleaving of the four phases and the leaky
ReLU, each timed alone (median of 5). Prints each block's times and the totals of the
convolutions and of the element-wise work, then the element-wise work as the forward does it:
the interleaving and the activation in one operation (`leaky_relu_backward` with the phases as
both gradient and input, written into the interleaved grid), and the other activations in place.
"""
import sys
import time

import torch

torch.set_num_threads(2)
torch.set_grad_enabled(False)
torch.manual_seed(0)
CHANNELS = [512, 512, 512, 512, 256, 128, 64]  # per resolution 4, 8, …, 256
CL = torch.channels_last
SLOPE = torch.tensor([0.2])


def median_ms(f, n=5):
    f()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return sorted(times)[n // 2] * 1000


def pixel_norm(x):
    norm = x.norm(2, dim=1, keepdim=True)
    return x * (norm.square() / x.shape[1] + 1e-8).rsqrt()


def interleave(y, b, h, w):
    c4 = y.shape[1]
    out = c4 // 4
    row = (w + 1) * c4
    view = y.as_strided([b, h, 2, w, 2, out], [(h + 1) * row, row, row + 2 * out, c4, c4 + out, 1])
    return view.reshape(b, 2 * h, 2 * w, out).permute(0, 3, 1, 2)


def interleave_leaky(y, b, h, w):
    c4 = y.shape[1]
    out = c4 // 4
    row = (w + 1) * c4
    view = y.as_strided([b, h, 2, w, 2, out], [(h + 1) * row, row, row + 2 * out, c4, c4 + out, 1])
    dest = torch.empty(b, 2 * h, 2 * w, out)
    torch.ops.aten.leaky_relu_backward.grad_input(
        view, view, 0.2, False, grad_input=dest.view(b, h, 2, w, 2, out)
    )
    return dest.permute(0, 3, 1, 2)


def leaky_in_place(z):
    torch.ops.aten.leaky_relu_backward.grad_input(z, z, 0.2, False, grad_input=z)


def main():
    b = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    conv_total = elementwise_total = one_pass_total = 0.0
    cin = 512
    for stage, c in enumerate(CHANNELS):
        side = 4 << stage
        for upsample in ([False, False] if stage == 0 else [True, False]):
            h = side // 2 if upsample else side
            x = torch.randn(b, cin, h, h).contiguous(memory_format=CL)
            if upsample:
                k = torch.randn(4 * c, cin, 2, 2).contiguous(memory_format=CL)
                bias = torch.randn(4 * c)
            else:
                k = torch.randn(c, cin, 3, 3).contiguous(memory_format=CL)
                bias = torch.randn(c)
            conv = lambda: torch.nn.functional.conv2d(x, k, bias, padding=1)
            y = conv()
            t_conv = median_ms(conv)
            t_norm = median_ms(lambda: pixel_norm(x))
            if upsample:
                t_inter = median_ms(lambda: interleave(y, b, h, h))
                z = interleave(y, b, h, h)
            else:
                t_inter, z = 0.0, y
            t_act = median_ms(lambda: torch.prelu(z, SLOPE))
            if upsample:
                assert torch.equal(interleave_leaky(y, b, h, h), torch.prelu(z, SLOPE))
                t_one = median_ms(lambda: interleave_leaky(y, b, h, h))
            else:
                owned = y.clone()  # six passes scale negatives by 0.2**6: no subnormals
                t_one = median_ms(lambda: leaky_in_place(owned))
            one_pass_total += t_norm + t_one
            print(
                f"{side:>3}×{side:<3} {'up ' if upsample else '   '} {cin:>3}→{c:<3} conv {t_conv:7.2f}"
                f"  pixel norm {t_norm:5.2f}  interleave {t_inter:5.2f}  leaky ReLU {t_act:5.2f} ms"
            )
            conv_total += t_conv
            elementwise_total += t_norm + t_inter + t_act
            cin = c
    print(f"batch {b}: convolutions {conv_total:.1f} ms, element-wise {elementwise_total:.1f} ms")
    print(f"batch {b}: element-wise with interleaving and activation in one pass: {one_pass_total:.1f} ms")


if __name__ == "__main__":
    main()
