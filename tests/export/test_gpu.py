"""GPU checks: CUDA backends and TensorRT engines against the CPU. Skipped without a GPU;
``benchmarks/gpu_check.sh`` runs them (and the GPU timings) in one go on a GPU machine."""

import json
import shutil

import numpy as np
import pytest
import torch

from conftest import SHIPPED_PROTONETS
from repmet.errors import UserError
from repmet.export.artifact_writer import export_artifact
from repmet.runtime import FewShotClassifier
from repmet.runtime.backends.tensorrt.cuda import tensorrt_unavailable_reason

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
needs_tensorrt = pytest.mark.skipif(tensorrt_unavailable_reason() is not None, reason="needs TensorRT and a CUDA GPU")


def omniglot_images(data_root, count=40):
    from repmet.data import load_few_shot_split

    data = load_few_shot_split("omniglot", "test", data_root)
    return [255 - data.images[i % 10, i // 10, 0].numpy() for i in range(count)]


def predictions(classifier, images):
    for c in range(10):
        classifier.enroll(f"class {c}", [images[c]])
    return classifier.classify(images[10:], top_k=3)


@needs_cuda
@pytest.mark.parametrize("backend", ["torch", "torchscript"])
def test_cuda_torch_backends_match_the_cpu(omniglot_artifact, data_root, backend, monkeypatch):
    """The TorchScript graph computes in full fp32 (traced with TF32 off): its CUDA embeddings
    are the CPU's within 1e-4. Eager PyTorch follows the process's cuDNN setting: within 1e-3
    relative under PyTorch's default TF32 convolutions (Ampere and newer), 1e-4 without."""
    images = omniglot_images(data_root)
    cpu = FewShotClassifier.load(omniglot_artifact, backend=backend, device="cpu")
    gpu = FewShotClassifier.load(omniglot_artifact, backend=backend, device="cuda")
    reference = cpu.embed(images)
    default = gpu.embed(images)
    assert np.abs(default - reference).max() <= (1e-4 if backend == "torchscript" else 5e-3 * np.abs(reference).max())
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    assert np.abs(gpu.embed(images) - reference).max() <= 1e-4
    assert [p.labels for p in predictions(gpu, images)] == [p.labels for p in predictions(cpu, images)]


@needs_cuda
def test_onnxruntime_cuda_matches_the_cpu(omniglot_artifact, data_root):
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime-gpu is not installed")
    images = omniglot_images(data_root)
    cpu = FewShotClassifier.load(omniglot_artifact, backend="onnxruntime", device="cpu")
    gpu = FewShotClassifier.load(omniglot_artifact, backend="onnxruntime", device="cuda")
    assert np.abs(gpu.embed(images) - cpu.embed(images)).max() <= 1e-4


@needs_tensorrt
def test_tensorrt_runtime_classifies_like_onnxruntime(data_root, tmp_path):
    out = tmp_path / "trt"
    export_artifact(str(SHIPPED_PROTONETS), out, ["onnx", "trt"], max_batch=16, data_root=str(data_root))
    images = omniglot_images(data_root)
    trt = FewShotClassifier.load(out, backend="auto", device="cuda")
    assert trt.backend.name == "tensorrt"
    ort = FewShotClassifier.load(out, backend="onnxruntime", device="cpu")
    assert np.abs(trt.embed(images) - ort.embed(images)).max() <= 1e-4  # 40 images: chunks of max_batch 16
    assert [p.labels for p in predictions(trt, images)] == [p.labels for p in predictions(ort, images)]


@needs_tensorrt
def test_an_engine_from_another_tensorrt_or_gpu_is_refused(data_root, tmp_path):
    out = tmp_path / "trt"
    export_artifact(str(SHIPPED_PROTONETS), out, ["trt"], max_batch=4, data_root=str(data_root))
    meta = json.loads((out / "metadata.json").read_text())
    for key, value, message in [("tensorrt", "8.0.0", "was built with TensorRT 8.0.0"),
                                ("compute_capability", "1.0", "was built for compute capability 1.0")]:
        other = tmp_path / key
        shutil.copytree(out, other)
        changed = {**meta, "graphs": {**meta["graphs"], "tensorrt": {**meta["graphs"]["tensorrt"], key: value}}}
        (other / "metadata.json").write_text(json.dumps(changed))
        with pytest.raises(UserError, match=message + ".*export the engine again here"):
            FewShotClassifier.load(other, backend="tensorrt", device="cuda")


# ---------------------------------------------------------------- the detector on CUDA
@needs_cuda
@pytest.mark.parametrize("backbone", ["efficientnet_lite0", "resnet50"])
def test_the_detector_trains_and_detects_on_cuda_like_on_the_cpu(data_root, tmp_path, backbone, monkeypatch):
    """metric-train and metric-eval on CUDA, then the same checkpoint's detections on CUDA and on
    the CPU: every confident CPU detection has a CUDA one with the same label, IoU >= 0.99 and a
    score within 1e-3 (a few may swap places at NMS ties, so at most a tenth go unmatched)."""
    import subprocess

    from conftest import PROJECT_ROOT, script
    from detection_fixtures import copy_small_fsod, overrides
    from repmet.methods.detector_regions import image_tensor
    from repmet.evaluate.detection_match import unmatched_detections
    from repmet.methods.trained import open_checkpoint

    root = copy_small_fsod(data_root, tmp_path)
    config = "configs/repmet_detection_fsod_lite0_cpu.yaml"
    run = subprocess.run([script("metric-train"), config, *overrides(root, "train.epochs=2", "train.device=cuda",
                                                                      f"model.name={backbone}", "model.pretrained=false"),
                          "--out", str(tmp_path / "run"), "--no-progress"],
                         capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    checkpoint = tmp_path / "run" / "checkpoints" / "last.pt"
    report = tmp_path / "eval.json"
    evaluated = subprocess.run([script("metric-eval"), str(checkpoint), "--device", "cuda", "--json", str(report)],
                               capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=900)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert 0.0 <= json.loads(report.read_text())["base_ap50"] <= 1.0

    model = open_checkpoint(checkpoint).model
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # full fp32, as on the CPU
    images = [image_tensor(p) for p in sorted((root / "JPEGImages").glob("*.jpg"))[:4]]
    with torch.no_grad():
        cpu = model.cpu().eval()(images)
        gpu = [{k: v.cpu() for k, v in d.items()} for d in model.cuda().eval()([i.cuda() for i in images])]
    checked = unmatched = 0
    for c, g in zip(cpu, gpu, strict=True):
        keep = c["scores"] >= 0.05
        counted, missing = unmatched_detections(tuple(c[k][keep].numpy() for k in ("boxes", "scores", "labels")),
                                                tuple(g[k].numpy() for k in ("boxes", "scores", "labels")), 0.99, 1e-3)
        checked, unmatched = checked + counted, unmatched + missing
    assert checked > 0, "no detection scored 0.05 or more on the CPU: nothing was compared"
    assert unmatched <= 0.1 * checked, f"{unmatched} of {checked} CPU detections have no CUDA match"


@needs_cuda
@pytest.mark.parametrize("backend", ["torch", "torchscript"])
def test_the_detector_runtime_on_cuda_detects_like_on_the_cpu(backend, data_root, tmp_path, monkeypatch):
    """FewShotDetector's torch and TorchScript backends on CUDA against the CPU (full fp32):
    enroll, detect."""
    from conftest import PROJECT_ROOT
    from repmet.data.detection import load_voc_detection
    from repmet.runtime import FewShotDetector

    out = tmp_path / "detector"
    export_artifact(str(PROJECT_ROOT / "checkpoints" / "fsod-mini" / "repmet_detection_fsod_lite0_cpu.pt"), out,
                    ["onnx", "torchscript"], data_root=str(data_root), log=lambda _: None)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    split = load_voc_detection(data_root / "fsod-mini", "test")
    puffin = split.class_names.index("puffin")
    examples = [(im.path, im.boxes[im.labels == puffin]) for im in split.images if (im.labels == puffin).any()][:2]
    results = []
    for device in ("cpu", "cuda"):
        detector = FewShotDetector.load(out, backend=backend, device=device)
        detector.enroll("puffin", examples)
        results.append((detector.gallery.representatives, detector.detect([p for p, _ in examples], 0.05)))
    (cpu_reps, cpu_found), (gpu_reps, gpu_found) = results
    assert np.abs(cpu_reps - gpu_reps).max() <= 1e-4
    checked = unmatched = 0
    for ours, theirs in zip(cpu_found, gpu_found, strict=True):
        for d in ours:
            checked += 1
            close = [g for g in theirs if g.label == d.label and abs(g.score - d.score) <= 1e-3
                     and max(abs(a - b) for a, b in zip(g.box, d.box)) <= 0.5]
            unmatched += not close
    assert checked > 0 and unmatched <= 0.02 * checked
