"""Image transforms, named so that cached features can be keyed by the transform that made them."""

from __future__ import annotations

from dataclasses import dataclass

from torchvision import transforms as T

from repmet.preprocess_spec import PreprocessSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CACHE_VIEWS = ("center", "flip")  # deterministic views whose features can be cached


@dataclass(frozen=True)
class TransformSpec:
    """Resize the shorter side to ``resize``, crop ``size`` x ``size``, normalise."""

    size: int
    resize: int
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def key(self, view: str) -> str:
        return f"{view}-{self.size}-{self.resize}-{self.mean}-{self.std}"

    def eval_transform(self, view: str = "center") -> T.Compose:
        steps = [T.Resize(self.resize), T.CenterCrop(self.size)]
        if view == "flip":
            steps.append(T.RandomHorizontalFlip(p=1.0))
        elif view != "center":
            raise ValueError(f"unknown view {view!r}; cacheable views are {CACHE_VIEWS}")
        return T.Compose([*steps, T.ToTensor(), T.Normalize(self.mean, self.std)])

    def preprocess_spec(self) -> PreprocessSpec:
        """The centre view as the runtime's preprocessing (``T.Resize(int)`` is bilinear)."""
        return PreprocessSpec(color="RGB", resize="shorter_side", resize_to=self.resize, interpolation="bilinear",
                              crop=self.size, invert=False, mean=self.mean, std=self.std)

    def train_transform(self) -> T.Compose:
        return T.Compose([
            T.RandomResizedCrop(self.size, scale=(0.35, 1.0)),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(self.mean, self.std),
        ])
