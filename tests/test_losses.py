import numpy as np
import pytest
import torch
from torch import nn

from kit import tasks
from kit.losses import reference_bce_with_logits


def test_reference_bce_equals_torch_and_fastai_on_random_data():
    from fastai.losses import BCEWithLogitsLossFlat

    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        logits = torch.randn(257, 3, generator=g, dtype=torch.float64) * 5
        targets = (torch.rand(257, 3, generator=g) < 0.4).double()
        ours = reference_bce_with_logits(logits, targets)
        assert abs(ours.item() - nn.BCEWithLogitsLoss()(logits, targets).item()) < 1e-6
        assert abs(ours.item() - float(BCEWithLogitsLossFlat()(logits, targets))) < 1e-6


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


def test_the_loss_follows_the_task_and_is_fastais():
    from fastai.losses import BaseLoss

    expected = {"binary": nn.BCEWithLogitsLoss, "multilabel": nn.BCEWithLogitsLoss,
                "multiclass": nn.CrossEntropyLoss, "regression": nn.MSELoss}
    for name, torch_loss in expected.items():
        loss = tasks.get(name).loss()
        assert isinstance(loss, BaseLoss) and isinstance(loss.func, torch_loss), name


def test_task_losses_match_torch_on_model_shaped_outputs():
    logits = torch.randn(10, 1)
    y = (torch.rand(10) < 0.5).float()
    assert torch.allclose(tasks.get("binary").loss()(logits, y), nn.BCEWithLogitsLoss()(logits[:, 0], y))
    ml = torch.randn(10, 4)
    yl = (torch.rand(10, 4) < 0.5).float()
    assert torch.allclose(tasks.get("multilabel").loss()(ml, yl), nn.BCEWithLogitsLoss()(ml, yl))
    yc = torch.randint(0, 4, (10,))
    assert torch.allclose(tasks.get("multiclass").loss()(ml, yc), nn.CrossEntropyLoss()(ml, yc))
    yr = torch.randn(10)
    assert torch.allclose(tasks.get("regression").loss()(logits, yr), nn.MSELoss()(logits[:, 0], yr))


def test_activation_is_the_losss_and_shapes_follow_the_task():
    out = torch.randn(5, 1)
    b = tasks.get("binary")
    probs = b.outputs_to_probs(b.loss().activation(out).numpy())
    assert probs.shape == (5,) and np.allclose(probs, torch.sigmoid(out[:, 0]).numpy())
    m = tasks.get("multiclass")
    assert np.allclose(m.outputs_to_probs(m.loss().activation(torch.randn(5, 3)).numpy()).sum(1), 1.0, atol=1e-6)
    ml = tasks.get("multilabel")
    assert ml.outputs_to_probs(ml.loss().activation(torch.randn(5, 1)).numpy()).shape == (5, 1)
    # fastai's decodes agree with the task's untuned decoding
    p = [[0.1, 0.7, 0.2]]
    assert (m.loss().decodes(torch.tensor(p)).numpy() == m.decode_default(np.array(p))).all()
