"""Diagnostic: region crops with context (margin m around each box) or square (aspect kept) with context;
background refitted with the same crops; unseen indoor85, 27 classes, no base gallery, K = 1 / 5, 5 episodes."""
import sys
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, "benchmarks")
from detection_transfer import load_split, enrollable
from repmet.data import default_data_root
from repmet.data.detection import sample_support
from repmet.evaluate.confidence import mean_and_ci95
from repmet.evaluate.region_detections import detect_cached
from repmet.methods.detector_regions import cache_regions, enrolled_representatives
from repmet.evaluate.detection_ap import detection_ap
from repmet.methods import open_checkpoint
from repmet.methods.detector_gallery_fit import fit_region_gallery
from repmet.models.detection.region_embedder import RegionEmbedder

torch.set_flush_denormal(True)
ckpt = sys.argv[1]
variants = sys.argv[2].split(",")  # e.g. plain,margin1.2,square1.1
trained = open_checkpoint(ckpt)
model = trained.model.eval()
config = trained.config
folder = Path(default_data_root()) / "indoor85-voc"
support_split, test = load_split(folder, "trainval", "voc"), load_split(folder, "test", "voc")
names = enrollable(support_split, test, 5, 5)
ids = test.class_index(names, "enrolled")
train_images, _ = trained.method.base_training_set(config)
original_forward = RegionEmbedder.forward

def expanded(boxes, kind, m):
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    if kind == "square":
        w = h = torch.maximum(w, h)
    w, h = w * m, h * m
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=1)

k = model.region_gallery.reps_per_class
for variant in variants:
    kind = "plain" if variant == "plain" else ("square" if variant.startswith("square") else "margin")
    m = 1.0 if kind == "plain" else float(variant[len(kind):])
    RegionEmbedder.forward = (original_forward if kind == "plain" else
                              (lambda self, image, boxes, kind=kind, m=m: original_forward(self, image, expanded(boxes, kind, m))))
    d = config.detection
    fit_region_gallery(model, train_images, 8, d.fit_boxes_per_class, d.fit_background_images, config.seed,
                       torch.device("cpu"), progress=False)
    cached = cache_regions(model, test, torch.device("cpu"), False)
    res = {}
    for shot in (1, 5):
        for ep in range(5):
            support = sample_support(support_split, names, shot, 0, ep)
            reps = enrolled_representatives(model, support, k, 0, torch.device("cpu"))
            res.setdefault(shot, []).append(detection_ap(test, detect_cached(model, cached, reps, list(ids)), ids)["ap50"])
    print(variant, " ".join(f"K={s}: {100*mean_and_ci95(r)[0]:.1f} +- {100*mean_and_ci95(r)[1]:.1f}" for s, r in res.items()), flush=True)
