"""The PyTorch baseline of `gandissect bench --baseline`: the same workloads written the
straightforward PyTorch way, on the same weights files.

Usage: python baseline.py JOB.json OUT.json
       python baseline.py --peer WEIGHTS SIZES THREADS


JOB.json (written by gandissect) lists the models (weights file, sizes, edited layer, units,
mask rectangle, batch sizes, and for some a dissection); OUT.json receives raw durations in
seconds, which gandissect turns into percentiles and ratios.

- ProGAN: netdissect-layout modules (PixelNorm, nearest upsampling, bias-free conv, WScale,
  LeakyReLU), weights from the same `.safetensors` file gandissect reads.
- The edit: a function that pools the mask to the layer's grid (adaptive max pooling), builds
  alpha and value planes and returns x * (1 - alpha) + value * alpha. On cached features it is
  applied before running the remaining blocks; for whole scenes it is a forward hook on the layer.
- Generation: whole scenes from latents (no edit) per batch size.
- Dissection ("quantile"): one forward per image with a hook collecting the layer's activations,
  the world segmenter (a PyTorch re-implementation of gandissect's world-seg, from its
  safetensors file) on the clamped images, per-unit torch.quantile of the upsampled activations,
  top images by spatial maximum, then IoU of the thresholded upsampled activations against the
  label maps.
- Dissection ("streaming"): the way the reference tool works, batch by batch in two passes.
  Pass 1 runs the generator to the layer, upsamples, and feeds every upsampled pixel into a
  streaming per-unit quantile sketch (compactor levels of a fixed resolution, sorted and halved
  when full) and the per-image maxima into a running top-k; pass 2 runs the generator and the
  segmenter and accumulates, per label, the mean of the indicator `upsampled > level` over the
  pixels of that label (and over all pixels), from which IoU follows.

With `--peer`, the script loads one generator (SIZES: its channel sizes as JSON) and waits for
commands on stdin, one per line, so that gandissect can time it in the same interleaved rounds
as its own forward: `generate B` runs whole scenes at batch B from fixed latents and answers the
forward's seconds; `quit` ends it. It answers `ready TORCH_VERSION` once loaded.
"""

import json
import math
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


# ---------------------------------------------------------------- streaming statistics
class StreamingQuantile:
    """Per-column quantiles of a stream of [rows, columns] batches: compactor levels, level i
    holding values of weight 2**i. Rows are copied into level 0; a full level is sorted per
    column, every other value (from a random offset) moves up a level, and the walk goes on up
    while a level has less room than half the level below it. When the top level must be
    compacted, a new, smaller front level is inserted and each old level moves down one slot
    (when it fits) or is sorted and halved where it is."""

    def __init__(self, r=3072, seed=1):
        self.resolution = 2 * r
        self.buffersize = min(128, -(-self.resolution // 8))
        self.samplerate = 1.0
        self.data = None
        self.fill = None
        self.lo = self.hi = None
        self.gen = torch.Generator().manual_seed(seed)

    def need(self, i):
        return 1 if i == 0 else -(-self.data[i - 1].shape[1] // 2)

    def add(self, x):
        if self.data is None:
            self.data = [torch.empty(x.shape[1], self.resolution)]
            self.fill = [0]
        lo, hi = x.amin(0), x.amax(0)
        self.lo = lo if self.lo is None else torch.minimum(self.lo, lo)
        self.hi = hi if self.hi is None else torch.maximum(self.hi, hi)
        if self.samplerate < 1:
            x = x[torch.rand(x.shape[0], generator=self.gen) < self.samplerate]
        xt = x.t()
        start = 0
        while start < xt.shape[1]:
            room = self.data[0].shape[1] - self.fill[0]
            take = min(room, xt.shape[1] - start)
            self.data[0][:, self.fill[0] : self.fill[0] + take] = xt[:, start : start + take]
            self.fill[0] += take
            start += take
            if self.fill[0] == self.data[0].shape[1]:
                self.compact()

    def offset(self):
        return int(torch.randint(0, 2, (1,), generator=self.gen))

    def halve(self, i):
        kept = self.data[i][:, : self.fill[i]].sort(dim=1)[0][:, self.offset() :: 2]
        return kept

    def compact(self):
        i = 0
        while self.data[i].shape[1] - self.fill[i] < self.need(i):
            if i + 1 == len(self.data):
                self.expand()
                return
            kept = self.halve(i)
            n = kept.shape[1]
            self.data[i + 1][:, self.fill[i + 1] : self.fill[i + 1] + n] = kept
            self.fill[i + 1] += n
            self.fill[i] = 0
            i += 1

    def expand(self):
        cap = int(math.ceil(self.resolution * 0.67 ** len(self.data)))
        cap = max(self.buffersize, -(-cap // 8) * 8)
        if cap < 2:
            self.samplerate *= 0.5
        else:
            self.data.insert(0, torch.empty(self.data[0].shape[0], cap))
            self.fill.insert(0, 0)
        for i in range(1, len(self.data)):
            n = self.fill[i]
            if n == 0:
                continue
            at = self.fill[i - 1]
            if self.data[i - 1].shape[1] - (at + n) >= self.need(i - 1):
                self.data[i - 1][:, at : at + n] = self.data[i][:, :n]
                self.fill[i - 1] += n
                self.fill[i] = 0
            else:
                kept = self.halve(i)
                self.data[i][:, : kept.shape[1]] = kept
                self.fill[i] = kept.shape[1]

    def quantile(self, q):
        parts = [d[:, :f] for d, f in zip(self.data, self.fill) if f]
        weights = torch.cat([torch.full((f,), 2.0**i) for i, f in enumerate(self.fill) if f])
        values, order = torch.cat(parts, 1).sort(dim=1)
        w = weights[order]
        values = torch.cat([self.lo[:, None], values, self.hi[:, None]], 1)
        zero = torch.zeros(w.shape[0], 1)
        w = torch.cat([zero, w, zero], 1).double()
        cw = w.cumsum(1) - w / 2
        cw = cw / cw[:, -1:]
        qs = torch.full((w.shape[0], 1), q, dtype=torch.float64)
        hi = torch.searchsorted(cw, qs).clamp(1, cw.shape[1] - 1)
        lo = hi - 1
        c_lo, c_hi = cw.gather(1, lo), cw.gather(1, hi)
        v_lo, v_hi = values.gather(1, lo).double(), values.gather(1, hi).double()
        frac = ((qs - c_lo) / (c_hi - c_lo).clamp(min=1e-300)).clamp(0, 1)
        return (v_lo + frac * (v_hi - v_lo))[:, 0].float()


class StreamingTopK:
    """Per-column top k of a stream of [rows, columns] batches: each batch's top rows enter a
    buffer of 5k per column, cut back to the top k when full."""

    def __init__(self, k):
        self.k = k
        self.values = self.index = None
        self.count = 0

    def add(self, x):
        n = x.shape[0]
        top, idx = x.topk(min(n, self.k), dim=0)
        idx = idx + self.count
        self.count += n
        if self.values is None:
            self.values, self.index = top.t(), idx.t()
        else:
            self.values = torch.cat([self.values, top.t()], 1)
            self.index = torch.cat([self.index, idx.t()], 1)
        if self.values.shape[1] >= max(10, 5 * self.k):
            self.compact()

    def compact(self):
        v, i = self.values.topk(min(self.k, self.values.shape[1]), dim=1)
        self.values, self.index = v, self.index.gather(1, i)


class RunningMean:
    """Mean and centred second moment of rows, merged batch by batch (Chan et al.)."""

    def __init__(self):
        self.n, self.mean, self.m2 = 0, None, None

    def add(self, x):
        n = x.shape[0]
        if n == 0:
            return
        mean = x.mean(0)
        m2 = ((x - mean) ** 2).sum(0)
        if self.n == 0:
            self.n, self.mean, self.m2 = n, mean, m2
            return
        total = self.n + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.n * n / total)
        self.n = total


def dissect_streaming(model, names, layer, spec):
    n, batch, size, q, topk = spec["samples"], spec["batch"], spec["seg_size"], spec["quantile"], spec["topk"]
    seg = WorldSeg(read_safetensors(spec["segmenter_weights"])).eval()
    zdim = model[0].conv.in_channels
    z_all = torch.from_numpy(np.random.RandomState(spec["stream"]).standard_normal(n * zdim).reshape(n, zdim).astype(np.float32))
    index = names.index(layer)
    prefix = model[: index + 1]
    up = lambda a: F.interpolate(a, size=(size, size), mode="bilinear", align_corners=False)
    timings = {}
    start = time.perf_counter()
    rq, tk = StreamingQuantile(), StreamingTopK(topk)
    for i in range(0, n, batch):
        acts = prefix(z_all[i : i + batch])
        tk.add(acts.amax(dim=(2, 3)))
        u = up(acts)
        rq.add(u.permute(0, 2, 3, 1).reshape(-1, u.shape[1]))
    tk.compact()
    levels = rq.quantile(q)
    timings["pass1_s"] = time.perf_counter() - start
    t = time.perf_counter()
    captured = []
    hook = model[index].register_forward_hook(lambda m, i, o: captured.append(o))
    stats = {}
    for i in range(0, n, batch):
        captured.clear()
        images = model(z_all[i : i + batch]).clamp(-1, 1)
        labels = seg.predict(images)
        u = up(captured[0])
        c = u.shape[1]
        active = (u > levels.view(1, -1, 1, 1)).permute(0, 2, 3, 1).reshape(-1, c).float()
        flat = labels.reshape(-1)
        stats.setdefault(0, RunningMean()).add(active)
        for label in flat.unique().tolist():
            if label != 0:
                stats.setdefault(label, RunningMean()).add(active[flat == label])
    hook.remove()
    total = stats[0].n
    p_act = stats[0].mean
    iou = torch.zeros(seg.labels, p_act.shape[0])
    for label, s in stats.items():
        if label == 0:
            continue
        p_c = s.n / total
        isect = s.mean * p_c
        iou[label] = isect / (p_act + p_c - isect).clamp(min=1e-20)
    best = iou[1:].argmax(dim=0) + 1
    timings["pass2_s"] = time.perf_counter() - t
    timings["seconds"] = time.perf_counter() - start
    timings["unit_label_ids"] = best.tolist()
    timings["top_image_of_unit0"] = int(tk.index[0, 0]) if tk.index is not None else -1
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

    out["generate"] = []
    for b in m["batches"]:
        torch.manual_seed(2)
        zb = torch.randn(b, sizes[0])
        model(zb)
        (t,) = interleaved([lambda: model(zb)], min(job["warmup"], 1), job["batch_runs"], job["min_seconds"])
        out["generate"].append({"batch": b, "times_s": t})
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
        out["streaming"] = dissect_streaming(model, names, layer, m["dissect"])
    return out


def peer(weights, sizes, threads):
    torch.set_num_threads(threads)
    model, _ = load_progan(weights, sizes)
    latents = {}
    print("ready", torch.__version__, flush=True)
    for line in sys.stdin:
        words = line.split()
        if words == ["quit"]:
            break
        if len(words) != 2 or words[0] != "generate" or not words[1].isdigit():
            print("error unknown command", flush=True)
            continue
        b = int(words[1])
        if b not in latents:
            torch.manual_seed(2)
            latents[b] = torch.randn(b, sizes[0])
        start = time.perf_counter()
        model(latents[b])
        print(time.perf_counter() - start, flush=True)


def main():
    if sys.argv[1] == "--peer":
        peer(sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]))
        return
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
