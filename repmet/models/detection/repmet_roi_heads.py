"""torchvision's RoI heads with RepMet's training losses: the standard classification and box
losses on the RepMet box predictor's logits, plus RepMet's margin loss on foreground RoIs.
Ignore boxes (label -1 in the targets) are matched like objects, so proposals on them get label
-1, which torchvision's sampler never draws: they are neither foreground nor background."""

from __future__ import annotations

import torch
from torchvision.models.detection.roi_heads import RoIHeads, fastrcnn_loss

from repmet.losses.repmet import margin_loss


class RepMetRoIHeads(RoIHeads):
    def __init__(self, *args, margin_alpha: float = 1.0, margin_weight: float = 1.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.margin_alpha, self.margin_weight = margin_alpha, margin_weight


    def forward(self, features, proposals, image_shapes, targets=None):
        if not self.training:
            return super().forward(features, proposals, image_shapes, targets)
        proposals, _, labels, regression_targets = self.select_training_samples(proposals, targets)
        box_features = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        logits, deltas, distances = self.box_predictor.predict(box_features)
        loss_classifier, loss_box_reg = fastrcnn_loss(logits, deltas, labels, regression_targets)
        labels = torch.cat(labels)
        foreground = labels > 0
        if foreground.any():
            margin = margin_loss(distances[foreground], labels[foreground] - 1, self.margin_alpha).mean()
        else:
            margin = distances.sum() * 0.0  # keeps the graph whole for DDP and the optimiser
        return [], {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg,
                    "loss_margin": self.margin_weight * margin}
