"""MujocoPixels and the fast rendering settings."""

import numpy as np
import pytest
import torch
from dm_control import suite
from torchrl.envs import DMControlWrapper, TransformedEnv
from torchrl.envs.utils import check_env_specs

from torchrl_psp.envs import MujocoPixels, PhysicsRenderer, set_fast_rendering


def _env(frame_skip=1, **kwargs):
    base = DMControlWrapper(
        suite.load("cheetah", "run", task_kwargs={"random": 0}), frame_skip=frame_skip
    )
    return TransformedEnv(base, MujocoPixels(**kwargs))


def test_same_image_as_dm_control_render():
    env = _env(fast=False)
    td = env.rollout(3)["next"][-1]
    physics = env.base_env._env.physics
    assert torch.equal(td["pixels"], torch.from_numpy(physics.render(64, 64, camera_id=0).copy()))
    check_env_specs(env)


def test_camera_and_size():
    env = _env(image_size=(48, 80), camera_id=1, fast=False)
    td = env.reset()
    assert td["pixels"].shape == (48, 80, 3)
    expected = env.base_env._env.physics.render(48, 80, camera_id=1)
    assert torch.equal(td["pixels"], torch.from_numpy(expected.copy()))


def test_renders_once_per_step_whatever_the_frame_skip(monkeypatch):
    env = _env(frame_skip=4)
    calls = []
    original = PhysicsRenderer.rgb
    monkeypatch.setattr(
        PhysicsRenderer, "rgb", lambda self, *a: calls.append(1) or original(self, *a)
    )
    td = env.reset()
    for _ in range(3):
        td = env.rand_step(td)["next"]
    assert len(calls) == 4  # reset + 3 steps
    # 4 physics control steps per env step
    physics = env.base_env._env.physics
    assert np.isclose(physics.data.time, 3 * 4 * env.base_env._env.control_timestep())


def test_fast_rendering_settings_give_nearly_the_same_picture():
    physics = suite.load("cheetah", "run", task_kwargs={"random": 0}).physics
    default = physics.render(64, 64, camera_id=0).astype(int)
    set_fast_rendering(physics)
    assert physics.model.vis.quality.shadowsize == 256
    assert physics.model.vis.quality.offsamples == 0
    fast = physics.render(64, 64, camera_id=0).astype(int)
    difference = np.abs(default - fast)
    # shadow edges and anti-aliasing differ; the picture does not
    assert difference.mean() < 2.0
    assert (difference.max(-1) > 32).mean() < 0.02


def test_large_image_grows_the_framebuffer_of_an_already_rendering_physics():
    env = _env(image_size=64)
    env.reset()  # contexts exist at DMC's 640x480 framebuffer
    physics = env.base_env._env.physics
    image = PhysicsRenderer(physics).rgb(500, 700, 0)
    assert image.shape == (500, 700, 3) and image.std() > 10
    assert env.rand_step(env.reset())["next", "pixels"].shape == (64, 64, 3)


def test_image_size_is_checked():
    with pytest.raises(ValueError, match=r"image_size must .*got '64' \(str\)"):
        MujocoPixels(image_size="64")


def test_each_physics_transform_reports_its_own_camera():
    """The camera a transform matches comes from the transform that renders the entry."""
    import ast
    from pathlib import Path

    from torchrl.envs import Compose

    import torchrl_psp.envs._base as base
    from torchrl_psp.envs import GroundTruthSegmentation

    class OtherPixels(MujocoPixels):
        """Renders its pixels under another key."""

    pixels = MujocoPixels(camera_id=1, fast=False)
    assert pixels.camera_for("pixels") == 1 and pixels.camera_for("other") is None
    segmentation = GroundTruthSegmentation()
    assert segmentation.camera_for("pixels") is None  # renders no pixel observation
    env = TransformedEnv(
        DMControlWrapper(suite.load("cheetah", "run", task_kwargs={"random": 0})),
        Compose(pixels, OtherPixels(camera_id=0, out_key="other"), segmentation),
    )
    assert segmentation.camera_id == 1
    # The base class does not know its subclasses: no import of envs/pixels.py.
    tree = ast.parse(Path(base.__file__).read_text())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "torchrl_psp.envs.pixels" not in imported
    env.close()
