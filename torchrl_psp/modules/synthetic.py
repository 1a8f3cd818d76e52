"""Synthetic replay samples shaped like the learner's input, for warm-up, tests and benchmarks."""

from __future__ import annotations

import torch
from tensordict import TensorDict

from torchrl_psp.keys import SEGMENTS_DTYPE
from torchrl_psp.modules.dreamer import DreamerV3Agent

__all__ = ["synthetic_replay_sample"]


def synthetic_replay_sample(
    agent: DreamerV3Agent,
    batch_size: int,
    sequence_length: int,
    *,
    num_segments: int = 8,
    episode_length: int | None = None,
    generator: torch.Generator | None = None,
) -> TensorDict:
    """A random ``(batch_size, sequence_length)`` replay sample for ``agent``'s learner.

    Entries (the layout the losses read; images channels first):

    * root: ``"state"``, ``"belief"`` (zeros), ``"action"`` in ``[-1, 1]`` (the action
      taken from the root observation, i.e. the one before the ``"next"`` image),
      ``"previous_action"``, ``"is_init"`` ``(B, T, 1)`` (``True`` every
      ``episode_length`` steps, first step included);
    * ``"next"``: ``pixels`` ``uint8`` ``(B, T, C, H, W)``, ``segments``
      (:data:`~torchrl_psp.keys.SEGMENTS_DTYPE`, ids ``0..num_segments-1`` in square
      blocks), ``task_mask`` (bool), ``reward``, ``done`` and ``terminated``.

    Args:
        agent: the agent (sizes, image shape, pixel key and device are read from it).
        batch_size: sequences.
        sequence_length: steps per sequence.
        num_segments: distinct segment ids per image.
        episode_length: period of ``is_init``; ``None``: only the first step.
        generator: random generator (CPU).

    Examples:
        >>> from torchrl.data import Bounded
        >>> from torchrl_psp.modules import make_dreamer_v3
        >>> agent = make_dreamer_v3(Bounded(-1, 1, (2,)), (3, 16, 16), preset="tiny",
        ...                         image_mults=(1, 2), device="cpu")
        >>> sample = synthetic_replay_sample(agent, 2, 3)
        >>> sample["next", "pixels"].shape, sample["next", "segments"].dtype
        (torch.Size([2, 3, 3, 16, 16]), torch.int16)
    """
    config = agent.config
    device = next(agent.world_model.parameters()).device
    shape = (batch_size, sequence_length)
    channels, height, width = agent.image_shape

    def uniform(*size: int) -> torch.Tensor:
        return torch.rand(*shape, *size, generator=generator)

    block = max(1, min(height, width) // 4)
    block_ids = torch.randint(
        0,
        num_segments,
        (*shape, -(-height // block), -(-width // block)),
        generator=generator,
    )
    segments = block_ids.repeat_interleave(block, -2).repeat_interleave(block, -1)
    segments = segments[..., :height, :width].to(SEGMENTS_DTYPE)
    steps = torch.arange(sequence_length)
    is_init = steps == 0 if episode_length is None else steps % episode_length == 0
    sample = TensorDict(
        {
            "state": torch.zeros(*shape, config.state_dim),
            "belief": torch.zeros(*shape, config.rnn_hidden_dim),
            "action": uniform(agent.action_dim) * 2 - 1,
            "previous_action": uniform(agent.action_dim) * 2 - 1,
            "is_init": is_init.expand(*shape).unsqueeze(-1).clone(),
            "next": {
                agent.pixels_key: (uniform(channels, height, width) * 256).to(torch.uint8),
                "segments": segments,
                "task_mask": uniform(height, width) > 0.7,
                "reward": uniform(1),
                "done": torch.zeros(*shape, 1, dtype=torch.bool),
                "terminated": torch.zeros(*shape, 1, dtype=torch.bool),
            },
        },
        batch_size=shape,
    )
    return sample.to(device)
