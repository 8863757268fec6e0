"""``--format aoti``: AOTInductor packages compiled for this CPU, their input shapes recorded in
the package so that both runtimes refuse any other."""

from __future__ import annotations

from repmet.export.formats.plugin import ExportFormat, register_format


class AotiFormat(ExportFormat):
    name = graph_key = "aoti"
    order = 40

    def export_classifier(self, model, example, folder, options):
        from repmet.export.formats.aoti.classifier import export_aoti

        return export_aoti(model.embedding, model.head, example, folder, options.max_batch,
                           model.gallery.reps_per_class)

    def export_detector(self, trained, canvas, folder, options):
        from repmet.export.formats.aoti.detector import export_detector_aoti

        return export_detector_aoti(trained.model.eval(), canvas, folder)


register_format(AotiFormat())
