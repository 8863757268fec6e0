"""Accuracy through the runtime equals accuracy in training code, on the full benchmarks.

    python benchmarks/runtime_accuracy.py \
        --omniglot checkpoints/omniglot/protonets_1_5.pt=artifacts/protonets_1_5 \
        --flowers runs/repmet_flowers_lite0_trainval_cpu/checkpoints/last.pt=artifacts/repmet_flowers_lite0

Omniglot: the checkpoint's 1000 test episodes (its eval way/shot/query/seed, as metric-eval
draws them), scored by ``metric-eval``'s code and by ``FewShotClassifier`` (enroll the support
images, classify the queries) per backend; prints both accuracies and how many episodes differ.
Flowers: every test image classified against the trained gallery by the runtime, against the
closed-set accuracy of ``metric-eval``'s code on the same checkpoint.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from repmet.data import EpisodeSampler, load_few_shot_split, load_labeled_split
from repmet.export.exportable import load_exportable
from repmet.runtime import FewShotClassifier
from repmet.evaluate.episodes import evaluate_episodes
from repmet.losses import create_loss
from repmet.evaluate.registry import evaluate_trained
from repmet.methods import EvalRequest


def omniglot(checkpoint: str, artifact: str, backends: list[str], episodes: int) -> None:
    model = load_exportable(checkpoint)
    e, d = model.config.eval, model.config.data
    data = load_few_shot_split("omniglot", d.test_split, d.root)
    start = time.perf_counter()
    reference = evaluate_episodes(model.embedding, create_loss("prototypical", model.config.loss.distance), data,
                                  e.way, e.shot, e.query, episodes, e.seed, torch.device("cpu"), torch.channels_last)
    print(f"| {model.config.name} | metric-eval code | {100 * reference.accuracy:.2f} +- {100 * reference.ci95:.2f} "
          f"| - | {time.perf_counter() - start:.0f} |", flush=True)
    expected = [round(a * e.way * e.query) for a in reference.per_episode]
    for backend in backends:
        start = time.perf_counter()
        correct = runtime_episodes(FewShotClassifier.load(artifact, backend=backend), data, e, episodes)
        accuracy = np.mean(correct) / (e.way * e.query)
        differ = sum(a != b for a, b in zip(correct, expected))
        print(f"| {model.config.name} | runtime {backend} | {100 * accuracy:.2f} | {differ} | "
              f"{time.perf_counter() - start:.0f} |", flush=True)


def runtime_episodes(classifier, data, e, episodes: int) -> list[int]:
    """Correct queries per episode of the checkpoint's test episodes (``e``: its eval section, as
    metric-eval draws them), enrolling the shots and classifying the queries through ``classifier``."""
    sampler = EpisodeSampler(data.num_classes, data.images_per_class, e.way, e.shot, e.query, episodes, e.seed)
    correct = []
    for index in range(episodes):
        episode = sampler.episode(0, index)
        classifier.clear()
        queries, truth = [], []
        for c, images in zip(episode.classes, episode.images):
            pictures = [255 - data.images[c, i, 0].numpy() for i in images]  # as a user holds them
            classifier.enroll(data.class_names[c], pictures[:e.shot])
            queries += pictures[e.shot:]
            truth += [data.class_names[c]] * e.query
        correct.append(sum(p.label == t for p, t in zip(classifier.classify(queries), truth)))
    return correct


def flowers(checkpoint: str, artifact: str, backends: list[str]) -> None:
    model = load_exportable(checkpoint)
    config = model.config
    start = time.perf_counter()
    trained = model.trained  # what metric-eval runs
    reference = evaluate_trained(trained, EvalRequest(episodes=1, progress=False))
    print(f"| {config.name} | metric-eval code | {100 * reference['accuracy']:.2f} | - | "
          f"{time.perf_counter() - start:.0f} |", flush=True)
    test = load_labeled_split(config.data.dataset, config.data.test_split, config.data.root)
    truth = [test.class_names[c] for c in test.labels]
    for backend in backends:
        classifier = FewShotClassifier.load(artifact, backend=backend)
        start = time.perf_counter()
        predicted = [p.label for p in classifier.classify(list(test.paths))]
        accuracy = np.mean([p == t for p, t in zip(predicted, truth)])
        print(f"| {config.name} | runtime {backend} | {100 * accuracy:.2f} | - | {time.perf_counter() - start:.0f} |",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--omniglot", action="append", default=[], help="CHECKPOINT=ARTIFACT")
    parser.add_argument("--flowers", action="append", default=[], help="CHECKPOINT=ARTIFACT")
    parser.add_argument("--backends", default="onnxruntime,torchscript")
    parser.add_argument("--episodes", type=int, default=1000)
    args = parser.parse_args()
    backends = args.backends.split(",")
    print("| model | scored by | accuracy % | episodes that differ | seconds |")
    print("|---|---|---:|---:|---:|")
    for item in args.omniglot:
        omniglot(*item.split("=", 1), backends, args.episodes)
    for item in args.flowers:
        flowers(*item.split("=", 1), backends)


if __name__ == "__main__":
    main()
