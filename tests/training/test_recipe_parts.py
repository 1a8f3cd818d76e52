"""Unit tests of the recipe's pieces: config checks, the sequence replay, the training env."""

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from tensordict import TensorDict

from torchrl_psp.training import (
    ConfigError,
    SequenceReplay,
    load_run_config,
    make_training_env,
    validate_config,
)
from torchrl_psp.training.replay import TRAJ_KEY

CONFIG = Path(__file__).resolve().parents[2] / "recipes" / "config"


def config(**overrides):
    cfg = OmegaConf.merge(
        OmegaConf.load(CONFIG / "config.yaml"), OmegaConf.load(CONFIG / "preset" / "smoke.yaml")
    )
    cfg.pop("hydra")
    cfg.pop("defaults")
    return OmegaConf.merge(cfg, OmegaConf.from_dotlist([f"{k}={v}" for k, v in overrides.items()]))


def test_default_and_preset_configs_are_valid():
    validate_config(config())
    for variant, source in [
        ("dreamer", "none"),
        ("psp_noseg", "none"),
        ("sd_gt", "gt"),
        ("sd_approx", "weightfree"),
        ("sd_l2", "weightfree"),
        ("psp", "weightfree"),
    ]:
        validate_config(config(variant=variant, **{"env.segmentation": source}))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"variant": "plain"}, "Unknown variant"),
        ({"env.distractor": "noise"}, "env.distractor"),
        ({"env.segmentation": "magic"}, "env.segmentation must be one of"),
        ({"variant": "psp", "env.segmentation": "persam"}, "aggregates saliency"),
        ({"variant": "sd_gt", "env.segmentation": "weightfree"}, "ground-truth task mask"),
        ({"variant": "sd_approx", "env.segmentation": "gt"}, "learned task-mask segmenter"),
        ({"env.segmentation": "sam"}, "sam_checkpoint=/path"),
        (
            {"env.segmentation": "sam", "segmenter.sam_checkpoint": "/nonexistent.pth"},
            "is not a file",
        ),
        ({"replay.batch_size": 0}, "replay.batch_size must be a positive"),
        ({"replay.replay_ratio": -1}, "replay_ratio"),
        (
            {"collector.num_workers": 4, "collector.frames_per_batch": 40},
            "Raise collector.frames_per_batch",
        ),
        ({"collector.backend": "dask"}, "collector.backend"),
        ({"model.size": "huge"}, "model.size"),
        ({"optim.actor_gradient": "ppo"}, "optim.actor_gradient"),
        ({"optim.actor_lr": -1e-4}, "optim.actor_lr must be a positive number"),
        ({"optim.lr": 0}, "optim.lr must be a positive number"),
        ({"optim.entropy_bonus": -1.0}, "optim.entropy_bonus must be >= 0"),
        ({"psp.epsilon": -1.0}, "psp.epsilon must be null or a number >= 0"),
        ({"psp.epsilon": "big"}, "psp.epsilon must be null or a number >= 0, got 'big'"),
        ({"variant": "psp_noadv", "psp.epsilon": 30.0}, "variant=psp_noadv has no adversarial"),
    ],
)
def test_configuration_errors_name_the_setting(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(config(**overrides))


def test_stored_config_of_an_older_run_gets_the_settings_it_ran_with(tmp_path):
    old = config()
    for key in ("actor_lr", "critic_lr", "actor_gradient", "entropy_bonus"):
        old.optim.pop(key)
    OmegaConf.save(old, tmp_path / "config.yaml")
    cfg = load_run_config(tmp_path)
    assert cfg.optim.actor_gradient == "dynamics"  # older runs backpropagated through the model
    assert cfg.optim.entropy_bonus == 3e-4 and cfg.optim.actor_lr is None
    validate_config(cfg)
    # A newer run keeps its own values.
    OmegaConf.save(config(**{"optim.actor_gradient": "reinforce"}), tmp_path / "config.yaml")
    assert load_run_config(tmp_path).optim.actor_gradient == "reinforce"
    with pytest.raises(ConfigError, match="no run there"):
        load_run_config(tmp_path / "missing")


def test_cuda_asked_for_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        validate_config(config(device="cuda"))


def _episodes(lengths, start_id=0, value=0.0):
    """Transitions of consecutive episodes; 'obs' counts steps within each episode."""
    obs = torch.cat([torch.arange(n, dtype=torch.float32) + value for n in lengths])
    ids = torch.cat([torch.full((n,), start_id + i) for i, n in enumerate(lengths)])
    return TensorDict({"obs": obs, TRAJ_KEY: ids, "extra": torch.zeros(len(obs))}, [len(obs)])


def test_replay_sequences_stay_inside_episodes(tmp_path):
    replay = SequenceReplay(tmp_path, 1000, batch_size=64, sequence_length=5, keys=["obs"])
    assert not replay.can_sample()
    replay.extend(_episodes([3, 4]))  # both shorter than a sequence
    assert not replay.can_sample()
    replay.extend(_episodes([12, 7], start_id=2))
    assert replay.can_sample()
    sample = replay.sample()
    assert sample.shape == (64, 5)
    assert "extra" not in sample.keys()  # only the configured keys are stored
    assert (sample["obs"].diff(dim=1) == 1).all()  # consecutive steps of one episode


def test_replay_returns_is_init_as_stored(tmp_path):
    # is_init marks true episode starts only: a sequence that starts mid-episode must keep
    # is_init False there, or the RSSM rollout discards the stored state and action.
    data = _episodes([20, 20])
    data["is_init"] = (data["obs"] == 0).unsqueeze(-1)
    replay = SequenceReplay(
        tmp_path, 1000, batch_size=64, sequence_length=5, keys=["obs", "is_init"]
    )
    replay.extend(data)
    sample = replay.sample()
    assert torch.equal(sample["is_init"].squeeze(-1), sample["obs"] == 0)
    assert not sample["is_init"][:, 0].all()  # most sequences start mid-episode


def test_replay_resume_keeps_data_and_shifts_trajectory_ids(tmp_path):
    replay = SequenceReplay(tmp_path, 1000, batch_size=4, sequence_length=3, keys=["obs"])
    replay.extend(_episodes([10, 10]))
    replay.save(extra={"env_steps": 40})
    replay.extend(_episodes([10], start_id=2, value=500.0))  # after the last save: not recorded
    resumed = SequenceReplay(
        tmp_path, 1000, batch_size=4, sequence_length=3, keys=["obs"], resume=True
    )
    assert len(resumed) == 20 and resumed.extra == {"env_steps": 40}
    assert resumed.traj_offset == 2
    resumed.extend(_episodes([6], start_id=0, value=100.0))  # the collector's ids restart at 0
    stored = resumed.buffer.storage[: len(resumed)]
    assert len(resumed) == 26
    assert stored[TRAJ_KEY][20:].tolist() == [2] * 6
    assert torch.equal(stored["obs"][:20], _episodes([10, 10])["obs"])


def test_training_env_gives_what_the_agent_reads():
    cfg = config()
    env = make_training_env(cfg.env, cfg.segmenter, seed=0)
    td = env.reset()
    assert td["pixels"].shape == (3, 64, 64) and td["pixels"].dtype == torch.uint8
    assert td["is_init"].item()
    assert td["segments"].shape == (64, 64)


def test_replay_refresh_writes_each_posterior_into_the_next_stored_step(tmp_path):
    data = _episodes([12, 12])
    data["state"] = torch.zeros(24, 3)
    replay = SequenceReplay(tmp_path, 100, batch_size=4, sequence_length=5, keys=["obs", "state"])
    replay.extend(data)
    sample = replay.sample()
    index = replay.last_index
    assert torch.equal(replay.buffer.storage[index.flatten()]["obs"], sample["obs"].flatten())
    context = TensorDict({"state": torch.randn(4, 5, 3)}, [4, 5])
    assert replay.refresh_states(context, index, ["state"]) == 4 * 4
    stored = replay.buffer.storage[: len(replay)]["state"]
    # step t's posterior is the start state of step t + 1 (same trajectory, next slot);
    # where sampled sequences overlap, one of the fresh posteriors is kept
    targets, written = index[:, 1:].flatten(), context["state"][:, :-1].reshape(-1, 3)
    for slot in set(targets.tolist()):
        candidates = written[targets == slot]
        assert any(torch.equal(stored[slot], c) for c in candidates), slot
    first_only = set(index[:, 0].tolist()) - set(index[:, 1:].flatten().tolist())
    assert all(torch.count_nonzero(stored[i]) == 0 for i in first_only)  # not overwritten
    with pytest.raises(ValueError, match="batch shape"):
        replay.refresh_states(context[:, :3], index, ["state"])


def test_psp_epsilon_reaches_the_adversarial_head_and_older_runs_keep_the_paper_value(tmp_path):
    from torchrl_psp.training import build_run_parts

    parts = build_run_parts(config(**{"psp.epsilon": 30.0}), with_envs=False)
    assert parts.loss.model_loss.adversarial_head.epsilon == 30.0
    old = config()
    old.pop("psp")  # a run made before the setting existed
    OmegaConf.save(old, tmp_path / "config.yaml")
    cfg = load_run_config(tmp_path)
    assert cfg.psp.epsilon is None
    parts = build_run_parts(cfg, with_envs=False)
    assert parts.loss.model_loss.adversarial_head.epsilon == 1e3


def test_the_recipe_builds_dreamerpro_without_decoder():
    """variant=dreamerpro: the run's agent has no decoder (VariantSpec.decoder), and its
    loss, compiled regions and acting policy work without one."""
    from torchrl_psp.training import build_run_parts

    parts = build_run_parts(
        config(variant="dreamerpro", **{"env.segmentation": "none", "optim.compile": "regions"}),
        with_envs=False,
    )
    try:
        assert parts.agent.decoder is None
        assert ("next", "reco_pixels") not in parts.agent.world_model.out_keys
        assert parts.loss.model_loss.world_model is parts.agent.world_model
        assert "decoder_norm_silu" not in parts.compiled.regions
        assert "encoder_norm_silu" in parts.compiled.regions
    finally:
        parts.compiled.restore()
