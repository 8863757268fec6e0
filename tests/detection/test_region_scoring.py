"""The detector's region classification against naive per-region reference code: RepMet's
posterior over background and classes times objectness, the crops the region embedder takes, and
the fixed-shape selection and NMS against torchvision's eager ops."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torchvision.ops import batched_nms, nms

from repmet.models import create_model, input_normalization
from repmet.models.detection import RegionEmbedder
from repmet.models.detection.region_scoring import INVALID, class_scores, detections, select_regions


def naive_scores(embeddings, objectness, reps, background, sigma, power=1.0):
    """Per region: P(c) = max_k exp(-|e - r_ck|^2 / (2 sigma^2)), the same for background from its
    representatives; [background, P(1), ..., P(C)] normalised; classes times objectness^power."""
    rows = []
    for e, o in zip(embeddings, objectness):
        def best(group):
            return max(math.exp(-float(((e - r) ** 2).sum()) / (2 * sigma * sigma)) for r in group)
        row = [best(background), *[best(reps_c) for reps_c in reps]]
        rows.append([o ** power * v / sum(row) for v in row[1:]])
    return np.array(rows)


@pytest.mark.parametrize("classes, k, sigma, power", [(3, 1, 0.5, 1.0), (5, 2, 0.3, 1.0), (4, 2, 0.3, 0.5),
                                                       (3, 1, 0.5, 0.0)])
def test_region_scores_are_objectness_times_repmets_posterior_with_background(classes, k, sigma, power):
    generator = torch.Generator().manual_seed(0)
    embeddings = F.normalize(torch.randn(9, 16, generator=generator), dim=1)
    reps = F.normalize(torch.randn(classes, k, 16, generator=generator), dim=2)
    background = F.normalize(torch.randn(4, 16, generator=generator), dim=1)
    objectness = torch.rand(9, generator=generator)
    ours = class_scores(embeddings, objectness, reps, background, sigma, power).numpy()
    expected = naive_scores(embeddings.numpy(), objectness.numpy(), reps.numpy(), background.numpy(), sigma, power)
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-7)
    # a region on a class's representative, far from background, belongs to that class
    on_rep = class_scores(reps[1, :1], torch.ones(1), reps, -reps[1, :1], 0.3)
    assert on_rep.argmax().item() == 1 and on_rep[0, 1] > 0.9


@pytest.mark.parametrize("power", [1.0, 0.5, 0.0])
def test_padding_regions_score_nothing(power):
    reps = F.normalize(torch.randn(2, 1, 8), dim=2)
    scores = class_scores(reps[:, 0], torch.tensor([0.9, INVALID]), reps, F.normalize(torch.randn(3, 8), dim=1), 0.5,
                          power)
    assert scores[1].abs().max() == 0 and scores[0].max() > 0


def random_boxes(n, generator, size=200.0):
    xy = torch.rand(n, 2, generator=generator) * size * 0.8
    wh = 8 + torch.rand(n, 2, generator=generator) * size * 0.4
    return torch.cat([xy, xy + wh], dim=1)


def test_region_selection_is_class_agnostic_nms_then_the_most_object_like():
    generator = torch.Generator().manual_seed(1)
    boxes = random_boxes(60, generator)
    objectness = torch.rand(60, generator=generator)
    valid = torch.rand(60, generator=generator) > 0.2
    chosen, scores = select_regions(boxes, objectness, valid, 10, 0.7)
    keep = torch.nonzero(valid).flatten()
    naive = keep[nms(boxes[keep], objectness[keep], 0.7)][:10]
    real = scores > INVALID
    assert torch.equal(chosen[real], boxes[naive]) and torch.allclose(scores[real], objectness[naive])
    assert chosen.shape == (10, 4)


def test_detections_are_per_class_nms_of_the_scored_regions():
    generator = torch.Generator().manual_seed(2)
    boxes = random_boxes(40, generator)
    scores = torch.rand(40, 3, generator=generator) ** 3
    valid = torch.ones(40, dtype=torch.bool)
    found_boxes, found_scores, labels, count = detections(boxes, scores, valid, 0.05, 0.5, 25, 2000)
    n = int(count)
    r, c = torch.nonzero(scores > 0.05, as_tuple=True)
    keep = batched_nms(boxes[r], scores[r, c], c, 0.5)[:25]
    assert n == len(keep)
    np.testing.assert_allclose(found_scores[:n].numpy(), scores[r, c][keep].numpy(), rtol=1e-6)
    assert torch.equal(labels[:n], c[keep] + 1) and torch.equal(found_boxes[:n], boxes[r][keep])
    assert (labels[n:] == 0).all() and (found_scores[n:] == 0).all()


def test_the_region_embedder_crops_each_box_and_embeds_it_as_the_backbone_expects(data_root):
    """Against a naive crop: each box cut from the [0, 1] picture by torchvision's RoIAlign on its
    own, normalised as the Lite weights expect, through the backbone, L2-normalised."""
    torch.manual_seed(0)
    backbone = create_model("efficientnet_lite0", pretrained=True).eval()
    detector_mean, detector_std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # what the detector's input may use
    lite_mean, lite_std = input_normalization("efficientnet_lite0")
    embedder = RegionEmbedder(backbone, 64, 2, detector_mean, detector_std, lite_mean, lite_std)
    from repmet.imaging import open_rgb
    import torchvision.transforms.functional as TF

    path = sorted((data_root / "fsod-mini" / "JPEGImages").glob("*.jpg"))[0]
    picture = TF.to_tensor(open_rgb(path))
    boxes = torch.tensor([[10.0, 20.0, 120.0, 90.0], [0.0, 0.0, 40.0, 200.0], [50.5, 60.25, 51.5, 70.0]])
    with torch.no_grad():
        ours = embedder(TF.normalize(picture, detector_mean, detector_std)[None], boxes)
        rows = []
        for box in boxes:
            crop = torchvision.ops.roi_align(picture[None], [box[None]], 64, 1.0, 2, aligned=True)
            rows.append(F.normalize(backbone(TF.normalize(crop, lite_mean, lite_std)), dim=1))
    np.testing.assert_allclose(ours.numpy(), torch.cat(rows).numpy(), atol=2e-5)
    assert all(not p.requires_grad for p in embedder.parameters())


def test_region_recall_counts_the_boxes_a_region_covers_in_the_images_own_pixels():
    from pathlib import Path

    from repmet.annotations import BoxedImage, DetectionSplit
    from repmet.evaluate.region_detections import region_recall
    from repmet.methods.detector_regions import CachedRegions

    # the regions live in a half-size resized image; the boxes in the original pixels
    image = BoxedImage(Path("a.jpg"), 200, 100, np.array([[0, 0, 40, 40], [100, 50, 180, 90], [10, 60, 30, 80]],
                                                         np.float32), np.array([0, 0, 1]), np.array([False, False, True]))
    split = DetectionSplit([image], ["cat", "dog"], "one image")
    regions = CachedRegions(torch.tensor([[0.0, 0.0, 20.0, 20.0], [50.0, 25.0, 60.0, 45.0], [5.0, 30.0, 15.0, 40.0]]),
                            torch.tensor([0.9, 0.8, INVALID]), torch.zeros(3, 4), (50, 100), (100, 200))
    assert region_recall([regions], split, [0]) == pytest.approx(0.5)  # the second box is half covered: IoU 0.25
    assert region_recall([regions], split, [1]) == 0.0  # difficult boxes do not count, and padding finds nothing


def test_the_stage_region_backbone_pools_the_last_three_stages_and_the_head_each_at_unit_length(data_root):
    """Against the plain Lite0 run once with forward hooks: the spatial means of blocks 10, 14 and
    15 and of the 1x1 head's ReLU6 output, each divided by its own length, side by side; and the
    detector built from the region_backbone name embeds with it (1904-d unit vectors)."""
    from repmet.imaging import open_rgb
    import torchvision.transforms.functional as TF
    from repmet.models.detection.backbones import REGION_BACKBONES

    lite = create_model("efficientnet_lite0", pretrained=True).eval()
    stages = REGION_BACKBONES.get("efficientnet_lite0_stages").build(True).eval()
    assert stages.feature_dim == 112 + 192 + 320 + 1280
    seen = {}
    for index in (10, 14, 15):
        lite._blocks[index].register_forward_hook(lambda m, i, out, index=index: seen.__setitem__(index, out))
    path = sorted((data_root / "indoor85-voc" / "JPEGImages").glob("*.jpg"))[0]
    lite_mean, lite_std = input_normalization("efficientnet_lite0")
    images = TF.normalize(TF.resize(TF.to_tensor(open_rgb(path)), [96, 128]), lite_mean, lite_std)[None]
    images = torch.cat([images, images.flip(-1)])
    with torch.no_grad():
        ours = stages(images)
        head = lite(images)  # the plain pooled head, which also fills `seen`
    naive = []
    for row in range(len(images)):
        parts = [seen[index][row].mean(dim=(1, 2)) for index in (10, 14, 15)] + [head[row]]
        naive.append(torch.cat([part / part.norm() for part in parts]))
    np.testing.assert_allclose(ours.numpy(), torch.stack(naive).numpy(), atol=2e-5)
    assert not np.allclose(ours[0].numpy(), ours[1].numpy(), atol=1e-3)  # the mirrored image differs
    embedder = RegionEmbedder(stages, 64, 2, lite_mean, lite_std, lite_mean, lite_std)
    with torch.no_grad():
        unit = embedder(images[:1], torch.tensor([[0.0, 0.0, 60.0, 50.0], [30.0, 10.0, 120.0, 90.0]]))
    assert unit.shape == (2, 1904)
    np.testing.assert_allclose(unit.norm(dim=1).numpy(), 1.0, atol=1e-5)
