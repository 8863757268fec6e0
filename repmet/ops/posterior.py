"""The class posterior of every method, written once (RepMet, Karlinsky et al. CVPR 2019, eq. 3
normalised over classes): each representative r_ck of class c scores ``exp(-d(x, r_ck) / (2 sigma^2))``,
a class takes its best representative, and the scores are normalised over classes.

Prototypical Networks are the case K = 1, sigma^2 = 1/2 (their ``softmax(-d)``); Magnet's export
uses its cluster centres with sigma^2 = its variance. The training losses take log-softmax of
these logits and the exported head takes their softmax; the runtime's numpy twin
(``repmet.runtime.backends.base.numpy_head``) is held equal to this by a test.
"""

from __future__ import annotations

import math

import torch

PROTOTYPICAL_SIGMA = math.sqrt(0.5)  # softmax(-d) == exp(-d / (2 sigma^2)) normalised, with sigma^2 = 1/2


def class_logits(distances: torch.Tensor, sigma: float) -> torch.Tensor:
    """``distances [B, C, K]`` (squared distances to each class's K representatives) ->
    logits ``[B, C]``: ``-min_k d / (2 sigma^2)``."""
    return -distances.min(dim=2).values / (2.0 * sigma * sigma)


def class_log_posterior(distances: torch.Tensor, sigma: float) -> torch.Tensor:
    """``[B, C, K] -> [B, C]`` log-posteriors (what the losses train)."""
    return torch.log_softmax(class_logits(distances, sigma), dim=1)


def class_posterior(distances: torch.Tensor, sigma: float) -> torch.Tensor:
    """``[B, C, K] -> [B, C]`` posteriors (what the exported head outputs)."""
    return torch.softmax(class_logits(distances, sigma), dim=1)


def detection_logits(distances: torch.Tensor, sigma: float, min_background: float = 1e-6) -> torch.Tensor:
    """``distances [R, C, K]`` of RoI embeddings -> logits ``[R, 1 + C]``, background first, for
    a detector (RepMet, section 3.2): class c scores ``P(c) = exp(-min_k d / (2 sigma^2))``, not
    normalised over classes, and background gets ``1 - max_c P(c)``; the logits are their logs,
    so a softmax over them (what torchvision's RoI heads apply) normalises background and classes
    together. Background is kept above ``min_background`` so that its log stays finite when an
    RoI sits on a representative."""
    logits = class_logits(distances, sigma)  # log P(c) <= 0
    best = logits.max(dim=1, keepdim=True).values
    # expm1 is exact near P = 1 but has no ONNX op; exported graphs use 1 - exp (the clamp below
    # hides the difference)
    background = (1.0 - torch.exp(best)) if torch.onnx.is_in_onnx_export() else -torch.expm1(best)
    background = background.clamp_min(min_background)
    return torch.cat([background.log(), logits], dim=1)
