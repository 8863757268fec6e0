import os
import shutil
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real datasets: $REPMET_DATA, else ../shared/data next to the project."""
    root = Path(os.environ.get("REPMET_DATA", PROJECT_ROOT.parent / "shared" / "data"))
    if not (root / "omniglot").is_dir():
        pytest.fail(f"real data not found at {root}; set REPMET_DATA to the folder holding omniglot/")
    return root


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("REPMET_CACHE", str(cache))
    return cache


# The start of a script run by a subprocess in which importing torch or torchvision fails: for
# checking that the ONNX Runtime paths never import them.
BLOCK_TORCH = """
import sys
class BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch.") or name.startswith("torchvision"):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, BlockTorch())
"""


def script(name: str) -> str:
    """A console script of the Python running the tests (its venv need not be on PATH)."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


# ---------------------------------------------------------------- exported artifacts (built once per session)
SHIPPED_PROTONETS = PROJECT_ROOT / "checkpoints" / "omniglot" / "protonets_1_5.pt"
SHIPPED_DETECTOR = PROJECT_ROOT / "checkpoints" / "fsod-mini" / "repmet_detection_fsod_lite0_cpu.pt"


@pytest.fixture(scope="session")
def detector_artifact(data_root, tmp_path_factory) -> Path:
    """The shipped fsod-mini detector, exported to ONNX, TorchScript and AOTInductor (2 min)."""
    from repmet.export.artifact_writer import export_artifact

    out = tmp_path_factory.mktemp("artifacts") / "fsod_detector"
    export_artifact(str(SHIPPED_DETECTOR), out, ["onnx", "torchscript", "aoti"], data_root=str(data_root),
                    log=lambda _: None)
    return out


@pytest.fixture(scope="session")
def omniglot_artifact(data_root, tmp_path_factory) -> Path:
    """The shipped 5-way 1-shot Omniglot conv4, exported to TorchScript and ONNX."""
    from repmet.export.artifact_writer import export_artifact

    out = tmp_path_factory.mktemp("artifacts") / "protonets_1_5"
    export_artifact(str(SHIPPED_PROTONETS), out, ["torchscript", "onnx"], data_root=str(data_root), log=lambda _: None)
    return out


@pytest.fixture(scope="session")
def omniglot_aoti_artifact(data_root, tmp_path_factory) -> Path:
    """The shipped 1-shot Omniglot model as AOTInductor packages (and TorchScript): about a minute of compiling."""
    from repmet.export.artifact_writer import export_artifact

    out = tmp_path_factory.mktemp("artifacts") / "protonets_aoti"
    export_artifact(str(SHIPPED_PROTONETS), out, ["torchscript", "aoti"], data_root=str(data_root), log=lambda _: None)
    return out


@pytest.fixture(scope="session")
def flowers_checkpoint(data_root, tmp_path_factory) -> Path:
    """A RepMet checkpoint in the trainer's format: ImageNet EfficientNet-Lite0 (frozen), an
    untrained head and 3 representatives for each of 4 Flowers classes."""
    from repmet.checkpoint import save_checkpoint
    from repmet.methods import get_method
    from repmet.methods.config_loading import load_config

    config = load_config(PROJECT_ROOT / "configs" / "repmet_flowers_lite0_cpu.yaml",
                         [f"data.root={data_root}", "repmet.reps_per_class=3", "batch.classes=4"])
    names = ["001", "002", "003", "004"]
    model = get_method(config.method).build_model(config, names)
    path = tmp_path_factory.mktemp("checkpoints") / "repmet_lite0.pt"
    save_checkpoint({"model": model.state_dict(), "config": config.to_dict(), "epoch": 0, "class_names": names}, path)
    return path


@pytest.fixture(scope="session")
def flowers_artifact(data_root, flowers_checkpoint, tmp_path_factory) -> Path:
    from repmet.export.artifact_writer import export_artifact

    out = tmp_path_factory.mktemp("artifacts") / "repmet_lite0"
    export_artifact(str(flowers_checkpoint), out, ["torchscript", "onnx"], data_root=str(data_root), log=lambda _: None)
    return out


@pytest.fixture(autouse=True)
def default_float_mode():
    """Training and evaluation turn on flush-to-zero for the process (repmet.devices.flush_denormals);
    restore IEEE subnormals after each test so no test sees another's processor state (hypothesis
    refuses to generate floats under flush-to-zero)."""
    yield
    import torch

    torch.set_flush_denormal(False)
