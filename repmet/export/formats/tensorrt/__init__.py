"""``--format trt``: a TensorRT engine of the classifier's embedding (the head runs from ONNX's
head graph, so it needs ``onnx``), built on this GPU; fp16 on request (differences reported,
not gated). Detector engines are built by TensorRT's parser from the onnx format's
``*_trt.onnx`` graphs, outside metric-export."""

from __future__ import annotations

from repmet.export.formats.plugin import ExportFormat, register_format


class TensorRTFormat(ExportFormat):
    name, graph_key = "trt", "tensorrt"
    order = 30
    needs = ("onnx",)
    tasks = ("classification",)
    builds_engines = True

    def unavailable_reason(self):
        from repmet.runtime.backends.tensorrt.cuda import tensorrt_unavailable_reason

        return tensorrt_unavailable_reason()

    def export_classifier(self, model, example, folder, options):
        from repmet.export.formats.tensorrt.classifier import export_tensorrt

        engine = export_tensorrt(folder, model.embedding, example, model.input_shape, options.max_batch,
                                 options.fp16, options.opset)
        return {**engine, "head": "head.onnx"}

    def package_versions(self, graphs):
        return {"tensorrt": graphs["tensorrt"]}

    def tolerance(self, options):
        return None if options.fp16 else super().tolerance(options)


register_format(TensorRTFormat())
