"""Diagnostic: how well does each variant of the frozen-Lite0 crop embedding tell enrolled classes
apart, on ground-truth boxes (no proposals, no background)? Nearest class mean (cosine) of K support
crops from one split, accuracy on the crops of another, mean over seeded episodes.

    python docs/lab_notes/crop_embedding_variants.py indoor85-voc trainval test  [VARIANTS]
    python docs/lab_notes/crop_embedding_variants.py fsod-mini train test

Variants (KIND@S, S the crop size): plain (final 1280-d pooled at crop S), multi (unit-normalised pooled outputs of
the last three stages and the head, concatenated), gem (GeM p=3 on the head), flip (the
plain embedding averaged with the mirrored crop's)."""
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from repmet.annotations import load_voc_detection
from repmet.data import default_data_root
from repmet.models.efficientnet_lite import LITE_NORMALIZATION, efficientnet_lite0
from repmet.ops.roi_align import roi_align

torch.set_flush_denormal(True)
torch.manual_seed(0)
folder = Path(default_data_root()) / sys.argv[1]
support_split, test_split = load_voc_detection(folder, sys.argv[2]), load_voc_detection(folder, sys.argv[3])
variants = (sys.argv[4] if len(sys.argv) > 4 else "plain@128,plain@160,plain@192,multi@128,gem@128,flip@128").split(",")
net = efficientnet_lite0(pretrained=True).eval()
mean = torch.tensor(LITE_NORMALIZATION[0]).reshape(1, 3, 1, 1)
std = torch.tensor(LITE_NORMALIZATION[1]).reshape(1, 3, 1, 1)
# stage ends: blocks 4 (40 ch), 7 (80), 10 (112), 14 (192), 15 (320)
STAGES = {"multi": (10, 14, 15), "multi2": (14, 15), "multi4": (7, 10, 14, 15), "multi5": (4, 7, 10, 14, 15),
          "multi1": (14,)}


HEAD_WEIGHT = float(sys.argv[5]) if len(sys.argv) > 5 else 1.0  # the head's part against each stage's


def canvas(path):
    """The image as the detector sees it: shorter side 320, longer at most 512, Lite-normalised."""
    image = Image.open(path).convert("RGB")
    w, h = image.size
    scale = min(320 / min(w, h), 512 / max(w, h))
    image = image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(image)).permute(2, 0, 1)[None].float() / 255
    return (x - mean) / std, scale


def embed(crops, kind):
    if kind == "flip":
        return F.normalize(embed(crops, "plain") + embed(crops.flip(-1), "plain"), dim=1)
    x = F.relu6(net._bn0(net._conv_stem(crops)))
    parts = []
    for i, block in enumerate(net._blocks):
        x = block(x)
        if i in STAGES.get(kind, ()):
            parts.append(F.normalize(x.mean(dim=(2, 3)), dim=1))
    x = F.relu6(net._bn1(net._conv_head(x)))
    if kind == "gem":
        return F.normalize(x.clamp_min(1e-6).pow(3).mean(dim=(2, 3)).pow(1 / 3), dim=1)
    parts.append(F.normalize(x.mean(dim=(2, 3)), dim=1) * (HEAD_WEIGHT if parts else 1.0))
    return F.normalize(torch.cat(parts, dim=1), dim=1)


def crops_of(split, names, size):
    """{class name: [crop tensors]} for the non-difficult boxes of ``names``."""
    out = {n: [] for n in names}
    for item in split.images:
        wanted = [(b, split.class_names[l]) for b, l, d in zip(item.boxes, item.labels, item.difficult)
                  if not d and split.class_names[l] in out]
        if not wanted:
            continue
        image, scale = canvas(item.path)
        boxes = torch.tensor(np.stack([b for b, _ in wanted]), dtype=torch.float32) * scale
        crops = roi_align(image, boxes, size, 1.0, 2, aligned=True)
        for crop, (_, name) in zip(crops, wanted):
            out[name].append(crop)
    return {n: torch.stack(c) for n, c in out.items() if c}


support_counts = support_split.box_counts(include_difficult=False)
test_counts = test_split.box_counts(include_difficult=False)
names = [n for c, n in enumerate(support_split.class_names)
         if support_counts[c] >= 5 and n in test_split.class_names
         and test_counts[test_split.class_names.index(n)] > 0]
print(f"{folder.name}: {len(names)} classes ({', '.join(names)})", flush=True)
cache = {}
for variant in variants:
    kind, size = variant.split("@")[0], int(variant.split("@")[1])
    if size not in cache:
        cache[size] = (crops_of(support_split, names, size), crops_of(test_split, names, size))
    support_crops, test_crops = cache[size]
    with torch.no_grad():
        support_e = {n: torch.cat([embed(c[i:i + 64], kind) for i in range(0, len(c), 64)]) for n, c in support_crops.items()}
        test_e = {n: torch.cat([embed(c[i:i + 64], kind) for i in range(0, len(c), 64)]) for n, c in test_crops.items()}
    queries = torch.cat([test_e[n] for n in names])
    truth = torch.cat([torch.full((len(test_e[n]),), i) for i, n in enumerate(names)])
    line = []
    for shots in (1, 5):
        accuracies = []
        for episode in range(20):
            rng = np.random.default_rng(episode)
            prototypes = torch.stack([F.normalize(support_e[n][rng.choice(len(support_e[n]), shots, replace=False)].mean(0), dim=0)
                                      for n in names])
            accuracies.append((queries @ prototypes.T).argmax(1).eq(truth).float().mean().item())
        line.append(f"K={shots}: {100 * np.mean(accuracies):.1f}")
    print(f"{variant:>10}  " + "  ".join(line), flush=True)
