"""Datasets in their official layouts, by name."""

from __future__ import annotations

from pathlib import Path

from repmet.data.class_images import ClassImages
from repmet.data.episode_sampler import Episode, EpisodeSampler, gather_episode
from repmet.data.flowers102 import load_flowers102
from repmet.data.image_folder import load_image_folder
from repmet.data.labeled_images import LabeledImages
from repmet.data.omniglot import load_omniglot, omniglot_preprocess
from repmet.data.oxford_pets import load_oxford_pets
from repmet.data.stanford_dogs import load_stanford_dogs
from repmet.data.validation_hold_out import split_off_validation
from repmet.data.paths import default_data_root
from repmet.errors import UserError
from repmet.preprocess_spec import PreprocessSpec

_FEW_SHOT_DATASETS = {"omniglot": load_omniglot}
_FEW_SHOT_PREPROCESS = {"omniglot": omniglot_preprocess}


def few_shot_preprocess(dataset: str, image_size: int) -> PreprocessSpec:
    """How the few-shot dataset ``dataset`` turns an image file into the model's input."""
    if dataset not in _FEW_SHOT_PREPROCESS:
        raise UserError(f"unknown few-shot dataset {dataset!r}; available: {', '.join(sorted(_FEW_SHOT_PREPROCESS))}")
    return _FEW_SHOT_PREPROCESS[dataset](image_size)


def load_few_shot_split(dataset: str, split: str, root: str | Path | None = None,
                        image_size: int = 28, download: bool = True) -> ClassImages:
    if dataset not in _FEW_SHOT_DATASETS:
        raise UserError(f"unknown few-shot dataset {dataset!r}; available: {', '.join(sorted(_FEW_SHOT_DATASETS))}")
    return _FEW_SHOT_DATASETS[dataset](root or default_data_root(), split, image_size=image_size, download=download)


_CLASSIFICATION_DATASETS = {
    "flowers102": load_flowers102,
    "oxford_pets": load_oxford_pets,
    "stanford_dogs": load_stanford_dogs,
    "folder": load_image_folder,
}


def load_labeled_split(dataset: str, split: str, root: str | Path | None = None, download: bool = True) -> LabeledImages:
    if dataset not in _CLASSIFICATION_DATASETS:
        raise UserError(f"dataset {dataset!r} is not an image-classification dataset; available: "
                        f"{', '.join(sorted(_CLASSIFICATION_DATASETS))}")
    return _CLASSIFICATION_DATASETS[dataset](root or default_data_root(), split, download=download)


def load_labeled_classes(data, split: str, classes: list[int] | None = None) -> LabeledImages:
    """Split ``split`` of the dataset of ``data`` (a ``DataConfig``), restricted to the class range
    ``classes = [first, last]`` (1-based, inclusive) when given. With ``data.val_fraction`` the
    val split is that fraction of the train split's images, held out of training."""
    if data.val_fraction and data.train_split == data.val_split:
        raise UserError(f"data.val_fraction holds validation images out of data.train_split, so data.val_split "
                        f"must name another split than {data.train_split!r} (or set data.val_fraction: 0)")
    if data.val_fraction and split in (data.train_split, data.val_split):
        train, val = split_off_validation(load_labeled_split(data.dataset, data.train_split, data.root, data.download),
                                          data.val_fraction)
        images = train if split == data.train_split else val
    else:
        images = load_labeled_split(data.dataset, split, data.root, data.download)
    if classes is not None:
        if len(classes) != 2 or not 1 <= classes[0] <= classes[1] <= len(images.class_names):
            raise UserError(f"class range {classes} must be [first, last] within 1..{len(images.class_names)}")
        images = images.with_classes(*classes)
    return images


__all__ = ["few_shot_preprocess", "load_labeled_classes", "LabeledImages", "load_labeled_split", "ClassImages", "Episode", "EpisodeSampler", "default_data_root", "gather_episode",
           "load_few_shot_split", "load_omniglot"]
