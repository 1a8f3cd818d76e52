"""Evaluation episodes of the policy's mode, and the figures drawn from them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from torchrl.envs import EnvBase
from torchrl.envs.utils import ExplorationType, set_exploration_type

from torchrl_psp.objectives import selective_l2_filter

__all__ = ["DevicePolicy", "EvaluationResult", "evaluate_policy", "model_figures", "episode_video"]


class DevicePolicy(TensorDictModuleBase):
    """Runs ``policy`` on ``device`` for an env that lives on the CPU."""

    def __init__(self, policy: TensorDictModuleBase, device: torch.device):
        super().__init__()
        self.policy = policy
        self.device = torch.device(device)
        self.in_keys = policy.in_keys
        self.out_keys = policy.out_keys

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        if self.device.type == "cpu":
            return self.policy(tensordict)
        return self.policy(tensordict.to(self.device)).to("cpu")


@dataclass
class EvaluationResult:
    """Returns of the evaluation episodes and the first episode's transitions."""

    returns: list[float]
    lengths: list[int]
    first_episode: TensorDictBase

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))


def evaluate_policy(
    env: EnvBase,
    policy: TensorDictModuleBase | None,
    episodes: int,
    max_steps: int,
    exploration_type: ExplorationType = ExplorationType.DETERMINISTIC,
) -> EvaluationResult:
    """Plays ``episodes`` episodes with the policy's mode (``ExplorationType.DETERMINISTIC``).

    Each episode ends when the env says done or after ``max_steps`` steps; its return is
    the sum of rewards. ``exploration_type=ExplorationType.RANDOM`` samples the policy
    instead; ``policy=None`` plays uniformly random actions (``env.rollout``'s default).
    """
    returns, lengths, first = [], [], None
    with set_exploration_type(exploration_type), torch.no_grad():
        for _ in range(episodes):
            rollout = env.rollout(max_steps, policy, break_when_any_done=True)
            returns.append(float(rollout["next", "reward"].sum()))
            lengths.append(int(rollout.shape[0]))
            if first is None:
                first = rollout
    return EvaluationResult(returns, lengths, first)


def _window(episode: TensorDictBase, length: int, keys: list) -> TensorDictBase:
    start = max(0, min(episode.shape[0] - length, episode.shape[0] // 4))
    window = episode[start : start + length].select(*keys, strict=False)
    return window.unsqueeze(0)


def model_figures(
    model_loss: torch.nn.Module,
    episode: TensorDictBase,
    device: torch.device,
    keys: list,
    *,
    figures: tuple[str, ...] = ("reconstruction",),
    window: int = 32,
    frames: int = 4,
) -> dict[str, np.ndarray]:
    """The papers' panels on an evaluation episode, drawn by the world-model loss itself.

    ``figures`` names them (a variant's :attr:`~torchrl_psp.variants.VariantSpec.figures`):

    * ``"reconstruction"`` (every variant; PSP Figs. 5/7): true | reconstruction |
      difference | PSP loss weight (when the loss computes weights).
    * ``"sd_masks"`` (SD variants): true | segmenter mask | target ``x * m`` |
      reconstruction | predicted mask | selective-L2 filter (the last two with the mask
      decoder of ``sd_approx``); drawn when the episode has a task mask.

    With no ``figures`` (DreamerPro: no decoder) nothing is drawn and the loss is not run.
    """
    from torchrl_psp.figures.panels import reconstruction_panel, sd_mask_panel

    if not figures:
        return {}

    keys = [key for key in keys if key in episode.keys(True)]
    for key in (("next", "task_mask"), ("next", "segments")):
        if key in episode.keys(True):
            keys.append(key)
    sample = _window(episode, window, keys).to(device)
    with torch.enable_grad():  # the saliency of PSP differentiates the policy
        _, output = model_loss(sample)
    index = torch.linspace(0, sample.shape[1] - 1, frames).round().long()
    images = sample["next", "pixels"][0, index].cpu()
    reconstructions = output["next", "reco_pixels"][0, index].detach().float().cpu()
    weights = output.get(("next", "loss_weights"), None)
    weights = None if weights is None else weights[0, index].detach().float().cpu()
    panels = {}
    if "reconstruction" in figures:
        panels["reconstruction"] = reconstruction_panel(images, reconstructions, weights)
    task_mask = sample.get(("next", "task_mask"), None)
    if task_mask is not None and "sd_masks" in figures:
        masks = task_mask[0, index].cpu()
        targets = images * masks.unsqueeze(-3)
        logits_key = getattr(model_loss.tensor_keys, "mask_logits", "task_mask_logits")
        logits = output.get(("next", logits_key), None)
        predicted = filters = None
        if logits is not None:
            predicted = torch.sigmoid(logits[0, index].detach().float()).cpu()
            filters = selective_l2_filter(masks, predicted, getattr(model_loss, "threshold", 0.9))
        panels["sd_masks"] = sd_mask_panel(
            images, targets, reconstructions, predicted, filters, masks
        )
    return panels


def episode_video(
    world_model: torch.nn.Module,
    episode: TensorDictBase,
    device: torch.device,
    path: str | Path,
    fps: int = 20,
) -> Path:
    """Writes an evaluation episode as video: what the agent sees | the world model's reconstruction.

    A world model without decoder (DreamerPro's, ``loss.model_loss.world_model``) writes
    what the agent sees only.
    """
    from torchrl_psp.figures.video import write_video

    keys = [k for k in world_model.in_keys if k in episode.keys(True)]
    sample = episode.select(*keys).unsqueeze(0).to(device)
    with torch.no_grad():
        output = world_model(sample)
    seen = sample["next", "pixels"][0].cpu()
    frames = seen
    if ("next", "reco_pixels") in output.keys(True):  # a world model without decoder has none
        reconstruction = output["next", "reco_pixels"][0].float().clamp(0, 1).mul(255).round()
        frames = torch.cat([seen, reconstruction.to(torch.uint8).cpu()], dim=-1)
    frames = frames.permute(0, 2, 3, 1).contiguous()
    return write_video(path, frames.numpy(), fps=fps)
