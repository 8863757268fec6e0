"""What export does for each task, one entry per task: ``EXPORT_TASKS.get(method.task)`` builds
that task's artifact in a work folder (classification: ``classifier_artifact``, detection:
``detector_artifact``), so the writer branches on no task. A new task registers its builder here
from its own module, and names that module in ``_load_builtins``."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from repmet.export.formats import ExportFormat, ExportOptions
from repmet.registry import Registry


@dataclass(frozen=True)
class ExportRequest:
    """One ``metric-export`` call: the checkpoint (read once), the chosen formats and where the
    verification images come from."""

    trained: object  # repmet.methods.TrainedModel
    checkpoint: str
    formats: list[ExportFormat]
    options: ExportOptions
    data_root: str | None
    samples_dir: str | None
    log: Callable[[str], None]


def _load_builtins() -> None:
    for module in ("classifier_artifact", "detector_artifact"):
        importlib.import_module(f"repmet.export.{module}")


# name -> build(request, work_folder) -> metadata
EXPORT_TASKS: Registry[Callable[[ExportRequest, Path], dict]] = Registry("task", _load_builtins)
