"""The detector through the CLI on a small real subset of fsod-mini: metric-train, resume, and
metric-eval with base AP50 and few-shot episodes on a novel class."""

import json
import subprocess
from pathlib import Path

import pytest
import torch
from conftest import PROJECT_ROOT, script
from detection_fixtures import BASE, NOVEL, copy_small_fsod, overrides

from repmet.checkpoint import load_checkpoint



@pytest.fixture(scope="module")
def small_fsod(data_root, tmp_path_factory) -> Path:
    return copy_small_fsod(data_root, tmp_path_factory.mktemp("data"))


def cli(*command):
    return subprocess.run([script(command[0]), *command[1:]], capture_output=True, text=True, cwd=PROJECT_ROOT,
                          timeout=900)


def test_a_detector_trains_resumes_and_evaluates_through_the_cli(small_fsod, tmp_path):
    config = "configs/repmet_detection_fsod_lite0_cpu.yaml"
    straight = cli("metric-train", config, *overrides(small_fsod, "train.epochs=2"), "--out", str(tmp_path / "a"),
                   "--no-progress")
    assert straight.returncode == 0, straight.stderr[-3000:]
    first = cli("metric-train", config, *overrides(small_fsod, "train.epochs=1"), "--out", str(tmp_path / "b"),
                "--no-progress")
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = cli("metric-train", config, *overrides(small_fsod, "train.epochs=2"), "--out", str(tmp_path / "b"),
                  "--resume", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")
    assert a["epoch"] == b["epoch"] == 2 and a["method"] == "repmet_detection" and a["class_names"] == BASE
    for ra, rb in zip(a["history"], b["history"], strict=True):
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], rel=1e-4)
    reps = a["gallery"]["representatives"]
    assert tuple(reps.shape) == (2, 2, 1904)  # the base classes in the region embedding (Lite0 stages + head), fitted after training
    assert torch.allclose(reps.norm(dim=2), torch.ones(2, 2), atol=1e-4)
    background = a["model"]["region_gallery.background"]
    assert background.shape == (2, 1904) and torch.allclose(background.norm(dim=1), torch.ones(2), atol=1e-4)
    assert "gallery_fit_s" in a["history"][-1] and "gallery_fit_s" not in a["history"][0]

    # a release may set the evaluation's shots and episodes anew, not what training read
    import yaml

    from repmet.errors import UserError
    from repmet.train.release import release_checkpoint

    stored = dict(a["config"])
    for changes, allowed in (({"shots": [1, 3], "episodes": 4}, True), ({"crop_size": 96}, False)):
        edited = {**stored, "detection": {**stored["detection"], **changes}}
        path = tmp_path / "release.yaml"
        path.write_text(yaml.safe_dump(edited))
        if allowed:
            released = release_checkpoint(str(tmp_path / "a" / "checkpoints" / "last.pt"), str(path),
                                          str(tmp_path / "released.pt"))
            assert released["config"]["detection"]["shots"] == [1, 3]
        else:
            with pytest.raises(UserError, match="differs from the run .* in section 'detection'.*'detection.shots'"):
                release_checkpoint(str(tmp_path / "a" / "checkpoints" / "last.pt"), str(path),
                                   str(tmp_path / "refused.pt"))

    report = tmp_path / "eval.json"
    evaluated = cli("metric-eval", str(tmp_path / "a" / "checkpoints" / "last.pt"), "--device", "cpu", "--json",
                    str(report))
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    result = json.loads(report.read_text())
    assert result["images"] == 4 and set(result["base_per_class_ap50"]) == set(BASE)
    assert 0.0 <= result["base_ap50"] <= 1.0 and 0.0 <= result["novel_ap50"] <= 1.0
    assert [f["shot"] for f in result["fewshot"]] == [1, 2]
    assert all(len(f["per_episode_novel_ap50"]) == 2 and set(f["novel_per_class_ap50"]) <= set(NOVEL)
               for f in result["fewshot"])
    for few in result["fewshot"]:
        tuned = few["finetuned_linear_baseline"]
        assert 0.0 <= tuned["novel_ap50"] <= 1.0 and len(tuned["per_episode_novel_ap50"]) == 2
    assert "RepMet enrollment: novel AP50" in evaluated.stdout and "fine-tuned linear classifier (TFA)" in evaluated.stdout


def test_bad_detection_settings_are_sentences(small_fsod, tmp_path):
    config = "configs/repmet_detection_fsod_lite0_cpu.yaml"
    unknown = cli("metric-train", config, *overrides(small_fsod, "detection.novel_classes=[unicorn]"),
                  "--out", str(tmp_path / "x"))
    assert unknown.returncode == 2 and "class 'unicorn' has no box" in unknown.stderr
    assert "Traceback" not in unknown.stderr and not (tmp_path / "x" / "checkpoints").exists()
