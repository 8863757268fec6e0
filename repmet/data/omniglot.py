"""Omniglot (Lake et al. 2015) with the Vinyals et al. (2016) few-shot split.

On disk, the official layout under ``ROOT/omniglot``::

    images_background.zip   (or the extracted folder images_background/)
    images_evaluation.zip   (or images_evaluation/)
    splits/vinyals/{train,val,trainval,test}.txt

Each split line is ``Alphabet/characterNN/rotDDD``: every 90-degree rotation of a
character is its own class (4112 / 688 / 1692 classes in train / val / test).
All 1623 x 20 images are decoded once, resized and cached as a ``.npz`` (no pickle),
so training never waits on PNG decoding. Torchvision's ``Omniglot`` is not used: it
checks archive checksums that repackaged copies of the same images do not match.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from repmet.data.class_images import ClassImages
from repmet.data.download import download_file
from repmet.data.paths import cache_dir, save_npz_atomically
from repmet.errors import UserError
from repmet.preprocess_spec import PreprocessSpec

ARCHIVES = ("images_background", "images_evaluation")
SPLITS = ("train", "val", "trainval", "test")
IMAGES_PER_CHARACTER = 20
ARCHIVE_URL = "https://github.com/brendenlake/omniglot/raw/master/python/{name}.zip"
SPLIT_URL = "https://raw.githubusercontent.com/jakesnell/prototypical-networks/master/data/omniglot/splits/vinyals/{split}.txt"

LAYOUT_HELP = (
    "expected the official layout: images_background.zip and images_evaluation.zip (or their "
    "extracted folders) and splits/vinyals/{train,val,trainval,test}.txt"
)


def omniglot_preprocess(image_size: int) -> PreprocessSpec:
    """What ``_decode`` does to a PNG, as the runtime's preprocessing: grayscale, Lanczos to
    ``image_size`` squared, strokes made bright (inverted), values in [0, 1]."""
    return PreprocessSpec(color="L", resize="exact", resize_to=image_size, interpolation="lanczos",
                          crop=image_size, invert=True, mean=(0.0,), std=(1.0,))


def load_omniglot(root: str | Path, split: str, image_size: int = 28, download: bool = True) -> ClassImages:
    """The classes of one Vinyals split, as uint8 ``[C, 20, 1, S, S]`` with strokes bright (255)."""
    if split not in SPLITS:
        raise UserError(f"unknown Omniglot split {split!r}; choose one of {', '.join(SPLITS)}")
    folder = Path(root).expanduser() / "omniglot"
    sources = _find_or_download_sources(folder, download)
    split_file = _find_or_download_split(folder, split, download)
    characters, names = _decoded_characters(sources, image_size)
    index = {name: i for i, name in enumerate(names)}

    rows, class_names = [], []
    for line_number, line in enumerate(split_file.read_text().splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        character, _, rotation = line.rpartition("/")
        if character not in index or rotation not in ("rot000", "rot090", "rot180", "rot270"):
            raise UserError(
                f"{split_file}, line {line_number}: {line!r} is not 'Alphabet/characterNN/rotDDD' "
                f"for a character present in the archives"
            )
        quarter_turns = int(rotation[3:]) // 90
        rows.append(np.rot90(characters[index[character]], k=quarter_turns, axes=(1, 2)))
        class_names.append(line)
    if not rows:
        raise UserError(f"{split_file} lists no classes; {LAYOUT_HELP}")
    images = torch.from_numpy(np.ascontiguousarray(np.stack(rows)))[:, :, None]
    return ClassImages(images, class_names, f"Omniglot {split} ({folder})")


def _find_or_download_sources(folder: Path, download: bool) -> list[Path]:
    sources = []
    for name in ARCHIVES:
        extracted, archive = folder / name, folder / f"{name}.zip"
        if extracted.is_dir():
            sources.append(extracted)
        elif archive.is_file():
            sources.append(archive)
        elif download:
            download_file(ARCHIVE_URL.format(name=name), archive, what=f"Omniglot {name}.zip")
            sources.append(archive)
        else:
            raise UserError(f"Omniglot not found in {folder}: no {name}.zip or {name}/; {LAYOUT_HELP}")
    return sources


def _find_or_download_split(folder: Path, split: str, download: bool) -> Path:
    path = folder / "splits" / "vinyals" / f"{split}.txt"
    if not path.is_file():
        if not download:
            raise UserError(f"missing Omniglot split file {path}; {LAYOUT_HELP}")
        download_file(SPLIT_URL.format(split=split), path, what=f"the Vinyals split file {split}.txt")
    return path


def _decoded_characters(sources: list[Path], image_size: int) -> tuple[np.ndarray, list[str]]:
    """All characters as uint8 ``[1623, 20, S, S]`` plus their ``Alphabet/characterNN`` names, cached."""
    cache_file = cache_dir() / f"omniglot_{image_size}px_{_fingerprint(sources)}.npz"
    if cache_file.is_file():
        try:
            with np.load(cache_file, allow_pickle=False) as cached:
                return cached["images"], [str(n) for n in cached["names"]]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            cache_file.unlink(missing_ok=True)  # a damaged cache is rebuilt, never trusted

    by_character: dict[str, list[tuple[str, np.ndarray]]] = defaultdict(list)
    for source in sources:
        for relative, data in _iter_pngs(source):
            parts = relative.split("/")
            character = "/".join(parts[-3:-1])
            by_character[character].append((parts[-1], _decode(data, f"{source}:{relative}", image_size)))
    names = sorted(by_character)
    for name in names:
        if len(by_character[name]) != IMAGES_PER_CHARACTER:
            raise UserError(
                f"Omniglot character {name} has {len(by_character[name])} images, expected "
                f"{IMAGES_PER_CHARACTER}; the archives in {sources[0].parent} look incomplete"
            )
    images = np.stack([np.stack([img for _, img in sorted(by_character[n])]) for n in names])

    save_npz_atomically(cache_file, images=images, names=np.array(names))
    return images, names


def _iter_pngs(source: Path):
    if source.is_dir():
        for path in sorted(source.rglob("*.png")):
            yield path.relative_to(source.parent).as_posix(), path.read_bytes()
        return
    try:
        with zipfile.ZipFile(source) as archive:
            for member in sorted(archive.namelist()):
                if member.endswith(".png"):
                    yield member, archive.read(member)
    except zipfile.BadZipFile:
        raise UserError(f"{source} is not a readable zip archive; download it again") from None


def _decode(data: bytes, where: str, image_size: int) -> np.ndarray:
    try:
        image = Image.open(io.BytesIO(data)).convert("L")
    except (UnidentifiedImageError, OSError) as exc:
        raise UserError(f"cannot decode image {where}: {exc}; replace the file or its archive") from None
    image = image.resize((image_size, image_size), Image.Resampling.LANCZOS)
    return 255 - np.asarray(image, dtype=np.uint8)  # strokes bright, background 0


def _fingerprint(sources: list[Path]) -> str:
    digest = hashlib.sha256()
    for source in sources:
        files = sorted(source.rglob("*.png")) if source.is_dir() else [source]
        stat = [(str(f.resolve()), f.stat().st_size, int(f.stat().st_mtime)) for f in files]
        digest.update(repr(stat).encode())
    return digest.hexdigest()[:16]
