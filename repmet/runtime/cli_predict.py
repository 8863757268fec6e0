"""``metric-predict DIR [--support FOLDER] --query IMAGE... [--top-k K] [--backend B] [--device D] [--json]``.

Support folder: one subfolder per class, named by the class, holding its few images.

``metric-predict DIR --detect --support SUPPORT --query IMAGE... [--score S] [--draw OUT] [--json]``
for a detector: SUPPORT is a Pascal VOC folder (the boxes of its ``--support-split``) or a
COCO JSON file (images in ``images/`` beside it); every class with boxes there is enrolled
beside the trained ones."""

from __future__ import annotations

import json
from pathlib import Path

import click

from repmet.cli_errors import report_user_errors
from repmet.errors import UserError
from repmet.runtime.backends import backend_names
from repmet.imaging import IMAGE_SUFFIXES
from repmet.runtime.classifier import FewShotClassifier
from repmet.runtime.gallery_index import DEFAULT_INDEX, index_names


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
@click.option("--support", type=click.Path(), default=None,
              help="Folder with one subfolder of images per class to enroll (default: the trained gallery); "
                   "with --detect, a VOC folder or a COCO JSON file.")
@click.option("--gallery", type=click.Path(dir_okay=False), default=None,
              help="A gallery saved by save_gallery / --save-gallery, instead of the trained one.")
@click.option("--save-gallery", type=click.Path(dir_okay=False), default=None,
              help="Save the gallery (after enrolling --support) to this .npz file.")
@click.option("--query", "queries", multiple=True, required=True, type=click.Path(dir_okay=False),
              help="Image to classify; repeat for several.")
@click.option("--top-k", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--backend", default="auto", show_default=True,
              type=click.Choice(["auto", *backend_names()]))
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--index", default=DEFAULT_INDEX, show_default=True, type=click.Choice(index_names()),
              help="How the gallery is searched (classification).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--detect", is_flag=True, help="ARTIFACT is a detector: enroll the boxes of --support, detect.")
@click.option("--support-split", default="train", show_default=True, help="With --detect: the VOC split to enroll.")
@click.option("--score", type=click.FloatRange(0, 1), default=0.2, show_default=True,
              help="With --detect: the lowest score reported.")
@click.option("--draw", type=click.Path(file_okay=False), default=None,
              help="With --detect: write each query with its detections drawn to this folder (PNG).")
@report_user_errors
def main(artifact: str, support: str | None, gallery: str | None, save_gallery: str | None,
         queries: tuple[str, ...], top_k: int, backend: str, device: str, index: str, as_json: bool, detect: bool,
         support_split: str, score: float, draw: str | None) -> None:
    """Classify query images with an exported ARTIFACT, after enrolling the support classes
    (or, with --detect, find the support's boxed classes in them)."""
    if detect:
        _detect(artifact, support, gallery, save_gallery, list(queries), backend, device, as_json, support_split,
                score, draw)
        return
    classifier = FewShotClassifier.load(artifact, backend=backend, device=device, index=index)
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



def _detect(artifact: str, support: str | None, gallery: str | None, save_gallery: str | None, queries: list[str],
            backend: str, device: str, as_json: bool, support_split: str, score: float, draw: str | None) -> None:
    from repmet.imaging import open_image
    from repmet.runtime.detector import FewShotDetector
    from repmet.runtime.draw import draw_detections

    detector = FewShotDetector.load(artifact, backend=backend, device=device)
    if gallery:
        detector.load_gallery(gallery)
    enrolled = []
    if support:
        for label, examples in support_boxes(Path(support), support_split).items():
            detector.enroll(label, examples)
            enrolled.append(label)
    if save_gallery:
        detector.save_gallery(save_gallery)
    found = detector.detect(queries, score_threshold=score)
    drawings = {}
    if draw:
        Path(draw).mkdir(parents=True, exist_ok=True)
        for query, detections in zip(queries, found):
            picture = draw_detections(open_image(query, "RGB"), detections, detector.labels, marked=enrolled)
            drawings[query] = save_new_png(picture, Path(draw), Path(query).stem)
    if as_json:
        rows = [{"image": q, "detections": [{"box": list(d.box), "label": d.label, "score": d.score} for d in ds],
                 **({"drawing": str(drawings[q])} if q in drawings else {})}
                for q, ds in zip(queries, found)]
        click.echo(json.dumps({"backend": detector.backend.name, "classes": detector.labels, "predictions": rows},
                              indent=2))
        return
    click.echo(f"[backend {detector.backend.name}; classes: {', '.join(detector.labels)}]")
    for query, detections in zip(queries, found):
        click.echo(f"{query}: {len(detections)} detections with score >= {score}"
                   + (f" (drawn: {drawings[query]})" if query in drawings else ""))
        for d in detections:
            click.echo(f"  {d.label:<20} {d.score:.3f}  [{', '.join(f'{v:.1f}' for v in d.box)}]")


def save_new_png(picture, folder: Path, stem: str) -> Path:
    """Save ``picture`` as ``folder/stem.png``, or ``stem_2.png``, ``stem_3.png``... when the name is
    taken (an existing file, or an earlier query of the same name from another folder): a drawing
    never replaces a file. Returns the path written."""
    for n in range(1, 100_000):
        path = folder / (f"{stem}.png" if n == 1 else f"{stem}_{n}.png")
        try:
            with open(path, "xb") as handle:  # exclusive: fails if the file exists, even if made a moment ago
                picture.save(handle, format="PNG")
            return path
        except FileExistsError:
            continue
    raise UserError(f"cannot find a free file name for {stem}.png in {folder}; choose an empty --draw folder")


def support_boxes(source: Path, split: str) -> dict[str, list]:
    """{class: [(image path, boxes [M, 4])]} of a VOC folder's ``split`` or a COCO JSON file
    (images in ``images/`` beside it); difficult boxes are left out."""
    from repmet.annotations import load_coco_detection, load_voc_detection

    if source.is_file():
        boxed = load_coco_detection(source, source.parent / "images")
    elif source.is_dir():
        boxed = load_voc_detection(source, split)
    else:
        raise UserError(f"--support {source} does not exist; give a VOC folder or a COCO JSON file")
    if boxed.repairs:  # what the loader clipped or dropped: the user enrolls what was read, and should know
        click.echo(f"note: {boxed.repairs}", err=True)
    classes: dict[str, list] = {}
    for image in boxed.images:
        for index, name in enumerate(boxed.class_names):
            keep = (image.labels == index) & ~image.difficult
            if keep.any():
                classes.setdefault(name, []).append((image.path, image.boxes[keep]))
    if not classes:
        raise UserError(f"--support {source} has no boxes to enroll")
    return classes


if __name__ == "__main__":
    main()
