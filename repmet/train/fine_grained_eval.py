"""Evaluation of a RepMet / Magnet checkpoint: closed-set accuracy against the learned
representatives (or clusters), retrieval metrics, and few-shot episodes on held-out classes."""

from __future__ import annotations

import tempfile
from typing import Any

import numpy as np

from repmet.data import LabeledImages
from repmet.train.batch_trainer import BatchTrainer, load_split
from repmet.train.config import ExperimentConfig
from repmet.train.fewshot_eval import fewshot_episodes
from repmet.train.retrieval import retrieval_metrics


def evaluate_fine_grained(config: ExperimentConfig, model_state: dict, split: str, way: int, shots: list[int],
                          query: int, episodes: int, seed: int, progress: bool = True) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        trainer = BatchTrainer(config, scratch, progress=progress, trained_state=model_state)
    test = load_split(config, split, None)
    images, labels = trainer.trained_classes_only(test)
    embeddings = trainer.embed(images)
    result: dict[str, Any] = {
        "split": split,
        "accuracy": trainer.closed_set_accuracy(images, embeddings),
        "images": len(images),
        "classes": len(trainer.class_names),
        **retrieval_metrics(embeddings.cpu(), labels.cpu()),
        "fewshot": [],
    }
    held_out = config.data.fewshot_classes
    if held_out:
        path_labels: dict = {}
        for name in dict.fromkeys([config.data.train_split, config.data.val_split, config.data.test_split]):
            part = load_split(config, name, held_out)
            path_labels.update(zip(part.paths, part.labels.tolist()))  # overlapping splits share images
        merged = LabeledImages(list(path_labels), np.array(list(path_labels.values())), part.class_names,
                               f"{config.data.dataset} classes {held_out[0]}-{held_out[1]}, all splits")
        fewshot_embeddings = trainer.embed(merged).cpu()
        k = config.repmet.reps_per_class if config.method == "repmet" else config.magnet.clusters_per_class
        for shot in shots:
            accuracy, ci95 = fewshot_episodes(fewshot_embeddings, merged.labels, way, shot, query, episodes, seed, k)
            result["fewshot"].append({"way": way, "shot": shot, "query": query, "episodes": episodes,
                                      "classes": held_out, "images": len(merged), "accuracy": accuracy,
                                      "ci95": ci95})
    return result
