"""RepMet's few-shot detector (Karlinsky et al., CVPR 2019, section 3.2): a Faster R-CNN whose box
classifier is a RepMet distance head, trained on the base classes of a detection set; novel
classes are enrolled afterwards from a few boxes, with no retraining.

Its config section is ``detection:``; ``data.root`` holds the dataset folder ``detection.folder``
(Pascal VOC layout, or COCO JSON files ``<split>.json`` with their images in ``images/``)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Optional

from torch import nn

from repmet.config import ExperimentConfig, at_least, between, positive
from repmet.data import default_data_root
from repmet.data.detection import (BaseNovelClasses, BaseTrainingImage, DetectionSplit, base_training_images,
                                   load_coco_detection, load_voc_detection, merge_splits)
from repmet.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from repmet.errors import UserError
from repmet.methods.base import Method, TrainedGallery
from repmet.methods.registry import register_method
from repmet.models import input_normalization
from repmet.models.detection import DetectorSize, build_repmet_faster_rcnn
from repmet.models.detection.backbones import DETECTION_BACKBONES, REGION_BACKBONES


@dataclass
class DetectionConfig:
    """The ``detection:`` section."""

    format: Literal["voc", "coco"] = "voc"
    folder: str = "fsod-mini"  # the dataset folder under data.root
    # More folders of the same layout whose data.train_split (or the split after a colon,
    # FOLDER:SPLIT) joins training and the support pool (VOC 2007 + 2012 trainval: folder
    # VOCdevkit/VOC2007, extra [VOCdevkit/VOC2012]). Their boxes of classes that are neither
    # base nor novel train objectness (repmet.data.detection.base_training_images).
    extra_train_folders: list[str] = field(default_factory=list)
    classes_file: Optional[str] = "classes.txt"  # base/novel split, relative to the dataset folder (or absolute)
    base_classes: Optional[list[str]] = None  # instead of classes_file
    novel_classes: Optional[list[str]] = None
    reps_per_class: int = field(default=5, metadata=at_least(1))
    sigma: float = field(default=0.3, metadata=positive())  # the posterior's temperature (region_scoring)
    images_per_batch: int = field(default=2, metadata=at_least(1))
    trainable_blocks: int = field(default=4, metadata=between(0, 16))  # from the top: Lite0 blocks, or ResNet stages
    fpn_channels: int = field(default=128, metadata=at_least(8))
    min_size: int = field(default=320, metadata=at_least(32))
    max_size: int = field(default=512, metadata=at_least(32))
    rois_per_image: int = field(default=128, metadata=at_least(8))
    box_head_dim: int = field(default=512, metadata=at_least(8))
    # Regions: the most object-like after class-agnostic NMS are cropped and embedded by the
    # frozen ImageNet backbone region_backbone (repmet.models.detection.region_embedder):
    # efficientnet_lite0 (its pooled head, 1280-d) or efficientnet_lite0_stages (its last three
    # stages and head, 1904-d: the CPU configs', lite0_stage_features.py)
    region_backbone: str = "efficientnet_lite0"
    regions_per_image: int = field(default=50, metadata=at_least(1))
    region_nms: float = field(default=0.7, metadata=between(0.05, 1.0))
    crop_size: int = field(default=128, metadata=at_least(32))
    background_reps: int = field(default=32, metadata=at_least(1))
    score_threshold: float = field(default=0.01, metadata=between(0.0, 1.0))
    # score = P(c | crop) x objectness^p: p < 1 trusts the class-agnostic objectness less, which
    # base training on a few classes makes low for objects unlike them (README, "Scores")
    objectness_power: float = field(default=1.0, metadata=between(0.0, 1.0))
    # Fitting the gallery after base training: base boxes per class embedded for the base
    # representatives, and training images whose object-free regions become background.
    fit_boxes_per_class: int = field(default=100, metadata=at_least(1))
    fit_background_images: int = field(default=150, metadata=at_least(1))
    hflip: bool = True  # random horizontal flips in training
    shots: list[int] = field(default_factory=lambda: [1, 3, 5])  # few-shot evaluation: K boxes per novel class
    episodes: int = field(default=5, metadata=at_least(1))  # few-shot evaluation episodes per K
    finetune_baseline: bool = True  # evaluation also fine-tunes a linear classifier on each episode's shots (TFA)


@dataclass(frozen=True)
class DetectorPreprocess:
    """What the detector does to an image: RGB, resized so that the shorter side is ``min_size``
    unless the longer one would exceed ``max_size`` (torchvision's ``GeneralizedRCNNTransform``),
    scaled to [0, 1] and normalised; boxes come back in the image's own pixels."""

    min_size: int
    max_size: int
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    kind: str = "detection"

    def to_dict(self) -> dict:
        return {**asdict(self), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict) -> "DetectorPreprocess":
        return cls(int(data["min_size"]), int(data["max_size"]), tuple(data["mean"]), tuple(data["std"]))


@dataclass
class DetectorEvaluationPlan:
    test: DetectionSplit
    split: str
    classes: BaseNovelClasses
    load_support_split: Callable[[], DetectionSplit]  # the split support boxes are drawn from, loaded when needed
    shots: list[int]
    episodes: int
    seed: int
    finetune_baseline: bool


def dataset_folder(config: ExperimentConfig, name: str | None = None) -> Path:
    root = Path(config.data.root).expanduser() if config.data.root else default_data_root()
    return root / (name or config.detection.folder)


def load_detection_split(config: ExperimentConfig, split: str) -> DetectionSplit:
    """``split`` of the dataset folder; the train split also gathers the extra train folders."""
    folders = [(dataset_folder(config), split)]
    if split == config.data.train_split:
        for entry in config.detection.extra_train_folders:
            name, _, own_split = entry.partition(":")
            folders.append((dataset_folder(config, name), own_split or split))
    return merge_splits([_load_folder(config.detection.format, folder, name) for folder, name in folders])


def _load_folder(format: str, folder: Path, split: str) -> DetectionSplit:
    if format == "voc":
        return load_voc_detection(folder, split)
    return load_coco_detection(folder / f"{split}.json", folder / "images", f"{folder.name} {split} ({folder})")


def base_novel_classes(config: ExperimentConfig) -> BaseNovelClasses:
    d = config.detection
    if d.base_classes:
        return BaseNovelClasses(tuple(d.base_classes), tuple(d.novel_classes or ()))
    if not d.classes_file:
        raise UserError("detection: give base_classes (and novel_classes) or a classes_file")
    path = Path(d.classes_file).expanduser()
    return BaseNovelClasses.from_file(path if path.is_absolute() else dataset_folder(config) / path)


class RepMetDetector(Method):
    evaluation = "detection"
    name = "repmet_detection"
    trainer = "detection"
    task = "detection"
    section = "detection"
    section_class = DetectionConfig
    evaluation_settings = ("shots", "episodes", "finetune_baseline")

    def check_config(self, config: ExperimentConfig, source: str) -> None:
        d = config.detection
        if d.max_size < d.min_size:
            raise UserError(f"{source}: detection.max_size ({d.max_size}) is smaller than detection.min_size "
                            f"({d.min_size})")
        if config.model.name not in DETECTION_BACKBONES:
            raise UserError(f"{source}: the detector's backbone (model.name) is one of "
                            f"{', '.join(DETECTION_BACKBONES.names())}, not {config.model.name!r}")
        if d.region_backbone not in REGION_BACKBONES:
            raise UserError(f"{source}: detection.region_backbone is one of {', '.join(REGION_BACKBONES.names())}, "
                            f"not {d.region_backbone!r}")
        if config.loss.distance != "sqeuclidean":
            raise UserError(f"{source}: the detector's regions are unit vectors compared by squared Euclidean "
                            f"distance; loss.distance must be sqeuclidean, not {config.loss.distance!r}")
        backbone = DETECTION_BACKBONES.get(config.model.name)
        if d.trainable_blocks > backbone.max_trainable_blocks:
            raise UserError(f"{source}: detection.trainable_blocks counts {backbone.blocks} for this backbone "
                            f"(0-{backbone.max_trainable_blocks}), got {d.trainable_blocks}")

    def size(self, config: ExperimentConfig) -> DetectorSize:
        d = config.detection
        return DetectorSize(min_size=d.min_size, max_size=d.max_size, rois_per_image=d.rois_per_image,
                            box_head_dim=d.box_head_dim, regions_per_image=d.regions_per_image,
                            region_nms=d.region_nms, crop_size=d.crop_size, background_reps=d.background_reps,
                            score_threshold=d.score_threshold, objectness_power=d.objectness_power)

    def build_model(self, config: ExperimentConfig, class_names: list[str], pretrained: bool = True) -> nn.Module:
        d, m = config.detection, config.model
        backbone = DETECTION_BACKBONES.get(m.name).build(m, pretrained, d.trainable_blocks, d.fpn_channels)
        region = REGION_BACKBONES.get(d.region_backbone)
        region_backbone = region.build(pretrained)
        mean, std = input_normalization(m.name)
        region_mean, region_std = input_normalization(region.model)
        return build_repmet_faster_rcnn(backbone, region_backbone, len(class_names), d.reps_per_class, d.sigma, mean,
                                        std, region_mean, region_std, self.size(config))

    def base_training_set(self, config: ExperimentConfig) -> tuple[list[BaseTrainingImage], list[str]]:
        """The training split as base training sees it (novel and difficult boxes as ignore
        regions), and the base class names in label order."""
        classes = base_novel_classes(config)
        train = load_detection_split(config, config.data.train_split)
        classes.check_against(train, f"detection classes of {config.name}")
        if train.repairs:
            print(f"note: {train.repairs}")
        return base_training_images(train, classes), list(classes.base)

    def after_training(self, config: ExperimentConfig, model: nn.Module, training_set: list[BaseTrainingImage],
                       device, progress: bool) -> None:
        from repmet.methods.detector_gallery_fit import fit_region_gallery

        d = config.detection
        fit_region_gallery(model, training_set, len(base_novel_classes(config).base), d.fit_boxes_per_class,
                           d.fit_background_images, config.seed, device, progress)

    def batching(self, config: ExperimentConfig) -> tuple[int, bool]:
        """``(images per batch, random horizontal flips)``."""
        return config.detection.images_per_batch, config.detection.hflip

    def embedding_net(self, config: ExperimentConfig, model: nn.Module):
        raise UserError("a detector has no single image-embedding network: metric-export writes its detection and "
                        "box-embedding graphs (repmet.export.detector_artifact)")

    def gallery(self, config: ExperimentConfig, model: nn.Module) -> TrainedGallery:
        gallery = model.region_gallery
        return TrainedGallery(gallery.gallery().detach().clone(), gallery.sigma, "sqeuclidean", normalized=True)

    def preprocess(self, config: ExperimentConfig) -> DetectorPreprocess:
        mean, std = input_normalization(config.model.name)
        return DetectorPreprocess(config.detection.min_size, config.detection.max_size, mean, std)

    def parse_preprocess(self, data: dict) -> DetectorPreprocess:
        return DetectorPreprocess.from_dict(data)

    def evaluation_plan(self, config: ExperimentConfig, request) -> "DetectorEvaluationPlan":
        """What the detector's evaluation (repmet.evaluate.detection) reads from this method's
        section, with metric-eval's overrides (``request``: a repmet.methods.EvalRequest)."""
        d, split = config.detection, request.split or config.data.test_split
        return DetectorEvaluationPlan(load_detection_split(config, split), split, base_novel_classes(config),
                                      lambda: load_detection_split(config, config.data.train_split),
                                      [request.shot] if request.shot else list(d.shots), request.episodes or d.episodes,
                                      config.eval.seed if request.seed is None else request.seed, d.finetune_baseline)

    def summary(self, config: ExperimentConfig, result: dict[str, Any]) -> list[str]:
        lines = [f"{config.name} on {result['split']} ({result['images']} images): base AP50 "
                 f"{_percent(result['base_ap50'])} over {len(result['base_per_class_ap50'])} base classes "
                 f"(trained representatives)"]
        for few in result["fewshot"]:
            lines.append(f"  {few['shot']}-shot, {few['episodes']} episodes: RepMet enrollment: novel AP50 "
                         f"{_percent(few['novel_ap50'])} +- {100 * few['novel_ap50_ci95']:.2f}, base AP50 "
                         f"{_percent(few['base_ap50'])}")
            tuned = few.get("finetuned_linear_baseline")
            if tuned:
                lines.append(f"  {' ' * len(str(few['shot']))}        fine-tuned linear classifier (TFA): novel AP50 "
                             f"{_percent(tuned['novel_ap50'])} +- {100 * tuned['novel_ap50_ci95']:.2f}, base AP50 "
                             f"{_percent(tuned['base_ap50'])}")
        return lines

    def verification_images(self, config: ExperimentConfig, root: str | None, count: int):
        raise UserError("a detector's export is verified on its test split's boxed images "
                        "(repmet.export.detector_artifact), not on classifier inputs")


def _percent(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f} %"


register_method(RepMetDetector())
