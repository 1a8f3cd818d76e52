"""Base class of the distracting-background transforms."""

from __future__ import annotations

import abc
from typing import Any

import torch
from tensordict import TensorDictBase
from torchrl.data import Composite, Unbounded

from torchrl_psp.envs._base import PhysicsTransform
from torchrl_psp.envs._physics import stack_renders
from torchrl_psp.envs.compositing import (
    COMPOSITING_MODES,
    SegmentationBackgroundMask,
    SkyboxWriter,
    colorkey_mask,
)
from torchrl_psp.keys import PIXELS_KEY, check_pixels

__all__ = ["BackgroundTransform"]


class BackgroundTransform(PhysicsTransform, abc.ABC):
    """Writes a background image, computed from a per-episode state, behind the agent.

    Subclasses define the state (an ``int64`` entry of shape ``(*batch, state_size)`` kept
    in the TensorDict, so that partial resets of batched envs and replay work) and the
    background image it maps to. This class handles resets, specs and compositing (see
    :mod:`torchrl_psp.envs.compositing`).

    Args:
        state_key: entry holding the background state.
        state_size: length of the state's last dimension.
        compositing: ``"segmentation"`` (default), ``"skybox"`` or ``"colorkey"``.
        replace_floor: with ``"segmentation"``, also overwrite the floor.
        ground_plane_alpha: with ``"skybox"``, the floor's opacity.
        pixels_key: the pixel entry to composite into (``uint8`` ``(*batch, H, W, 3)``).
        camera_id: camera of the pixels (``None``: the parent's).
    """

    def __init__(
        self,
        state_key: str,
        state_size: int,
        *,
        compositing: str = "segmentation",
        replace_floor: bool = False,
        ground_plane_alpha: float = 0.3,
        pixels_key: str = PIXELS_KEY,
        camera_id: int | None = None,
    ):
        if compositing not in COMPOSITING_MODES:
            raise ValueError(
                f"compositing must be one of {COMPOSITING_MODES}, got {compositing!r}."
            )
        if not 0.0 <= ground_plane_alpha <= 1.0:
            raise ValueError(f"ground_plane_alpha must be in [0, 1], got {ground_plane_alpha}.")
        super().__init__(
            in_keys=[pixels_key],
            out_keys=[pixels_key, state_key],
            pixels_key=pixels_key,
            camera_id=camera_id,
        )
        self.state_key = state_key
        self.state_size = state_size
        self.compositing = compositing
        self.replace_floor = replace_floor
        self.ground_plane_alpha = ground_plane_alpha
        self.__dict__["_helpers"] = None

    # -- what subclasses define ------------------------------------------------------
    @abc.abstractmethod
    def initial_state(self, batch_shape: torch.Size) -> torch.Tensor:
        """State at reset, ``int64`` ``(*batch_shape, state_size)``."""

    @abc.abstractmethod
    def next_state(self, state: torch.Tensor, tensordict: TensorDictBase) -> torch.Tensor:
        """State after a step, given the state and the step's input (holding the action)."""

    @abc.abstractmethod
    def background(self, state: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Background images ``uint8`` ``(*batch, height, width, 3)`` of a batch of states."""

    # -- env plumbing ------------------------------------------------------------------
    def set_container(self, container: Any) -> None:
        self.__dict__["_helpers"] = None
        super().set_container(container)

    def _composite(self, tensordict: TensorDictBase, state: torch.Tensor) -> TensorDictBase:
        pixels = tensordict.get(self.pixels_key, None)
        if pixels is None:
            raise ValueError(
                f"{type(self).__name__} composites into {self.pixels_key!r}, which the "
                f"TensorDict lacks (keys: {list(tensordict.keys(True, True))})."
            )
        height, width = check_pixels(pixels, self.pixels_key)
        background = self.background(state, height, width)
        if self.compositing == "colorkey":
            mask = colorkey_mask(pixels)
            pixels = torch.where(mask.unsqueeze(-1), background, pixels)
        elif self.compositing == "segmentation":
            batch_shape = tensordict.batch_size
            segmentation = self._render_segmentation(batch_shape).numpy()
            flat = segmentation.reshape(-1, *segmentation.shape[-3:])
            masks = [helper(s) for helper, s in zip(self._get_helpers(), flat)]
            mask = stack_renders(masks, batch_shape)
            pixels = torch.where(mask.unsqueeze(-1), background, pixels)
        else:
            flat = background.reshape(-1, height, width, 3)
            images = []
            for writer, renderer, image in zip(self._get_helpers(), self.renderers(), flat):
                writer.write(image)
                images.append(renderer.rgb(height, width, self.camera_id))
            pixels = stack_renders(images, tensordict.batch_size)
        tensordict.set(self.pixels_key, pixels)
        tensordict.set(self.state_key, state)
        return tensordict

    def _get_helpers(self) -> list:
        helpers = self.__dict__["_helpers"]
        if helpers is None:
            if self.compositing == "segmentation":
                helpers = [
                    SegmentationBackgroundMask(r.physics.model, self.replace_floor)
                    for r in self.renderers()
                ]
            else:
                helpers = [
                    SkyboxWriter(r.physics, self.ground_plane_alpha) for r in self.renderers()
                ]
            self.__dict__["_helpers"] = helpers
        return helpers

    def _reset(
        self, tensordict: TensorDictBase, tensordict_reset: TensorDictBase
    ) -> TensorDictBase:
        batch_shape = tensordict_reset.batch_size
        fresh = self.initial_state(batch_shape)
        reset = tensordict.get("_reset", None)
        old = tensordict.get(self.state_key, None)
        if reset is not None and old is not None:
            reset = reset.reshape(*batch_shape, -1).any(-1, keepdim=True)
            state = torch.where(reset, fresh, old)
        else:
            state = fresh
        return self._composite(tensordict_reset, state)

    def _step(self, tensordict: TensorDictBase, next_tensordict: TensorDictBase) -> TensorDictBase:
        state = tensordict.get(self.state_key, None)
        if state is None:
            raise ValueError(
                f"{type(self).__name__}: the step input lacks its state {self.state_key!r}; "
                "step from the TensorDict returned by reset()."
            )
        return self._composite(next_tensordict, self.next_state(state, tensordict))

    def _call(self, next_tensordict: TensorDictBase) -> TensorDictBase:
        raise RuntimeError(f"{type(self).__name__} only runs inside env.reset() and env.step().")

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        raise RuntimeError(
            f"{type(self).__name__} composites into live renders: it works inside an env, not "
            "on stored data."
        )

    # -- specs -----------------------------------------------------------------------------
    def _state_spec(self, batch_shape: torch.Size, device: Any) -> Unbounded:
        return Unbounded(shape=(*batch_shape, self.state_size), dtype=torch.int64, device=device)

    def transform_observation_spec(self, observation_spec: Composite) -> Composite:
        self._size_from_spec(observation_spec)  # validates the pixel entry
        observation_spec[self.state_key] = self._state_spec(
            observation_spec.shape, observation_spec.device
        )
        return observation_spec

    def transform_input_spec(self, input_spec: Composite) -> Composite:
        if input_spec["full_state_spec"] is None:
            input_spec["full_state_spec"] = Composite(
                shape=input_spec.shape, device=input_spec.device
            )
        input_spec["full_state_spec"][self.state_key] = self._state_spec(
            input_spec.shape, input_spec.device
        )
        return input_spec
