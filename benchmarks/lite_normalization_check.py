"""Which input normalisation the EfficientNet-Lite0 ImageNet weights expect, measured: the packaged
ImageNet classifier head on box crops of fsod-mini's train split whose classes ImageNet has
(starfish, jellyfish, ambulance, sharks, stingray, king penguin, buses), 40 per class, each crop
resized to 224 x 224, normalised with ImageNet's mean/std or with (pixel - 127) / 128.

    python benchmarks/lite_normalization_check.py [--data-root DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.functional as TF

from repmet.annotations import load_voc_detection
from repmet.data import default_data_root
from repmet.imaging import open_rgb
from repmet.models.efficientnet_lite import LITE_NORMALIZATION, EfficientNetLite0, packaged_lite0_weights
from repmet.models.registry import IMAGENET_NORMALIZATION

# fsod-mini class -> its ImageNet-1k class ids
IMAGENET_IDS = {"starfish": {327}, "jellyfish": {107}, "Ambulance": {407}, "shark": {2, 3, 4}, "stingray": {5, 6},
                "penguin": {145}, "Bus": {779, 874, 654}}
PER_CLASS = 40


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args()
    root = Path(args.data_root) if args.data_root else default_data_root()
    state = torch.load(packaged_lite0_weights(), map_location="cpu", weights_only=True)
    backbone = EfficientNetLite0()
    backbone.load_state_dict({k: v for k, v in state.items() if not k.startswith("_fc.")})
    head = torch.nn.Linear(1280, state["_fc.weight"].shape[0])
    head.load_state_dict({"weight": state["_fc.weight"], "bias": state["_fc.bias"]})
    backbone.eval()
    split = load_voc_detection(root / "fsod-mini", "train")
    crops, wanted = [], []
    taken = dict.fromkeys(IMAGENET_IDS, 0)
    for image in split.images:
        picture = None
        for box, label in zip(image.boxes, image.labels):
            name = split.class_names[label]
            x1, y1, x2, y2 = (int(v) for v in box)
            if name not in IMAGENET_IDS or taken[name] >= PER_CLASS or x2 - x1 < 16 or y2 - y1 < 16:
                continue
            picture = picture or open_rgb(image.path)
            crops.append(TF.to_tensor(picture.crop((x1, y1, x2, y2)).resize((224, 224))))
            wanted.append(IMAGENET_IDS[name])
            taken[name] += 1
    batch = torch.stack(crops)
    print(f"{len(crops)} crops: " + ", ".join(f"{n} {c}" for n, c in taken.items()) + "\n")
    print("| normalisation | top-1 % | top-5 % |")
    print("|---|---:|---:|")
    for label, (mean, std) in (("ImageNet mean/std", IMAGENET_NORMALIZATION), ("(pixel - 127) / 128", LITE_NORMALIZATION)):
        with torch.no_grad():
            top5 = head(backbone(TF.normalize(batch, mean, std))).topk(5, dim=1).indices.tolist()
        top1 = np.mean([t[0] in w for t, w in zip(top5, wanted)])
        any5 = np.mean([bool(set(t) & w) for t, w in zip(top5, wanted)])
        print(f"| {label} | {100 * top1:.1f} | {100 * any5:.1f} |")


if __name__ == "__main__":
    main()
