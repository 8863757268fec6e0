"""Training end to end on the real Omniglot data: resume, CLI, and torchrun."""

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
from conftest import script

from repmet.checkpoint import load_checkpoint
from repmet.methods.config_loading import config_from_dict
from repmet.methods import get_method
from repmet.train.episodic_trainer import EpisodicTrainer

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TINY = {
    "name": "tiny",
    "seed": 1,
    "data": {"train_split": "val", "val_split": "test"},
    "train": {"way": 5, "shot": 1, "query": 3, "episodes_per_epoch": 4, "epochs": 4, "lr_decay_every": 4},
    "eval": {"way": 5, "shot": 1, "query": 5, "val_episodes": 5},
}


def tiny_config(data_root, **train):
    raw = json.loads(json.dumps(TINY))
    raw["data"]["root"] = str(data_root)
    raw["train"].update(train)
    return config_from_dict(raw)


def test_two_epochs_then_resume_for_two_equals_four_epochs(data_root, tmp_path):
    straight = EpisodicTrainer(tiny_config(data_root), tmp_path / "straight", progress=False).fit()
    EpisodicTrainer(tiny_config(data_root, epochs=2), tmp_path / "resumed", progress=False).fit()
    resumed = EpisodicTrainer(tiny_config(data_root), tmp_path / "resumed", resume=True, progress=False).fit()

    assert [r["train_loss"] for r in resumed["history"]] == [r["train_loss"] for r in straight["history"]]
    assert [r["val_acc"] for r in resumed["history"]] == [r["val_acc"] for r in straight["history"]]
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")
    assert a["epoch"] == b["epoch"] == 4
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert a["scheduler"] == b["scheduler"]
    assert a["optimizer"]["state"][0]["exp_avg"].equal(b["optimizer"]["state"][0]["exp_avg"])


def test_training_moves_the_loss_down(data_root, tmp_path):
    result = EpisodicTrainer(tiny_config(data_root, epochs=6, episodes_per_epoch=10), tmp_path, progress=False).fit()
    losses = [r["train_loss"] for r in result["history"]]
    assert losses[-1] < losses[0]
    assert (tmp_path / "tb").is_dir() and any((tmp_path / "tb").iterdir())
    assert (tmp_path / "config.yaml").is_file() and (tmp_path / "metrics.jsonl").read_text().count("\n") == 6


def run_cli(name, *args, env=None, cwd=PROJECT_ROOT):
    return subprocess.run([script(name), *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=600)


def test_metric_train_then_metric_eval_through_the_cli(data_root, tmp_path):
    overrides = ["--set", f"data.root={data_root}", "--set", "train.way=5", "--set", "train.episodes_per_epoch=5",
                 "--set", "train.epochs=2", "--set", "eval.val_episodes=5"]
    trained = run_cli("metric-train", "configs/protonets_demo.yaml", *overrides, "--out", str(tmp_path / "run"))
    assert trained.returncode == 0, trained.stderr
    checkpoint = tmp_path / "run" / "checkpoints" / "best.pt"
    assert checkpoint.is_file() and (tmp_path / "run" / "checkpoints" / "last.pt").is_file()

    result_file = tmp_path / "eval.json"
    evaluated = run_cli("metric-eval", str(checkpoint), "--split", "test", "--way", "5", "--shot", "1",
                        "--query", "5", "--episodes", "30", "--seed", "3", "--json", str(result_file))
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.loads(result_file.read_text())
    assert {k: result[k] for k in ("episodes", "way", "shot", "query", "split")} == {
        "episodes": 30, "way": 5, "shot": 1, "query": 5, "split": "test"}
    assert 0.3 < result["accuracy"] <= 1.0 and 0 < result["ci95"] < 0.2
    assert f"{100 * result['accuracy']:.2f} +- {100 * result['ci95']:.2f} %" in evaluated.stdout


def test_user_errors_print_one_line_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  wayy: 5\n")
    result = run_cli("metric-train", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {bad}: unknown key 'train.wayy' in section 'train'; known keys: " \
        "backbone_lr_scale, channels_last, device, episodes_per_epoch, episodes_per_step, epochs, keep, lr, lr_decay_every, " \
        "lr_decay_factor, optimizer, query, shot, steps_per_epoch, way, weight_decay"
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"PK\x03\x04 not really")
    result = run_cli("metric-eval", str(broken))
    assert result.returncode == 2 and "Traceback" not in result.stderr and "corrupt or truncated" in result.stderr


def test_an_impossible_episode_stops_at_start_up(data_root, tmp_path):
    result = run_cli("metric-train", "configs/protonets_demo.yaml", "--set", f"data.root={data_root}",
                     "--set", "train.shot=10", "--set", "train.query=15", "--out", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "shot + query = 10 + 15 = 25" in result.stderr and not (tmp_path / "checkpoints").exists()


def test_two_torchrun_processes_train_the_same_model_as_one_process(data_root, tmp_path):
    overrides = ["--set", f"data.root={data_root}", "--set", "data.train_split=val", "--set", "train.way=5",
                 "--set", "train.query=3", "--set", "train.episodes_per_epoch=8", "--set", "train.epochs=2",
                 "--set", "train.lr_decay_every=8", "--set", "eval.val_episodes=4", "--no-progress"]
    two = run_cli("torchrun", "--standalone", "--nproc_per_node", "2", "-m", "repmet.train.cli_train",
                  "configs/protonets_demo.yaml", *overrides, "--out", str(tmp_path / "ddp"),
                  env={"OMP_NUM_THREADS": "1"})
    assert two.returncode == 0, two.stderr[-3000:]
    one = run_cli("metric-train", "configs/protonets_demo.yaml", *overrides, "--set", "train.episodes_per_step=2",
                  "--out", str(tmp_path / "single"), env={"OMP_NUM_THREADS": "1"})
    assert one.returncode == 0, one.stderr[-3000:]

    a = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "single" / "checkpoints" / "last.pt")
    assert a["world_size"] == 2 and b["world_size"] == 1
    # Parameters match; BatchNorm running statistics follow rank 0's episodes under DDP
    # (broadcast_buffers), so they are not compared.
    config = config_from_dict(a["config"])
    torch.manual_seed(config.seed)
    initial = dict(get_method(config.method).build_model(config, []).named_parameters())
    for name, start in initial.items():
        assert not torch.allclose(a["model"][name], start), f"{name} did not train"
        torch.testing.assert_close(a["model"][name], b["model"][name], rtol=1e-4, atol=1e-5, msg=name)
    for ra, rb in zip(a["history"], b["history"], strict=True):
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], rel=1e-4)
    # Only rank 0 wrote: one line per epoch, one set of checkpoints.
    assert (tmp_path / "ddp" / "metrics.jsonl").read_text().count("\n") == 2
    assert sorted(p.name for p in (tmp_path / "ddp" / "checkpoints").iterdir()) == ["best.pt", "last.pt"]


def test_resume_without_a_previous_run_says_so(data_root, tmp_path):
    result = run_cli("metric-train", "configs/protonets_demo.yaml", "--set", f"data.root={data_root}",
                     "--out", str(tmp_path / "new"), "--resume")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"nothing to resume in {tmp_path / 'new'}" in result.stderr
