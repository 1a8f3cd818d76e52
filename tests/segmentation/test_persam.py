"""PerSAM / PerSAM-F plumbing with a tiny random SAM, references and errors."""

from __future__ import annotations

import pytest
import torch
from torchrl.envs import TransformedEnv

from torchrl_psp.segmentation import (
    PerSAMPredictor,
    PerSAMSegmentation,
    check_reference,
    reference_from_env,
)
from torchrl_psp.segmentation.sam.persam import dice_loss, sigmoid_focal_loss
from torchrl_psp.segmentation.testing import SyntheticPixelEnv


@pytest.fixture()
def reference(frames):
    mask = torch.zeros(32, 32, dtype=torch.bool)
    mask[8:20, 10:22] = True
    return frames[0], mask


def test_persam_f_fits_two_weights_quickly(tiny_sam, reference):
    persam = PerSAMPredictor(tiny_sam, *reference, fine_tune_steps=200, lr=1e-2)
    weights = persam.mask_weights
    assert weights.shape == (3,) and torch.isclose(weights.sum(), torch.tensor(1.0))
    assert not torch.allclose(weights, torch.full((3,), 1 / 3))
    assert persam.fine_tune_seconds < 10
    # SAM itself is frozen: no gradient state was left on it.
    assert all(p.grad is None for p in tiny_sam.parameters())


def test_fit_lowers_the_reference_loss(tiny_sam, reference):
    image, mask = reference

    def loss(predictor):
        logits = predictor.predict_logits(image[None])
        return float(dice_loss(logits, mask[None]) + sigmoid_focal_loss(logits, mask[None]))

    kwargs = {"refine_steps": 0, "lr": 1e-2}
    before = loss(PerSAMPredictor(tiny_sam, image, mask, fine_tune_steps=0, **kwargs))
    after = loss(PerSAMPredictor(tiny_sam, image, mask, fine_tune_steps=300, **kwargs))
    assert after < before


def test_training_free_persam(tiny_sam, reference, frames):
    persam = PerSAMPredictor(tiny_sam, *reference, fine_tune=False)
    assert persam.mask_weights is None and persam.fine_tune_seconds == 0
    masks = persam.predict(frames)
    assert masks.shape == (3, 32, 32) and masks.dtype == torch.bool


@pytest.mark.parametrize(
    "options",
    [
        {"refine_steps": 0},
        {"refine_steps": 1},
        {"guidance_scale": 0.0, "semantic_prompt": False},
        {"num_positive": 3, "num_negative": 2},
        {"blacken_reference": False},
        {"encoder_input_size": 64},
        {"amp_dtype": torch.bfloat16},
    ],
)
def test_options_run(tiny_sam, reference, frames, options):
    persam = PerSAMPredictor(tiny_sam, *reference, fine_tune_steps=5, **options)
    assert persam.predict(frames).shape == (3, 32, 32)


def test_guidance_and_semantic_prompt_change_the_first_decoding(tiny_sam, reference, frames):
    def logits(**options):
        p = PerSAMPredictor(tiny_sam, *reference, fine_tune=False, refine_steps=0, **options)
        return p.predict_logits(frames)

    plain = logits(guidance_scale=0.0, semantic_prompt=False)
    assert not torch.allclose(plain, logits(guidance_scale=2.0, semantic_prompt=False))
    assert not torch.allclose(plain, logits(guidance_scale=0.0, semantic_prompt=True))


def test_batching_equals_one_by_one(tiny_sam, reference, frames):
    persam = PerSAMPredictor(tiny_sam, *reference, fine_tune_steps=20)
    together = persam.predict(frames)
    single = torch.cat([persam.predict(f[None]) for f in frames])
    assert torch.equal(together, single)


def test_several_references(tiny_sam, reference, frames):
    image, mask = reference
    persam = PerSAMPredictor(tiny_sam, image.expand(2, -1, -1, -1), mask.expand(2, -1, -1))
    assert persam.predict(frames).shape == (3, 32, 32)


def test_reference_validation(frames):
    image = frames[0]
    with pytest.raises(ValueError, match="empty"):
        check_reference(image, torch.zeros(32, 32, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"shape \(32, 32\)"):
        check_reference(image, torch.ones(16, 16, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool"):
        check_reference(image, torch.full((32, 32), 0.5))
    with pytest.raises(ValueError, match="reference image"):
        check_reference(image.float(), torch.ones(32, 32, dtype=torch.bool))
    image_np, mask_np = check_reference(
        image.numpy(), torch.ones(32, 32, dtype=torch.int64).numpy()
    )
    assert image_np.shape == (1, 32, 32, 3) and mask_np.dtype == torch.bool


def test_reference_from_env():
    image, mask = reference_from_env(SyntheticPixelEnv(size=16, with_task_mask=True))
    assert image.shape == (16, 16, 3) and image.dtype == torch.uint8
    assert mask.shape == (16, 16) and mask.any()
    batched = SyntheticPixelEnv(size=16, batch_size=(3,), with_task_mask=True)
    assert reference_from_env(batched)[0].shape == (16, 16, 3)
    with pytest.raises(ValueError, match="segmentation='gt'"):
        reference_from_env(SyntheticPixelEnv(size=16))


def test_transform(tiny_sam):
    reference = reference_from_env(SyntheticPixelEnv(size=32, with_task_mask=True))
    transform = PerSAMSegmentation(reference, sam=tiny_sam, fine_tune_steps=10, device="cpu")
    assert transform.fine_tune_seconds > 0 and transform.predictor.mask_weights is not None
    env = TransformedEnv(SyntheticPixelEnv(size=32, static=True), transform)
    td = env.rollout(4, policy=lambda td: td.set("action", torch.zeros(2)))
    assert td["next", "task_mask"].dtype == torch.bool
    assert transform.cache.hits >= 3  # the static env repeats its frame
    with pytest.raises(ValueError, match=r"\(image, mask\) pair"):
        PerSAMSegmentation(reference[0], sam=tiny_sam)


def test_losses():
    target = torch.tensor([[1.0, 0.0, 1.0]])
    good, bad = torch.tensor([[9.0, -9.0, 9.0]]), torch.tensor([[-9.0, 9.0, -9.0]])
    assert dice_loss(good, target) < 0.01 < dice_loss(bad, target)
    assert sigmoid_focal_loss(good, target) < sigmoid_focal_loss(bad, target)


def test_location_prior_finds_the_target_in_its_own_reference(tiny_sam):
    """Even with random weights, a uniform target's cells share features: the positive
    point lands on the target and the negative point off it (checks the x/y conventions)."""
    generator = torch.Generator().manual_seed(1)
    image = torch.randint(0, 256, (1, 32, 32, 3), generator=generator, dtype=torch.uint8)
    mask = torch.zeros(1, 32, 32, dtype=torch.bool)
    mask[0, 4:16, 18:30] = True  # wider than tall, off-centre: x and y differ
    image[mask] = torch.tensor([250, 250, 250], dtype=torch.uint8)
    persam = PerSAMPredictor(tiny_sam, image, mask, fine_tune=False, blacken_reference=False)
    geometry = persam._geometry(image)
    _, _, points, labels = persam._first_decoding(persam._encode(image, geometry), geometry)
    (px, py), (nx, ny) = points[0].long().tolist()
    assert labels[0].tolist() == [1, 0]
    assert mask[0, py, px] and not mask[0, ny, nx]
