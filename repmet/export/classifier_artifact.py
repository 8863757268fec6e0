"""A classifier's artifact: the embedding graph and distance head of each chosen format
(``repmet.export.formats``), the trained gallery, ``model.pt`` and ``metadata.json``
(``task: classification``). Verified on real images: each format's embeddings and posteriors
against eager PyTorch's, through the runtime backend that will run it."""

from __future__ import annotations

from pathlib import Path

import torch

from repmet.artifact.reader import SCHEMA_VERSION, Artifact
from repmet.artifact.writer import add_fingerprint_and_gallery, write_metadata
from repmet.checkpoint import save_checkpoint
from repmet.export.exportable import ExportableModel, exportable_from
from repmet.export.formats import ExportFormat, package_versions
from repmet.export.tasks import EXPORT_TASKS, ExportRequest
from repmet.export.verify import Verification, require_passed, sample_images, verify_backend


@EXPORT_TASKS.register("classification")
def build_classifier_artifact(request: ExportRequest, work: Path) -> dict:
    model = exportable_from(request.trained)
    images, described = sample_images(model, request.data_root, request.samples_dir)
    return _build(model, request.checkpoint, work, request.formats, request.options, images, described, request.log)


def _build(model: ExportableModel, checkpoint: str, work: Path, formats: list[ExportFormat], options,
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
        runner = fmt.verification_runner(artifact, graphs[fmt.graph_key]) if fmt else None
        if runner is None:
            backend = verifying_backend(None if fmt is None else fmt.graph_key)
            runner = backend.open_classifier(artifact, backend.verification_device, 0)
        name = runner.name if fmt is None else fmt.name
        tolerance = (fmt or ExportFormat()).tolerance(options)
        result: Verification = verify_backend(runner, model, images, tolerance)
        log(f"verified {name:<11} on {described}: max |diff| embeddings {result.max_abs_embedding:.2e}, "
            f"posteriors {result.max_abs_posterior:.2e}, top-1 agreement {100 * result.top1_agreement:.1f}%"
            + ("" if tolerance else " (reported, not gated)"))
        require_passed(result, name)
        verification[name] = {**result.to_dict(), "inputs": described}
        if fmt is not None and (gate := fmt.accuracy_gate(options)) is not None:
            verification[name]["accuracy"] = _gate_accuracy(model, runner, options, gate, name, log)
    metadata["verification"] = verification
    write_metadata(work, metadata)
    return metadata


def _gate_accuracy(model: ExportableModel, runner, options, gate, name: str, log) -> dict:
    """A lossy format's accuracy against the fp32 model on the checkpoint's test images; refused beyond the gate."""
    from repmet.errors import UserError
    from repmet.export.accuracy_cost import measure_accuracy_cost, require_within

    config = model.config
    root = options.data_root or config.data.root
    try:
        sample = model.trained.method.labeled_images(config, root, config.data.test_split, gate.images)
    except UserError as exc:
        raise UserError(f"--format {name} is checked for its accuracy on the checkpoint's test images, and the "
                        f"{config.data.dataset} {config.data.test_split} split is not readable ({exc}); pass "
                        f"--data-root DIR") from None
    return require_within(measure_accuracy_cost(model, runner.embed, sample, gate.max_points), name, log)


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


