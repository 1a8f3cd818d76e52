"""DreamerPro's prototype functions and modules against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from torchrl_psp.modules.prototypes import Prototypes, random_translate, translate
from torchrl_psp.objectives.prototype_losses import (
    projection_norm_loss,
    prototype_log_probs,
    sinkhorn_knopp,
    swapped_prediction_loss,
    temporal_prototype_loss,
)


def test_sinkhorn_one_iteration_by_hand():
    # exp(scores / 1) = [[e, 1], [1, 1]]; prototype (column) sums rescaled to 1/2 each,
    # then sample (row) sums to 1/2, times N = 2.
    e = math.e
    a, b = e / (2 * (e + 1)), 1 / (2 * (e + 1))  # column 0 after its rescaling
    expected = torch.tensor([[a, 0.25], [b, 0.25]])
    expected = expected / expected.sum(1, keepdim=True)
    q = sinkhorn_knopp(torch.tensor([[1.0, 0.0], [0.0, 0.0]]), epsilon=1.0, iterations=1)
    torch.testing.assert_close(q, expected)
    torch.testing.assert_close(q[0], torch.tensor([0.593845, 0.406155]), atol=1e-6, rtol=0)


def test_sinkhorn_marginals():
    torch.manual_seed(0)
    scores = (
        torch.nn.functional.normalize(torch.randn(12, 32), dim=-1)
        @ torch.nn.functional.normalize(torch.randn(5, 32), dim=-1).T
    )
    q = sinkhorn_knopp(scores, epsilon=0.0125, iterations=3)
    # every embedding's assignment sums to 1 exactly (the last rescaling is the rows')
    torch.testing.assert_close(q.sum(1), torch.ones(12))
    assert torch.isfinite(q).all() and (q >= 0).all()
    # with many iterations each prototype receives N / K of the mass
    q = sinkhorn_knopp(scores, epsilon=0.05, iterations=500)
    torch.testing.assert_close(q.sum(0), torch.full((5,), 12 / 5), atol=1e-4, rtol=0)
    torch.testing.assert_close(q.sum(1), torch.ones(12))


def test_sinkhorn_spreads_mass_that_a_softmax_would_not():
    # every embedding prefers prototype 0; equipartition gives prototype 1 half the mass
    scores = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])
    q = sinkhorn_knopp(scores, epsilon=0.05, iterations=200)
    torch.testing.assert_close(q.sum(0), torch.tensor([2.0, 2.0]), atol=1e-4, rtol=0)
    assert q[3, 1] > q[0, 1]  # the least committed embedding goes to prototype 1
    assert not q.requires_grad


@pytest.mark.parametrize(
    "scores, kwargs, message",
    [
        (torch.zeros(3), {}, "scores \\(N, K\\)"),
        (torch.zeros(2, 2), {"epsilon": 0.0}, "epsilon must be positive"),
        (torch.zeros(2, 2), {"iterations": 0}, "iterations at least 1"),
    ],
)
def test_sinkhorn_refuses_bad_input(scores, kwargs, message):
    with pytest.raises(ValueError, match=message):
        sinkhorn_knopp(scores, **kwargs)


def test_prototype_log_probs_by_hand():
    log_p = prototype_log_probs(torch.tensor([[0.1, 0.0]]), temperature=0.1)
    # softmax of (1, 0): (e / (1 + e), 1 / (1 + e))
    e = math.e
    torch.testing.assert_close(log_p.exp(), torch.tensor([[e / (1 + e), 1 / (1 + e)]]))
    with pytest.raises(ValueError, match="temperature"):
        prototype_log_probs(torch.zeros(1, 2), 0.0)


def test_swapped_prediction_loss_by_hand():
    log_p1 = torch.tensor([[0.5, 0.5], [0.9, 0.1]]).log()
    log_p2 = torch.tensor([[0.2, 0.8], [0.6, 0.4]]).log()
    q1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    q2 = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    # q2 . log p1: log .5, log .9; q1 . log p2: log .2, log .4
    first = (math.log(0.5) + math.log(0.9)) / 2
    second = (math.log(0.2) + math.log(0.4)) / 2
    expected = -0.5 * (first + second)
    loss = swapped_prediction_loss(log_p1, log_p2, q1, q2)
    assert loss.item() == pytest.approx(expected) == pytest.approx(0.831059, abs=1e-6)
    # the views are swapped: each predicts the other's assignment
    assert swapped_prediction_loss(log_p1, log_p2, q2, q1).item() != pytest.approx(expected)
    with pytest.raises(ValueError, match="same shape"):
        swapped_prediction_loss(log_p1, log_p2[:1], q1, q2)


def test_temporal_prototype_loss_by_hand():
    log_u = torch.tensor([[0.25, 0.75], [0.5, 0.5]]).log()
    q = torch.tensor([[0.0, 1.0], [0.5, 0.5]])
    expected = (-math.log(0.75) - math.log(0.5)) / 2
    assert temporal_prototype_loss(log_u, q).item() == pytest.approx(expected)
    assert expected == pytest.approx(0.490415, abs=1e-6)


def test_losses_give_no_gradient_to_their_targets():
    log_p = torch.randn(3, 4).log_softmax(-1).requires_grad_()
    q = torch.rand(3, 4).requires_grad_()
    temporal_prototype_loss(log_p, q).backward()
    assert q.grad is None and log_p.grad is not None


def test_projection_norm_loss_by_hand():
    assert projection_norm_loss(torch.tensor([[3.0, 4.0], [0.0, 2.0]])).item() == pytest.approx(
        (16.0 + 1.0) / 2
    )


def test_prototypes_are_normalised_and_score_by_cosine():
    torch.manual_seed(0)
    prototypes = Prototypes(5, 3)
    with torch.no_grad():
        prototypes.weight.mul_(torch.arange(1.0, 6.0).unsqueeze(-1))
    prototypes.normalize_()
    torch.testing.assert_close(prototypes.weight.detach().norm(dim=-1), torch.ones(5))
    z = torch.nn.functional.normalize(torch.randn(2, 3), dim=-1)
    scores = prototypes(z)
    torch.testing.assert_close(scores, z @ prototypes.weight.detach().T)
    assert (scores.abs() <= 1 + 1e-6).all()
    with pytest.raises(ValueError, match="width 3"):
        prototypes(torch.zeros(2, 4))


def test_frozen_prototypes_get_a_zero_gradient():
    prototypes = Prototypes(4, 2)
    z = torch.randn(3, 2)
    prototypes(z, frozen=torch.tensor(True)).sum().backward()
    assert torch.equal(prototypes.weight.grad, torch.zeros(4, 2))
    prototypes.weight.grad = None
    prototypes(z, frozen=torch.tensor(False)).sum().backward()
    torch.testing.assert_close(prototypes.weight.grad, z.sum(0).expand(4, 2))


def test_translate_by_whole_pixels_repeats_the_edges():
    image = torch.arange(9.0).reshape(1, 3, 3)
    moved = translate(image, torch.tensor([1.0, 0.0]))  # right by one column
    torch.testing.assert_close(moved, torch.tensor([[[0.0, 0.0, 1.0], [3, 3, 4], [6, 6, 7]]]))
    moved = translate(image, torch.tensor([0.0, -1.0]))  # up by one row
    torch.testing.assert_close(moved, torch.tensor([[[3.0, 4, 5], [6, 7, 8], [6, 7, 8]]]))
    torch.testing.assert_close(translate(image, torch.zeros(2)), image)


def test_random_translate_is_one_shift_per_sequence():
    torch.manual_seed(0)
    frame = torch.rand(1, 1, 3, 8, 8)
    sequences = frame.expand(4, 6, 3, 8, 8).contiguous()
    moved = random_translate(sequences, 3.0)
    assert moved.shape == sequences.shape
    torch.testing.assert_close(moved, moved[:, :1].expand_as(moved))  # same across time
    assert not torch.allclose(moved[0], moved[1])  # differs across sequences
    per_frame = random_translate(sequences, 3.0, same_across_time=False)
    assert not torch.allclose(per_frame[:, 0], per_frame[:, 1])
    with pytest.raises(ValueError, match=r"\(B, T, C, H, W\)"):
        random_translate(torch.zeros(3, 8, 8))
