"""``--format onnx``: the classifier's embedding and head graphs, and the detector's detection and
box-embedding graphs in two variants (standard RoiAlign for ONNX Runtime, and ``*_trt.onnx`` with
TensorRT's ROIAlign_TRT for TensorRT's parser)."""

from __future__ import annotations

from repmet.export.formats.plugin import ExportFormat, register_format


class OnnxFormat(ExportFormat):
    name = graph_key = "onnx"
    order = 20

    def export_classifier(self, model, example, folder, options):
        from repmet.export.formats.onnx.classifier import export_onnx

        return export_onnx(model.embedding, model.head, example, folder, options.opset)

    def export_detector(self, trained, canvas, folder, options):
        from repmet.export.formats.onnx.detector import DETECTION_OPSET, export_detector_onnx

        files = export_detector_onnx(trained.model.eval(), canvas, folder, "onnx")
        trt_files = export_detector_onnx(trained.model.eval(), canvas, folder, "tensorrt")
        return {**files, "detection_trt": trt_files["detection"], "box_embedding_trt": trt_files["box_embedding"],
                "opset": DETECTION_OPSET}


    def package_versions(self, graphs):
        import onnx
        import onnxruntime

        return {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}


register_format(OnnxFormat())
