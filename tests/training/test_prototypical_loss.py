import math

import pytest
import torch

from repmet.ops.distances import CosineDistance, SquaredEuclideanDistance
from repmet.losses import PrototypicalLoss


def naive_prototypical(support, query, distance):
    """Per-query loop straight from the paper: prototypes, -d as logits, NLL, argmax."""
    way = support.shape[0]
    prototypes = [support[c].mean(0) for c in range(way)]
    total_loss, correct, count = 0.0, 0, 0
    for c in range(way):
        for q in query[c]:
            if distance == "sqeuclidean":
                d = [float(((q - p) ** 2).sum()) for p in prototypes]
            else:
                d = [1.0 - float((q @ p) / (q.norm() * p.norm())) for p in prototypes]
            log_norm = math.log(sum(math.exp(-x) for x in d))
            total_loss += d[c] + log_norm
            correct += int(min(range(way), key=lambda k: d[k]) == c)
            count += 1
    return total_loss / count, correct / count


@pytest.mark.parametrize("distance", ["sqeuclidean", "cosine"])
@pytest.mark.parametrize("way,shot,n_query", [(5, 1, 1), (5, 5, 15), (3, 2, 4), (2, 1, 1)])
def test_loss_and_accuracy_match_a_per_query_loop(distance, way, shot, n_query):
    generator = torch.Generator().manual_seed(way * 100 + shot * 10 + n_query)
    support = torch.randn(way, shot, 8, generator=generator, dtype=torch.float64)
    query = torch.randn(way, n_query, 8, generator=generator, dtype=torch.float64) * 0.5 + support.mean(1, keepdim=True)
    metric = SquaredEuclideanDistance() if distance == "sqeuclidean" else CosineDistance()
    result = PrototypicalLoss(metric)(support, query)
    expected_loss, expected_acc = naive_prototypical(support, query, distance)
    assert result.loss.item() == pytest.approx(expected_loss, rel=1e-9, abs=1e-9)
    assert result.accuracy.item() == pytest.approx(expected_acc, abs=1e-12)
    assert result.log_probs.shape == (way * n_query, way)


def test_accuracy_with_one_query_is_per_class_not_squeezed():
    # One query per class that sits on the wrong prototype for class 1 only: 2 of 3 right.
    support = torch.tensor([[[0.0, 0.0]], [[10.0, 0.0]], [[0.0, 10.0]]])
    query = torch.tensor([[[0.1, 0.0]], [[0.0, 9.0]], [[0.0, 9.9]]])
    result = PrototypicalLoss()(support, query)
    assert result.accuracy.item() == pytest.approx(2 / 3)


def test_gradients_flow_to_support_and_query():
    support = torch.randn(4, 2, 6, requires_grad=True)
    query = torch.randn(4, 3, 6, requires_grad=True)
    PrototypicalLoss()(support, query).loss.backward()
    assert support.grad.abs().sum() > 0 and query.grad.abs().sum() > 0


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="disagree"):
        PrototypicalLoss()(torch.randn(5, 1, 8), torch.randn(4, 2, 8))


def test_matrix_distances_match_direct_formulas():
    a, b = torch.randn(7, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    direct = ((a[:, None] - b[None]) ** 2).sum(-1)
    torch.testing.assert_close(SquaredEuclideanDistance()(a, b), direct)
    cos = torch.nn.functional.cosine_similarity(a[:, None], b[None], dim=-1)
    torch.testing.assert_close(CosineDistance()(a, b), 1 - cos)
