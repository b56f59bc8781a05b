"""Writes random-weight stand-ins of the models a researcher brings, for timing the recipe of
docs/own_models.md without the real weights (speed depends on the shapes, not the values).

Usage: .venv/bin/python scripts/own_models_standins.py OUT_DIR

- church.pth: a 256x256 ProGAN generator of the standard sizes, netdissect layout;
- vgg16_places365.pth: a torchvision-layout VGG-16 with 365 classes (224x224 input);
- upernet/segmenter.pt + labels.json: a segmenter of the unified-parsing network's size class
  (ResNet-50 with dilated last stages, output stride 8, a pyramid pooling head and object /
  part / material heads over 389 labels), returning label maps [N, 3, H, W]; traced.
"""

import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures"))
import progan_reference  # noqa: E402


def vgg16_state(num_classes):
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    sd, i, cin = {}, 0, 3
    for v in cfg:
        if v == "M":
            i += 1
            continue
        w = torch.empty(v, cin, 3, 3)
        nn.init.kaiming_normal_(w)
        sd[f"features.{i}.weight"], sd[f"features.{i}.bias"] = w, torch.zeros(v)
        i, cin = i + 2, v
    for j, (o, n) in enumerate([(4096, 512 * 7 * 7), (4096, 4096), (num_classes, 4096)]):
        sd[f"classifier.{3 * j}.weight"] = torch.randn(o, n) * (2.0 / n) ** 0.5
        sd[f"classifier.{3 * j}.bias"] = torch.zeros(o)
    return sd


class Bottleneck(nn.Module):
    def __init__(self, cin, mid, stride, dilation):
        super().__init__()
        cout = mid * 4
        self.a = nn.Conv2d(cin, mid, 1, bias=False)
        self.b = nn.Conv2d(mid, mid, 3, stride, dilation, dilation, bias=False)
        self.c = nn.Conv2d(mid, cout, 1, bias=False)
        self.na, self.nb, self.nc = nn.BatchNorm2d(mid), nn.BatchNorm2d(mid), nn.BatchNorm2d(cout)
        self.skip = None
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.na(self.a(x)))
        y = F.relu(self.nb(self.b(y)))
        y = self.nc(self.c(y))
        return F.relu(y + (x if self.skip is None else self.skip(x)))


class StandInParser(nn.Module):
    """ResNet-50 (dilated, output stride 8) + pyramid pooling + three heads."""

    def __init__(self, objects, parts, materials):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
        )
        layers, cin = [], 64
        for mid, blocks, stride, dilation in [(64, 3, 1, 1), (128, 4, 2, 1), (256, 6, 1, 2), (512, 3, 1, 4)]:
            for k in range(blocks):
                layers.append(Bottleneck(cin, mid, stride if k == 0 else 1, dilation))
                cin = mid * 4
        self.body = nn.Sequential(*layers)
        self.ppm = nn.ModuleList(nn.Conv2d(2048, 512, 1) for _ in (1, 2, 3, 6))
        self.fuse = nn.Conv2d(2048 + 4 * 512, 512, 3, padding=1)
        self.heads = nn.ModuleList(nn.Conv2d(512, n, 1) for n in (objects, parts, materials))
        self.offsets = [0, objects, objects + parts]

    def forward(self, x):
        h, w = x.shape[2], x.shape[3]
        f = self.body(self.stem(x))
        pooled = [
            F.interpolate(conv(F.adaptive_avg_pool2d(f, s)), size=f.shape[2:], mode="bilinear", align_corners=False)
            for s, conv in zip((1, 2, 3, 6), self.ppm)
        ]
        f = F.relu(self.fuse(torch.cat([f] + pooled, 1)))
        maps = []
        for head, offset in zip(self.heads, self.offsets):
            scores = F.interpolate(head(f), size=(h, w), mode="bilinear", align_corners=False)
            maps.append(scores.argmax(1) + 1 + offset)
        return torch.stack(maps, 1)


def main():
    out = sys.argv[1]
    os.makedirs(os.path.join(out, "upernet"), exist_ok=True)
    torch.manual_seed(0)
    seq, names = progan_reference.progan([512, 512, 512, 512, 512, 256, 128, 64], random=True)
    state = {}
    for key, value in seq.state_dict().items():
        index, rest = key.split(".", 1)
        state[f"{names[int(index)]}.{rest}"] = value
    torch.save(state, os.path.join(out, "church.pth"))
    torch.save(vgg16_state(365), os.path.join(out, "vgg16_places365.pth"))
    objects, parts, materials = 335, 28, 25
    net = StandInParser(objects, parts, materials).eval()
    traced = torch.jit.trace(net, torch.rand(1, 3, 256, 256) * 2 - 1)
    traced.save(os.path.join(out, "upernet", "segmenter.pt"))
    labels = [{"name": "-", "category": "-"}]
    for category, n in [("object", objects), ("part", parts), ("material", materials)]:
        labels += [{"name": f"{category}{i}", "category": category} for i in range(n)]
    with open(os.path.join(out, "upernet", "labels.json"), "w") as f:
        json.dump(labels, f)
    print(f"wrote church.pth, vgg16_places365.pth, upernet/ ({len(labels)} labels) to {out}")


if __name__ == "__main__":
    main()
