import math

import pytest
import torch

from repmet.models.representatives import RepresentativesHead
from repmet.losses.magnet import MagnetLoss
from repmet.losses.repmet_loss import RepMetLoss


def naive_repmet(embeddings, labels, reps, num_classes, k, sigma, alpha, ce_weight, margin_weight):
    """Per-sample loop: squared distances to every representative, best per class,
    p = exp(-d / 2 sigma^2) normalised over classes, CE + margin."""
    total, correct = 0.0, 0
    for e, y in zip(embeddings, labels.tolist()):
        best = []
        for c in range(num_classes):
            best.append(min(float(((e - reps[c * k + j]) ** 2).sum()) for j in range(k)))
        scores = [math.exp(-b / (2 * sigma**2)) for b in best]
        ce = -math.log(scores[y] / sum(scores))
        margin = max(0.0, best[y] - min(b for c, b in enumerate(best) if c != y) + alpha)
        total += ce_weight * ce + margin_weight * margin
        correct += int(max(range(num_classes), key=lambda c: scores[c]) == y)
    return total / len(labels), correct / len(labels)


@pytest.mark.parametrize("k,ce_weight,margin_weight", [(1, 1.0, 1.0), (3, 1.0, 1.0), (2, 0.0, 1.0), (2, 1.0, 0.0)])
def test_repmet_loss_matches_a_per_sample_loop(k, ce_weight, margin_weight):
    torch.manual_seed(k)
    num_classes, dim = 5, 6
    head = RepresentativesHead(num_classes, k, dim).double()
    with torch.no_grad():
        head.representatives.normal_()
    embeddings = torch.randn(17, dim, dtype=torch.float64)
    labels = torch.randint(num_classes, (17,))
    loss = RepMetLoss(sigma=0.7, alpha=0.3, ce_weight=ce_weight, margin_weight=margin_weight)
    result = loss(head(embeddings), labels)
    expected_loss, expected_acc = naive_repmet(embeddings, labels, head.representatives.detach(), num_classes, k,
                                               0.7, 0.3, ce_weight, margin_weight)
    assert result.loss.item() == pytest.approx(expected_loss, rel=1e-10)
    assert result.accuracy.item() == pytest.approx(expected_acc)


def test_repmet_margin_is_zero_when_own_class_is_closer_by_more_than_alpha():
    distances = torch.tensor([[[0.1], [2.0], [3.0]]])
    result = RepMetLoss(sigma=10.0, alpha=1.0, ce_weight=0.0)(distances, torch.tensor([0]))
    assert result.loss.item() == 0.0
    result = RepMetLoss(sigma=10.0, alpha=1.0, ce_weight=0.0)(distances, torch.tensor([1]))
    assert result.loss.item() == pytest.approx(2.0 - 0.1 + 1.0)


def naive_magnet(embeddings, cluster_ids, cluster_classes, alpha, variance_power=1, fixed_variance=None):
    """Rippel et al. (2016), eq. 4, written out: batch cluster means, the variance of all
    samples around their own mean with an N - 1 denominator, and -1/(2 sigma^2)."""
    n = len(embeddings)
    means = {}
    for m in set(cluster_ids):
        members = [embeddings[i] for i in range(n) if cluster_ids[i] == m]
        means[m] = sum(members) / len(members)
    variance = sum(float(((embeddings[i] - means[cluster_ids[i]]) ** 2).sum()) for i in range(n)) / (n - 1)
    variance = variance**variance_power  # 2 reproduces the reference code's bug
    if fixed_variance is not None:
        variance = fixed_variance
    total = 0.0
    for i in range(n):
        own = cluster_ids[i]
        numerator = math.exp(-float(((embeddings[i] - means[own]) ** 2).sum()) / (2 * variance) - alpha)
        denominator = sum(math.exp(-float(((embeddings[i] - means[m]) ** 2).sum()) / (2 * variance))
                          for m in means if cluster_classes[m] != cluster_classes[own])
        total += max(0.0, -math.log(numerator / denominator))
    return total / n, variance


def test_magnet_loss_matches_the_paper_formula_with_the_variance_not_squared_again():
    torch.manual_seed(0)
    cluster_ids = [0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 3]
    cluster_classes = [0, 0, 1, 2]  # two clusters of class 0
    embeddings = torch.randn(len(cluster_ids), 4, dtype=torch.float64) * 1.5
    embeddings += torch.tensor(cluster_classes, dtype=torch.float64)[torch.tensor(cluster_ids)][:, None]
    result = MagnetLoss(alpha=0.5)(embeddings, torch.tensor(cluster_ids), torch.tensor(cluster_classes))
    expected, _ = naive_magnet(embeddings, cluster_ids, cluster_classes, 0.5)
    assert result.loss.item() == pytest.approx(expected, rel=1e-10)
    squared_twice, _ = naive_magnet(embeddings, cluster_ids, cluster_classes, 0.5, variance_power=2)
    assert abs(result.loss.item() - squared_twice) > 1e-3  # the reference code's number is not ours


def test_magnet_loss_with_a_fixed_variance_uses_it_in_place_of_the_batch_variance():
    torch.manual_seed(1)
    cluster_ids = [0, 0, 1, 1, 1, 2, 2, 3, 3]
    cluster_classes = [0, 1, 1, 2]
    embeddings = torch.randn(len(cluster_ids), 5, dtype=torch.float64)
    ids, classes = torch.tensor(cluster_ids), torch.tensor(cluster_classes)
    result = MagnetLoss(alpha=1.0)(embeddings, ids, classes, variance=0.3)
    expected, batch_variance = naive_magnet(embeddings, cluster_ids, cluster_classes, 1.0, fixed_variance=0.3)
    assert result.loss.item() == pytest.approx(expected, rel=1e-10)
    # scaling the embeddings changes a fixed-scale loss, not the batch-variance one (scale-free)
    scaled = MagnetLoss(alpha=1.0)(embeddings * 0.1, ids, classes, variance=0.3).loss.item()
    assert abs(scaled - expected) > 1e-3
    free = MagnetLoss(alpha=1.0)(embeddings, ids, classes).loss.item()
    assert MagnetLoss(alpha=1.0)(embeddings * 0.1, ids, classes).loss.item() == pytest.approx(free, rel=1e-9)


def test_magnet_loss_gradients_flow():
    embeddings = torch.randn(8, 3, requires_grad=True)
    MagnetLoss()(embeddings, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]), torch.tensor([0, 1, 2, 3])).loss.backward()
    assert embeddings.grad.abs().sum() > 0
