"""The PyTorch baseline of `gandissect bench --baseline`: the same workloads written the
straightforward PyTorch way, on the same weights files.

Usage: python baseline.py JOB.json OUT.json

JOB.json (written by gandissect) lists the models (weights file, sizes, edited layer, units,
mask rectangle, batch sizes, and for some a dissection); OUT.json receives raw durations in
seconds, which gandissect turns into percentiles and ratios.

- ProGAN: netdissect-layout modules (PixelNorm, nearest upsampling, bias-free conv, WScale,
  LeakyReLU), weights from the same `.safetensors` file gandissect reads.
- The edit: a function that pools the mask to the layer's grid (adaptive max pooling), builds
  alpha and value planes and returns x * (1 - alpha) + value * alpha. On cached features it is
  applied before running the remaining blocks; for whole scenes it is a forward hook on the layer.
- Dissection: one forward per image with a hook collecting the layer's activations, the world
  segmenter (a PyTorch re-implementation of gandissect's world-seg, from its safetensors file)
  on the clamped images, per-unit torch.quantile of the upsampled activations, top images by
  spatial maximum, then IoU of the thresholded upsampled activations against the label maps.
"""

import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
from progan_reference import progan  # noqa: E402

torch.set_grad_enabled(False)


def read_safetensors(path):
    """The tensors of a .safetensors file (float32 only)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise SystemExit(f"{path}: {name} is {info['dtype']}; the baseline reads float32 weights")
        a, b = info["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype=np.float32).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


# ---------------------------------------------------------------- ProGAN (netdissect layout)
def load_progan(path, sizes):
    model, names = progan(sizes)
    tensors = read_safetensors(path)
    sd = {}
    for i, name in enumerate(names):
        sd[f"{i}.conv.weight"] = tensors[f"{name}.conv.weight"]
        sd[f"{i}.wscale.b"] = tensors[f"{name}.wscale.b"]
    model.load_state_dict(sd, strict=True)
    return model.eval(), names


# ---------------------------------------------------------------- world segmenter
class WorldSeg(nn.Module):
    def __init__(self, tensors):
        super().__init__()
        w = tensors["enc1a.weight"].shape[0]
        labels = tensors["head.weight"].shape[0]
        plan = [
            ("enc1a", 3, w, 3), ("enc1b", w, w, 3), ("enc2a", w, 2 * w, 3), ("enc2b", 2 * w, 2 * w, 3),
            ("enc3a", 2 * w, 4 * w, 3), ("enc3b", 4 * w, 4 * w, 3), ("dec2a", 6 * w, 2 * w, 3),
            ("dec2b", 2 * w, 2 * w, 3), ("dec1a", 3 * w, w, 3), ("dec1b", w, w, 3), ("head", w, labels, 1),
        ]
        self.convs = nn.ModuleDict({n: nn.Conv2d(i, o, k, padding=k // 2) for n, i, o, k in plan})
        self.convs.load_state_dict(tensors, strict=True)
        self.labels = labels

    def forward(self, x):
        c = self.convs
        e1 = F.relu(c["enc1b"](F.relu(c["enc1a"](x))))
        e2 = F.relu(c["enc2b"](F.relu(c["enc2a"](F.max_pool2d(e1, 2)))))
        e3 = F.relu(c["enc3b"](F.relu(c["enc3a"](F.max_pool2d(e2, 2)))))
        up = lambda t, like: F.interpolate(t, size=like.shape[2:], mode="bilinear", align_corners=False)
        d2 = F.relu(c["dec2b"](F.relu(c["dec2a"](torch.cat([up(e3, e2), e2], 1)))))
        d1 = F.relu(c["dec1b"](F.relu(c["dec1a"](torch.cat([up(d2, e1), e1], 1)))))
        return c["head"](d1)

    def predict(self, x):
        return self.forward(x)[:, 1:].argmax(1) + 1


# ---------------------------------------------------------------- the edit
def rect_mask(rect, side):
    at = lambda f: min(max(int(round(f * side)), 0), side)
    m = torch.zeros(side, side)
    m[at(rect[0]) : at(rect[1]), at(rect[2]) : at(rect[3])] = 1
    return m


def make_edit(units, values, mask):
    units = torch.tensor(units)

    def edit(x):
        n, c, h, w = x.shape
        pooled = F.adaptive_max_pool2d(mask[None, None], (h, w))
        alpha = torch.zeros(1, c, h, w)
        alpha[:, units] = pooled[0]
        value = torch.zeros(1, c, 1, 1)
        value[0, units, 0, 0] = values
        return x * (1 - alpha) + value * alpha

    return edit


MAX_RUNS = 2000


def interleaved(jobs, warmup, min_runs, min_seconds):
    """Rounds running each job once: at least min_runs timed, more until min_seconds spent."""
    times = [[] for _ in jobs]
    spent, r = 0.0, 0
    while r < warmup + min_runs or (spent < min_seconds and r < warmup + MAX_RUNS):
        for job, t in zip(jobs, times):
            start = time.perf_counter()
            job()
            took = time.perf_counter() - start
            if r >= warmup:
                t.append(took)
                spent += took
        r += 1
    return times


# ---------------------------------------------------------------- dissection
def dissect(model, names, layer, spec):
    n, batch, size, q, topk = spec["samples"], spec["batch"], spec["seg_size"], spec["quantile"], spec["topk"]
    seg = WorldSeg(read_safetensors(spec["segmenter_weights"])).eval()
    zdim = model[0].conv.in_channels
    z_all = torch.from_numpy(np.random.RandomState(spec["stream"]).standard_normal(n * zdim).reshape(n, zdim).astype(np.float32))
    index = names.index(layer)
    captured = []
    hook = model[index].register_forward_hook(lambda m, i, o: captured.append(o))
    timings = {}
    start = time.perf_counter()
    acts, maps = [], []
    for i in range(0, n, batch):
        captured.clear()
        images = model(z_all[i : i + batch]).clamp(-1, 1)
        acts.append(captured[0])
        labels = seg.predict(images)
        if labels.shape[-1] != size:
            raise SystemExit(f"the segmenter gives {labels.shape[-1]}-pixel maps, not {size}")
        maps.append(labels)
    hook.remove()
    acts, maps = torch.cat(acts), torch.cat(maps)
    timings["forward_s"] = time.perf_counter() - start
    t = time.perf_counter()
    c = acts.shape[1]
    up = lambda a: F.interpolate(a, size=(size, size), mode="bilinear", align_corners=False)
    levels = torch.stack([torch.quantile(up(acts[:, u : u + 1]).flatten(), q) for u in range(c)])
    maxima = acts.amax(dim=(2, 3))
    top_values, top_images = maxima.topk(min(topk, n), dim=0)
    timings["quantile_s"] = time.perf_counter() - t
    t = time.perf_counter()
    num_labels = seg.labels
    inter = torch.zeros(c, num_labels)
    act_count = torch.zeros(c)
    label_count = torch.zeros(num_labels)
    for i in range(0, n, batch):
        active = (up(acts[i : i + batch]) > levels.view(1, -1, 1, 1)).float()
        onehot = F.one_hot(maps[i : i + batch], num_labels).permute(0, 3, 1, 2).float()
        inter += torch.einsum("bchw,blhw->cl", active, onehot)
        act_count += active.sum(dim=(0, 2, 3))
        label_count += onehot.sum(dim=(0, 2, 3))
    iou = inter / (act_count[:, None] + label_count[None, :] - inter).clamp(min=1)
    best = iou[:, 1:].argmax(dim=1) + 1
    timings["iou_s"] = time.perf_counter() - t
    timings["seconds"] = time.perf_counter() - start
    timings["unit_label_ids"] = best.tolist()
    timings["top_image_of_unit0"] = int(top_images[0, 0])
    return timings


def run_model(m, job):
    sizes = m["sizes"]
    model, names = load_progan(m["weights"], sizes)
    layer = m["layer"]
    index = names.index(layer)
    side = 4 * 2 ** ((len(names) - 1) // 2 - 1)
    edit = make_edit(m["units"], 0.0, rect_mask(m["rect"], side))
    prefix, suffix = model[: index + 1], model[index + 1 :]
    out = {"name": m["name"], "resolution": side}

    torch.manual_seed(1)
    z = torch.randn(1, sizes[0])
    h = prefix(z)
    jobs = [lambda: suffix(h), lambda: suffix(edit(h))]
    t = interleaved(jobs, job["warmup"], job["runs"], job["min_seconds"])
    out["suffix_s"], out["edit_s"] = t

    hook = model[index].register_forward_hook(lambda mod, i, o: edit(o))
    out["throughput"] = []
    for b in m["batches"]:
        torch.manual_seed(2)
        zb = torch.randn(b, sizes[0])
        model(zb)
        (t,) = interleaved([lambda: model(zb)], min(job["warmup"], 1), job["batch_runs"], job["min_seconds"])
        out["throughput"].append({"batch": b, "times_s": t})
    hook.remove()
    if m.get("dissect"):
        out["dissection"] = dissect(model, names, layer, m["dissect"])
    return out


def main():
    job = json.load(open(sys.argv[1]))
    torch.set_num_threads(job["threads"])
    if job.get("device", "cpu") != "cpu":
        raise SystemExit("the baseline runs on the CPU only; run gandissect bench --baseline with --device cpu")
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "models": []}
    for m in job["models"]:
        result["models"].append(run_model(m, job))
    with open(sys.argv[2] + ".tmp", "w") as f:
        json.dump(result, f)
    os.replace(sys.argv[2] + ".tmp", sys.argv[2])


if __name__ == "__main__":
    main()
