"""Non-finite input never reaches the parameters: the learner's skip, the weights' rule, the scale."""

from __future__ import annotations

import pytest
import torch

from torchrl_psp.modules import synthetic_replay_sample
from torchrl_psp.objectives import (
    FiniteUpdateStepper,
    NonFiniteUpdateError,
    finite_magnitude,
    make_optimization_stepper,
    make_variant_loss,
    segment_weights,
)


def _state(loss, stepper):
    """Every tensor an update may change: parameters, buffers, optimiser state."""
    tensors = [p.detach().clone() for p in loss.parameters()]
    tensors += [b.detach().clone() for b in loss.buffers()]
    for state in stepper.optimizer.state.values():
        tensors += [v.clone() for v in state.values() if torch.is_tensor(v)]
    return tensors


def _same(first, second) -> bool:
    return len(first) == len(second) and all(torch.equal(a, b) for a, b in zip(first, second))


def _float_pixels(sample):
    sample["next", "pixels"] = sample["next", "pixels"].float() / 255
    return sample


def _poison(sample, what: str):
    if what == "pixel":
        _float_pixels(sample)["next", "pixels"][1, 2, 0, 3, 4] = float("nan")
    elif what == "inf_pixel":
        _float_pixels(sample)["next", "pixels"][0, 1, 2, 0, 0] = float("inf")
    elif what == "action":
        sample["action"][0, 2, 1] = float("nan")
    elif what == "reward":
        sample["next", "reward"][1, 1] = float("nan")  # +-inf is clipped by the two-hot bins
    return sample


@pytest.mark.parametrize("sync", [True, False])
@pytest.mark.parametrize("what", ["pixel", "inf_pixel", "action", "reward"])
def test_non_finite_batch_leaves_the_learner_unchanged(tiny_agent, what, sync):
    loss = make_variant_loss(tiny_agent, "psp", imagination_horizon=3)
    stepper = make_optimization_stepper(loss, warmup_steps=0, sync=sync)
    good = synthetic_replay_sample(tiny_agent, 2, 4, generator=torch.Generator().manual_seed(0))
    stepper.step(None, good.clone())  # optimiser state exists from here on
    before = _state(loss, stepper)
    bad = _poison(synthetic_replay_sample(tiny_agent, 2, 4), what)
    metrics = stepper.step(None, bad)
    assert float(metrics["skipped_update"]) == 1.0
    after = _state(loss, stepper)
    assert _same(before, after), "a skipped update changed the learner"
    assert all(torch.isfinite(t).all() for t in after)
    assert stepper.skipped_updates == 1 and stepper.consecutive_skips == 1
    if sync:
        assert stepper.last_non_finite  # names the terms, e.g. ['loss_model_reco', ...]
        assert all(
            name.startswith("loss_") or name == "gradients" for name in stepper.last_non_finite
        )
    # the next finite batch is applied and resets the run of skips
    metrics = stepper.step(None, good.clone())
    assert float(metrics["skipped_update"]) == 0.0
    assert not _same(before, _state(loss, stepper))
    assert stepper.skipped_updates == 1 and stepper.consecutive_skips == 0


def test_first_update_non_finite_leaves_no_optimiser_state_behind(tiny_agent):
    """Masked skipping on the very first update: the moments the step created are zeros."""
    loss = make_variant_loss(tiny_agent, "dreamer", imagination_horizon=3)
    stepper = make_optimization_stepper(loss, warmup_steps=0, sync=False)
    parameters = [p.detach().clone() for p in loss.parameters()]
    stepper.step(None, _poison(synthetic_replay_sample(tiny_agent, 2, 4), "reward"))
    assert all(torch.equal(p, q) for p, q in zip(loss.parameters(), parameters))
    for state in stepper.optimizer.state.values():
        for value in state.values():
            if torch.is_tensor(value):
                assert torch.count_nonzero(value) == 0


def test_masked_and_synced_updates_are_the_same_computation(tiny_agent):
    """On finite data the two ways of skipping give bit-identical learners."""
    samples = [
        synthetic_replay_sample(tiny_agent, 2, 4, generator=torch.Generator().manual_seed(i))
        for i in range(3)
    ]
    torch.manual_seed(0)
    loss = make_variant_loss(tiny_agent, "dreamer", imagination_horizon=3)
    initial = {k: v.clone() for k, v in loss.state_dict().items()}
    results = []
    for sync in (True, False):
        loss.load_state_dict(initial)
        stepper = make_optimization_stepper(loss, warmup_steps=0, sync=sync)
        torch.manual_seed(0)
        losses = [stepper.step(None, s.clone())["loss_model_reco"] for s in samples]
        results.append((losses, [p.detach().clone() for p in loss.parameters()]))
    (losses_a, params_a), (losses_b, params_b) = results
    torch.testing.assert_close(losses_a, losses_b, rtol=0, atol=0)
    assert all(torch.equal(a, b) for a, b in zip(params_a, params_b))


@pytest.mark.parametrize("sync", [True, False])
def test_consecutive_skips_stop_with_a_clear_error(tiny_agent, sync):
    loss = make_variant_loss(tiny_agent, "dreamer", imagination_horizon=3)
    stepper = make_optimization_stepper(loss, warmup_steps=0, max_consecutive_skips=3, sync=sync)
    assert isinstance(stepper, FiniteUpdateStepper)
    bad = _poison(synthetic_replay_sample(tiny_agent, 2, 4), "reward")
    for _ in range(2):
        stepper.step(None, bad.clone())
        stepper.check_consecutive_skips()
    with pytest.raises(NonFiniteUpdateError, match="3 consecutive learner updates"):
        stepper.step(None, bad.clone())
        stepper.check_consecutive_skips()  # the masked path raises when asked
    assert stepper.skipped_updates == 3


def test_max_consecutive_skips_is_checked(tiny_agent):
    loss = make_variant_loss(tiny_agent, "dreamer")
    with pytest.raises(ValueError, match="max_consecutive_skips"):
        make_optimization_stepper(loss, max_consecutive_skips=0)


# -- segment_weights: non-finite and negative salience --------------------------------------


def test_finite_magnitude_rule_by_hand():
    values = torch.tensor([[-3.0, float("nan"), float("inf"), 1.0], [float("nan")] * 4])
    expected = torch.tensor([[3.0, 0.0, 3.0, 1.0], [0.0] * 4])
    torch.testing.assert_close(finite_magnitude(values), expected)


def test_nan_salience_pixel_counts_as_zero_not_uniform():
    salience = torch.tensor([[[float("nan"), 1.0], [2.0, 1.0]]])
    weights = segment_weights(salience, None, alpha=1.0, quantile=1.0)
    # magnitudes 0, 1, 2, 1 (sum 4) -> 4 * v / 4
    torch.testing.assert_close(weights, torch.tensor([[[0.0, 1.0], [2.0, 1.0]]]))


@pytest.mark.parametrize("segmented", [False, True])
def test_inf_salience_never_gives_nan_weights(segmented):
    """One 64x64 image with 41 inf pixels gave 41 NaN weights (all 4,096 with segments)."""
    generator = torch.Generator().manual_seed(0)
    salience = torch.rand(1, 64, 64, generator=generator)
    salience.view(-1)[torch.randperm(4096, generator=generator)[:41]] = float("inf")
    segments = torch.randint(0, 6, (1, 64, 64), generator=generator) if segmented else None
    weights = segment_weights(salience, segments)
    assert torch.isfinite(weights).all()
    torch.testing.assert_close(weights.mean(), torch.tensor(1.0))
    # an inf pixel counts as the image's largest finite salience, then clipped at q99:
    # it weighs as much as the most salient finite pixels, never less
    if not segmented:
        inf = torch.isinf(salience)
        assert torch.allclose(weights[inf], weights[~inf].max())


def test_negative_salience_counts_by_magnitude():
    salience = torch.tensor([[[-4.0, 0.0], [2.0, -2.0]]])
    weights = segment_weights(salience, None, alpha=0.9, quantile=1.0)
    expected = 0.9 * torch.tensor([[[4.0, 0.0], [2.0, 2.0]]]) * 4 / 8 + 0.1
    torch.testing.assert_close(weights, expected)
    assert (weights >= 0.1 - 1e-6).all()


def test_all_non_finite_image_gets_uniform_weights():
    salience = torch.full((2, 3, 3), float("nan"))
    salience[1] = float("-inf")
    torch.testing.assert_close(segment_weights(salience, None), torch.ones(2, 3, 3))


@pytest.mark.parametrize("shape", [(1, 64, 0), (1, 0, 64), (5,)])
def test_empty_or_flat_salience_is_refused(shape):
    with pytest.raises(ValueError, match="H, W >= 1"):
        segment_weights(torch.zeros(shape), None)


# -- the image scale ---------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["dreamer", "psp", "sd_gt"])
def test_float_images_on_a_0_255_scale_are_refused(tiny_agent, variant):
    loss = make_variant_loss(tiny_agent, variant, imagination_horizon=3)
    sample = synthetic_replay_sample(tiny_agent, 2, 4)
    sample["next", "pixels"] = sample["next", "pixels"].float()  # 0-255, not divided
    with pytest.raises(ValueError, match=r"Entry \('next', 'pixels'\) holds float images in \[0"):
        loss(sample)
    if variant != "dreamer":  # the model losses check on their own too
        with pytest.raises(ValueError, match="divide 0-255 floats by 255"):
            loss.model_loss(sample)


def test_unit_float_and_uint8_images_are_accepted(tiny_agent):
    loss = make_variant_loss(tiny_agent, "psp", imagination_horizon=3)
    sample = synthetic_replay_sample(tiny_agent, 2, 4)
    losses_uint8 = loss(sample.clone())
    losses_float = loss(_float_pixels(sample))
    assert torch.isfinite(losses_uint8["loss_model_reco"]).all()
    assert torch.isfinite(losses_float["loss_model_reco"]).all()
