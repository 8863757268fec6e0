"""``metric-predict DIR [--support FOLDER] --query IMAGE... [--top-k K] [--backend B] [--device D] [--json]``.

Support folder: one subfolder per class, named by the class, holding its few images."""

from __future__ import annotations

import json
from pathlib import Path

import click

from repmet.cli_errors import report_user_errors
from repmet.errors import UserError
from repmet.imaging import IMAGE_SUFFIXES
from repmet.runtime.classifier import FewShotClassifier


def support_classes(folder: Path) -> dict[str, list[Path]]:
    """{class name: its image files} of a support folder. Hidden entries (".ipynb_checkpoints",
    macOS "._x.png" resource forks, ".DS_Store") are neither classes nor images."""
    if not folder.is_dir():
        raise UserError(f"--support {folder} is not a folder; give a folder with one subfolder of images per class")
    classes = {}
    for sub in sorted(p for p in _visible(folder) if p.is_dir()):
        images = sorted(p for p in _visible(sub) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise UserError(f"support class folder {sub} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        classes[sub.name] = images
    if not classes:
        raise UserError(f"--support {folder} has no class subfolders; make one subfolder of images per class")
    return classes


def _visible(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if not p.name.startswith(".")]


@click.command()
@click.argument("artifact", type=click.Path(file_okay=False))
@click.option("--support", type=click.Path(file_okay=False), default=None,
              help="Folder with one subfolder of images per class to enroll (default: the trained gallery).")
@click.option("--gallery", type=click.Path(dir_okay=False), default=None,
              help="A gallery saved by save_gallery / --save-gallery, instead of the trained one.")
@click.option("--save-gallery", type=click.Path(dir_okay=False), default=None,
              help="Save the gallery (after enrolling --support) to this .npz file.")
@click.option("--query", "queries", multiple=True, required=True, type=click.Path(dir_okay=False),
              help="Image to classify; repeat for several.")
@click.option("--top-k", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--backend", default="auto", show_default=True,
              type=click.Choice(["auto", "torch", "torchscript", "onnxruntime", "tensorrt"]))
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@report_user_errors
def main(artifact: str, support: str | None, gallery: str | None, save_gallery: str | None,
         queries: tuple[str, ...], top_k: int, backend: str, device: str, as_json: bool) -> None:
    """Classify query images with an exported ARTIFACT, after enrolling the support classes."""
    classifier = FewShotClassifier.load(artifact, backend=backend, device=device)
    if gallery:
        classifier.load_gallery(gallery)
    if support:
        classes = support_classes(Path(support))
        for label in classifier.labels:  # the support folder defines the classes
            classifier.remove(label)
        for label, images in classes.items():
            classifier.enroll(label, images)
    if not classifier.labels:
        raise UserError(f"{artifact} has no trained gallery (Prototypical Networks learn no classes); pass "
                        f"--support FOLDER with one subfolder of images per class, or --gallery FILE")
    if save_gallery:
        classifier.save_gallery(save_gallery)
    predictions = classifier.classify(list(queries), top_k=top_k)
    if as_json:
        rows = [{"image": q, "labels": list(p.labels), "posteriors": list(p.posteriors)}
                for q, p in zip(queries, predictions)]
        click.echo(json.dumps({"backend": classifier.backend.name, "predictions": rows}, indent=2))
        return
    width = max(len(q) for q in queries)
    click.echo(f"{'image':<{width}}  prediction (posterior)   [backend {classifier.backend.name}]")
    for q, p in zip(queries, predictions):
        ranked = ", ".join(f"{label} ({posterior:.3f})" for label, posterior in zip(p.labels, p.posteriors))
        click.echo(f"{q:<{width}}  {ranked}")


if __name__ == "__main__":
    main()
