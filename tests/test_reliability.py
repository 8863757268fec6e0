"""Probes of training, evaluation and export with bad input, killed processes and hostile
files: each answer is a sentence (exit code 2, no traceback), and nothing a user has is lost."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import PROJECT_ROOT, script

from repmet.checkpoint import load_checkpoint, save_checkpoint
from repmet.errors import UserError
from repmet.export.artifact_writer import export_artifact
from repmet.train.run_folder import RunFolder

SHIPPED = PROJECT_ROOT / "checkpoints" / "omniglot" / "protonets_1_5.pt"


def run_cli(*command, timeout=600):
    return subprocess.run([script(command[0]), *command[1:]], capture_output=True, text=True, cwd=PROJECT_ROOT,
                          timeout=timeout)


def tiny(data_root, *more):
    """A few seconds of real training: 5-way episodes on the val classes."""
    overrides = [f"data.root={data_root}", "data.train_split=val", "train.way=5", "train.query=3",
                 "train.episodes_per_epoch=4", "train.epochs=2", "eval.val_episodes=2", *more]
    return [arg for o in overrides for arg in ("--set", o)]


def assert_sentence(result, *fragments):
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


@pytest.mark.parametrize("override, message", [
    ("train.lr=-1", "key 'train.lr' is -1.0; it must be greater than 0"),
    ("train.lr=nan", "key 'train.lr' is nan; it must be a finite number"),
    ("train.lr_decay_every=0", "key 'train.lr_decay_every' is 0; it must be at least 1"),
    ("data.image_size=0", "key 'data.image_size' is 0; it must be at least 1"),
    ("train.epochs=0", "key 'train.epochs' is 0; it must be at least 1"),
    ("train.lr_decay_factor=0", "key 'train.lr_decay_factor' is 0.0; it must be greater than 0.0"),
])
def test_impossible_settings_stop_before_anything_is_written(override, message, data_root, tmp_path):
    result = run_cli("metric-train", "configs/protonets_demo.yaml", "--set", override, "--out", str(tmp_path / "run"))
    assert_sentence(result, message)
    assert not (tmp_path / "run").exists()


def test_a_finished_run_folder_is_refused_unless_resumed_or_overwritten(data_root, tmp_path):
    out = tmp_path / "run"
    assert run_cli("metric-train", "configs/protonets_demo.yaml", *tiny(data_root), "--out", str(out),
                   "--no-progress").returncode == 0
    first = (out / "checkpoints" / "last.pt").read_bytes()
    again = run_cli("metric-train", "configs/protonets_demo.yaml", *tiny(data_root), "--out", str(out))
    assert_sentence(again, "already holds a training run (2 epochs recorded in metrics.jsonl", "--resume",
                    "--overwrite")
    assert (out / "checkpoints" / "last.pt").read_bytes() == first  # untouched
    both = run_cli("metric-train", "configs/protonets_demo.yaml", "--out", str(out), "--resume", "--overwrite")
    assert_sentence(both, "--resume and --overwrite contradict each other")
    (out / "notes.txt").write_text("mine")
    replaced = run_cli("metric-train", "configs/protonets_demo.yaml", *tiny(data_root, "seed=5"), "--out", str(out),
                       "--overwrite", "--no-progress")
    assert replaced.returncode == 0, replaced.stderr[-2000:]
    assert load_checkpoint(out / "checkpoints" / "last.pt")["config"]["seed"] == 5
    assert (out / "notes.txt").read_text() == "mine"  # only what a run writes is replaced
    assert (out / "metrics.jsonl").read_text().count("\n") == 2


def test_a_folder_in_use_is_refused_and_a_killed_runs_lock_is_reported_as_stale(data_root, tmp_path):
    """kill -9 during training: a second run on the folder is refused while the first lives;
    after the kill, --resume reports the stale lock and continues from the last checkpoint."""
    out = tmp_path / "run"
    command = [script("metric-train"), "configs/protonets_demo.yaml",
               *tiny(data_root, "train.epochs=200", "train.episodes_per_epoch=2"), "--out", str(out), "--no-progress"]
    first = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while not (out / "checkpoints" / "last.pt").is_file():
            assert first.poll() is None and time.time() < deadline, first.communicate()[1][-2000:]
            time.sleep(0.5)
        second = run_cli("metric-train", "configs/protonets_demo.yaml", *tiny(data_root), "--out", str(out), "--resume")
        assert_sentence(second, f"{out} is in use by another training run (pid {first.pid}")
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    assert (out / ".lock").is_file()  # a killed process leaves its lock file; the kernel dropped the lock itself
    epoch = load_checkpoint(out / "checkpoints" / "last.pt")["epoch"]
    resumed = run_cli("metric-train", "configs/protonets_demo.yaml",
                      *tiny(data_root, f"train.epochs={epoch + 1}", "train.episodes_per_epoch=2"), "--out", str(out),
                      "--resume", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"was locked by a run that no longer exists (pid {first.pid}" in resumed.stdout + resumed.stderr
    assert load_checkpoint(out / "checkpoints" / "last.pt")["epoch"] == epoch + 1
    assert not (out / ".lock").exists()


def test_a_process_killed_while_writing_a_checkpoint_leaves_the_previous_one_and_its_debris_is_cleaned(tmp_path):
    """kill -9 in the middle of a real checkpoint write (the process kills itself mid-stream)."""
    folder = tmp_path / "run"
    target = folder / "checkpoints" / "last.pt"
    save_checkpoint({"model": {"w": torch.ones(3)}, "config": {}, "epoch": 1}, target)
    code = (
        "import os, signal, torch\n"
        "from repmet.checkpoint import save_checkpoint\n"
        "class Dying(dict):\n"
        "    def __reduce_ex__(self, protocol):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        f"save_checkpoint({{'model': {{'w': torch.zeros(1 << 20)}}, 'config': {{}}, 'epoch': 2, 'x': Dying()}}, {str(target)!r})\n")
    killed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL
    debris = list(target.parent.glob(".last.pt.*.tmp"))
    assert len(debris) == 1  # the temporary file of the unfinished write
    assert load_checkpoint(target)["epoch"] == 1
    messages = []
    folder_lock = RunFolder(folder, log=messages.append)
    folder_lock.claim(resume=True, overwrite=False)
    folder_lock.release()
    assert not debris[0].exists() and "left by a run killed while writing a checkpoint" in messages[0]
    assert load_checkpoint(target)["epoch"] == 1


def nan_checkpoint(path: Path) -> Path:
    bundle = torch.load(SHIPPED, weights_only=True)
    first = next(k for k, v in bundle["model"].items() if v.is_floating_point())
    bundle["model"][first] = torch.full_like(bundle["model"][first], float("nan"))
    torch.save(bundle, path)
    return path


def test_non_finite_weights_are_refused_by_eval_export_and_resume(data_root, tmp_path):
    bad = nan_checkpoint(tmp_path / "nan.pt")
    assert_sentence(run_cli("metric-eval", str(bad), "--episodes", "2"), "has non-finite weights")
    assert_sentence(run_cli("metric-export", str(bad), "--format", "onnx", "--out", str(tmp_path / "a")),
                    "has non-finite weights")
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    nan_checkpoint(out / "checkpoints" / "last.pt")
    assert_sentence(run_cli("metric-train", "configs/protonets_demo.yaml", *tiny(data_root), "--out", str(out),
                            "--resume"), "has non-finite weights")


def test_a_diverging_run_stops_with_a_sentence_and_saves_no_nan(data_root, tmp_path):
    out = tmp_path / "run"
    result = run_cli("metric-train", "configs/protonets_demo.yaml", *tiny(data_root, "train.lr=1e30"),
                     "--out", str(out), "--no-progress")
    assert_sentence(result, "training diverged: the loss is nan", "Lower train.lr")
    last = out / "checkpoints" / "last.pt"
    assert not last.exists() or load_checkpoint(last)  # whatever was saved is finite (load_checkpoint checks)


def test_resuming_from_a_released_checkpoint_says_it_has_no_training_state(data_root, tmp_path):
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "last.pt").write_bytes(SHIPPED.read_bytes())
    result = run_cli("metric-train", "configs/protonets_1_5_cpu.yaml", *tiny(data_root), "--out", str(out), "--resume")
    assert_sentence(result, "cannot resume from", "it has no training state (optimizer, scheduler")


def test_a_checkpoint_missing_a_weight_is_refused_with_a_sentence(tmp_path):
    bundle = torch.load(SHIPPED, weights_only=True)
    del bundle["model"]["encoder.0.0.weight"]
    torch.save(bundle, tmp_path / "broken.pt")
    result = run_cli("metric-export", str(tmp_path / "broken.pt"), "--format", "onnx", "--out", str(tmp_path / "a"))
    assert_sentence(result, "does not match the conv4 protonets model its config describes", "encoder.0.0.weight")
    assert not (tmp_path / "a").exists()


def test_eval_json_into_a_missing_folder_fails_before_evaluating(tmp_path):
    started = time.perf_counter()
    result = run_cli("metric-eval", str(SHIPPED), "--json", str(tmp_path / "nowhere" / "r.json"))
    assert_sentence(result, "folder", "nowhere", "does not exist")
    assert time.perf_counter() - started < 60  # 1000 episodes would take minutes


def test_export_never_deletes_what_a_user_keeps_in_the_out_folder(data_root, tmp_path):
    lookalike = tmp_path / "p"
    (lookalike / "src").mkdir(parents=True)
    (lookalike / "metadata.json").write_text("{}")
    (lookalike / "src" / "a.py").write_text("x = 1\n")
    with pytest.raises(UserError, match=r"is not empty and is not an artifact \(metadata.json, src\)"):
        export_artifact(str(SHIPPED), lookalike, ["onnx"], data_root=str(data_root), log=lambda _: None)
    assert (lookalike / "src" / "a.py").read_text() == "x = 1\n"

    artifact = tmp_path / "art"
    export_artifact(str(SHIPPED), artifact, ["onnx"], data_root=str(data_root), log=lambda _: None)
    export_artifact(str(SHIPPED), artifact, ["onnx"], data_root=str(data_root), log=lambda _: None)  # a clean re-export
    (artifact / "mine.npz").write_bytes(b"a saved gallery")
    (artifact / "notes").mkdir()
    with pytest.raises(UserError, match=r"holds an artifact and also mine.npz, notes, which the export would delete"):
        export_artifact(str(SHIPPED), artifact, ["onnx"], data_root=str(data_root), log=lambda _: None)
    assert (artifact / "mine.npz").read_bytes() == b"a saved gallery" and (artifact / "metadata.json").is_file()


def test_a_trained_checkpoint_describes_its_preprocessing_classes_and_gallery(data_root, tmp_path):
    out = tmp_path / "run"
    assert run_cli("metric-train", "configs/protonets_demo.yaml", *tiny(data_root), "--out", str(out),
                   "--no-progress").returncode == 0
    bundle = load_checkpoint(out / "checkpoints" / "last.pt")
    assert bundle["format_version"] == 2 and bundle["method"] == "protonets" and bundle["class_names"] == []
    assert bundle["preprocess"]["resize_to"] == 28 and bundle["preprocess"]["invert"] is True
    assert tuple(bundle["gallery"]["representatives"].shape) == (0, 1, 64)
    assert json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["epoch"] == 2
