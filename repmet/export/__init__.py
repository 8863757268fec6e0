"""Export: trained checkpoints to verified TorchScript / ONNX / TensorRT artifacts."""
