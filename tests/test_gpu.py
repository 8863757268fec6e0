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
from repmet.runtime.backends.tensorrt_backend import tensorrt_unavailable_reason

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
def test_cuda_torch_backends_match_the_cpu(omniglot_artifact, data_root, backend):
    images = omniglot_images(data_root)
    cpu = FewShotClassifier.load(omniglot_artifact, backend=backend, device="cpu")
    gpu = FewShotClassifier.load(omniglot_artifact, backend=backend, device="cuda")
    assert np.abs(gpu.embed(images) - cpu.embed(images)).max() <= 1e-4
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
