"""An export format is a plug-in: one subpackage of ``repmet.export.formats`` registers an
:class:`ExportFormat` that owns its exporters (per task), the files they write into the
artifact (its ``graphs[graph_key]`` entry) and how strictly its graphs are verified. The
backends that run its graphs say so themselves (``repmet.runtime.backends``: ``graph_key``), so
``metric-export`` and the artifact writer loop over the registry and never branch on a name.

Discovery imports each format's ``__init__`` only, which stays light: torch, onnx and TensorRT
load when an exporter runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from repmet.errors import UserError
from repmet.registry import Registry, subpackage_loader

FP32_TOLERANCE = 1e-4  # max |diff| of embeddings and posteriors against eager PyTorch


@dataclass(frozen=True)
class FormatOption:
    """A ``metric-export`` option that a format owns (``--calibration`` is int8's): the CLI adds it,
    and the format reads ``options.format_options[name]``."""

    name: str  # the key in ExportOptions.format_options, and --name-with-dashes on the command line
    default: object
    help: str
    type: object = None  # a click type; None: the default's type
    is_path: bool = False  # a folder the user names


@dataclass(frozen=True)
class AccuracyGate:
    """What a lossy format may cost: at most ``max_points`` of accuracy (or AP50) against fp32,
    measured on up to ``images`` of the checkpoint's test images."""

    max_points: float
    images: int


@dataclass(frozen=True)
class ExportOptions:
    opset: int
    fp16: bool
    max_batch: int
    data_root: str | None = None  # where the checkpoint's datasets are (real images for checks and calibration)
    format_options: dict = field(default_factory=dict)  # FormatOption name -> value, for every registered format

    def option(self, owner: "ExportFormat", name: str):
        """The value of ``owner``'s option ``name``: as given, else its default."""
        default = next(o.default for o in owner.options if o.name == name)
        value = self.format_options.get(name)
        return default if value is None else value


class ExportFormat:
    name: str = ""  # metric-export --format NAME
    graph_key: str = ""  # the artifact's metadata.json: graphs[graph_key]
    order: int = 50  # formats are written in this order (an engine after the ONNX graph it is built from)
    needs: tuple[str, ...] = ()  # formats whose graphs this one builds on, exported with it
    tasks: tuple[str, ...] = ("classification", "detection")
    builds_engines: bool = False  # --fp16 applies to it
    served_by: str | None = None  # a server outside repmet that runs its graphs (no repmet backend does)
    options: tuple[FormatOption, ...] = ()  # its own metric-export options

    def unavailable_reason(self) -> str | None:
        """None when this machine can export the format, else why not, in one sentence."""
        return None

    def export_classifier(self, model, example, folder: Path, options: ExportOptions) -> dict:
        """Write the embedding and head graphs of ``model`` (an ExportableModel) into ``folder``;
        returns the ``graphs[graph_key]`` entry."""
        raise UserError(f"--format {self.name} does not export classifiers yet")

    def export_detector(self, trained, canvas: int, folder: Path, options: ExportOptions) -> dict:
        """Write the detection and box-embedding graphs of a detector (``trained``: its TrainedModel,
        ``trained.model`` the network); returns its graphs entry."""
        raise UserError(f"--format {self.name} does not export detectors yet")

    def package_versions(self, graphs: dict) -> dict[str, str]:
        """The versions of the packages that wrote (and verified) this format's ``graphs`` entry,
        for the artifact's ``versions``."""
        return {}

    def tolerance(self, options: ExportOptions) -> float | None:
        """The largest difference from eager PyTorch that verification accepts (None: reported only)."""
        return FP32_TOLERANCE

    def verification_runner(self, artifact, graphs: dict):
        """What runs this format's graphs when the export is verified (a
        :class:`repmet.runtime.backends.Backend`); None: the runtime backend that runs ``graph_key``."""
        return None

    def detector_verification_runner(self, folder: Path, graphs: dict):
        """What runs this format's detector graphs when the export is verified (a runner with
        ``detect`` and ``embed_boxes``, as a backend's ``detector_runner``); None: the runtime
        backend that runs ``graph_key``."""
        return None

    def accuracy_gate(self, options: ExportOptions) -> AccuracyGate | None:
        """For a lossy format: what it may cost against the fp32 model, measured on the checkpoint's
        test images at export (the artifact is refused beyond it). None: no accuracy check (the
        format is held to ``tolerance`` instead)."""
        return None


EXPORT_FORMATS: Registry[ExportFormat] = Registry("format", subpackage_loader(__name__.rsplit(".", 1)[0]))


def register_format(fmt: ExportFormat) -> ExportFormat:
    return EXPORT_FORMATS.register(fmt.name, fmt)


def format_options() -> list[FormatOption]:
    """Every registered format's own options, once each by name (metric-export adds them)."""
    found: dict[str, FormatOption] = {}
    for name in format_names():
        for option in EXPORT_FORMATS.get(name).options:
            found.setdefault(option.name, option)
    return list(found.values())


def format_names() -> list[str]:
    """Every export format, in the order they are written."""
    return [f.name for f in sorted((f for _, f in EXPORT_FORMATS.items()), key=lambda f: (f.order, f.name))]


def chosen_formats(names: list[str], task: str) -> list[ExportFormat]:
    """The formats named (with the ones they need), in writing order; a sentence for an unknown
    name or one that does not export this task."""
    chosen: dict[str, ExportFormat] = {}
    for name in names:
        fmt = EXPORT_FORMATS.get(name, where="--format")
        if task not in fmt.tasks:
            can = [n for n in format_names() if task in EXPORT_FORMATS.get(n).tasks]
            raise UserError(f"--format {name} does not export {task} models yet; choose from {', '.join(can)}")
        for needed in (*fmt.needs, name):
            chosen[needed] = EXPORT_FORMATS.get(needed)
    return sorted(chosen.values(), key=lambda f: (f.order, f.name))


def package_versions(formats: list[ExportFormat], graphs: dict) -> dict[str, str]:
    """The artifact's ``versions``: repmet, torch and Python, and what each format adds."""
    import platform

    import torch

    import repmet

    versions = {"repmet": repmet.__version__, "torch": torch.__version__, "python": platform.python_version()}
    for fmt in formats:
        versions.update(fmt.package_versions(graphs[fmt.graph_key]))
    return versions
