import pytest
import torch

from repmet.errors import UserError
from repmet import checkpoint as checkpoint_module
from repmet.checkpoint import load_checkpoint, save_checkpoint


def bundle(value: float) -> dict:
    return {"model": {"w": torch.full((3,), value)}, "config": {"name": "x"}, "epoch": 1}


def test_round_trip_loads_with_weights_only(tmp_path):
    path = tmp_path / "ckpt" / "last.pt"
    save_checkpoint(bundle(2.0), path)
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["model"]["w"], torch.full((3,), 2.0))
    torch.load(path, weights_only=True)  # the contract: loadable without pickle


def test_a_crash_while_writing_keeps_the_previous_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(bundle(1.0), path)

    def save_half_then_die(obj, handle):
        handle.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt  # as if the process were killed mid-write

    monkeypatch.setattr(checkpoint_module.torch, "save", save_half_then_die)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(bundle(5.0), path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.full((3,), 1.0))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_truncated_checkpoint_is_refused(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(bundle(1.0), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="corrupt or truncated"):
        load_checkpoint(path)


def test_foreign_and_missing_files_are_refused(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"state": torch.zeros(1)}, other)
    with pytest.raises(UserError, match="not a repmet checkpoint"):
        load_checkpoint(other)
    with pytest.raises(UserError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")


class Payload:
    """Anything that needs pickle to load."""


def test_a_pickled_object_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "model": Payload(), "config": {}, "epoch": 0}, path)
    with pytest.raises(UserError, match="refusing to unpickle"):
        load_checkpoint(path)
