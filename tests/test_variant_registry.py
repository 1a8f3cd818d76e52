"""The variant table is the one place a variant is defined: every consumer follows it."""

from __future__ import annotations

import pytest
from torchrl.objectives import DreamerV3ModelLoss

from torchrl_psp.objectives import (
    VARIANTS,
    DreamerProModelLoss,
    PSPModelLoss,
    SDModelLoss,
    make_model_loss,
)
from torchrl_psp.study.scores import VARIANT_ORDER
from torchrl_psp.training import config_errors
from torchrl_psp.variants import VARIANT_SPECS, VariantSpec, variant_spec

from .training.test_recipe_parts import config

LOSS_CLASSES = {
    "dreamer": DreamerV3ModelLoss,
    "psp": PSPModelLoss,
    "sd": SDModelLoss,
    "dreamerpro": DreamerProModelLoss,
}


@pytest.mark.parametrize("name", [n for n, s in VARIANT_SPECS.items() if s.world_model])
def test_each_loss_is_built_as_its_spec_says(tiny_agent, name):
    spec = VARIANT_SPECS[name]
    loss = make_model_loss(tiny_agent, name)
    assert type(loss) is LOSS_CLASSES[spec.model_loss]
    if spec.model_loss == "psp":
        assert (loss.saliency is not None) == (spec.saliency is not None)
        if spec.saliency:
            expected = "state_value" if spec.saliency == "value" else "loc"
            assert loss.saliency.head_output_key == expected
        assert (loss.adversarial_head is not None) == spec.adversarial_head
        assert loss.use_segments == spec.segments
        assert (("next", "segments") in loss.extra_in_keys) == spec.segments
    if spec.model_loss == "sd":
        assert (loss.mask_decoder is not None) == spec.mask_head
        assert ("next", "task_mask") in loss.extra_in_keys
    if spec.model_loss == "dreamerpro":  # reconstruction-free: no decoder, no image figure
        assert tiny_agent.decoder not in list(loss.world_model.modules())
        assert not {"reconstruction", "sd_masks"} & set(spec.figures)


def test_only_reconstructing_variants_have_a_decoder():
    with_decoder = {name for name, spec in VARIANT_SPECS.items() if spec.decoder}
    assert with_decoder == set(VARIANT_SPECS) - {"dreamerpro", "drqv2"}
    for spec in VARIANT_SPECS.values():  # what the evaluation draws follows the decoder
        assert spec.decoder or not {"reconstruction", "sd_masks"} & set(spec.figures)


def test_every_consumer_lists_every_variant():
    assert list(VARIANT_SPECS) == list(VARIANT_ORDER)
    assert list(VARIANTS) == [name for name, spec in VARIANT_SPECS.items() if spec.world_model]
    assert "drqv2" in VARIANT_ORDER and "drqv2" not in VARIANTS  # a column, no world model
    assert {"psp_nosal", "psp_value"} <= set(VARIANT_ORDER)  # the scores once missed them


def test_a_model_free_variant_has_no_world_model_loss(tiny_agent):
    spec = variant_spec("drqv2")
    assert (spec.agent, spec.model_loss, spec.world_model) == ("drqv2", None, False)
    with pytest.raises(ValueError, match="variant=drqv2 has no world model"):
        make_model_loss(tiny_agent, "drqv2")


def test_sd_gt_and_sd_l2_differ_only_in_their_mask_source():
    gt, l2 = variant_spec("sd_gt"), variant_spec("sd_l2")
    assert (gt.model_loss, gt.mask_head) == (l2.model_loss, l2.mask_head)
    assert (gt.task_mask, l2.task_mask) == ("gt", "learned")


@pytest.mark.parametrize("source", ["none", "gt", "persam", "sam"])
def test_config_checks_follow_what_each_spec_reads(source):
    """A variant is accepted with a segmentation source iff the source provides what it reads."""
    provides = {
        "none": set(),
        "gt": {"segments", "gt"},
        "sam": {"segments"},
        "persam": {"learned"},
    }[source]
    for name, spec in VARIANT_SPECS.items():
        needs = ({"segments"} if spec.segments else set()) | (
            {spec.task_mask} if spec.task_mask else set()
        )
        cfg = config(variant=name, **{"env.segmentation": source})
        if source in ("sam", "persam"):
            cfg.segmenter.sam_checkpoint = "random"
        errors = [e for e in config_errors(cfg) if e.startswith(f"variant={name}")]
        assert bool(errors) == (not needs <= provides), (name, source, errors)


def test_a_new_variant_is_one_entry(tiny_agent, monkeypatch):
    spec = VariantSpec(
        "psp_pixels", "PSP saliency, pixel-wise, no head", model_loss="psp", saliency="actor"
    )
    monkeypatch.setitem(VARIANT_SPECS, spec.name, spec)
    loss = make_model_loss(tiny_agent, "psp_pixels")
    assert isinstance(loss, PSPModelLoss) and loss.adversarial_head is None
    assert not [e for e in config_errors(config(variant="psp_pixels")) if "variant" in e]


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"model_loss": "tia"}, "model_loss must be"),
        ({"model_loss": "sd"}, "reads a task mask"),
        ({"saliency": "actor"}, "are PSP's"),
        ({"model_loss": "psp", "segments": True}, "segments aggregate a saliency"),
        ({"model_loss": "dreamerpro"}, "no decoder to draw reconstructions"),
        ({"agent": "tia"}, "agent must be"),
        ({"agent": "drqv2"}, "has no world-model loss"),
        ({"agent": "drqv2", "model_loss": None, "saliency": "actor"}, "has no world-model loss"),
    ],
)
def test_inconsistent_specs_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        VariantSpec("x", "x", **fields)
    with pytest.raises(ValueError, match="Unknown variant 'nope'"):
        variant_spec("nope")
