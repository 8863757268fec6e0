"""Export formats as plug-ins (:mod:`repmet.export.formats.plugin`): one folder each."""

from repmet.export.formats.plugin import (EXPORT_FORMATS, AccuracyGate, ExportFormat, ExportOptions, FormatOption,
                                          chosen_formats, format_names, format_options, package_versions,
                                          register_format)

__all__ = ["EXPORT_FORMATS", "AccuracyGate", "ExportFormat", "ExportOptions", "FormatOption", "chosen_formats",
           "format_names", "format_options", "package_versions", "register_format"]
