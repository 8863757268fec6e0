"""Writing an artifact folder: graphs, gallery, ``model.pt`` and ``metadata.json`` with each
file's sha256. Everything is built and verified in a temporary folder next to the target,
which replaces the target only when every check passed."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import torch

from repmet.artifact.reader import METADATA_FILE, Artifact
from repmet.artifact.writer import write_metadata
from repmet.errors import UserError
from repmet.export.formats import EXPORT_FORMATS, ExportOptions, chosen_formats, format_names
from repmet.export.formats import format_options as registered_options
from repmet.export.formats.onnx.classifier import DEFAULT_OPSET
from repmet.export.tasks import EXPORT_TASKS, ExportRequest
from repmet.methods import open_checkpoint


def export_artifact(checkpoint: str, out: str | Path, formats: list[str], opset: int = DEFAULT_OPSET,
                    fp16: bool = False, max_batch: int = 64, data_root: str | None = None,
                    samples_dir: str | None = None, log: Callable[[str], None] = print,
                    format_options: dict | None = None) -> dict:
    """Export ``checkpoint`` to the artifact folder ``out``; returns its metadata. ``format_options``:
    the formats' own options by name (``FormatOption``, e.g. int8's ``calibration``)."""
    if not formats:
        raise UserError(f"no --format given; choose from {', '.join(format_names())}")
    known = {name: EXPORT_FORMATS.get(name) for name in format_names()}
    for name in formats:  # unknown names first, before a checkpoint is read
        if name not in known:
            raise UserError(f"unknown format {name!r}; choose from {', '.join(known)}")
    engines = [name for name, fmt in known.items() if fmt.builds_engines]
    if fp16 and not any(name in engines for name in formats):
        raise UserError(f"--fp16 applies to TensorRT engines; add --format {' or '.join(engines)} or drop --fp16")
    for name in formats:
        if reason := known[name].unavailable_reason():
            raise UserError(f"cannot export --format {name} here: {reason}")
    known_options = {option.name for option in registered_options()}
    for name in format_options or {}:
        if name not in known_options:
            raise UserError(f"unknown format option {name!r}; the formats' options are {', '.join(sorted(known_options))}")
    if max_batch < 1:
        raise UserError(f"--max-batch must be at least 1, got {max_batch}")
    out = Path(out)
    require_replaceable(out)

    trained = open_checkpoint(checkpoint)  # read once
    task = trained.method.task
    chosen = chosen_formats(list(formats), task)
    for name in format_options or {}:  # an option of a format not chosen would be ignored without a word
        if not any(option.name == name for fmt in chosen for option in fmt.options):
            owners = [n for n in format_names() if any(o.name == name for o in EXPORT_FORMATS.get(n).options)]
            flag = "--" + name.replace("_", "-")
            raise UserError(f"{flag} applies to --format {' or '.join(owners)}, which this export does not write; "
                            f"add the format or drop the option")
    request = ExportRequest(trained, checkpoint, chosen,
                            ExportOptions(opset, fp16, max_batch, data_root, dict(format_options or {})),
                            data_root, samples_dir, log)
    build = EXPORT_TASKS.get(task, f"{checkpoint}: the method's task")
    return _write_atomically(out, lambda work: build(request, work))


def _write_atomically(out: Path, build: Callable[[Path], dict]) -> dict:
    """``build(work)`` fills a temporary folder beside ``out`` and returns the metadata; the folder
    replaces ``out`` only when it succeeded."""
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(work, 0o777 & ~umask)  # mkdtemp makes it private; an artifact is meant to be shared
    try:
        with warnings.catch_warnings():
            # shapes read as ints while tracing: intended, the input size of an artifact is fixed
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            metadata = build(work)
            write_metadata(work, metadata)
        require_replaceable(out)  # again: the folder may have changed during the export
        if out.exists():
            shutil.rmtree(out)
        work.rename(out)
    finally:
        if work.exists():
            shutil.rmtree(work)
    Artifact.open(out)  # what a runtime will do: every sha256 checked
    return metadata


def require_replaceable(out: Path) -> None:
    """``out`` may be written when it is missing, empty, or exactly an earlier artifact (its
    metadata.json and the files that metadata lists); anything else a user keeps there is
    never deleted: the export stops and names what is in the way."""
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"--out {out} is a file; choose a new or empty folder")
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return
    listed = _artifact_files(out)
    if listed is None:
        raise UserError(f"--out {out} is not empty and is not an artifact ({', '.join(entries[:5])}"
                        f"{' ...' if len(entries) > 5 else ''}); choose a new or empty folder")
    foreign = [name for name in entries if name not in listed or not (out / name).is_file()]
    if foreign:
        raise UserError(f"--out {out} holds an artifact and also {', '.join(foreign[:5])}"
                        f"{' ...' if len(foreign) > 5 else ''}, which the export would delete; move "
                        f"{'them' if len(foreign) > 1 else 'it'} out of the folder, or choose another --out")


def _artifact_files(folder: Path) -> set[str] | None:
    """The files of the artifact in ``folder`` (metadata.json and what it lists), or None if it is none."""
    try:
        files = json.loads((folder / METADATA_FILE).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(files, dict):
        return None
    return {METADATA_FILE, *map(str, files)}
