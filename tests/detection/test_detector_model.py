"""The few-shot detector composed from torchvision's parts: one real training step on fsod-mini
images, ignore regions (novel boxes) kept out of the RPN's and the RoI heads' samples, and
detections in the image's own pixels."""

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from repmet.data.detection import BaseNovelClasses, base_training_images, load_voc_detection
from repmet.models import create_model, input_normalization
from repmet.models.detection import DetectorSize, Lite0FPN, build_repmet_faster_rcnn

SMALL = DetectorSize(min_size=256, max_size=320, rpn_pre_nms_train=300, rpn_post_nms_train=100,
                     rpn_pre_nms_test=200, rpn_post_nms_test=50, rois_per_image=32, box_head_dim=128,
                     regions_per_image=12, crop_size=64, background_reps=4, score_threshold=0.0)


@pytest.fixture(scope="module")
def fsod_base_images(data_root):
    root = data_root / "fsod-mini"
    return base_training_images(load_voc_detection(root, "train"), BaseNovelClasses.from_file(root / "classes.txt"))


def detector(trainable_blocks=2):
    torch.manual_seed(0)
    backbone = Lite0FPN(create_model("efficientnet_lite0", pretrained=True), 64, trainable_blocks=trainable_blocks)
    lite = input_normalization("efficientnet_lite0")
    model = build_repmet_faster_rcnn(backbone, create_model("efficientnet_lite0", pretrained=True), num_classes=8,
                                     reps_per_class=2, sigma=0.5, mean=lite[0], std=lite[1], region_mean=lite[0],
                                     region_std=lite[1], size=SMALL)
    generator = torch.Generator().manual_seed(0)  # a gallery, as base training's fit leaves one
    model.region_gallery.set_representatives(torch.nn.functional.normalize(torch.randn(8, 2, 1280, generator=generator), dim=2))
    model.region_gallery.set_background(torch.nn.functional.normalize(torch.randn(4, 1280, generator=generator), dim=1))
    return model


def as_inputs(images):
    pictures = [TF.to_tensor(Image.open(i.path).convert("RGB")) for i in images]
    targets = [{"boxes": torch.from_numpy(np.concatenate([i.boxes, i.ignore])),
                "labels": torch.from_numpy(np.concatenate([i.labels + 1, -np.ones(len(i.ignore), np.int64)]))}
               for i in images]
    return pictures, targets


def test_one_training_step_on_real_images_trains_what_it_should_and_nothing_else(fsod_base_images):
    model = detector(trainable_blocks=2)
    mixed = next(i for i in fsod_base_images if len(i.ignore))
    pictures, targets = as_inputs([mixed, fsod_base_images[0]])
    frozen_block = model.backbone.body._blocks[0]
    stats_before = frozen_block._bn1.running_mean.clone()
    model.train()
    losses = model(pictures, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    predictor = model.roi_heads.box_predictor
    for trained in (predictor.cls_score.weight, predictor.bbox_pred.weight,
                    model.roi_heads.box_head.fc6.weight, model.rpn.head.conv[0][0].weight,
                    model.backbone.body._blocks[-1]._project_conv.weight):
        assert trained.grad is not None and trained.grad.abs().sum() > 0
    assert all(p.grad is None for p in frozen_block.parameters())
    assert all(p.grad is None for p in model.region_embedder.parameters())  # the frozen ImageNet classifier
    assert not model.region_embedder.backbone.training
    assert torch.equal(frozen_block._bn1.running_mean, stats_before)  # frozen BatchNorm stays in eval mode


def test_the_box_head_learns_one_class_object_from_every_base_class(fsod_base_images):
    model = detector()
    image = next(i for i in fsod_base_images if len(set(i.labels.tolist())) > 1)
    target = {"boxes": torch.from_numpy(image.boxes), "labels": torch.from_numpy(image.labels + 1)}
    model.train()
    torch.manual_seed(0)
    _, _, labels, _ = model.roi_heads.select_training_samples([torch.from_numpy(image.boxes).repeat(3, 1)], [
        {**target, "labels": torch.ones_like(target["labels"])}])
    assert set(labels[0].tolist()) == {1}
    pictures, targets = as_inputs([image])
    losses = model(pictures, targets)  # labels 1..8 in, two classes (background, object) trained
    assert model.roi_heads.box_predictor.cls_score.out_features == 2 and torch.isfinite(losses["loss_classifier"])


def test_novel_boxes_are_neither_objects_nor_background(fsod_base_images):
    model = detector()
    image = next(i for i in fsod_base_images if len(i.ignore))
    base, ignore = torch.from_numpy(image.boxes[:1]), torch.from_numpy(image.ignore[:1])
    target = {"boxes": torch.cat([base, ignore]), "labels": torch.tensor([1, -1])}
    far = torch.tensor([[0.0, 0.0, 4.0, 4.0]])
    # RPN: an anchor on a novel box is discarded, one on a base box is positive, a far one negative
    anchors = [torch.cat([ignore, base, far])]
    labels, _ = model.rpn.assign_targets_to_anchors(anchors, [target])
    assert labels[0].tolist() == [-1.0, 1.0, 0.0]
    # RoI heads: proposals on a novel box are never sampled, whatever the draw
    model.train()
    proposals = [torch.cat([ignore.repeat(20, 1), base.repeat(5, 1), far])]
    for seed in range(5):
        torch.manual_seed(seed)
        sampled, _, sampled_labels, _ = model.roi_heads.select_training_samples([proposals[0].clone()], [target])
        assert (sampled_labels[0] >= 0).all()
        on_ignore = torch.tensor([(box == g).all().item() for box in sampled[0] for g in target["boxes"][target["labels"] < 0]])
        assert not on_ignore.any()
        assert (sampled_labels[0] > 0).any()


def test_detections_come_back_in_the_images_own_pixels(fsod_base_images):
    model = detector()  # score_threshold 0: an untrained head scores low; the geometry is what is checked
    image = fsod_base_images[0]
    pictures, _ = as_inputs([image])
    model.eval()
    with torch.no_grad():
        (result,) = model(pictures)
    boxes = result["boxes"]
    assert len(boxes) > 0 and boxes.shape[1] == 4
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= image.width).all() and (boxes[:, 3] <= image.height).all()
    assert result["labels"].min() >= 1 and result["labels"].max() <= model.region_gallery.num_classes
    assert ((result["scores"] >= 0) & (result["scores"] <= 1)).all()


def test_the_gpu_configs_resnet50_fpn_detector_builds_and_detects(fsod_base_images):
    """ResNet-50-FPN (untrained weights here; torchvision's weights API on a connected machine)."""
    from repmet.methods.config_loading import load_config
    from repmet.methods import get_method

    config = load_config("configs/repmet_detection_fsod_lite0_cpu.yaml", [
        "model.name=resnet50", "model.pretrained=false", "detection.trainable_blocks=3", "detection.min_size=128",
        "detection.max_size=160"])
    model = get_method(config.method).build_model(config, ["a", "b"])
    trainable = {name.split(".")[0] for name, p in model.backbone.body.named_parameters() if p.requires_grad}
    assert trainable == {"layer2", "layer3", "layer4"}
    assert model.transform.image_mean == [0.485, 0.456, 0.406]  # ResNet's ImageNet normalisation, not Lite's
    dim = model.region_embedder.backbone.feature_dim
    model.region_gallery.set_representatives(torch.nn.functional.normalize(torch.randn(2, 5, dim), dim=2))
    model.region_gallery.set_background(torch.nn.functional.normalize(torch.randn(32, dim), dim=1))
    pictures, _ = as_inputs(fsod_base_images[:1])
    model.eval()
    with torch.no_grad():
        (result,) = model(pictures)
    assert result["boxes"].shape[1] == 4 and result["labels"].max() <= 2
