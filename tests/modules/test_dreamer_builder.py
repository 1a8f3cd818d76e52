"""make_dreamer_v3: presets, TorchRL wiring (fast RSSM path), acting policy, synthetic samples."""

from __future__ import annotations

import pytest
import torch
from torchrl.data import Bounded
from torchrl.envs import InitTracker, TensorDictPrimer, TransformedEnv
from torchrl.testing.mocking_classes import ContinuousActionConvMockEnv

from torchrl_psp.modules import (
    DREAMER_V3_PRESETS,
    ActionClamp,
    default_device,
    dreamer_v3_config,
    make_dreamer_v3,
    synthetic_replay_sample,
)


def _count(module: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def test_paper_preset_matches_dreamerv3_size12m():
    config = DREAMER_V3_PRESETS["paper"]
    assert (config.rnn_hidden_dim, config.hidden_dim, config.num_classes) == (2048, 256, 16)
    assert (config.num_categoricals, config.image_depth, config.mlp_units) == (32, 16, 256)
    agent = make_dreamer_v3(Bounded(-1, 1, (6,)), preset="paper", device="cpu")
    total = _count(agent.world_model) + _count(agent.actor) + _count(agent.value)
    assert 8e6 < total < 14e6


def test_presets_grow_and_overrides_apply():
    sizes = [
        _count(make_dreamer_v3(Bounded(-1, 1, (2,)), preset=name, device="cpu").world_model)
        for name in ("tiny", "small")
    ]
    assert sizes[0] < sizes[1]
    assert dreamer_v3_config("tiny", image_mults=[1, 2]).image_mults == (1, 2)
    with pytest.raises(ValueError, match="Unknown DreamerV3 preset"):
        dreamer_v3_config("huge")
    with pytest.raises(ValueError, match="Unknown DreamerV3Config fields"):
        dreamer_v3_config("tiny", depth=3)


def test_world_model_uses_the_fast_rssm_path_and_writes_the_loss_keys(tiny_agent):
    agent = tiny_agent
    rollout = agent.world_model[1]
    assert rollout._fast_path and rollout.reset_key == "is_init"
    sample = synthetic_replay_sample(agent, 2, 3)
    output = agent.world_model(sample.clone())
    cfg = agent.config
    expected = {
        "encoded_latents": (2, 3, agent.encoded_dim),
        "prior_logits": (2, 3, cfg.num_categoricals, cfg.num_classes),
        "posterior_logits": (2, 3, cfg.num_categoricals, cfg.num_classes),
        "state": (2, 3, cfg.state_dim),
        "belief": (2, 3, cfg.rnn_hidden_dim),
        "reco_pixels": (2, 3, 3, 16, 16),
        "reward_logits": (2, 3, cfg.num_reward_bins),
        "reward": (2, 3, 1),
        "continue_pred": (2, 3, 1),
    }
    for key, shape in expected.items():
        assert output["next", key].shape == shape, key
    # Posterior samples are one-hot per categorical.
    one_hot = output["next", "state"].reshape(2, 3, cfg.num_categoricals, cfg.num_classes)
    assert torch.equal(one_hot.sum(-1), torch.ones(2, 3, cfg.num_categoricals))


def test_uint8_and_unit_float_images_encode_alike(tiny_agent):
    pixels = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    torch.testing.assert_close(tiny_agent.encoder(pixels), tiny_agent.encoder(pixels / 255.0))


def test_policy_acts_in_a_mock_pixel_env():
    env = TransformedEnv(ContinuousActionConvMockEnv(pixel_shape=[3, 16, 16]), InitTracker())
    agent = make_dreamer_v3(
        env.action_spec, (3, 16, 16), preset="tiny", image_mults=(1, 2), device="cpu"
    )
    env.append_transform(TensorDictPrimer(agent.primer_spec(), default_value=0, random=False))
    with torch.no_grad():
        rollout = env.rollout(4, agent.policy)
    assert rollout["action"].shape == (4, agent.action_dim)
    assert rollout["is_init"].squeeze(-1).tolist() == [True, False, False, False]
    # The policy writes the posterior of the current image at the root and carries it
    # (and the action) to the next step under "next".
    assert torch.equal(rollout["next", "state"], rollout["state"])
    assert torch.equal(rollout["next", "previous_action"], rollout["action"])
    assert torch.equal(rollout["previous_action"][1:], rollout["action"][:-1])
    assert not rollout["previous_action"][0].any()


def test_imagination_env_rolls_out_the_actor(tiny_agent):
    agent = tiny_agent
    cfg = agent.config
    start = synthetic_replay_sample(agent, 3, 1)[:, 0].select("state", "belief")
    with torch.no_grad():
        imagined = agent.imagination_env.rollout(
            5, agent.actor, tensordict=agent.imagination_env.reset(start), auto_reset=False
        )
    assert imagined.shape == (3, 5)
    assert imagined["next", "state"].shape == (3, 5, cfg.state_dim)
    assert imagined["next", "reward"].shape == (3, 5, 1)


def test_actions_reach_the_world_model_clamped_to_the_bounds(tiny_agent):
    agent = tiny_agent
    cfg = agent.config
    # Acting: a wide policy still stores and carries in-bound actions.
    with torch.no_grad():
        for module in agent.actor.modules():
            if isinstance(module, torch.nn.Linear) and module.out_features == agent.action_dim:
                module.bias.fill_(3.0)  # loc -> tanh(3), scale -> max_std
        data = synthetic_replay_sample(agent, 64, 1)[:, 0]
        data["pixels"] = data["next", "pixels"]
        data["previous_action"] = torch.zeros(64, agent.action_dim)
        out = agent.policy(data)
    assert bool((out["action"].abs() <= 1).all())
    assert bool((out["action"] == 1).any())  # samples beyond the bound were clamped
    assert torch.equal(out["next", "previous_action"], out["action"])
    # Imagination: an action beyond the bounds moves the model as the bound does.
    transition = agent.imagination_env.world_model.get_transition_model_operator()
    start = synthetic_replay_sample(agent, 3, 1)[:, 0].select("state", "belief")
    beyond, at_bound = start.clone(), start.clone()
    beyond["action"] = torch.full((3, agent.action_dim), 4.0)
    at_bound["action"] = torch.ones(3, agent.action_dim)
    with torch.no_grad():
        torch.manual_seed(0)
        beliefs = transition(beyond)["belief"]
        torch.manual_seed(0)
        assert torch.equal(beliefs, transition(at_bound)["belief"])
    assert beliefs.shape == (3, cfg.rnn_hidden_dim)


def test_action_clamp_values_and_errors():
    clamp = ActionClamp(torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 0.5]))
    action = torch.tensor([[-2.0, 0.25], [0.5, 3.0]])
    assert torch.equal(clamp(action), torch.tensor([[-1.0, 0.25], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="low <= high"):
        ActionClamp(torch.tensor([1.0]), torch.tensor([-1.0]))


def test_synthetic_sample_layout(tiny_agent):
    sample = synthetic_replay_sample(tiny_agent, 2, 6, episode_length=3, num_segments=3)
    assert sample["is_init"].squeeze(-1)[0].tolist() == [True, False, False, True, False, False]
    assert sample["next", "segments"].dtype == torch.int16
    assert int(sample["next", "segments"].max()) <= 2
    assert sample["next", "task_mask"].dtype == torch.bool
    assert sample["next", "pixels"].dtype == torch.uint8


def test_default_device_and_bad_arguments():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert default_device().type == expected
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        make_dreamer_v3(Bounded(-1, 1, (2,)), (16, 16), preset="tiny", device="cpu")
    with pytest.raises(ValueError, match="action dimension"):
        make_dreamer_v3(Bounded(-1, 1, ()), preset="tiny", device="cpu")


def _tiny(decoder: bool):
    torch.manual_seed(0)
    return make_dreamer_v3(
        Bounded(-1, 1, (2,)),
        (3, 16, 16),
        preset="tiny",
        image_mults=(1, 2),
        device="cpu",
        decoder=decoder,
    )


def test_without_decoder_the_agent_has_no_decoder_parameters():
    """decoder=False: the parameters of decoder=True less exactly the decoder's, the same
    initial weights elsewhere (same seed), and a world model without reconstruction."""
    full, free = _tiny(True), _tiny(False)
    assert free.decoder is None and full.decoder is not None
    decoder_count = _count(full.decoder)
    assert decoder_count > 0
    assert sum(p.numel() for p in free.parameters()) == (
        sum(p.numel() for p in full.parameters()) - decoder_count
    )
    assert _count(free.world_model) == _count(full.world_model) - decoder_count
    # agent.parameters(): each shared parameter once (encoder in world model and policy)
    assert len({id(p) for p in full.parameters()}) == len(list(full.parameters()))
    assert {id(p) for p in full.decoder.parameters()} <= {id(p) for p in full.parameters()}
    # the modules both agents have start from the same weights
    for name in ("encoder", "prior", "posterior", "actor", "value", "continuation_model"):
        for a, b in zip(getattr(full, name).parameters(), getattr(free, name).parameters()):
            assert torch.equal(a, b), name
    sample = synthetic_replay_sample(free, 2, 3)
    torch.manual_seed(1)
    output = free.world_model(sample.clone())
    torch.manual_seed(1)
    reference = full.world_model(sample.clone())
    assert ("next", "reco_pixels") not in free.world_model.out_keys
    assert ("next", "reco_pixels") not in output.keys(True)
    for key in ("state", "belief", "reward", "continue_pred"):
        torch.testing.assert_close(output["next", key], reference["next", key], msg=key)


def test_compiling_an_agent_without_decoder_skips_the_decoder_region():
    from torchrl_psp.modules import compile_agent

    compiled = compile_agent(_tiny(False), ["encoder_norm_silu", "decoder_norm_silu"])
    try:
        assert list(compiled.regions) == ["encoder_norm_silu"]
    finally:
        compiled.restore()
