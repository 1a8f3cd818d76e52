"""make_env: every paper task, errors, seeding and options."""

import numpy as np
import pytest
import torch

from torchrl_psp.envs import (
    MAX_IMAGE_SIZE,
    PAPER_TASKS,
    ReafferentBackground,
    make_env,
    renderer_for,
)


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


@pytest.mark.parametrize(
    "image_size",
    ["64", 64.5, True, 0, -3, (64,), (64, 64, 3), (64, 0), (64, 64.0), ("64", "64"), None],
)
def test_image_size_must_be_a_positive_int_or_a_pair_of_them(image_size):
    with pytest.raises(ValueError, match=r"image_size must .*got") as error:
        make_env("cartpole", "swingup", image_size=image_size)
    assert repr(image_size) in str(error.value)


def test_image_size_above_the_framebuffer_grows_it():
    # DMC's offscreen framebuffer is 640x480: both sides of (500, 700) exceed it.
    env = make_env("cartpole", "swingup", image_size=(500, 700), segmentation="gt")
    td = env.rollout(2)
    assert td["next", "pixels"].shape == (2, 500, 700, 3)
    assert td["next", "segments"].shape == (2, 500, 700)
    assert td["next", "pixels"].float().std() > 10  # a real picture, not a blank buffer
    td = make_env("cartpole", "swingup", image_size=1000).reset()
    assert td["pixels"].shape == (1000, 1000, 3)


def test_image_size_above_the_largest_framebuffer_is_refused():
    with pytest.raises(ValueError, match=rf"image_size must have sides in \[1, {MAX_IMAGE_SIZE}\]"):
        make_env("cartpole", "swingup", image_size=(64, MAX_IMAGE_SIZE + 1))


def test_non_square_image_with_a_skybox_background():
    env = make_env("cheetah", "run", image_size=(48, 96), distractor="video", compositing="skybox")
    assert env.rollout(2)["next", "pixels"].shape == (2, 48, 96, 3)


@pytest.mark.parametrize(
    "distractor,kwargs,argument",
    [
        ("none", {"compositing": "skybox"}, "compositing='skybox'"),
        ("none", {"compositing": "colorkey"}, "compositing='colorkey'"),
        ("none", {"replace_floor": True}, "replace_floor=True"),
        ("none", {"video_source": "videos"}, "video_source='videos'"),
        ("reafferent", {"video_source": "videos"}, "video_source='videos'"),
        ("reafferent", {"grayscale": True}, "grayscale=True"),
        ("none", {"max_video_frames": 10}, "max_video_frames=10"),
        ("video", {"reafferent_seed": 3}, "reafferent_seed=3"),
    ],
)
def test_arguments_the_distractor_does_not_use_are_refused(distractor, kwargs, argument):
    with pytest.raises(ValueError, match=rf"distractor='{distractor}' does not use") as error:
        make_env("cheetah", "run", distractor=distractor, **kwargs)
    assert argument in str(error.value)


def test_replace_floor_needs_segmentation_compositing():
    with pytest.raises(ValueError, match="replace_floor=True only applies to compositing"):
        make_env(
            "cheetah", "run", distractor="reafferent", compositing="skybox", replace_floor=True
        )


@pytest.mark.parametrize("distractor", ["none", "reafferent", "video"])
def test_default_values_pass_with_every_distractor(distractor):
    """The recipe forwards its whole env config, defaults included, whatever the distractor."""
    env = make_env(
        "cheetah",
        "run",
        distractor=distractor,
        compositing="segmentation",
        video_source=None,
        grayscale=False,
        max_video_frames=None,
        replace_floor=False,
        reafferent_seed=0,
    )
    assert env.reset()["pixels"].shape == (64, 64, 3)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"frame_skip": 0}, r"frame_skip must be a positive int, got 0\."),
        ({"frame_skip": 2.5}, r"frame_skip must be a positive int, got 2\.5 \(float\)"),
        ({"frame_skip": "2"}, r"frame_skip must be a positive int, got '2' \(str\)"),
        ({"frame_skip": True}, r"frame_skip must be a positive int, got True \(bool\)"),
        ({"seed": 1.5}, r"seed must be an int in \[0, 4294967295\], got 1\.5"),
        ({"seed": -1}, r"seed must be an int in \[0, 4294967295\], got -1"),
        ({"seed": 2**32}, r"seed must be an int in \[0, 4294967295\], got 4294967296"),
        ({"seed": "0"}, r"seed must be .*got '0' \(str\)"),
        ({"camera_id": 7}, r"camera_id must be an int in \[-1, 1\] .*got 7"),
        ({"camera_id": "x"}, r"camera_id must be an int >= -1 or None, got 'x'"),
        ({"camera_id": -2}, r"camera_id must be an int >= -1 or None, got -2"),
        ({"compositing": "green"}, r"compositing must be one of .*got 'green'"),
        ({"replace_floor": "yes"}, r"replace_floor must be True, False or None, got 'yes'"),
        ({"fast_render": 1}, r"fast_render must be True, False or None, got 1 \(int\)"),
        ({"pixels_only": "no"}, r"pixels_only must be True or False, got 'no'"),
        ({"grayscale": 1}, r"grayscale must be True or False, got 1"),
        ({"max_video_frames": 0}, r"max_video_frames must be a positive int or None, got 0"),
        ({"max_video_frames": 2.0}, r"max_video_frames must be a positive int or None, got 2\.0"),
        ({"reafferent_seed": -1}, r"reafferent_seed must be an int >= 0, got -1"),
        ({"reafferent_seed": 0.5}, r"reafferent_seed must be an int >= 0, got 0\.5"),
        ({"video_source": 3}, r"video_source must be a folder path .*got 3 \(int\)"),
        ({"distractor": None}, r"distractor must be one of .*got None"),
        ({"segmentation": ["gt"]}, r"segmentation must be one of .*got \['gt'\]"),
    ],
)
def test_bad_arguments_raise_a_value_error_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_env("cartpole", "swingup", **kwargs)


def test_domain_and_task_must_be_strings():
    with pytest.raises(ValueError, match=r"domain must be a str .*got 3 \(int\)"):
        make_env(3, "run")
    with pytest.raises(ValueError, match=r"task must be a str .*got None"):
        make_env("cheetah", None)


def test_numpy_ints_and_lists_are_accepted():
    env = make_env("cartpole", "swingup", image_size=[np.int64(32), 48], frame_skip=np.int32(3))
    assert env.reset()["pixels"].shape == (32, 48, 3)
