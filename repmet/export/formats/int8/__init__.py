"""``--format int8``: graphs quantized to 8 bits by ONNX Runtime's static quantization (QDQ,
per-channel int8 weights, uint8 activations), calibrated on real training images, for ONNX
Runtime on the CPU. A classifier's embedding graph is quantized whole; its distance head stays the
fp32 ``head.onnx`` of the onnx format it builds on (a few matrix products: nothing to gain). A
detector's EfficientNet-Lite trunks are quantized, the rest stays fp32 (``detector.py``).

An int8 graph cannot match PyTorch to 1e-4, so its differences are reported, not gated; what is
gated is what a user loses: the accuracy on the checkpoint's test images against the fp32 model
(``--max-accuracy-cost``, in points)."""

from __future__ import annotations

import importlib.util

from repmet.export.formats.plugin import AccuracyGate, ExportFormat, FormatOption, register_format


class Int8Format(ExportFormat):
    name = "int8"
    graph_key = "onnx_int8"
    order = 25  # after the onnx graph it quantizes
    needs = ("onnx",)
    tasks = ("classification", "detection")
    options = (
        FormatOption("calibration", None, "int8: calibrate a classifier on the images of this folder (default: the "
                     "checkpoint's training split).", is_path=True),
        FormatOption("calibration_images", 256, "int8: how many images calibrate a classifier."),
        FormatOption("max_accuracy_cost", 1.0, "int8: refuse the artifact when it costs more points of test accuracy "
                     "(a detector: AP50) than this against fp32."),
        FormatOption("accuracy_images", 1000, "int8: how many test images the accuracy cost is measured on."),
    )

    def unavailable_reason(self) -> str | None:
        if importlib.util.find_spec("onnxruntime") is None:
            return "int8 quantization needs the onnxruntime package (pip install onnxruntime)"
        return None

    def export_classifier(self, model, example, folder, options):
        from repmet.export.formats.int8.quantize import calibration_sample, quantize_embedding

        sample = calibration_sample(model, options.option(self, "calibration"),
                                    options.option(self, "calibration_images"), options.data_root)
        settings = quantize_embedding(folder / "embedding.onnx", folder / "embedding_int8.onnx", sample.images)
        return {"embedding": "embedding_int8.onnx", "head": "head.onnx",
                "calibration": {"images": len(sample.images), "source": sample.description, **settings}}

    def export_detector(self, trained, canvas, folder, options):
        from repmet.export.formats.int8.detector import export_detector_int8

        return export_detector_int8(trained, folder, options.option(self, "calibration"), options.data_root)

    def package_versions(self, graphs):
        import onnxruntime

        return {"onnxruntime": onnxruntime.__version__}

    def tolerance(self, options):
        return None  # 8-bit activations: differences reported; the accuracy cost is gated instead

    def accuracy_gate(self, options):
        return AccuracyGate(options.option(self, "max_accuracy_cost"), options.option(self, "accuracy_images"))


register_format(Int8Format())
