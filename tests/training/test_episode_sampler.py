import numpy as np
import pytest
import torch

from repmet.data import EpisodeSampler, gather_episode
from repmet.errors import UserError


def test_episode_has_way_distinct_classes_and_disjoint_support_and_query():
    sampler = EpisodeSampler(num_classes=50, images_per_class=20, way=10, shot=5, query=15, episodes_per_epoch=30, seed=3)
    for index in range(30):
        episode = sampler.episode(epoch=0, index=index)
        assert episode.classes.shape == (10,) and len(set(episode.classes.tolist())) == 10
        assert episode.images.shape == (10, 20)
        for row in episode.images:
            support, query = set(row[:5].tolist()), set(row[5:].tolist())
            assert len(support) == 5 and len(query) == 15 and not support & query
            assert all(0 <= i < 20 for i in row)


def test_episodes_are_determined_by_seed_epoch_and_index():
    a = EpisodeSampler(100, 20, 5, 1, 5, 10, seed=7)
    b = EpisodeSampler(100, 20, 5, 1, 5, 10, seed=7)
    c = EpisodeSampler(100, 20, 5, 1, 5, 10, seed=8)
    assert np.array_equal(a.episode(2, 4).classes, b.episode(2, 4).classes)
    assert np.array_equal(a.episode(2, 4).images, b.episode(2, 4).images)
    assert not np.array_equal(a.episode(2, 4).classes, c.episode(2, 4).classes)
    assert not np.array_equal(a.episode(2, 4).classes, a.episode(3, 4).classes)


def test_classes_are_drawn_uniformly_over_many_episodes():
    sampler = EpisodeSampler(20, 20, 5, 1, 1, 2000, seed=0)
    counts = np.bincount(np.concatenate([sampler.episode(0, i).classes for i in range(2000)]), minlength=20)
    assert counts.sum() == 10000
    assert counts.min() > 400 and counts.max() < 600  # expected 500 each


def test_an_episode_larger_than_a_class_is_refused_with_the_numbers():
    with pytest.raises(UserError, match=r"shot \+ query = 5 \+ 16 = 21 .* have 20; lower shot or query"):
        EpisodeSampler(100, 20, 5, 5, 16, 10, seed=0, description="Omniglot test")
    with pytest.raises(UserError, match="a 30-way episode needs 30 classes"):
        EpisodeSampler(20, 20, 30, 1, 1, 10, seed=0)


def test_gather_episode_orders_images_class_major():
    images = torch.arange(6 * 4, dtype=torch.uint8).view(6, 4, 1, 1, 1)  # value = 4 * class + image
    sampler = EpisodeSampler(6, 4, 3, 1, 2, 1, seed=1)
    episode = sampler.episode(0, 0)
    batch = gather_episode(images, episode, torch.device("cpu"))
    expected = [4 * c + i for c, row in zip(episode.classes, episode.images) for i in row]
    assert batch.shape == (9, 1, 1, 1)
    assert (batch.flatten() * 255).round().long().tolist() == expected
