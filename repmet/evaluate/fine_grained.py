"""Evaluation of a fine-grained model (RepMet, Magnet): closed-set accuracy against the learned
representatives (or clusters), retrieval metrics, and few-shot episodes on held-out classes."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from repmet.config import ExperimentConfig
from repmet.data import LabeledImages, load_labeled_classes
from repmet.data.feature_source import CachedFeatureSource, ImageSource
from repmet.data.transforms import TransformSpec, random_views
from repmet.errors import UserError
from repmet.evaluate.registry import EVALUATIONS
from repmet.evaluate.fewshot import fewshot_episodes
from repmet.evaluate.retrieval import retrieval_metrics
from repmet.models.identity import backbone_identity


def feature_source(config: ExperimentConfig, backbone: torch.nn.Module, spec: TransformSpec, device: torch.device,
                   progress: bool):
    """Cached backbone features when the backbone is frozen and cached, else images through it."""
    m = config.model
    if m.cache_features:
        identity = backbone_identity(m.name, m.pretrained, m.weights) + backbone.cached_part_key
        views = config.data.cache_views + random_views(config.data.cache_random_views)
        return CachedFeatureSource(backbone, identity, spec, views, device, progress)
    return ImageSource(spec, device)


@torch.no_grad()
def embed_images(model, source, images: LabeledImages) -> torch.Tensor:
    """Eval-mode embeddings ``[N, D]`` of the centre view of each image."""
    was_training = model.training
    model.eval()
    from_features = not source.uses_backbone
    chunks = [model.embed(x, from_features)[0] for x in source.eval_batches(images.paths)]
    model.train(was_training)
    return torch.cat(chunks)


def trained_classes_only(images: LabeledImages, class_names: list[str]) -> tuple[LabeledImages, np.ndarray]:
    """The images of the model's classes, and their labels in the model's class numbering."""
    index = {name: i for i, name in enumerate(class_names)}
    names = [images.class_names[c] for c in images.labels]
    keep = np.array([name in index for name in names], dtype=bool)
    if not keep.any():
        raise UserError(f"{images.description} has no images of the model's {len(class_names)} classes "
                        f"(e.g. {class_names[:3]}); evaluate on a split of the dataset it was trained on")
    labels = np.array([index[name] for name, k in zip(names, keep) if k], dtype=np.int64)
    return images.subset(keep, images.description), labels


@torch.no_grad()
def closed_set_accuracy(learner, embeddings: torch.Tensor, labels: torch.Tensor) -> float:
    return (learner.log_posterior(embeddings).argmax(dim=1) == labels).float().mean().item()


def held_out_images(config: ExperimentConfig) -> LabeledImages:
    """Every image of ``data.fewshot_classes``, from all splits, in a fixed order (episodes are
    drawn by position, so the same order gives the same episodes to every embedding)."""
    held_out = config.data.fewshot_classes
    path_labels: dict = {}
    d = config.data
    for name in dict.fromkeys([d.train_split, d.val_split, d.test_split]):
        part = load_labeled_classes(d, name, held_out)
        path_labels.update(zip(part.paths, part.labels.tolist()))  # overlapping splits share images
    return LabeledImages(list(path_labels), np.array(list(path_labels.values())), part.class_names,
                         f"{d.dataset} classes {held_out[0]}-{held_out[1]}, all splits")


def evaluate_fine_grained(config: ExperimentConfig, model, class_names: list[str], spec: TransformSpec, split: str,
                          way: int, shots: list[int], query: int, episodes: int, seed: int, reps_per_class: int,
                          device: torch.device, progress: bool = True) -> dict[str, Any]:
    model = model.to(device).eval()
    source = feature_source(config, model.backbone, spec, device, progress)
    images, labels = trained_classes_only(load_labeled_classes(config.data, split), class_names)
    embeddings = embed_images(model, source, images)
    labels_t = torch.from_numpy(labels).to(device)
    result: dict[str, Any] = {
        "split": split,
        "accuracy": closed_set_accuracy(model.method, embeddings, labels_t),
        "images": len(images),
        "classes": len(class_names),
        **retrieval_metrics(embeddings.cpu(), labels_t.cpu()),
        "fewshot": [],
    }
    held_out = config.data.fewshot_classes
    if held_out:
        merged = held_out_images(config)
        fewshot_embeddings = embed_images(model, source, merged).cpu()
        for shot in shots:
            accuracy, ci95 = fewshot_episodes(fewshot_embeddings, merged.labels, way, shot, query, episodes, seed,
                                              reps_per_class)
            result["fewshot"].append({"way": way, "shot": shot, "query": query, "episodes": episodes,
                                      "classes": held_out, "images": len(merged), "accuracy": accuracy,
                                      "ci95": ci95})
    return result


@EVALUATIONS.register("fine_grained")
def evaluate_fine_grained_method(trained, request) -> dict[str, Any]:
    """metric-eval of RepMet and Magnet: closed-set accuracy, retrieval, few-shot on held-out classes."""
    from repmet.methods.fine_grained import transform_spec

    e = trained.config.eval
    shots = [request.shot] if request.shot else e.fewshot_shots
    return evaluate_fine_grained(trained.config, trained.model, trained.class_names, transform_spec(trained.config),
                                 request.split or trained.config.data.test_split, request.way or e.way, shots,
                                 request.query or e.query, request.episodes or e.test_episodes,
                                 e.seed if request.seed is None else request.seed,
                                 trained.method.reps_per_class(trained.config), request.device, request.progress)
