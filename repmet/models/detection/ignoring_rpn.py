"""torchvision's region proposal network, taught to leave *ignore* boxes alone: in base training
the novel classes' boxes (targets with label -1) are neither objects nor background, so anchors
that overlap one more than any base box are discarded from the RPN's loss."""

from __future__ import annotations

import torch
from torchvision.models.detection.rpn import RegionProposalNetwork
from torchvision.ops import box_iou


class IgnoringRegionProposalNetwork(RegionProposalNetwork):
    def assign_targets_to_anchors(self, anchors, targets):
        base_targets = [{"boxes": t["boxes"][t["labels"] > 0]} for t in targets]
        labels, matched_gt_boxes = super().assign_targets_to_anchors(anchors, base_targets)
        for anchors_in_image, target, labels_in_image in zip(anchors, targets, labels):
            ignore = target["boxes"][target["labels"] < 0]
            if ignore.numel() == 0:
                continue
            near_ignore = box_iou(ignore, anchors_in_image).max(dim=0).values
            base = target["boxes"][target["labels"] > 0]
            near_base = box_iou(base, anchors_in_image).max(dim=0).values if base.numel() else torch.zeros_like(near_ignore)
            discard = (near_ignore >= self.proposal_matcher.low_threshold) & (near_ignore > near_base)
            labels_in_image[discard] = -1.0
        return labels, matched_gt_boxes
