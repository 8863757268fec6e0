#!/usr/bin/env bash
# Every GPU check in one go, for a machine with an NVIDIA GPU (and, for the TensorRT rows,
# `pip install ".[gpu]"`; for ONNX Runtime on CUDA, onnxruntime-gpu in place of onnxruntime):
#   1. TensorRT export of the shipped Omniglot conv4, fp32 and fp16, each verified against PyTorch
#      (fp32 gated at 1e-4, fp16 difference and top-1 agreement reported);
#   2. the GPU tests: CUDA torch / TorchScript / ONNX Runtime backends against the CPU, the TensorRT
#      runtime against ONNX Runtime, engines from another TensorRT version or GPU refused, the
#      detector (Lite0-FPN and ResNet-50-FPN) trained and evaluated on CUDA, its detections
#      against the CPU's;
#   3. the runtime benchmark with its CUDA and TensorRT rows.
# Optional: FLOWERS_CHECKPOINT=path/to/repmet_lite0.pt adds the EfficientNet-Lite0 embedder.
#
#   bash benchmarks/gpu_check.sh 2>&1 | tee gpu_check.log
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${REPMET_DATA:-../shared/data}"
OUT="${OUT:-$(mktemp -d)}"
echo "== GPU"
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU visible to torch'; print(torch.cuda.get_device_name(), torch.version.cuda)"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true

# Without TensorRT (pip install ".[gpu]") the engine rows are skipped, saying so; the CUDA rows still run.
TRT=(--format trt)
if ! python -c "import tensorrt" 2>/dev/null; then
    echo "TensorRT is not installed: skipping the engine exports and tests (pip install \".[gpu]\")"
    TRT=()
fi
echo "== 1. export (TensorRT where installed) + parity"
metric-export checkpoints/omniglot/protonets_1_5.pt --format torchscript --format onnx "${TRT[@]}" \
    --out "$OUT/conv4" --data-root "$DATA"
if [[ ${#TRT[@]} -gt 0 ]]; then
    metric-export checkpoints/omniglot/protonets_1_5.pt --format onnx --format trt --fp16 \
        --out "$OUT/conv4_fp16" --data-root "$DATA"
fi
ARTIFACTS=(--artifact "conv4=$OUT/conv4")
if [[ -n "${FLOWERS_CHECKPOINT:-}" ]]; then
    metric-export "$FLOWERS_CHECKPOINT" --format torchscript --format onnx "${TRT[@]}" \
        --out "$OUT/lite0" --data-root "$DATA"
    ARTIFACTS+=(--artifact "lite0=$OUT/lite0")
fi

echo "== 2. GPU tests (the detector trained and evaluated on CUDA included)"
python -m pytest -q -rs tests/export/test_gpu.py tests/export/test_export.py -k "tensorrt or cuda or gpu"

echo "== 3. GPU timings"
python benchmarks/runtime_bench.py "${ARTIFACTS[@]}" --min-seconds 2
echo "== all GPU checks passed; artifacts in $OUT"
