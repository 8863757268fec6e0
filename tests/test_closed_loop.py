"""The closed loop: train (tiny) -> metric-export -> runtime enrols Omniglot test classes ->
the same per-episode accuracy as metric-eval on the same episodes."""

import json
import subprocess

import numpy as np
import pytest
import torch

from conftest import PROJECT_ROOT, script
from repmet.data import EpisodeSampler, load_few_shot_split
from repmet.export.exportable import load_exportable
from repmet.runtime import FewShotClassifier
from repmet.evaluate.episodes import evaluate_episodes
from repmet.losses import create_loss

EPISODES = 25


def run(*command, cwd=PROJECT_ROOT):
    result = subprocess.run([script(command[0]), *command[1:]], capture_output=True, text=True, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def trained_and_exported(data_root, tmp_path_factory):
    work = tmp_path_factory.mktemp("loop")
    run("metric-train", "configs/protonets_demo.yaml", "--set", f"data.root={data_root}", "--set", "train.way=5",
        "--set", "train.episodes_per_epoch=20", "--set", "train.epochs=1", "--set", "eval.val_episodes=2",
        "--out", str(work / "run"), "--no-progress")
    checkpoint = work / "run" / "checkpoints" / "last.pt"
    run("metric-export", str(checkpoint), "--format", "torchscript", "--format", "onnx", "--out", str(work / "art"),
        "--data-root", str(data_root))
    return checkpoint, work / "art"


def runtime_episode_accuracies(classifier, data, way, shot, query, seed):
    sampler = EpisodeSampler(data.num_classes, data.images_per_class, way, shot, query, EPISODES, seed)
    accuracies = []
    for index in range(EPISODES):
        episode = sampler.episode(0, index)
        classifier.clear()
        queries, truth = [], []
        for c, images in zip(episode.classes, episode.images):
            label = data.class_names[c]
            # what a user holds: dark strokes on white, as the Omniglot PNGs are
            pictures = [255 - data.images[c, i, 0].numpy() for i in images]
            classifier.enroll(label, pictures[:shot])
            queries += pictures[shot:]
            truth += [label] * query
        predicted = [p.label for p in classifier.classify(queries)]
        accuracies.append(float(np.mean([p == t for p, t in zip(predicted, truth)])))
    return accuracies


@pytest.mark.parametrize("shot", [1, 5])
def test_runtime_reproduces_metric_eval_episode_by_episode(trained_and_exported, data_root, shot, tmp_path):
    checkpoint, artifact = trained_and_exported
    way, query, seed = 5, 5, 7
    data = load_few_shot_split("omniglot", "test", data_root)
    model = load_exportable(str(checkpoint))
    reference = evaluate_episodes(model.embedding, create_loss("prototypical", "sqeuclidean"), data, way, shot,
                                  query, EPISODES, seed, torch.device("cpu"), torch.channels_last)
    report = tmp_path / "eval.json"
    run("metric-eval", str(checkpoint), "--split", "test", "--way", str(way), "--shot", str(shot), "--query",
        str(query), "--episodes", str(EPISODES), "--seed", str(seed), "--data-root", str(data_root),
        "--device", "cpu", "--json", str(report))
    assert json.loads(report.read_text())["accuracy"] == pytest.approx(np.mean(reference.per_episode), abs=1e-12)
    assert 0.3 < reference.accuracy < 1.0  # a barely trained model: errors to reproduce, not a ceiling
    correct = [round(a * way * query) for a in reference.per_episode]  # per episode, of way * query queries
    for backend in ("torch", "torchscript", "onnxruntime"):
        classifier = FewShotClassifier.load(artifact, backend=backend)
        accuracies = runtime_episode_accuracies(classifier, data, way, shot, query, seed)
        assert [round(a * way * query) for a in accuracies] == correct, backend
