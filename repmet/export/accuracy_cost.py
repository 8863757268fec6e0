"""What a lossy format (int8) costs a user, measured at export on the checkpoint's test images:
the same images classified through the fp32 PyTorch model and through the exported graphs, by the
artifact's own distance head.

- A trained gallery that names the test classes (fine-grained recipes): closed-set accuracy of
  every test image against the gallery.
- No trained gallery (Prototypical Networks): seeded few-shot episodes of the config's way and
  shot over the test images, a class being the mean of its shots' embeddings, every other image
  of the class a query; both models see the same episodes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch

from repmet.errors import UserError
from repmet.methods.base import LabeledSample

EPISODES = 300
EMBED_BATCH = 64


@dataclass(frozen=True)
class AccuracyCost:
    protocol: str
    reference: float  # accuracy of the fp32 model, 0..1
    candidate: float  # accuracy through the exported graphs
    allowed_points: float

    @property
    def points(self) -> float:
        """Accuracy lost, in percentage points (negative: the candidate did better)."""
        return 100.0 * (self.reference - self.candidate)

    @property
    def passed(self) -> bool:
        return self.points <= self.allowed_points

    def to_dict(self) -> dict:
        return {**asdict(self), "cost_points": self.points, "passed": self.passed}


def require_within(cost: AccuracyCost, name: str, log: Callable[[str], None], metric: str = "accuracy") -> dict:
    """Log ``cost`` and refuse the artifact (a sentence) when it is beyond what is allowed; its record."""
    log(f"accuracy  {name:<11} {cost.protocol}: fp32 {100 * cost.reference:.2f}, {name} {100 * cost.candidate:.2f} "
        f"(cost {cost.points:+.2f} points, allowed {cost.allowed_points:g})")
    if not cost.passed:
        raise UserError(f"the {name} export costs {cost.points:.2f} points of {metric} against fp32 ({cost.protocol}), "
                        f"more than the {cost.allowed_points:g} allowed (--max-accuracy-cost); the artifact was not "
                        f"written. Calibrate on images like the ones it will see, or allow more")
    return cost.to_dict()


def embed_all(embed: Callable[[np.ndarray], np.ndarray], images: np.ndarray) -> np.ndarray:
    return np.concatenate([embed(np.ascontiguousarray(images[i:i + EMBED_BATCH], np.float32))
                           for i in range(0, len(images), EMBED_BATCH)])


def measure_accuracy_cost(model, candidate_embed: Callable[[np.ndarray], np.ndarray], sample: LabeledSample,
                          allowed_points: float) -> AccuracyCost:
    """``model``: an ExportableModel (its eager embedding is the fp32 reference, its head scores both)."""
    with torch.no_grad():
        reference = embed_all(lambda x: model.embedding.eval()(torch.from_numpy(x)).numpy(), sample.images)
    candidate = embed_all(candidate_embed, sample.images)
    gallery_labels = list(model.gallery.labels)
    known = {name: i for i, name in enumerate(gallery_labels)}
    in_gallery = np.array([sample.class_names[c] in known for c in sample.labels], bool)
    if in_gallery.any():
        truth = np.array([known[sample.class_names[c]] for c in sample.labels[in_gallery]])
        reps = torch.from_numpy(model.gallery.representatives)
        accuracy = [gallery_accuracy(model.head, e[in_gallery], truth, reps) for e in (reference, candidate)]
        protocol = (f"closed-set accuracy of {int(in_gallery.sum())} test images against the "
                    f"{len(gallery_labels)}-class gallery")
    else:
        way, shot = model.config.eval.way, model.config.eval.shot
        episodes = few_shot_episodes(sample.labels, way, shot, EPISODES, model.config.eval.seed)
        accuracy = [episode_accuracy(model.head, e, sample.labels, episodes) for e in (reference, candidate)]
        protocol = f"{way}-way {shot}-shot, {len(episodes)} episodes over {len(sample.labels)} test images"
    return AccuracyCost(f"{protocol} ({sample.description})", accuracy[0], accuracy[1], allowed_points)


@torch.no_grad()
def gallery_accuracy(head, embeddings: np.ndarray, truth: np.ndarray, representatives: torch.Tensor) -> float:
    _, posteriors = head(torch.from_numpy(embeddings), representatives)
    return float((posteriors.argmax(1).numpy() == truth).mean())


def few_shot_episodes(labels: np.ndarray, way: int, shot: int, episodes: int, seed: int) -> list:
    """Seeded episodes: ``(classes, shot indices per class)``; the rest of each class are queries."""
    classes = np.array(sorted(set(labels.tolist())))
    counts = {c: int((labels == c).sum()) for c in classes}
    usable = np.array([c for c in classes if counts[c] > shot])
    if len(usable) < way:
        raise ValueError(f"{len(usable)} classes with more than {shot} images: too few for {way}-way episodes")
    rng = np.random.default_rng(seed)
    drawn = []
    for _ in range(episodes):
        chosen = rng.choice(usable, way, replace=False)
        drawn.append([(c, rng.choice(np.flatnonzero(labels == c), shot, replace=False)) for c in chosen])
    return drawn


@torch.no_grad()
def episode_accuracy(head, embeddings: np.ndarray, labels: np.ndarray, episodes: list) -> float:
    correct = total = 0
    for episode in episodes:
        prototypes = torch.from_numpy(np.stack([embeddings[shots].mean(0) for _, shots in episode]))[:, None, :]
        for index, (c, shots) in enumerate(episode):
            queries = np.setdiff1d(np.flatnonzero(labels == c), shots)
            _, posteriors = head(torch.from_numpy(embeddings[queries]), prototypes)
            correct += int((posteriors.argmax(1) == index).sum())
            total += len(queries)
    return correct / total
