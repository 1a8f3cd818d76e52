"""Segmentation Dreamer world-model loss on TorchRL's DreamerV3 (SD §2 and Appendix A)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModule
from tensordict.utils import NestedKey
from torch import nn
from torch.nn import functional as F

from torchrl_psp._torchrl_private import clear_loss_weakrefs
from torchrl_psp.objectives.reconstruction import ImageReconstructionModelLoss
from torchrl_psp.objectives.selective_l2 import selective_l2_filter

__all__ = ["SDModelLoss"]


class SDModelLoss(ImageReconstructionModelLoss):
    """DreamerV3 world-model loss with SD's task-relevant reconstruction.

    * Image term: the target is ``x_t * m_t`` (task mask ``m_t`` from
      ``("next", task_mask)``; pixels outside the mask are black), compared with the
      reconstruction by DreamerV3's per-pixel squared error.
    * Selective L2 (``mask_decoder`` given, SD_approx): a mask head reads the latent
      features ``(z_t, h_t)`` *detached* and predicts the task mask (a logit per
      pixel), trained by binary cross-entropy against ``m_t`` (``loss_model_mask``);
      the RGB error is then summed only over the pixels of
      :func:`~torchrl_psp.objectives.selective_l2_filter` ``(m_t, sigmoid(logit), 0.9)``.
      Without a mask head (SD_GT, SD_L2) every pixel counts.

    KL, reward and continuation terms are DreamerV3's, unchanged.

    Args:
        world_model: the world model (see :func:`~torchrl_psp.modules.make_dreamer_v3`).
        mask_decoder: module ``(state, belief) -> (*batch, 1, H, W)`` mask logits
            (e.g. a one-channel :class:`~torchrl.modules.DreamerV3ImageDecoder`);
            ``None`` turns the selective L2 off.
        threshold: confidence of the mask head above which it overrides the segmenter.
        lambda_mask: weight of ``loss_model_mask``.
        **kwargs: arguments of :class:`~torchrl.objectives.DreamerV3ModelLoss`.

    Output entries: DreamerV3's ``loss_model_*``, ``loss_model_mask`` (with a mask
    head) and the detached metrics ``task_mask_fraction`` (share of task pixels),
    ``filter_fraction`` (share of pixels in the L2) and ``mask_accuracy`` (the mask
    head's pixel accuracy at 0.5). The world-model TensorDict holds the mask logits
    under ``("next", mask_logits)``.

    Examples:
        >>> from tensordict import TensorDict
        >>> from torchrl.data import Bounded
        >>> from torchrl.modules import DreamerV3ImageDecoder
        >>> from torchrl_psp.modules import make_dreamer_v3
        >>> agent = make_dreamer_v3(Bounded(-1, 1, (2,)), (3, 16, 16), preset="tiny",
        ...                         image_mults=(1, 2), device="cpu")
        >>> cfg = agent.config
        >>> mask_decoder = DreamerV3ImageDecoder(
        ...     cfg.feature_dim, (1, 16, 16), depth=2, mults=(1, 2), num_blocks=1)
        >>> loss = SDModelLoss(agent.world_model, mask_decoder=mask_decoder,
        ...                    num_reward_bins=cfg.num_reward_bins)
        >>> B, T = 2, 3
        >>> sample = TensorDict({
        ...     "state": torch.zeros(B, T, cfg.state_dim),
        ...     "belief": torch.zeros(B, T, cfg.rnn_hidden_dim),
        ...     "action": torch.zeros(B, T, 2),
        ...     "is_init": torch.zeros(B, T, 1, dtype=torch.bool),
        ...     "next": {
        ...         "pixels": torch.randint(0, 256, (B, T, 3, 16, 16), dtype=torch.uint8),
        ...         "task_mask": torch.rand(B, T, 16, 16) > 0.5,
        ...         "reward": torch.randn(B, T, 1),
        ...     },
        ... }, [B, T])
        >>> losses, _ = loss(sample)
        >>> sorted(key for key in losses.keys() if key.startswith("loss_"))
        ['loss_model_kl', 'loss_model_mask', 'loss_model_reco', 'loss_model_reward']
    """

    @dataclass
    class _AcceptedKeys(ImageReconstructionModelLoss._AcceptedKeys):
        """Configurable keys (those of ``DreamerV3ModelLoss`` and the following).

        Attributes:
            task_mask: the segmenter's task mask, read under ``"next"``.
                Default ``"task_mask"``.
            mask_logits: the mask head's logits, written under ``"next"``.
                Default ``"task_mask_logits"``.
            state: posterior sample, under ``"next"``. Default ``"state"``.
            belief: RSSM belief, under ``"next"``. Default ``"belief"``.
        """

        task_mask: NestedKey = "task_mask"
        mask_logits: NestedKey = "task_mask_logits"
        state: NestedKey = "state"
        belief: NestedKey = "belief"

    tensor_keys: _AcceptedKeys
    default_keys = _AcceptedKeys

    def __init__(
        self,
        world_model: TensorDictModule,
        *,
        mask_decoder: nn.Module | None = None,
        threshold: float = 0.9,
        lambda_mask: float = 1.0,
        **kwargs,
    ):
        super().__init__(world_model, **kwargs)
        self.mask_decoder = mask_decoder
        self.threshold = threshold
        self.lambda_mask = lambda_mask

    @property
    def extra_in_keys(self) -> list[NestedKey]:
        return [self._next(self.tensor_keys.task_mask)]

    def forward(self, tensordict: TensorDictBase) -> tuple[TensorDict, TensorDictBase]:
        images = self._images(tensordict)
        mask_key = self._next(self.tensor_keys.task_mask)
        task_mask = self._get(tensordict, mask_key, "the task mask")
        self._check_map(task_mask, mask_key, images)
        task_mask = task_mask.bool()

        losses, output = super().forward(tensordict)
        target, prediction = self._target_and_prediction(images, output)
        target = target * task_mask.unsqueeze(-3).to(target.dtype)
        error = self._pixel_error(target, prediction)
        batch_dims = tensordict.ndim
        metrics = {"task_mask_fraction": task_mask.float().mean()}
        if self.mask_decoder is not None:
            state = output.get(self._next(self.tensor_keys.state)).detach()
            belief = output.get(self._next(self.tensor_keys.belief)).detach()
            logits = self.mask_decoder(state, belief).float()
            if logits.shape[-3] != 1 or logits.shape[:-3] + logits.shape[-2:] != task_mask.shape:
                raise ValueError(
                    f"mask_decoder must return logits of shape (*batch, 1, H, W) matching the "
                    f"task mask {tuple(task_mask.shape)}; got {tuple(logits.shape)}."
                )
            logits = logits.squeeze(-3)
            output.set(self._next(self.tensor_keys.mask_logits), logits)
            mask_error = F.binary_cross_entropy_with_logits(
                logits, task_mask.to(logits.dtype), reduction="none"
            )
            losses.set("loss_model_mask", self.lambda_mask * self._reduce(mask_error, batch_dims))
            with torch.no_grad():
                probabilities = torch.sigmoid(logits)
                kept = selective_l2_filter(task_mask, probabilities, self.threshold)
                metrics["mask_accuracy"] = ((probabilities > 0.5) == task_mask).float().mean()
            metrics["filter_fraction"] = kept.float().mean()
            error = error * kept.unsqueeze(-3).to(error.dtype)
        losses.set("loss_model_reco", self.lambda_reco * self._reduce(error, batch_dims))
        losses.update(metrics)
        clear_loss_weakrefs(self, tensordict, losses)
        return losses, output
