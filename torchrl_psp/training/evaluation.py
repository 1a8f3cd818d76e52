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

__all__ = [
    "DevicePolicy",
    "EvaluationResult",
    "episode_region_errors",
    "episode_video",
    "evaluate_policy",
    "model_figures",
    "region_reconstruction_errors",
]


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
    if ("next", "reco_pixels") not in output.keys(True):
        raise ValueError(
            f"figures={tuple(figures)} draw reconstructions, but this world model has no "
            "decoder (no ('next', 'reco_pixels')); a variant without decoder draws figures=()."
        )
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


def _reconstruct_episode(
    world_model: torch.nn.Module, episode: TensorDictBase, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The episode's images ``uint8 (T, 3, H, W)`` and the world model's reconstruction of
    them, float ``(T, 3, H, W)`` on the ``[0, 1]`` scale, on the CPU (``None`` for a world
    model without decoder). One forward pass of the world model over the whole episode."""
    keys = [k for k in world_model.in_keys if k in episode.keys(True)]
    sample = episode.select(*keys).unsqueeze(0).to(device)
    with torch.no_grad():
        output = world_model(sample)
    seen = sample["next", "pixels"][0].cpu()
    if ("next", "reco_pixels") not in output.keys(True):  # DreamerPro's world model
        return seen, None
    return seen, output["next", "reco_pixels"][0].float().cpu()


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

    seen, reconstruction = _reconstruct_episode(world_model, episode, device)
    frames = seen
    if reconstruction is not None:
        reconstruction = reconstruction.clamp(0, 1).mul(255).round().to(torch.uint8)
        frames = torch.cat([seen, reconstruction], dim=-1)
    frames = frames.permute(0, 2, 3, 1).contiguous()
    return write_video(path, frames.numpy(), fps=fps)


def region_reconstruction_errors(
    images: torch.Tensor, reconstructions: torch.Tensor, task_mask: torch.Tensor
) -> dict[str, float]:
    """Mean squared reconstruction error on the agent's pixels and on the background's.

    The squared error of a pixel is the mean over its 3 colour channels of
    ``(image - reconstruction) ** 2`` on the ``[0, 1]`` scale (``uint8`` images are divided
    by 255; float reconstructions are used as they are, not clipped). ``"agent"`` is its
    mean over every pixel of every frame inside ``task_mask``, ``"background"`` over every
    pixel outside it (pooled over frames, so each pixel counts once). A region without any
    pixel gives ``nan``.

    Args:
        images: ``(..., 3, H, W)``, ``uint8`` or float in ``[0, 1]``.
        reconstructions: float, the shape of ``images``.
        task_mask: bool ``(..., H, W)``: the agent (and task objects), e.g. the ground-truth
            ``"task_mask"`` of :class:`~torchrl_psp.envs.GroundTruthSegmentation`.

    Raises:
        ValueError: when the shapes do not match.

    Examples:
        >>> images = torch.zeros(1, 3, 2, 2)
        >>> reconstructions = torch.tensor([[[[0.1, 0.0], [0.0, 0.4]]]]).expand(1, 3, 2, 2)
        >>> task_mask = torch.tensor([[[True, False], [False, False]]])
        >>> errors = region_reconstruction_errors(images, reconstructions, task_mask)
        >>> round(errors["agent"], 6), round(errors["background"], 6)  # 0.1**2; 0.4**2 / 3
        (0.01, 0.053333)
    """
    if images.shape != reconstructions.shape or images.dim() < 3 or images.shape[-3] != 3:
        raise ValueError(
            "images and reconstructions must both be (..., 3, H, W); got "
            f"{tuple(images.shape)} and {tuple(reconstructions.shape)}."
        )
    if task_mask.shape != images.shape[:-3] + images.shape[-2:]:
        raise ValueError(
            f"task_mask must be (..., H, W) = {tuple(images.shape[:-3] + images.shape[-2:])} "
            f"for images {tuple(images.shape)}; got {tuple(task_mask.shape)}."
        )
    target = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    squared = (target - reconstructions.float()).pow(2).mean(dim=-3)  # (..., H, W)
    inside = task_mask.to(torch.bool)
    errors = {}
    for name, region in (("agent", inside), ("background", ~inside)):
        count = int(region.sum())
        errors[name] = float(squared[region].sum() / count) if count else float("nan")
    return errors


def episode_region_errors(
    world_model: torch.nn.Module, episode: TensorDictBase, device: torch.device
) -> dict[str, float]:
    """:func:`region_reconstruction_errors` of the world model's reconstruction of an
    evaluation episode (every frame, ``("next", "pixels")`` against its
    ``("next", "task_mask")``); empty when the episode has no task mask or the world model
    no decoder.
    """
    if ("next", "task_mask") not in episode.keys(True):
        return {}
    seen, reconstruction = _reconstruct_episode(world_model, episode, device)
    if reconstruction is None:
        return {}
    return region_reconstruction_errors(seen, reconstruction, episode["next", "task_mask"])
