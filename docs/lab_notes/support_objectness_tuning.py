"""Objectness adapted to a new domain at enrollment: the box head's object/background layer fine-tuned on the
support images themselves (regions overlapping a support box at IoU >= 0.5 are objects, regions overlapping none
at IoU < 0.3 are background; other objects in those images are unannotated, as in a user's support set), then the
test images' regions re-chosen and re-scored with it. On indoor85-voc never seen in base training, 5 episodes,
against the base-trained objectness on the same regions and galleries.

    python docs/lab_notes/support_objectness_tuning.py UNSEEN.pt [KEEP ...]

KEEP: the weight of the pull back to the base-trained layer (default 0.01; several: one run each).
"""
import copy
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import box_iou

from cached_setting import episode_gallery, open_setting
from repmet.evaluate.detection_ap import detection_ap
from repmet.evaluate.region_detections import detect_cached
from repmet.methods.detector_regions import CachedRegions, image_tensor, to_canvas
from repmet.models.detection.faster_rcnn import pool_box_features
from repmet.models.detection.region_scoring import clip_to_image, select_regions

setting = open_setting(sys.argv[1], "indoor85-voc", "trainval", "test")
model = setting.model
heads, size = model.roi_heads, model.size


@torch.no_grad()
def proposals(path):
    """The image's second-stage inputs: box features [R, F] and refined boxes [R, 4] of every RPN proposal."""
    picture = image_tensor(path)
    batch, _ = model.transform([picture])
    features = model.backbone(batch.tensors)
    rois = model.rpn(batch, features)[0][0]
    box_features = heads.box_head(pool_box_features(heads.box_roi_pool, features, rois))
    image_size = torch.tensor(batch.image_sizes[0], dtype=torch.float32)
    boxes = clip_to_image(heads.box_coder.decode_single(heads.box_predictor.deltas(box_features), rois), image_size)
    return {"features": box_features, "boxes": boxes, "image": batch.tensors, "size": tuple(batch.image_sizes[0]),
            "original": tuple(picture.shape[-2:])}


support_images = {image.path: proposals(image.path) for image in setting.support_split.images}
test_images = [proposals(image.path) for image in setting.test.images]


def tuned_layer(support, steps=200, keep=1e-2):
    """cls_score fine-tuned on the support images' regions, held near its base-trained weights."""
    rows, labels = [], []
    for path in {item.image.path for items in support.values() for item in items}:
        p = support_images[path]
        shots = to_canvas([item.box for items in support.values() for item in items if item.image.path == path],
                          p["original"], p["size"], torch.device("cpu"))
        iou = box_iou(p["boxes"], shots).max(dim=1).values
        rows += [p["features"][iou >= 0.5], p["features"][iou < 0.3]]
        labels += [torch.ones(int((iou >= 0.5).sum()), dtype=torch.long), torch.zeros(int((iou < 0.3).sum()), dtype=torch.long)]
    x, y = torch.cat(rows), torch.cat(labels)
    layer = copy.deepcopy(heads.box_predictor.cls_score).requires_grad_(True)
    start = [w.detach().clone() for w in layer.parameters()]
    weight = torch.tensor([0.5 / max(float((y == 0).float().mean()), 1e-6), 0.5 / max(float((y == 1).float().mean()), 1e-6)])
    optimizer = torch.optim.Adam(layer.parameters(), lr=1e-3)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(layer(x), y, weight=weight) + keep * sum(((w - s) ** 2).sum() for w, s in zip(layer.parameters(), start))
        loss.backward()
        optimizer.step()
    return layer


@torch.no_grad()
def regions_with(layer):
    out = []
    for p in test_images:
        objectness = torch.softmax(layer(p["features"]), dim=1)[:, 1]
        boxes, chosen = select_regions(p["boxes"], objectness, torch.ones(len(objectness), dtype=torch.bool),
                                       size.regions_per_image, size.region_nms)
        out.append(CachedRegions(boxes, chosen, model.region_embedder(p["image"], boxes), p["size"], p["original"]))
    return out


plain = regions_with(heads.box_predictor.cls_score)
for keep, shot in [(float(k), s) for k in (sys.argv[2:] or ["0.01"]) for s in (1, 5)]:
    base, tuned = [], []
    for episode in range(5):
        support, reps, labels = episode_gallery(setting, shot, episode)
        base.append(detection_ap(setting.test, detect_cached(model, plain, reps, labels), setting.ids)["ap50"])
        adapted = regions_with(tuned_layer(support, keep=keep))
        tuned.append(detection_ap(setting.test, detect_cached(model, adapted, reps, labels), setting.ids)["ap50"])
    print(f"keep {keep:g}, K={shot}: base-trained objectness {100 * np.mean(base):.1f}, tuned on the support images {100 * np.mean(tuned):.1f} "
          f"(per episode {', '.join(f'{100 * b:.1f}->{100 * t:.1f}' for b, t in zip(base, tuned))})", flush=True)
