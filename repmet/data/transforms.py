"""Image transforms, named so that cached features can be keyed by the transform that made them."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import functional as TF

from repmet.preprocess_spec import PreprocessSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CACHE_VIEWS = ("center", "flip")  # deterministic views whose features can be cached
RANDOM_VIEW_PREFIX = "random"  # random0, random1, ...: seeded augmented views, cacheable too
CROP_SCALE = (0.35, 1.0)  # RandomResizedCrop's area range, for training images and random views
CROP_RATIO = (3 / 4, 4 / 3)


def random_views(count: int) -> list[str]:
    """The names of ``count`` seeded random views (``random0`` ...)."""
    return [f"{RANDOM_VIEW_PREFIX}{i}" for i in range(count)]


def is_cacheable_view(view: str) -> bool:
    suffix = view.removeprefix(RANDOM_VIEW_PREFIX)
    return view in CACHE_VIEWS or (suffix != view and suffix.isdigit())


def seeded_crop_box(width: int, height: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` as ``T.RandomResizedCrop.get_params`` draws them (area in
    ``CROP_SCALE``, log-uniform aspect ratio in ``CROP_RATIO``, ten tries, then the largest
    central crop of an allowed ratio), from ``rng`` instead of torch's global generator, so that
    a cached view is the same whichever thread or process computes it."""
    area = width * height
    log_ratio = (math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]))
    for _ in range(10):
        target = area * rng.uniform(*CROP_SCALE)
        ratio = math.exp(rng.uniform(*log_ratio))
        w, h = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    ratio = width / height
    if ratio < CROP_RATIO[0]:
        w, h = width, round(width / CROP_RATIO[0])
    elif ratio > CROP_RATIO[1]:
        w, h = round(height * CROP_RATIO[1]), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


@dataclass(frozen=True)
class TransformSpec:
    """Resize the shorter side to ``resize``, crop ``size`` x ``size``, normalise."""

    size: int
    resize: int
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def key(self, view: str) -> str:
        key = f"{view}-{self.size}-{self.resize}-{self.mean}-{self.std}"
        return key if view in CACHE_VIEWS else f"{key}-{CROP_SCALE}-{CROP_RATIO}"

    def eval_transform(self, view: str = "center") -> T.Compose:
        steps = [T.Resize(self.resize), T.CenterCrop(self.size)]
        if view == "flip":
            steps.append(T.RandomHorizontalFlip(p=1.0))
        elif view != "center":
            raise ValueError(f"unknown view {view!r}; deterministic views are {CACHE_VIEWS}")
        return T.Compose([*steps, T.ToTensor(), T.Normalize(self.mean, self.std)])

    def view_transform(self, view: str) -> Callable[[Image.Image, str], torch.Tensor]:
        """``(image, seed_text) -> tensor`` for any cacheable view. A random view (``random3``)
        is a RandomResizedCrop + coin-flip mirror drawn from a generator seeded by
        ``seed_text`` (the image's content key) and the view's name: the same pixels give the
        same view on every machine."""
        if view in CACHE_VIEWS:
            transform = self.eval_transform(view)
            return lambda image, _seed: transform(image)
        if not is_cacheable_view(view):
            raise ValueError(f"unknown view {view!r}; cacheable views are {CACHE_VIEWS} and random0, random1, ...")
        normalize = T.Compose([T.ToTensor(), T.Normalize(self.mean, self.std)])

        def transform(image: Image.Image, seed_text: str) -> torch.Tensor:
            digest = hashlib.blake2b(f"{seed_text}|{view}".encode(), digest_size=8).digest()
            rng = np.random.default_rng(int.from_bytes(digest, "little"))
            top, left, h, w = seeded_crop_box(image.width, image.height, rng)
            crop = TF.resized_crop(image, top, left, h, w, [self.size, self.size], antialias=True)
            return normalize(TF.hflip(crop) if rng.random() < 0.5 else crop)

        return transform

    def preprocess_spec(self) -> PreprocessSpec:
        """The centre view as the runtime's preprocessing (``T.Resize(int)`` is bilinear)."""
        return PreprocessSpec(color="RGB", resize="shorter_side", resize_to=self.resize, interpolation="bilinear",
                              crop=self.size, invert=False, mean=self.mean, std=self.std)

    def train_transform(self) -> T.Compose:
        return T.Compose([
            T.RandomResizedCrop(self.size, scale=CROP_SCALE),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(self.mean, self.std),
        ])
