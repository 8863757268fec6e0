import numpy as np
import pytest
import torch

from repmet.data.class_balanced_sampler import ClassBalancedSampler
from repmet.data.cluster_sampler import ClusterBatchSampler
from repmet.errors import UserError
from repmet.ops.kmeans import kmeans, padded_centres


def test_kmeans_finds_three_obvious_groups():
    points = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0],  # mean (1/3, 1/3)
                           [10.0, 10.0], [10.0, 12.0],  # mean (10, 11)
                           [-10.0, 5.0], [-12.0, 5.0], [-11.0, 8.0]])  # mean (-11, 6)
    for seed in range(5):
        centers, assignment = kmeans(points, 3, seed=seed)
        groups = {tuple(sorted(np.flatnonzero(assignment.numpy() == c).tolist())) for c in range(3)}
        assert groups == {(0, 1, 2), (3, 4), (5, 6, 7)}
        expected = {(1 / 3, 1 / 3), (10.0, 11.0), (-11.0, 6.0)}
        found = {tuple(round(v, 5) for v in c) for c in centers.tolist()}
        assert found == {tuple(round(v, 5) for v in c) for c in expected}


def test_kmeans_with_k_equal_to_n_and_duplicates_keeps_every_cluster():
    points = torch.tensor([[1.0, 1.0], [1.0, 1.0], [2.0, 2.0]])
    centers, assignment = kmeans(points, 3, seed=0)
    assert sorted(torch.bincount(assignment, minlength=3).tolist()) == [1, 1, 1]
    with pytest.raises(ValueError, match="k=4 for 3 points"):
        kmeans(points, 4)


def test_padded_centres_keep_the_asked_centres_and_repeat_the_last_up_to_k():
    points = torch.tensor([[0.0, 0.0], [0.0, 1.0], [10.0, 10.0], [10.0, 12.0]])
    two = padded_centres(points, 2, 5, seed=0)
    assert two.shape == (5, 2)
    assert {tuple(round(v, 5) for v in c) for c in two[:2].tolist()} == {(0.0, 0.5), (10.0, 11.0)}
    assert torch.equal(two[2:], two[1:2].repeat(3, 1))
    one_point = padded_centres(points[:1], 3, 3)  # fewer points than centres: the point itself, repeated
    assert torch.equal(one_point, points[:1].repeat(3, 1))
    with pytest.raises(ValueError, match="between 1 and k=2"):
        padded_centres(points, 3, 2)


def test_class_balanced_batches_have_m_classes_of_d_distinct_images():
    labels = np.repeat(np.arange(10), 6)
    sampler = ClassBalancedSampler(labels, classes_per_batch=4, images_per_class=3, seed=0)
    for step in range(20):
        batch = sampler.batch(0, step)
        assert len(batch) == 12 and len(set(batch.tolist())) == 12
        classes = labels[batch].reshape(4, 3)
        assert (classes == classes[:, :1]).all() and len(set(classes[:, 0].tolist())) == 4
    assert np.array_equal(sampler.batch(1, 2), ClassBalancedSampler(labels, 4, 3, seed=0).batch(1, 2))


def test_a_class_smaller_than_d_gives_all_its_images_and_repeats_the_others_stay_distinct():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    sampler = ClassBalancedSampler(labels, 3, 3, seed=0)
    for step in range(10):
        rows = sampler.batch(0, step).reshape(3, 3)
        for row in rows:
            assert (labels[row] == labels[row[0]]).all()
            members = set(np.flatnonzero(labels == labels[row[0]]).tolist())
            assert len(set(row.tolist())) == 3 if len(members) >= 3 else set(row.tolist()) == members


def test_more_classes_per_batch_than_the_split_has_is_named():
    with pytest.raises(UserError, match=r"batch.classes \(4\) exceeds the 3 classes of the training split"):
        ClassBalancedSampler(np.array([0, 0, 1, 1, 2, 2]), 4, 2, seed=0)


def make_cluster_sampler():
    # 4 classes x 2 clusters; cluster c's center at (c, 0); cluster 7 has one member.
    sizes = [5, 5, 4, 6, 5, 5, 3, 1]
    assignment = np.repeat(np.arange(8), sizes)
    cluster_classes = np.arange(8) // 2
    centers = torch.tensor([[float(c), 0.0] for c in range(8)])
    sampler = ClusterBatchSampler(clusters_per_batch=3, samples_per_cluster=4, seed=0)
    sampler.set_clusters(assignment, cluster_classes, centers)
    return sampler, assignment, cluster_classes


def test_cluster_batches_take_the_nearest_impostor_clusters_and_d_samples_each():
    sampler, assignment, cluster_classes = make_cluster_sampler()
    for step in range(30):
        indices, owners = sampler.batch(0, step)
        assert len(indices) == 12 and (assignment[indices] == owners).all()
        clusters = list(dict.fromkeys(owners.tolist()))
        seed, impostors = clusters[0], clusters[1:]
        assert all(cluster_classes[i] != cluster_classes[seed] for i in impostors)
        others = [c for c in range(8) if cluster_classes[c] != cluster_classes[seed]]
        expected = sorted(others, key=lambda c: (abs(c - seed), c))[:2]
        assert sorted(impostors) == sorted(expected)


def test_cluster_smaller_than_d_is_sampled_with_replacement():
    sampler, assignment, _ = make_cluster_sampler()
    sampler.losses[:] = 0.0
    sampler.losses[7] = 1.0  # the one-member cluster is always the seed
    indices, owners = sampler.batch(0, 0)
    assert (owners[:4] == 7).all() and len(set(indices[:4].tolist())) == 1


def test_seed_clusters_follow_their_recent_losses():
    sampler, _, _ = make_cluster_sampler()
    sampler.record_losses(np.array([2, 2, 5]), np.array([3.0, 1.0, 0.0]))
    assert sampler.losses[2] == 2.0 and sampler.losses[5] == 0.0
    seeds = [sampler.batch(0, s)[1][0] for s in range(300)]
    counts = np.bincount(seeds, minlength=8)
    assert counts[5] == 0  # zero recent loss: never the seed
    assert counts[2] > counts[0]  # twice the loss of the others: drawn about twice as often
