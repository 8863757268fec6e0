"""The RepMet box head against a naive per-RoI loop: posteriors with background, the
cross-entropy torchvision applies to them, and the margin loss."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from repmet.losses.repmet import margin_loss
from repmet.models.detection import RepMetBoxPredictor


def naive_scores(embeddings: np.ndarray, reps: np.ndarray, sigma: float) -> np.ndarray:
    """Per RoI: P(c) = max_k exp(-|e - r_ck|^2 / (2 sigma^2)); background 1 - max_c P(c);
    the row [background, P(1), ..., P(C)] normalised."""
    rows = []
    for e in embeddings:
        p = [max(math.exp(-float(((e - r) ** 2).sum()) / (2 * sigma * sigma)) for r in reps_c) for reps_c in reps]
        row = [max(1.0 - max(p), 1e-6), *p]
        rows.append([v / sum(row) for v in row])
    return np.array(rows)


@pytest.mark.parametrize("classes, k, sigma", [(3, 1, 0.5), (5, 2, 0.8)])
def test_the_box_head_scores_rois_as_the_repmet_paper_defines(classes, k, sigma):
    torch.manual_seed(0)
    head = RepMetBoxPredictor(in_features=12, hidden_dim=16, embedding_dim=8, num_classes=classes, reps_per_class=k,
                              sigma=sigma)
    reps = F.normalize(torch.randn(classes, k, 8), dim=2)
    head.set_representatives(reps)
    features = torch.randn(7, 12)
    with torch.no_grad():
        logits, deltas, distances = head.predict(features)
        embeddings = head.embedding(features).numpy()
    expected = naive_scores(embeddings, reps.numpy(), sigma)
    np.testing.assert_allclose(torch.softmax(logits, 1).numpy(), expected, rtol=1e-4, atol=1e-6)
    assert logits.shape == (7, classes + 1) and deltas.shape == (7, 4 * (classes + 1))
    assert torch.equal(deltas[:, :4], deltas[:, 4:8])  # one class-agnostic box per RoI

    labels = torch.tensor([0, 1, 2, 0, 1, 2, 1]) % (classes + 1)
    naive_ce = np.mean([-math.log(expected[i, int(labels[i])]) for i in range(7)])
    assert F.cross_entropy(logits, labels).item() == pytest.approx(naive_ce, rel=1e-4)

    foreground = labels > 0
    own = labels[foreground] - 1
    margins = margin_loss(distances[foreground], own, alpha=0.3).numpy()
    for m, (e, c) in zip(margins, zip(embeddings[foreground.numpy()], own.tolist())):
        d = [min(float(((e - r) ** 2).sum()) for r in reps_c) for reps_c in reps.numpy()]
        assert m == pytest.approx(max(d[c] - min(d[j] for j in range(classes) if j != c) + 0.3, 0.0), abs=1e-5)


def test_background_stays_finite_on_a_representative_and_enrolment_extends_the_classes():
    torch.manual_seed(1)
    head = RepMetBoxPredictor(12, 16, 8, num_classes=2, reps_per_class=1, sigma=0.5)
    features = torch.randn(3, 12)
    with torch.no_grad():
        on_rep = head.embedding(features[:1])
        head.set_representatives(torch.cat([on_rep[None], F.normalize(torch.randn(2, 1, 8), dim=2)]))
        logits, _ = head(features)
    assert head.num_classes == 3 and torch.isfinite(logits).all()
    assert logits[0, 0].item() == pytest.approx(math.log(1e-6), rel=1e-3)  # no background on a representative
    with pytest.raises(ValueError, match="do not fit K = 1"):
        head.set_representatives(torch.zeros(2, 3, 8))
