"""Writes the seed corpus of the fuzz harness (tests/fuzz.rs) into fuzz/corpus/.

Usage: python fuzz/make_corpus.py   (with the project's .venv Python: torch, numpy)

pth/: small checkpoints as torch.save writes them, in both formats: a conv + linear state dict,
views and shared storages, every dtype, nested containers. mask/: small masks of every colour
type the mask reader meets (gray, gray + alpha, RGB, RGBA, 16-bit, palette) and another
aspect ratio. script/: edit scripts with good, bad and unusual lines.
"""

import collections
import io
import os
import zlib
import struct

import torch

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def save(obj, name):
    d = os.path.join(root, "pth")
    os.makedirs(d, exist_ok=True)
    torch.save(obj, os.path.join(d, f"zip_{name}.pth"))
    torch.save(obj, os.path.join(d, f"legacy_{name}.pth"), _use_new_zipfile_serialization=False)


torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.Linear(3, 2))
save(net.state_dict(), "small")
base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
views = collections.OrderedDict()
views["t"] = base.t()
views["strided"] = base[:, ::2]
views["tail"] = base.view(-1)[5:].view(7)
views["scalar"] = torch.tensor(2.5)
views["empty"] = torch.zeros(0, 3)
save(views, "views")
dtypes = {
    str(dt): torch.arange(4).to(dt)
    for dt in [torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int32, torch.int8, torch.uint8, torch.bool]
}
save(dtypes, "dtypes")
save({"state_dict": {"a": torch.ones(2)}, "epoch": 3, "names": ["x", "y"], "nested": [(torch.zeros(1), {1: torch.ones(1)})]}, "nested")


def png(name, width, height, color_type, bit_depth, rows, interlace=0, extra=()):
    chunks = [(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, interlace))]
    chunks.extend(extra)
    chunks.append((b"IDAT", zlib.compress(b"".join(b"\0" + r for r in rows))))
    chunks.append((b"IEND", b""))
    out = b"\x89PNG\r\n\x1a\n"
    for kind, data in chunks:
        out += struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    d = os.path.join(root, "mask")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(out)


w = h = 8
half = [bytes(255 if x < w // 2 else 0 for x in range(w)) for _ in range(h)]
png("gray.png", w, h, 0, 8, half)
png("gray_alpha.png", w, h, 4, 8, [bytes(v for x in r for v in (0, x)) for r in half])
png("rgb.png", w, h, 2, 8, [bytes(v for x in r for v in (x, x, x)) for r in half])
png("rgba.png", w, h, 6, 8, [bytes(v for x in r for v in (0, 0, 0, x)) for r in half])
png("gray16.png", w, h, 0, 16, [bytes(v for x in r for v in (x, x)) for r in half])
png("palette.png", w, h, 3, 8, [bytes(1 if x else 0 for x in r) for r in half], extra=[(b"PLTE", b"\0\0\0\xff\xff\xff")])
png("wide.png", 16, 8, 0, 8, [bytes(255 if x < 8 else 0 for x in range(16)) for _ in range(8)])

d = os.path.join(root, "script")
os.makedirs(d, exist_ok=True)
good = '{"seed": 7, "edits": [{"op": "remove", "concept": "tree", "mask": "masks/left.png"}], "out": "scene7.png"}'
scripts = {
    "good.jsonl": good + "\n" + good.replace("7", "8") + "\n",
    "units.jsonl": '{"seed": 1, "edits": [{"op": "add", "concept": "door", "mask": "m.png", "units": [3, 5]}], "out": "sub/a.png", "force": true}\n',
    "bom.jsonl": "\ufeff# a comment\n\n" + good + "\n",
    "collide.jsonl": good + "\n" + good.replace("scene7.png", "scene7-original.png") + "\n" + good.replace("scene7.png", "manifest.png") + "\n",
    "bad.jsonl": '{"seed": -1}\n{"seed": 2, "edits": [], "out": "../up.png"}\n{"seed": 3, "edits": [], "out": "/abs.png"}\nnot json\n',
}
for name, text in scripts.items():
    with open(os.path.join(d, name), "w", encoding="utf-8") as f:
        f.write(text)
