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

from repmet.checkpoint import save_checkpoint
from repmet.errors import UserError
from repmet.export.detector_artifact import build_detector_artifact
from repmet.artifact.writer import add_fingerprint_and_gallery, write_metadata
from repmet.export.exportable import ExportableModel, exportable_from
from repmet.export.formats import (EXPORT_FORMATS, ExportFormat, ExportOptions, chosen_formats, format_names,
                                  package_versions)
from repmet.export.formats.onnx.classifier import DEFAULT_OPSET
from repmet.export.verify import Verification, require_passed, sample_images, verify_backend
from repmet.methods import open_checkpoint
from repmet.artifact.reader import METADATA_FILE, SCHEMA_VERSION, Artifact


def export_artifact(checkpoint: str, out: str | Path, formats: list[str], opset: int = DEFAULT_OPSET,
                    fp16: bool = False, max_batch: int = 64, data_root: str | None = None,
                    samples_dir: str | None = None, log: Callable[[str], None] = print) -> dict:
    """Export ``checkpoint`` to the artifact folder ``out``; returns its metadata."""
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
    if max_batch < 1:
        raise UserError(f"--max-batch must be at least 1, got {max_batch}")
    out = Path(out)
    require_replaceable(out)

    trained = open_checkpoint(checkpoint)
    chosen = chosen_formats(list(formats), trained.method.task)
    if trained.method.task == "detection":
        return _write_atomically(out, lambda work: build_detector_artifact(trained, checkpoint, work, chosen,
                                                                           data_root, log))
    model = exportable_from(trained)  # the checkpoint is read once
    images, described = sample_images(model, data_root, samples_dir)
    options = ExportOptions(opset, fp16, max_batch)
    return _write_atomically(out, lambda work: _build(model, checkpoint, work, chosen, options, images, described,
                                                      log))


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


def _build(model: ExportableModel, checkpoint: str, work: Path, formats: list[ExportFormat], options: ExportOptions,
           images, described: str, log) -> dict:
    example = torch.from_numpy(images[:2])
    graphs, verification = {}, {}
    trained = model.trained
    save_checkpoint({"model": trained.model.state_dict(), "config": model.config.to_dict(), "epoch": trained.epoch,
                     **trained.description()}, work / "model.pt")
    for fmt in formats:
        graphs[fmt.graph_key] = fmt.export_classifier(model, example, work, options)

    # the fingerprint is of the files written so far; the gallery carries it, so it comes after
    metadata = _metadata(model, checkpoint, graphs, package_versions(formats, graphs),
                         "gallery.npz" if len(model.gallery) else None)
    add_fingerprint_and_gallery(metadata, work, model.gallery if len(model.gallery) else None)
    write_metadata(work, metadata)  # provisional, so the runtime backends can open the folder
    artifact = Artifact.open(work)
    from repmet.runtime.backends import verifying_backend

    for fmt in [None, *formats]:  # None: the eager model.pt, the reference every graph is held to
        backend = verifying_backend(None if fmt is None else fmt.graph_key)
        name = backend.name if fmt is None else fmt.name
        tolerance = (fmt or ExportFormat()).tolerance(options)
        runner = backend.open_classifier(artifact, backend.verification_device, 0)
        result: Verification = verify_backend(runner, model, images, tolerance)
        log(f"verified {name:<11} on {described}: max |diff| embeddings {result.max_abs_embedding:.2e}, "
            f"posteriors {result.max_abs_posterior:.2e}, top-1 agreement {100 * result.top1_agreement:.1f}%"
            + ("" if tolerance else " (fp16: reported, not gated)"))
        require_passed(result, name)
        verification[name] = {**result.to_dict(), "inputs": described}
    metadata["verification"] = verification
    write_metadata(work, metadata)
    return metadata


def _metadata(model: ExportableModel, checkpoint: str, graphs: dict, versions: dict, gallery_file: str | None) -> dict:
    """Everything but the fingerprint, ``files`` (add_fingerprint_and_gallery) and the verification results."""
    config = model.config
    return {
        "schema_version": SCHEMA_VERSION,
        "task": model.trained.method.task,
        "name": config.name,
        "method": config.method,
        "source_checkpoint": Path(checkpoint).name,
        "input": {"channels": model.input_shape[0], "height": model.input_shape[1], "width": model.input_shape[2],
                  "dtype": "float32", "layout": "NCHW", "name": "images"},
        "preprocess": model.preprocess.to_dict(),
        "embedding": {"dim": model.embedding_dim, "normalized": model.normalized, "output": "embeddings"},
        "head": {"distance": model.distance, "sigma": model.sigma, "reps_per_class": model.gallery.reps_per_class,
                 "inputs": ["embeddings", "representatives"], "outputs": ["distances", "posteriors"],
                 "posterior": "softmax over classes of -min_k d(x, r_ck) / (2 sigma^2)"},
        "class_names": list(model.gallery.labels),
        "gallery": gallery_file,
        "model": "model.pt",
        "graphs": graphs,
        "versions": versions,
    }


