"""Where the small puffins lose their score: the shipped detector's regions on the fsod-mini test images that
cover a test puffin (IoU >= 0.5), after enrolling the novel classes beside the base gallery (3 seeded episodes):
their objectness, P(puffin), the posterior's argmax (background or which class), and how their score compares
with the puffin score of every other region.

    python docs/lab_notes/puffin_scores.py CHECKPOINT [K]
"""
import sys

import numpy as np
import torch
from torchvision.ops import box_iou
from torchvision.models.detection.transform import resize_boxes
from repmet.methods import open_checkpoint
from repmet.methods.detector import base_novel_classes, load_detection_split
from repmet.methods.detector_regions import cache_regions, enrolled_representatives
from repmet.data.detection import sample_support
from repmet.ops.distances import squared_euclidean
from repmet.ops.posterior import class_logits
torch.set_flush_denormal(True)
trained = open_checkpoint(sys.argv[1]); model = trained.model.eval(); config = trained.config
test = load_detection_split(config, config.data.test_split)
classes = base_novel_classes(config)
cached = cache_regions(model, test, torch.device("cpu"), False)
train = load_detection_split(config, config.data.train_split)
base_ids = test.class_index(list(trained.class_names), "x"); novel_ids = test.class_index(list(classes.novel), "y")
names = list(trained.class_names) + list(classes.novel)
ids = base_ids + novel_ids
gallery = model.region_gallery
print("classes", names, "sigma", gallery.sigma)
shot = int(sys.argv[2]) if len(sys.argv) > 2 else 5
for episode in range(3):
    support = sample_support(train, list(classes.novel), shot, 0, episode)
    sizes = [((b.box[2]-b.box[0])*(b.box[3]-b.box[1]))**0.5 for b in support["puffin"]]
    reps = torch.cat([gallery.gallery(), enrolled_representatives(model, support, gallery.reps_per_class, 0, torch.device("cpu"))])
    C, K, D = reps.shape
    stats = {"cover": [], "fp_scores": []}
    for regions, image in zip(cached, test.images):
        ok = regions.objectness >= 0
        emb, obj = regions.embeddings[ok], regions.objectness[ok]
        boxes = resize_boxes(regions.boxes[ok], list(regions.image_size), list(regions.original_size))
        dc = squared_euclidean(emb, reps.reshape(C*K, D)).reshape(-1, C, K)
        db = squared_euclidean(emb, gallery.background)[:, None, :]
        post = torch.softmax(torch.cat([class_logits(db, gallery.sigma), class_logits(dc, gallery.sigma)], 1), 1)
        p = names.index("puffin") + 1
        wanted = image.labels == test.class_index(["puffin"], "p")[0]
        if wanted.any():
            iou = box_iou(boxes, torch.as_tensor(image.boxes[wanted], dtype=torch.float32)).max(1).values
        else:
            iou = torch.zeros(len(boxes))
        for r in torch.nonzero(iou >= 0.5).flatten():
            stats["cover"].append((float(obj[r]), float(post[r, p]), int(post[r].argmax()), float(post[r, 0]), float((boxes[r,2]-boxes[r,0])*(boxes[r,3]-boxes[r,1]))**0.5))
        for r in torch.nonzero(iou < 0.5).flatten():
            stats["fp_scores"].append(float(post[r, p] * obj[r]))
    cov = np.array(stats["cover"]); fp = np.array(stats["fp_scores"])
    lab = ["bg"] + names
    am = np.bincount(cov[:, 2].astype(int), minlength=len(lab))
    print(f"episode {episode} K={shot}: support puffin sizes {np.round(sizes,0)}; covering regions {len(cov)} (size med {np.median(cov[:,4]):.0f})")
    print(f"  objectness median {np.median(cov[:,0]):.3f}, P(puffin) median {np.median(cov[:,1]):.3f}, P(bg) median {np.median(cov[:,3]):.3f}")
    print("  argmax:", {lab[i]: int(v) for i, v in enumerate(am) if v})
    sc = cov[:, 0] * cov[:, 1]
    print(f"  score of covering regions median {np.median(sc):.3f}; FP puffin scores: >0.1 {int((fp>0.1).sum())}, >0.05 {int((fp>0.05).sum())}, >median cover {int((fp>np.median(sc)).sum())}")
