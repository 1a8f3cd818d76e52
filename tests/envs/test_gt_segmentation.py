"""GroundTruthSegmentation against MuJoCo's own segmentation render."""

import numpy as np
import pytest
import torch
from dm_control.mujoco.engine import Camera
from torchrl.envs import TransformedEnv
from torchrl.envs.utils import check_env_specs
from torchrl.testing.mocking_classes import ContinuousActionConvMockEnv

from tests.envs.helpers import dmc_pixels, with_transform
from torchrl_psp.envs import GroundTruthSegmentation, ReafferentBackground, VideoBackground
from torchrl_psp.envs.gt_segmentation import task_mask_from_segments


def _reference(physics, size=64, camera_id=0):
    """Segment ids and task mask computed by hand from dm_control's render."""
    seg = physics.render(size, size, camera_id=camera_id, segmentation=True)
    objid, objtype = seg[..., 0], seg[..., 1]
    is_geom = objtype == 5
    segments = np.where(is_geom, objid + 1, 0)
    body = physics.model.geom_bodyid[np.clip(objid, 0, None)]
    task = is_geom & (body != 0)
    return segments, task, is_geom, objid


def test_geom_ids_and_task_mask_match_mujoco():
    env = with_transform(GroundTruthSegmentation())
    td = env.rollout(3)["next"][-1]
    physics = env.base_env._env.physics
    segments, task, _, _ = _reference(physics)
    assert torch.equal(td["segments"], torch.from_numpy(segments).to(torch.int16))
    assert torch.equal(td["task_mask"], torch.from_numpy(task))
    # cheetah: the floor (geom 0) and the 8 body geoms are visible; the sky is 0
    ids = set(td["segments"].unique().tolist())
    assert 0 in ids and 1 in ids and len(ids - {0, 1}) >= 6
    assert not td["task_mask"][td["segments"] <= 1].any()
    assert td["task_mask"][td["segments"] > 1].all()


def test_reacher_target_is_a_task_object():
    env = with_transform(GroundTruthSegmentation(), domain="reacher", task="easy")
    td = env.reset()
    physics = env.base_env._env.physics
    target = physics.model.name2id("target", "geom") + 1
    assert (td["segments"] == target).any()
    assert td["task_mask"][td["segments"] == target].all()
    ground = physics.model.name2id("ground", "geom") + 1
    assert not td["task_mask"][td["segments"] == ground].any()
    without = with_transform(GroundTruthSegmentation(task_geoms=()), domain="reacher", task="easy")
    assert not without.reset()["task_mask"][td["segments"] == target].any()


def test_task_mask_rebuilt_from_stored_segments():
    for domain, task in (("cheetah", "run"), ("reacher", "easy")):
        env = with_transform(GroundTruthSegmentation(), domain=domain, task=task)
        td = env.rollout(3)["next"]
        model = env.base_env._env.physics.model
        assert torch.equal(task_mask_from_segments(td["segments"], model), td["task_mask"])
    with pytest.raises(ValueError, match=f"geom-level ids are 0..{model.ngeom}"):
        task_mask_from_segments(torch.tensor([model.ngeom + 1]), model)


def test_body_level():
    env = with_transform(GroundTruthSegmentation(level="body"))
    td = env.reset()
    physics = env.base_env._env.physics
    _, task, is_geom, objid = _reference(physics)
    body = physics.model.geom_bodyid[np.clip(objid, 0, None)]
    expected = np.where(is_geom, body + 1, 0)
    assert torch.equal(td["segments"].long(), torch.from_numpy(expected).long())
    # the head and the torso are one body
    assert env.observation_spec["segments"].space.high.max() == physics.model.nbody


def test_matches_size_and_camera_of_the_pixels():
    env = with_transform(GroundTruthSegmentation(), size=48, camera_id=1)
    td = env.reset()
    assert td["segments"].shape == (48, 48) == td["pixels"].shape[:2]
    segments, _, _, _ = _reference(env.base_env._env.physics, size=48, camera_id=1)
    assert torch.equal(td["segments"].long(), torch.from_numpy(segments).long())
    explicit = with_transform(GroundTruthSegmentation(image_size=(32, 40), camera_id=0))
    assert explicit.reset()["segments"].shape == (32, 40)


def test_specs():
    env = with_transform(GroundTruthSegmentation())
    check_env_specs(env)
    spec = env.observation_spec
    assert spec["segments"].dtype == torch.int16
    assert spec["segments"].space.high.max() == 9  # cheetah's 9 geoms
    assert spec["task_mask"].dtype == torch.bool


def test_one_segmentation_render_per_step_for_all_transforms(monkeypatch):
    env = with_transform(GroundTruthSegmentation())
    env.append_transform(ReafferentBackground())
    env.append_transform(VideoBackground())
    calls = []
    original = Camera.render

    def counting(self, *args, segmentation=False, **kwargs):
        calls.append(segmentation)
        return original(self, *args, segmentation=segmentation, **kwargs)

    monkeypatch.setattr(Camera, "render", counting)
    td = env.reset()
    calls.clear()
    for _ in range(3):
        td = env.rand_step(td)["next"]
    assert calls.count(True) == 3


def test_errors():
    env = TransformedEnv(
        ContinuousActionConvMockEnv(pixel_shape=[64, 64, 3]), GroundTruthSegmentation()
    )
    with pytest.raises(ValueError, match="MuJoCo physics"):
        env.reset()
    no_pixels = TransformedEnv(dmc_pixels(), GroundTruthSegmentation(pixels_key="rgb"))
    with pytest.raises(ValueError, match="'rgb'"):
        no_pixels.reset()
    with pytest.raises(ValueError, match="level"):
        GroundTruthSegmentation(level="pixel")
    with pytest.raises(RuntimeError, match="inside an env"):
        GroundTruthSegmentation()(torch.zeros(1))
