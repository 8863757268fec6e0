"""What the cached-region lab notes share: a checkpoint's detector, a VOC folder's support and test
splits, the enrolled classes (given, or every class with 5 support boxes and a test box, as
benchmarks/detection_transfer.py picks them), the test images' regions computed once, and one
seeded episode's gallery; and
a scoring with the enrolled classes' distances lowered (:class:`DistanceOffset`)."""
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, "benchmarks")
from detection_transfer import enrollable, load_split  # noqa: E402

from repmet.data import default_data_root  # noqa: E402
from repmet.data.detection import sample_support  # noqa: E402
from repmet.methods import open_checkpoint  # noqa: E402
from repmet.methods.detector_regions import cache_regions, enrolled_representatives  # noqa: E402
from repmet.models.detection.region_scoring import class_scores  # noqa: E402
from repmet.ops.distances import squared_euclidean  # noqa: E402
from repmet.ops.posterior import class_logits  # noqa: E402

torch.set_flush_denormal(True)


@dataclass
class CachedSetting:
    model: object
    support_split: object
    test: object
    names: list
    ids: list
    cached: list

    @property
    def gallery(self):
        return self.model.region_gallery


def open_setting(checkpoint: str, folder: str, support_split: str, test_split: str,
                 classes: str | None = None) -> CachedSetting:
    """``classes``: comma-separated names, or None / "-" for every enrollable class."""
    model = open_checkpoint(checkpoint).model.eval()
    root = Path(default_data_root()) / folder
    support, test = load_split(root, support_split, "voc"), load_split(root, test_split, "voc")
    names = classes.split(",") if classes and classes != "-" else enrollable(support, test, 5, 5)
    ids = test.class_index(names, "enrolled")
    return CachedSetting(model, support, test, names, ids, cache_regions(model, test, torch.device("cpu"), False))


def episode_gallery(setting: CachedSetting, shot: int, episode: int, with_base: bool = False):
    """``(support boxes, representatives [C, K, D], label map)`` of one seeded episode; with the
    base classes first as distractors (label -1: not scored) when ``with_base``."""
    support = sample_support(setting.support_split, setting.names, shot, 0, episode)
    reps = enrolled_representatives(setting.model, support, setting.gallery.reps_per_class, 0, torch.device("cpu"))
    label_map = list(setting.ids)
    if with_base:
        base = setting.gallery.gallery()
        reps, label_map = torch.cat([base, reps]), [-1] * len(base) + label_map
    return support, reps, label_map


class DistanceOffset:
    """``region_scoring.class_scores`` with the squared distances of the gallery's classes from index
    ``first`` on lowered by ``value`` (set between runs), to patch in as ``faster_rcnn.class_scores``."""

    def __init__(self, first: int = 0) -> None:
        self.first, self.value = first, 0.0

    def __call__(self, embeddings, objectness, representatives, background, sigma, power=1.0):
        if self.value == 0.0:
            return class_scores(embeddings, objectness, representatives, background, sigma, power)
        n, (c, k, d) = embeddings.shape[0], representatives.shape
        to_classes = squared_euclidean(embeddings, representatives.reshape(c * k, d)).reshape(n, c, k)
        to_classes[:, self.first:] -= self.value
        to_background = squared_euclidean(embeddings, background)[:, None, :]
        logits = torch.cat([class_logits(to_background, sigma), class_logits(to_classes, sigma)], dim=1)
        return torch.softmax(logits, dim=1)[:, 1:] * objectness.clamp_min(0.0)[:, None]
