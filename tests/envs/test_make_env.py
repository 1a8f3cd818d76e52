"""make_env: every paper task, errors, seeding and options."""

import pytest
import torch

from torchrl_psp.envs import PAPER_TASKS, ReafferentBackground, make_env, renderer_for


@pytest.mark.parametrize("domain,task", PAPER_TASKS)
def test_paper_tasks_with_distractor_and_segmentation(domain, task):
    env = make_env(domain, task, distractor="reafferent", segmentation="gt")
    td = env.rollout(2)
    nxt = td["next"]
    assert nxt["pixels"].shape == (2, 64, 64, 3) and nxt["pixels"].dtype == torch.uint8
    assert nxt["segments"].shape == (2, 64, 64) and nxt["segments"].dtype == torch.int16
    assert nxt["task_mask"].dtype == torch.bool
    assert nxt["reward"].dtype == torch.float32
    assert td["action"].shape[-1] == env.action_spec.shape[-1]
    # the agent is visible, and a good part of the frame is distracting background
    assert nxt["task_mask"][-1].float().mean() > 0.005
    raw = torch.from_numpy(renderer_for(env.base_env._env.physics).rgb(64, 64, 0))
    changed = (nxt["pixels"][-1] != raw).any(-1).float().mean()
    assert changed > 0.1, f"only {changed:.0%} of the frame is distracted"
    assert not (nxt["pixels"][-1] != raw).any(-1)[nxt["task_mask"][-1]].any()


def test_unknown_domain_or_task_lists_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown DeepMind Control domain 'chetah'.*'cheetah'"):
        make_env("chetah", "run")
    with pytest.raises(ValueError, match=r"Unknown task 'walk' of domain 'cheetah'.*\['run'\]"):
        make_env("cheetah", "walk")
    with pytest.raises(ValueError, match="distractor"):
        make_env("cheetah", "run", distractor="noise")
    with pytest.raises(ValueError, match="segmentation"):
        make_env("cheetah", "run", segmentation="sam")
    with pytest.raises(ValueError, match="compositing"):
        make_env("cheetah", "run", distractor="video", compositing="green")


def test_seed_fixes_the_episodes():
    actions = torch.rand(3, 6) * 2 - 1

    def frames(seed):
        env = make_env("cheetah", "run", distractor="video", seed=seed)
        td = env.reset()
        out = [td["pixels"]]
        for action in actions:
            td["action"] = action
            td = env.step(td)["next"]
            out.append(td["pixels"])
        return torch.stack(out)

    assert torch.equal(frames(1), frames(1))
    assert not torch.equal(frames(1), frames(2))


def test_options():
    env = make_env("cartpole", "swingup", image_size=84, frame_skip=4, pixels_only=False)
    td = env.reset()
    assert td["pixels"].shape == (84, 84, 3)
    assert td["position"].dtype == torch.float32  # DMC's float64 states become float32
    env.rand_step(td)
    physics = env.base_env._env.physics
    assert physics.data.time == pytest.approx(4 * env.base_env._env.control_timestep())
    assert "position" not in make_env("cartpole", "swingup").reset().keys()


def test_floor_is_background_where_the_camera_sees_no_sky():
    reacher = make_env("reacher", "easy", distractor="reafferent")
    assert reacher.transform[-2].replace_floor
    cheetah = make_env("cheetah", "run", distractor="reafferent")
    assert not cheetah.transform[-2].replace_floor
    forced = make_env("cheetah", "run", distractor="reafferent", replace_floor=True)
    assert forced.transform[-2].replace_floor


def test_a_segmentation_transform_comes_after_the_distractor():
    class Recorder(ReafferentBackground):
        """Stands for a learned segmenter: records the pixels it is given."""

    env = make_env("cheetah", "run", distractor="video", segmentation="gt")
    names = [type(t).__name__ for t in env.transform]
    assert names.index("GroundTruthSegmentation") < names.index("VideoBackground")
    learned = Recorder(compositing="colorkey", state_key="s")
    env = make_env("cheetah", "run", distractor="video", segmentation=learned)
    names = [type(t).__name__ for t in env.transform]
    assert names.index("VideoBackground") < names.index("Recorder")
