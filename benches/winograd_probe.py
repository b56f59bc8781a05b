"""Is a Winograd F(4×4, 3×3) convolution, written with PyTorch's own operations, faster than
libtorch's direct 3×3 convolution on this CPU? A probe that decided against building one.

Usage: .venv/bin/python benches/winograd_probe.py

F(4×4, 3×3) with interpolation points 0, 1, −1, 2, −2, ∞ turns each 4×4 output tile into 36
element-wise products of 6×6 transformed input and kernel tiles, which batch into 36 matrix
products (P tiles × C channels times C × K): 4× fewer multiply-adds than the direct convolution.
The script prints, per layer shape of the 256×256 generator (batch 8), the direct convolution's
time, the Winograd one's, their ratio and the relative error, then the cost of each step.
"""
import time

import torch

torch.set_num_threads(2)
torch.set_grad_enabled(False)
BT = torch.tensor([[4,0,-5,0,1,0],[0,-4,-4,1,1,0],[0,4,-4,-1,1,0],[0,-2,-1,2,1,0],[0,2,-1,-2,1,0],[0,4,0,-5,0,1]],dtype=torch.float32)
G = torch.tensor([[1/4,0,0],[-1/6,-1/6,-1/6],[-1/6,1/6,-1/6],[1/24,1/12,1/6],[1/24,-1/12,1/6],[0,0,1]],dtype=torch.float32)
AT = torch.tensor([[1,1,1,1,1,0],[0,1,-1,2,-2,0],[0,1,1,4,4,0],[0,1,-1,8,-8,1]],dtype=torch.float32)
def prep(w):  # w [K,C,3,3] -> U [36, C, K]
    U = G @ w @ G.T   # [K,C,6,6]
    return U.permute(2,3,1,0).reshape(36, w.shape[1], w.shape[0]).contiguous()
def wino(x, U, K):
    N,C,H,W = x.shape
    th, tw = H//4, W//4
    xp = torch.nn.functional.pad(x, (1,1,1,1))
    d = xp.unfold(2,6,4).unfold(3,6,4)          # N C th tw 6r 6c
    d = d.permute(4,5,0,2,3,1).reshape(6, -1)     # [6r, 6c*P*C]
    t = (BT @ d).view(6,6,-1).transpose(0,1).reshape(6,-1)  # [6c, 6r'*P*C]
    V = (BT @ t).view(6,6,-1)   # [6c', 6r', P*C]
    V = V.transpose(0,1).reshape(36, N*th*tw, C)   # r' major
    M = torch.bmm(V, U)            # [36, P, K]
    M = M.view(6, 6*N*th*tw*K)
    y = (AT @ M).view(4,6,-1).transpose(0,1).reshape(6,-1)  # [6c, 4r*P*K]
    y = (AT @ y).view(4,4,N,th,tw,K)   # [4c,4r,N,th,tw,K]
    return y.permute(2,5,3,1,4,0).reshape(N,K,H,W)
def bench(f, n=5):
    f()
    t = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - t) / n


torch.manual_seed(0)
SHAPES = [(512, 512, 8), (512, 512, 16), (512, 512, 32), (256, 256, 64), (128, 128, 128), (64, 64, 256)]
for C, K, S in SHAPES:
    x = torch.randn(8, C, S, S)
    w = torch.randn(K, C, 3, 3) / (3 * C**0.5)
    U = prep(w)
    ref = torch.nn.functional.conv2d(x, w, padding=1)
    err = ((wino(x, U, K) - ref).abs().max() / ref.abs().max()).item()
    tc = bench(lambda: torch.nn.functional.conv2d(x, w, padding=1))
    tw = bench(lambda: wino(x, U, K))
    print(f"C{C} K{K} {S}x{S}: direct {tc*1000:.1f} ms, Winograd {tw*1000:.1f} ms, direct/Winograd {tc/tw:.2f}, rel. error {err:.1e}", flush=True)

print("the Winograd steps, ms")
for C, K, S in [(512, 512, 32), (64, 64, 256)]:
    N, th = 8, S // 4
    x = torch.randn(N, C, S, S)
    U = prep(torch.randn(K, C, 3, 3))
    xp = torch.nn.functional.pad(x, (1, 1, 1, 1))
    tiles = lambda: xp.unfold(2, 6, 4).unfold(3, 6, 4).permute(4, 5, 0, 2, 3, 1).reshape(6, -1)
    d = tiles()
    V = torch.randn(36, N * th * th, C)
    M = torch.bmm(V, U).view(6, -1)
    y = torch.randn(4, 4, N, th, th, K)
    steps = {
        "pad": lambda: torch.nn.functional.pad(x, (1, 1, 1, 1)),
        "tiles": tiles,
        "input transform (one axis)": lambda: BT @ d,
        "36 matrix products": lambda: torch.bmm(V, U),
        "output transform (one axis)": lambda: AT @ M,
        "back to NCHW": lambda: y.permute(2, 5, 3, 1, 4, 0).reshape(N, K, S, S),
    }
    print(f"C{C} K{K} {S}x{S}: " + ", ".join(f"{k} {bench(f)*1000:.1f}" for k, f in steps.items()), flush=True)
