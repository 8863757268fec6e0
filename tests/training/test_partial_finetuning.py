"""Fine-tuning the top of a backbone on cached activations, seeded augmented views, and the
residual embedding head: each checked against the plain computation it stands for."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from repmet.config import TrainConfig
from repmet.data import load_labeled_split
from repmet.data.transforms import CROP_SCALE, TransformSpec, random_views, seeded_crop_box
from repmet.errors import UserError
from repmet.imaging import open_rgb
from repmet.models import PartiallyFrozenBackbone, ResidualEmbeddingHead, create_model
from repmet.train.optim import build_optimizer


@pytest.fixture(scope="module")
def flower_batch(data_root):
    images = load_labeled_split("flowers102", "train", data_root, download=False)
    transform = TransformSpec(224, 224).eval_transform()
    return torch.stack([transform(open_rgb(p)) for p in images.paths[:4]])


@pytest.mark.parametrize("name, blocks", [("efficientnet_lite0", 5), ("resnet18", 2)])
def test_split_backbone_computes_what_the_whole_backbone_computes(flower_batch, name, blocks):
    backbone = create_model(name, pretrained=name == "efficientnet_lite0").eval()
    with torch.no_grad():
        whole = backbone(flower_batch)
        split = PartiallyFrozenBackbone(backbone, blocks).eval()
        maps = split.cached_part(flower_batch)
        assert maps.dim() == 4  # an activation map, what the cache stores
        parts = split.trained_part(maps)
    torch.testing.assert_close(parts, whole, rtol=0, atol=1e-5)


def test_a_training_step_changes_the_top_blocks_only_and_keeps_bottom_batchnorm_statistics(flower_batch):
    backbone = create_model("efficientnet_lite0", pretrained=True)
    split = PartiallyFrozenBackbone(backbone, 2).train()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in split.parameters() if p.requires_grad], lr=0.1)
    split(flower_batch).pow(2).sum().backward()
    optimizer.step()
    after = backbone.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    bottom = [k for k in after if k.startswith(("_conv_stem", "_bn0")) or
              (k.startswith("_blocks.") and int(k.split(".")[1]) < 14)]
    assert not changed & set(bottom), sorted(changed & set(bottom))[:3]
    assert "_blocks.15._project_conv.weight" in changed and "_conv_head.weight" in changed
    assert "_blocks.14._bn1.running_mean" in changed  # the trained blocks' BatchNorm does learn statistics
    assert not backbone._blocks[13].training and backbone._blocks[14].training


def test_trainable_blocks_out_of_range_or_on_an_unsplittable_backbone_is_refused():
    with pytest.raises(UserError, match="model.trainable_blocks is 17; .* between 1 and 16"):
        PartiallyFrozenBackbone(create_model("efficientnet_lite0"), 17, "efficientnet_lite0")
    with pytest.raises(UserError, match="conv4 cannot be split"):
        PartiallyFrozenBackbone(create_model("conv4"), 1, "conv4")


def test_backbone_parameters_get_the_scaled_learning_rate():
    head, backbone = torch.nn.Linear(3, 2), torch.nn.Linear(2, 2)
    frozen = torch.nn.Linear(2, 2).requires_grad_(False)
    params = [*head.parameters(), *backbone.parameters(), *frozen.parameters()]
    optimizer = build_optimizer(params, TrainConfig(lr=0.01, backbone_lr_scale=0.1), backbone.parameters())
    groups = [(g["lr"], {id(p) for p in g["params"]}) for g in optimizer.param_groups]
    assert groups == [(0.01, {id(p) for p in head.parameters()}),
                      (pytest.approx(0.001), {id(p) for p in backbone.parameters()})]


def test_seeded_random_views_repeat_for_the_same_bytes_and_differ_between_views(data_root):
    path = sorted((data_root / "flowers-102" / "jpg").iterdir())[0]
    spec = TransformSpec(64, 64)
    image = open_rgb(path)
    first, second = (spec.view_transform(v) for v in random_views(2))
    a, b = first(image, "key-of-these-bytes"), first(open_rgb(path), "key-of-these-bytes")
    assert a.shape == (3, 64, 64) and torch.equal(a, b)
    assert not torch.equal(a, second(image, "key-of-these-bytes"))
    assert not torch.equal(a, first(image, "key-of-other-bytes"))
    with pytest.raises(ValueError, match="unknown view 'jitter'"):
        spec.view_transform("jitter")


def test_seeded_crop_boxes_stay_inside_the_image_with_torchvisions_area_range():
    rng = np.random.default_rng(0)
    areas = []
    for width, height in [(500, 375), (192, 300), (1000, 50)]:
        for _ in range(300):
            top, left, h, w = seeded_crop_box(width, height, rng)
            assert 0 <= top and top + h <= height and 0 <= left and left + w <= width and h > 0 and w > 0
            if (width, height) == (500, 375):
                areas.append(h * w / (width * height))
    # rounding moves an area by a pixel row at most; the bulk of the range is drawn
    assert CROP_SCALE[0] - 0.01 <= min(areas) < CROP_SCALE[0] + 0.05 and max(areas) > 0.95
    assert max(areas) <= 1.0


def test_residual_head_starts_as_the_normalised_features_and_learns_a_correction():
    torch.manual_seed(0)
    features = torch.randn(16, 40) * 5
    same = ResidualEmbeddingHead(40, 32, 40)
    torch.testing.assert_close(same(features), F.normalize(features, dim=1))
    projected = ResidualEmbeddingHead(40, 32, 400, seed=3)
    out = projected(features)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(16))
    # a fixed orthonormal map of 40 -> 400 dimensions keeps every distance
    torch.testing.assert_close(torch.cdist(out, out), torch.cdist(F.normalize(features, dim=1),
                                                                F.normalize(features, dim=1)), atol=1e-5, rtol=0)
    loss = same(features)[:, 0].sum()
    loss.backward()
    assert same.fc2.weight.grad.abs().sum() > 0  # the correction branch receives gradients from the start
