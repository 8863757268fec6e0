"""Draw a trained detector's detections on a few test images, after enrolling the novel classes
from K support boxes of the train split (one seeded episode), to PNG files.

    python benchmarks/draw_detections.py CHECKPOINT --out DIR [--images 4] [--shot 5] [--score 0.5] \
        [--sheet FILE.png]

``--sheet`` also puts the drawn images side by side, each scaled to 300 px high, in one PNG
(the README's picture).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from repmet.data.detection import sample_support
from repmet.evaluate.region_detections import detect_cached
from repmet.methods.detector_regions import cache_regions, enrolled_representatives
from repmet.imaging import open_rgb
from repmet.methods import open_checkpoint
from repmet.methods.detector import base_novel_classes, load_detection_split
from repmet.runtime.detector import Detection
from repmet.runtime.draw import draw_detections

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--out", required=True)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--shot", type=int, default=5)
    parser.add_argument("--score", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sheet", default=None, help="also write all drawn images side by side to this PNG")
    args = parser.parse_args()
    trained = open_checkpoint(args.checkpoint)
    config, model = trained.config, trained.model.eval()
    classes = base_novel_classes(config)
    test = load_detection_split(config, config.data.test_split)
    novel_ids = test.class_index(list(classes.novel), "novel classes")
    base_ids = test.class_index(trained.class_names, "base classes")
    # test images that show a novel class first, spread over the split
    with_novel = [i for i, im in enumerate(test.images) if np.isin(im.labels, novel_ids).any()]
    picks = [with_novel[j] for j in np.linspace(0, len(with_novel) - 1, args.images).round().astype(int)]
    subset = type(test)([test.images[i] for i in picks], test.class_names, test.description)
    gallery = model.region_gallery
    support = sample_support(load_detection_split(config, config.data.train_split), list(classes.novel), args.shot,
                             args.seed, 0)
    novel = enrolled_representatives(model, support, gallery.reps_per_class, args.seed, torch.device("cpu"))
    found = detect_cached(model, cache_regions(model, subset, torch.device("cpu"), False),
                          torch.cat([gallery.gallery(), novel]), base_ids + novel_ids)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    drawn = []
    names = test.class_names
    for image, detections in zip(subset.images, found):
        kept = [Detection(tuple(box), names[label], float(score))
                for box, score, label in zip(detections.boxes, detections.scores, detections.labels)
                if score >= args.score]
        picture = draw_detections(open_rgb(image.path), kept, [names[i] for i in base_ids + novel_ids],
                                  marked=classes.novel)
        target = out / f"{image.path.stem}.png"
        picture.save(target)
        drawn.append(picture)
        print(f"{target}: {len(kept)} detections")
    if args.sheet:
        height = 300
        scaled = [p.resize((round(p.width * height / p.height), height), Image.LANCZOS) for p in drawn]
        sheet = Image.new("RGB", (sum(p.width for p in scaled) + 4 * (len(scaled) - 1), height), "white")
        x = 0
        for picture in scaled:
            sheet.paste(picture, (x, 0))
            x += picture.width + 4
        sheet.save(args.sheet, optimize=True)
        print(f"{args.sheet}: {len(scaled)} images side by side")


if __name__ == "__main__":
    main()
