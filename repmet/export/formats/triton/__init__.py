"""``--format triton``: a Triton Inference Server model repository inside the artifact, at
``ARTIFACT/triton/`` (``tritonserver --model-repository ARTIFACT/triton``): the embedding model
with dynamic batching, the distance head with the representatives as an input, and an ensemble
chaining them (``repository.py``). Built on the onnx format's graphs. repmet's runtimes do not
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
    tasks = ("classification",)
    served_by = "Triton Inference Server"

    def export_classifier(self, model, example, folder, options):
        from repmet.export.formats.triton.repository import write_repository

        names = write_repository(folder / FOLDER, model.config.name, folder / "embedding.onnx", folder / "head.onnx",
                                 tuple(model.input_shape), model.embedding_dim, options.max_batch)
        files = {str(p.relative_to(folder / FOLDER)): sha256_of(p)
                 for p in sorted((folder / FOLDER).rglob("*")) if p.is_file()}
        return {"embedding": "embedding.onnx", "head": "head.onnx", "repository": FOLDER, "models": names,
                "max_batch_size": options.max_batch, "repository_sha256": files}

    def verification_runner(self, artifact, graphs):
        from repmet.export.formats.triton.check import EnsembleRunner

        return EnsembleRunner(artifact.folder / graphs["repository"], graphs["models"]["ensemble"])

    def package_versions(self, graphs):
        try:
            import tritonclient
        except ImportError:
            return {}
        return {"tritonclient": getattr(tritonclient, "__version__", "installed")}


register_format(TritonFormat())
