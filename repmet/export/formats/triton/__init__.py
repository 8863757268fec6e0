"""``--format triton``: a Triton Inference Server model repository inside the artifact, at
``ARTIFACT/triton/`` (``tritonserver --model-repository ARTIFACT/triton``): for a classifier the
embedding model with dynamic batching, the distance head with the representatives as an input, and
an ensemble chaining them, and their TensorRT plan variant where the artifact has an engine (``--format
trt``); for a detector its detection and box-embedding graphs as two models (``repository.py``). Built on the onnx format's graphs. repmet's runtimes do not
run it (Triton does): the export checks it offline instead (``check.py``: Triton's own config
message, its repository and ensemble rules, the ensemble run step by step against PyTorch)."""

from __future__ import annotations

from repmet.artifact.reader import sha256_of
from repmet.export.formats.plugin import ExportFormat, register_format

FOLDER = "triton"


class TritonFormat(ExportFormat):
    name = graph_key = "triton"
    order = 40
    needs = ("onnx",)
    tasks = ("classification", "detection")
    served_by = "Triton Inference Server"

    def export_classifier(self, model, example, folder, options):
        from repmet.export.formats.triton.repository import write_repository

        plan = folder / "embedding.plan"  # written by --format trt (before this format) on a GPU machine
        names = write_repository(folder / FOLDER, model.config.name, folder / "embedding.onnx", folder / "head.onnx",
                                 tuple(model.input_shape), model.embedding_dim, options.max_batch,
                                 plan if plan.is_file() else None)
        return {"embedding": "embedding.onnx", "head": "head.onnx", "repository": FOLDER, "models": names,
                "max_batch_size": options.max_batch, "repository_sha256": _digests(folder / FOLDER)}

    def export_detector(self, trained, canvas, folder, options):
        from repmet.export.formats.triton.repository import write_detector_repository

        names = write_detector_repository(folder / FOLDER, trained.config.name, folder / "detection.onnx",
                                          folder / "box_embedding.onnx")
        return {"detection": "detection.onnx", "box_embedding": "box_embedding.onnx", "repository": FOLDER,
                "models": names, "repository_sha256": _digests(folder / FOLDER)}

    def detector_verification_runner(self, folder, graphs):
        from repmet.export.formats.triton.check import detector_runner

        return detector_runner(folder / graphs["repository"], graphs["models"])

    def verification_runner(self, artifact, graphs):
        from repmet.export.formats.triton.check import EnsembleRunner

        return EnsembleRunner(artifact.folder / graphs["repository"], graphs["models"]["ensemble"])

    def package_versions(self, graphs):
        try:
            import tritonclient
        except ImportError:
            return {}
        return {"tritonclient": getattr(tritonclient, "__version__", "installed")}


def _digests(root) -> dict[str, str]:
    return {str(p.relative_to(root)): sha256_of(p) for p in sorted(root.rglob("*")) if p.is_file()}


register_format(TritonFormat())
