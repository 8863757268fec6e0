"""Export formats as plug-ins (:mod:`repmet.export.formats.plugin`): one folder each."""

from repmet.export.formats.plugin import (EXPORT_FORMATS, ExportFormat, ExportOptions, chosen_formats,
                                          format_names, package_versions, register_format)

__all__ = ["EXPORT_FORMATS", "ExportFormat", "ExportOptions", "chosen_formats", "format_names", "package_versions", "register_format"]
