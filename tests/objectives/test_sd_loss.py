"""SD: selective L2 filter truth table and SDModelLoss against hand computations."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from torchrl_psp.modules import synthetic_replay_sample
from torchrl_psp.objectives import SDModelLoss, make_model_loss, selective_l2_filter

# One 4x4 image covering each cell of the truth table, a row per case:
# row 0: segmenter yes, head confident -> kept (mask_SEG)
# row 1: segmenter yes, head not confident -> kept
# row 2: segmenter no, head confident -> dropped (the only dropped case)
# row 3: segmenter no, head not confident -> kept (NOT mask_SD); 0.9 exactly is not "> 0.9"
MASK_SEG = torch.tensor([[True] * 4, [True] * 4, [False] * 4, [False] * 4])
MASK_PRED = torch.tensor(
    [
        [0.95, 0.99, 0.91, 1.0],
        [0.1, 0.5, 0.9, 0.0],
        [0.95, 0.99, 0.91, 1.0],
        [0.1, 0.5, 0.9, 0.0],
    ]
)
EXPECTED_FILTER = torch.tensor([[True] * 4, [True] * 4, [False] * 4, [True] * 4])


def test_selective_l2_truth_table():
    assert torch.equal(selective_l2_filter(MASK_SEG, MASK_PRED), EXPECTED_FILTER)
    assert torch.equal(selective_l2_filter(MASK_SEG.to(torch.uint8), MASK_PRED), EXPECTED_FILTER)
    assert torch.equal(
        selective_l2_filter(MASK_SEG, MASK_PRED, threshold=0.5),
        torch.tensor([[True] * 4, [True] * 4, [False] * 4, [True, True, False, True]]),
    )


def test_selective_l2_filter_checks_its_inputs():
    with pytest.raises(ValueError, match="same shape"):
        selective_l2_filter(MASK_SEG, MASK_PRED[:2])
    with pytest.raises(ValueError, match="probabilities"):
        selective_l2_filter(MASK_SEG, MASK_SEG)


class _FixedMaskLogits(nn.Module):
    """Mask head returning learnable logits that do not depend on the latent."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = nn.Parameter(logits)

    def forward(self, state: torch.Tensor, belief: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(*state.shape[:-1], 1, *self.logits.shape[-2:])


def _sd_sample(agent, batch=2, time=3):
    sample = synthetic_replay_sample(agent, batch, time)
    return sample


def test_task_relevant_reconstruction_by_hand(tiny_agent):
    torch.manual_seed(0)
    loss = make_model_loss(tiny_agent, "sd_gt")
    sample = _sd_sample(tiny_agent)
    losses, output = loss(sample)
    pixels = sample["next", "pixels"].float() / 255
    mask = sample["next", "task_mask"].unsqueeze(-3)
    prediction = output["next", "reco_pixels"]
    expected = ((pixels * mask - prediction) ** 2).sum((-3, -2, -1)).mean()
    torch.testing.assert_close(losses["loss_model_reco"].squeeze(), expected)
    assert losses["task_mask_fraction"].item() == pytest.approx(
        sample["next", "task_mask"].float().mean().item()
    )


def test_selective_l2_and_mask_head_by_hand(tiny_agent):
    torch.manual_seed(0)
    agent = tiny_agent
    # Build a 16x16 truth table by tiling the 4x4 one.
    sample = _sd_sample(agent)
    sample["next", "task_mask"] = MASK_SEG.repeat(4, 4).expand(2, 3, 16, 16).clone()
    # (0.9 exactly would sit on the threshold after the logit/sigmoid round trip.)
    probabilities = torch.where(MASK_PRED == 0.9, 0.8, MASK_PRED)
    logits = torch.logit(probabilities.repeat(4, 4), eps=1e-4).unsqueeze(0)
    head = _FixedMaskLogits(logits)
    loss = SDModelLoss(
        agent.world_model, mask_decoder=head, num_reward_bins=agent.config.num_reward_bins
    )
    losses, output = loss(sample)
    keep = EXPECTED_FILTER.repeat(4, 4)
    pixels = sample["next", "pixels"].float() / 255
    mask = sample["next", "task_mask"].unsqueeze(-3)
    error = (pixels * mask - output["next", "reco_pixels"]) ** 2 * keep
    torch.testing.assert_close(losses["loss_model_reco"].squeeze(), error.sum((-3, -2, -1)).mean())
    bce = F.binary_cross_entropy_with_logits(
        logits.expand(2, 3, 16, 16), sample["next", "task_mask"].float(), reduction="none"
    )
    torch.testing.assert_close(losses["loss_model_mask"].squeeze(), bce.sum((-2, -1)).mean())
    assert losses["filter_fraction"].item() == pytest.approx(0.75)


def test_mask_head_does_not_train_the_latent(tiny_agent):
    agent = tiny_agent
    loss = make_model_loss(agent, "sd_approx")
    losses, _ = loss(_sd_sample(agent))
    mask_grads = torch.autograd.grad(
        losses["loss_model_mask"].sum(),
        list(agent.world_model.parameters()) + list(loss.mask_decoder.parameters()),
        allow_unused=True,
    )
    world_model_count = len(list(agent.world_model.parameters()))
    assert all(grad is None for grad in mask_grads[:world_model_count])
    assert any(grad is not None and grad.abs().sum() > 0 for grad in mask_grads[world_model_count:])


@pytest.mark.parametrize("shape", [(1, 1), (2, 5), (3, 2)])
@pytest.mark.parametrize("variant", ["sd_gt", "sd_approx"])
def test_sd_losses_are_finite_and_differentiable(tiny_agent, shape, variant):
    loss = make_model_loss(tiny_agent, variant)
    sample = _sd_sample(tiny_agent, *shape)
    sample["next", "task_mask"] = sample["next", "task_mask"].to(torch.uint8)
    losses, _ = loss(sample)
    total = sum(value.sum() for key, value in losses.items() if key.startswith("loss_"))
    assert all(torch.isfinite(value).all() for value in losses.values())
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in loss.parameters() if p.grad is not None)


def test_sd_loss_reports_missing_or_malformed_masks(tiny_agent):
    loss = make_model_loss(tiny_agent, "sd_gt")
    sample = _sd_sample(tiny_agent)
    with pytest.raises(ValueError, match="task_mask"):
        loss(sample.exclude(("next", "task_mask")))
    sample["next", "task_mask"] = torch.ones(2, 3, 8, 8, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"\(\*batch, H, W\)"):
        loss(sample)
    assert loss.extra_in_keys == [("next", "task_mask")]
