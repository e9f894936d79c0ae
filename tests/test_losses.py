import pytest
import torch
from torch import nn

from kit.losses import FlatBCEWithLogits, FlatCrossEntropy, FlatMSE, activation_for, loss_for, reference_bce_with_logits


def test_reference_bce_equals_torch_on_random_data():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        logits = torch.randn(257, 3, generator=g, dtype=torch.float64) * 5
        targets = (torch.rand(257, 3, generator=g) < 0.4).double()
        ours = reference_bce_with_logits(logits, targets)
        ref = nn.BCEWithLogitsLoss()(logits, targets)
        assert abs(ours.item() - ref.item()) < 1e-6


def test_reference_bce_float32_matches_within_1e6():
    logits = torch.randn(1000) * 3
    targets = (torch.rand(1000) < 0.5).float()
    assert abs(reference_bce_with_logits(logits, targets) - nn.BCEWithLogitsLoss()(logits, targets)) < 1e-6


@pytest.mark.parametrize("x", [100.0, -100.0])
@pytest.mark.parametrize("t", [0.0, 1.0])
def test_reference_bce_finite_at_extreme_logits(x, t):
    logits = torch.full((4,), x)
    targets = torch.full((4,), t)
    loss = reference_bce_with_logits(logits, targets)
    assert torch.isfinite(loss)
    assert abs(loss.item() - nn.BCEWithLogitsLoss()(logits, targets).item()) < 1e-6
    # the seeds' naive form is what this replaces: it overflows here
    naive = -torch.log(torch.where(targets == 1, torch.sigmoid(logits), 1 - torch.sigmoid(logits))).mean()
    wrong = (x > 0) != (t == 1)
    assert torch.isinf(naive) == wrong


def test_loss_follows_task():
    assert isinstance(loss_for("binary"), FlatBCEWithLogits)
    assert isinstance(loss_for("multilabel"), FlatBCEWithLogits)
    assert isinstance(loss_for("multiclass"), FlatCrossEntropy)
    assert isinstance(loss_for("regression"), FlatMSE)


def test_flat_losses_match_torch():
    logits = torch.randn(10, 1)
    y = (torch.rand(10) < 0.5).float()
    assert torch.allclose(loss_for("binary")(logits, y), nn.BCEWithLogitsLoss()(logits[:, 0], y))
    ml = torch.randn(10, 4)
    yl = (torch.rand(10, 4) < 0.5).float()
    assert torch.allclose(loss_for("multilabel")(ml, yl), nn.BCEWithLogitsLoss()(ml, yl))
    yc = torch.randint(0, 4, (10,))
    assert torch.allclose(loss_for("multiclass")(ml, yc), nn.CrossEntropyLoss()(ml, yc))
    yr = torch.randn(10)
    assert torch.allclose(loss_for("regression")(logits, yr), nn.MSELoss()(logits[:, 0], yr))


def test_activation_shapes():
    out = torch.randn(5, 1)
    assert activation_for("binary", out).shape == (5,)
    assert torch.allclose(activation_for("multiclass", torch.randn(5, 3)).sum(1), torch.ones(5))
    assert activation_for("multilabel", torch.randn(5, 1)).shape == (5, 1)
