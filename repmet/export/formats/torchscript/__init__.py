"""``--format torchscript``: traced graphs behind an input-shape guard, for libtorch apps."""

from __future__ import annotations

from repmet.export.formats.plugin import ExportFormat, register_format


class TorchScriptFormat(ExportFormat):
    name = graph_key = "torchscript"
    order = 10

    def export_classifier(self, model, example, folder, options):
        from repmet.export.formats.torchscript.classifier import export_torchscript

        return export_torchscript(model.embedding, model.head, example, folder)

    def export_detector(self, trained, canvas, folder, options):
        from repmet.export.formats.torchscript.detector import export_detector_torchscript

        return export_detector_torchscript(trained.model.eval(), canvas, folder)


register_format(TorchScriptFormat())
