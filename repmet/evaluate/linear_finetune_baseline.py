"""The fine-tuning baseline of few-shot detection (TFA: Wang et al., ICML 2020, "Frustratingly
Simple Few-Shot Object Detection"): freeze the detector and fine-tune only a last layer, here
torchvision's standard linear box classifier (``FastRCNNPredictor``-shaped, background +
all classes) on the RoI features of a K-shot set balanced over base and novel classes. It
runs on the same trained detector as RepMet's enrollment, so the two differ only in how a
new class enters the classifier: a few embeddings (RepMet) or a trained linear layer (TFA).
Box regression stays the detector's class-agnostic one for both."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import box_iou

from repmet.data.detection import SupportBox
from repmet.evaluate.detection import CachedRoIs, image_tensor, postprocess
from repmet.evaluate.detection_ap import ImageDetections

FG_IOU = 0.5  # torchvision's RoI heads: foreground at IoU >= 0.5 with a box, background below


@torch.no_grad()
def support_roi_features(model, support: dict[str, list[SupportBox]], device: torch.device
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """RoI features ``[N, F]`` and labels ``[N]`` (0 background, 1..C the support classes in
    order) of the proposals and boxes of the support images: a proposal is labelled with the
    class of a support box it overlaps at IoU >= 0.5, background below 0.5 with every support box
    of its image (only the K chosen boxes are annotated, as in TFA's K-shot sets)."""
    heads = model.roi_heads
    by_image: dict = {}
    for label, boxes in enumerate(support.values(), start=1):
        for item in boxes:
            by_image.setdefault(item.image.path, (item.image, []))[1].append((item.box, label))
    features, labels = [], []
    for image, annotated in by_image.values():
        picture = image_tensor(image.path).to(device)
        boxes = torch.from_numpy(np.stack([b for b, _ in annotated])).float().to(device)
        names = torch.as_tensor([c for _, c in annotated], device=device)
        images, (target,) = model.transform([picture], [{"boxes": boxes, "labels": names}])
        maps = model.backbone(images.tensors)
        proposals, _ = model.rpn(images, maps)
        rois = torch.cat([proposals[0], target["boxes"]])
        overlap, match = box_iou(rois, target["boxes"]).max(dim=1)
        roi_labels = torch.where(overlap >= FG_IOU, names[match], torch.zeros_like(match))
        features.append(heads.box_head(heads.box_roi_pool(maps, [rois], images.image_sizes)))
        labels.append(roi_labels)
    return torch.cat(features), torch.cat(labels)


def fine_tune_linear_classifier(features: torch.Tensor, labels: torch.Tensor, classes: int, steps: int = 300,
                                lr: float = 0.01, foreground_fraction: float = 0.25, seed: int = 0) -> nn.Linear:
    """A ``Linear(F, 1 + classes)`` trained by SGD on batches with a quarter foreground (the RoI
    heads' sampling), as TFA fine-tunes its last layer."""
    generator = torch.Generator().manual_seed(seed)
    layer = nn.Linear(features.shape[1], 1 + classes)
    nn.init.normal_(layer.weight, std=0.01, generator=generator)
    nn.init.zeros_(layer.bias)
    layer = layer.to(features.device)  # initialised on the CPU: the same start on every device
    optimizer = torch.optim.SGD(layer.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    foreground, background = torch.nonzero(labels > 0).flatten(), torch.nonzero(labels == 0).flatten()
    batch = 128
    n_fg = min(len(foreground), int(batch * foreground_fraction))
    for _ in range(steps):
        chosen = torch.cat([foreground[torch.randperm(len(foreground), generator=generator)[:n_fg]],
                            background[torch.randperm(len(background), generator=generator)[:batch - n_fg]]])
        loss = F.cross_entropy(layer(features[chosen]), labels[chosen])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return layer.eval()


@torch.no_grad()
def detect_with_linear_classifier(model, classifier: nn.Linear, cached: list[CachedRoIs],
                                  label_map: list[int]) -> list[ImageDetections]:
    """Detections from cached test RoIs, scored by ``classifier``, boxes refined by the detector's
    class-agnostic regression, post-processed as torchvision does."""
    out = []
    for rois in cached:
        logits = classifier(rois.box_features)
        deltas = model.roi_heads.box_predictor.bbox_pred(rois.box_features).repeat(1, logits.shape[1])
        out.append(postprocess(model, logits, deltas, rois, label_map))
    return out
