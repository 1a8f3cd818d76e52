"""PerSAM and PerSAM-F: one-shot personalised Segment Anything (Zhang et al., 2023).

Implemented from the paper's description on top of ``segment_anything``'s modules
(through :mod:`torchrl_psp.segmentation.sam.core`), batched over frames:

1. **Target embedding.** The reference image is encoded; its mask, downsampled to the
   embedding grid as the fraction of each cell it covers, weights the average of the
   L2-normalised cell features (the target feature ``t``, used for location) and of the
   raw features (the semantic embedding, used for prompting).
2. **Location prior.** For a new frame, the cosine similarity of every cell feature with
   the reference's cell features, averaged over the reference's cells (= the dot product
   of the normalised features with ``t``), is resampled to frame size; its
   ``num_positive`` highest pixels are positive point prompts and its ``num_negative``
   lowest are negative ones.
3. **Target-guided attention.** The similarity map, standardised over the grid (zero
   mean, unit variance), times ``guidance_scale`` is added to the logits of every
   token-to-image attention of SAM's mask decoder. (The paper adds a softmax of the map;
   a standardised map gives a bias whose scale does not depend on the number of cells.)
4. **Target-semantic prompting.** The semantic embedding is added to every decoder
   token (output tokens and prompt tokens).
5. **Cascaded post-refinement.** The first mask's logits are fed back as a mask prompt
   with the same points, then once more with the box of the refined mask added; each
   step keeps the multi-mask output with the highest predicted IoU. Guidance and
   semantic prompting act on the first decoding only.

PerSAM keeps the first decoding's multi-mask output with the highest predicted IoU.
**PerSAM-F** instead mixes the three multi-mask logits with two learned weights
``w1, w2`` (the third is ``1 - w1 - w2``), fitted on the reference itself with dice plus
focal loss while SAM stays frozen; the decoder outputs of the reference are computed once,
so fitting costs a fraction of a second.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from torchrl_psp.segmentation.reference import check_reference
from torchrl_psp.segmentation.sam import core as sam_core

if TYPE_CHECKING:  # segment_anything is imported where a SAM is built
    from segment_anything.modeling import Sam

__all__ = ["PerSAMPredictor", "dice_loss", "sigmoid_focal_loss"]


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft dice loss of sigmoid ``logits`` against a binary ``target``, averaged over images.

    Examples:
        >>> target = torch.tensor([[1.0, 0.0]])
        >>> round(dice_loss(torch.tensor([[20.0, -20.0]]), target).item(), 4)
        0.0
    """
    prob = logits.sigmoid().flatten(1)
    target = target.float().flatten(1)
    inter = (prob * target).sum(1)
    return (1 - (2 * inter + eps) / (prob.sum(1) + target.sum(1) + eps)).mean()


def sigmoid_focal_loss(
    logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Focal loss (Lin et al., 2017) of ``logits`` against a binary ``target``, mean over pixels.

    Examples:
        >>> bool(sigmoid_focal_loss(torch.tensor([5.0]), torch.tensor([1.0])) < 1e-4)
        True
    """
    target = target.float()
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = prob * target + (1 - prob) * (1 - target)
    weight = alpha * target + (1 - alpha) * (1 - target)
    return (weight * ce * (1 - p_t) ** gamma).mean()


class PerSAMPredictor:
    """Predicts the reference's target in new frames with PerSAM or PerSAM-F.

    Args:
        sam: a SAM model (see :func:`~torchrl_psp.segmentation.load_sam`); it is not
            modified and runs where it lives.
        reference_image: uint8 ``(H, W, 3)`` or ``(N, H, W, 3)`` (several references are
            averaged into one target).
        reference_mask: bool ``(H, W)`` or ``(N, H, W)``, the target in each reference.
        fine_tune: fit PerSAM-F's two mask weights (``True``) or use PerSAM (``False``).
        fine_tune_steps: Adam steps of the fit.
        lr: learning rate of the fit.
        guidance_scale: scale of the target-guided attention bias (``0`` disables it).
        semantic_prompt: add the target embedding to the decoder tokens.
        refine_steps: cascaded post-refinement steps, 0 to 2.
        num_positive: positive points (highest similarity).
        num_negative: negative points (lowest similarity).
        blacken_reference: set reference pixels outside the mask to black before
            encoding, as Segmentation Dreamer prepares its reference.
        encoder_input_size: encoder input side; ``None`` uses the model's own.
        amp_dtype: autocast dtype for encoder and decoder (``None``: fp32).

    Examples:
        >>> from torchrl_psp.segmentation import build_tiny_sam
        >>> image = torch.zeros(32, 32, 3, dtype=torch.uint8)
        >>> mask = torch.zeros(32, 32, dtype=torch.bool)
        >>> mask[8:20, 10:24] = True
        >>> image[mask] = 200
        >>> persam = PerSAMPredictor(build_tiny_sam(image_size=64), image, mask, fine_tune_steps=20)
        >>> persam.mask_weights.shape, round(persam.mask_weights.sum().item(), 4)
        (torch.Size([3]), 1.0)
        >>> persam.predict(image.expand(2, -1, -1, -1)).shape
        torch.Size([2, 32, 32])
    """

    def __init__(
        self,
        sam: Sam,
        reference_image: torch.Tensor,
        reference_mask: torch.Tensor,
        *,
        fine_tune: bool = True,
        fine_tune_steps: int = 1000,
        lr: float = 1e-3,
        guidance_scale: float = 1.0,
        semantic_prompt: bool = True,
        refine_steps: int = 2,
        num_positive: int = 1,
        num_negative: int = 1,
        blacken_reference: bool = True,
        encoder_input_size: int | None = None,
        amp_dtype: torch.dtype | None = None,
    ):
        if not 0 <= refine_steps <= 2:
            raise ValueError(f"refine_steps must be 0, 1 or 2, got {refine_steps}.")
        if num_positive < 1 or num_negative < 0:
            raise ValueError(
                f"need num_positive >= 1 and num_negative >= 0, got {num_positive}, {num_negative}."
            )
        self.sam = sam
        self.guidance_scale = float(guidance_scale)
        self.semantic_prompt = semantic_prompt
        self.refine_steps = refine_steps
        self.num_positive, self.num_negative = num_positive, num_negative
        self.encoder_input_size = encoder_input_size
        self.amp_dtype = amp_dtype
        image, mask = check_reference(reference_image, reference_mask)
        device = self.device
        image, mask = image.to(device), mask.to(device)
        if blacken_reference:
            image = image * mask.unsqueeze(-1).to(image.dtype)
        with torch.no_grad():
            geometry = self._geometry(image)
            embeddings = self._encode(image, geometry)
            weight = self._cell_fractions(mask, geometry)  # (N, 1, h, w)
            total = weight.sum()
            normed = F.normalize(embeddings.float(), dim=1)
            self.target_feature = (normed * weight).sum(dim=(0, 2, 3)) / total
            self.semantic_embedding = (embeddings.float() * weight).sum(dim=(0, 2, 3)) / total
        self._weights = None
        self.fine_tune_seconds = 0.0
        if fine_tune:
            start = time.perf_counter()
            self._fit(embeddings, mask, geometry, fine_tune_steps, lr)
            self.fine_tune_seconds = time.perf_counter() - start

    @property
    def device(self) -> torch.device:
        """Where the model runs."""
        return self.sam.pixel_mean.device

    @property
    def mask_weights(self) -> torch.Tensor | None:
        """PerSAM-F's weights of the three multi-mask outputs (``None`` for PerSAM)."""
        if self._weights is None:
            return None
        return torch.cat([self._weights, 1 - self._weights.sum(0, keepdim=True)]).detach()

    def _autocast(self):
        return torch.autocast(
            self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None
        )

    def _geometry(self, frames: torch.Tensor) -> sam_core.FrameGeometry:
        return sam_core.frame_geometry(
            self.sam, frames.shape[-3], frames.shape[-2], self.encoder_input_size
        )

    def _encode(self, frames: torch.Tensor, geometry: sam_core.FrameGeometry) -> torch.Tensor:
        with self._autocast():
            return sam_core.encode(self.sam, sam_core.preprocess(self.sam, frames, geometry))

    def _cell_fractions(self, mask: torch.Tensor, g: sam_core.FrameGeometry) -> torch.Tensor:
        """Fraction of every embedding cell covered by ``mask`` ``(N, H, W)``."""
        m = F.interpolate(mask[:, None].float(), g.resized, mode="nearest")
        m = F.pad(m, (0, g.size - g.resized[1], 0, g.size - g.resized[0]))
        return F.adaptive_avg_pool2d(m, g.grid)

    def _first_decoding(self, embeddings: torch.Tensor, geometry: sam_core.FrameGeometry):
        """Location prior, points, and the guided first decoding of every frame."""
        b = embeddings.shape[0]
        similarity = torch.einsum(
            "bchw,c->bhw", F.normalize(embeddings.float(), dim=1), self.target_feature
        )
        dense_sim = sam_core.logits_to_frames(similarity[:, None], geometry)[:, 0].flatten(1)
        width = geometry.width
        index = torch.cat(
            [
                dense_sim.topk(self.num_positive, dim=1).indices,
                (-dense_sim).topk(self.num_negative, dim=1).indices,
            ],
            dim=1,
        )
        points = torch.stack([index % width, index // width], dim=-1).float()
        labels = torch.tensor(
            [sam_core.POSITIVE] * self.num_positive + [sam_core.NEGATIVE] * self.num_negative,
            device=self.device,
        ).expand(b, -1)
        bias = offset = None
        if self.guidance_scale:
            flat = similarity.flatten(1)
            z = (flat - flat.mean(1, keepdim=True)) / flat.std(1, keepdim=True).clamp_min(1e-6)
            bias = self.guidance_scale * z
        if self.semantic_prompt:
            offset = self.semantic_embedding.expand(b, -1)
        pad_point, pad_label = points.new_zeros(b, 1, 2), labels.new_full((b, 1), sam_core.PAD)
        with self._autocast():
            sparse = sam_core.sparse_prompt(
                self.sam,
                torch.cat([points, pad_point], 1),
                torch.cat([labels, pad_label], 1),
                geometry,
            )
            dense = sam_core.dense_prompt(self.sam, b, geometry)
            logits, iou = sam_core.decode(self.sam, embeddings, sparse, dense, offset, bias)
        return logits[:, 1:].float(), iou[:, 1:].float(), points, labels

    def _fit(self, embeddings, mask, geometry, steps: int, lr: float) -> None:
        with torch.no_grad():
            low, _, _, _ = self._first_decoding(embeddings, geometry)
            logits = sam_core.logits_to_frames(low, geometry)  # (N, 3, H, W)
        target = mask.float()
        weights = torch.full((2,), 1.0 / 3.0, device=self.device, requires_grad=True)
        optimizer = torch.optim.Adam([weights], lr=lr)
        with torch.enable_grad():
            for _ in range(steps):
                w = torch.cat([weights, 1 - weights.sum(0, keepdim=True)])
                mixed = torch.einsum("k,nkhw->nhw", w, logits)
                loss = dice_loss(mixed, target) + sigmoid_focal_loss(mixed, target)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        self._weights = weights.detach()

    @staticmethod
    def _best(logits: torch.Tensor, iou: torch.Tensor) -> torch.Tensor:
        index = iou.argmax(dim=1)
        return logits[torch.arange(logits.shape[0], device=logits.device), index]

    def _boxes(self, low: torch.Tensor, points: torch.Tensor, g: sam_core.FrameGeometry):
        """Inclusive ``(x0, y0), (x1, y1)`` boxes of the masks (``(B, 2, 2)``); a point's
        one-pixel box where a mask is empty."""
        masks = sam_core.logits_to_frames(low[:, None], g)[:, 0] > self.sam.mask_threshold
        cols, rows = masks.any(dim=1), masks.any(dim=2)
        xs = torch.arange(g.width, device=low.device)
        ys = torch.arange(g.height, device=low.device)
        big = max(g.width, g.height)
        x0 = torch.where(cols, xs, big).amin(1)
        x1 = torch.where(cols, xs, -1).amax(1)
        y0 = torch.where(rows, ys, big).amin(1)
        y1 = torch.where(rows, ys, -1).amax(1)
        box = torch.stack([torch.stack([x0, y0], -1), torch.stack([x1, y1], -1)], 1).float()
        empty = ~cols.any(dim=1)
        point_box = points[:, :1].expand(-1, 2, -1)
        return torch.where(empty[:, None, None], point_box, box)

    @torch.no_grad()
    def predict_logits(self, frames: torch.Tensor) -> torch.Tensor:
        """Mask logits ``(N, H, W)`` of uint8 frames ``(N, H, W, 3)``."""
        frames = frames.to(self.device)
        geometry = self._geometry(frames)
        embeddings = self._encode(frames, geometry)
        multi, iou, points, labels = self._first_decoding(embeddings, geometry)
        if self._weights is None:
            low = self._best(multi, iou)
        else:
            low = torch.einsum("k,bkhw->bhw", self.mask_weights, multi)
        b = frames.shape[0]
        pad_point, pad_label = points.new_zeros(b, 1, 2), labels.new_full((b, 1), sam_core.PAD)
        for step in range(self.refine_steps):
            if step == 0:
                coords, kinds = torch.cat([points, pad_point], 1), torch.cat([labels, pad_label], 1)
            else:
                box_labels = labels.new_tensor([sam_core.BOX_TOP_LEFT, sam_core.BOX_BOTTOM_RIGHT])
                coords = torch.cat([points, self._boxes(low, points, geometry)], 1)
                kinds = torch.cat([labels, box_labels.expand(b, -1)], 1)
            with self._autocast():
                sparse = sam_core.sparse_prompt(self.sam, coords, kinds, geometry)
                dense = sam_core.dense_prompt(self.sam, b, geometry, low[:, None])
                logits, iou = sam_core.decode(self.sam, embeddings, sparse, dense)
            low = self._best(logits[:, 1:].float(), iou[:, 1:].float())
        return sam_core.logits_to_frames(low[:, None], geometry)[:, 0]

    def predict(self, frames: torch.Tensor) -> torch.Tensor:
        """Boolean target masks ``(N, H, W)`` of uint8 frames ``(N, H, W, 3)``."""
        return self.predict_logits(frames) > self.sam.mask_threshold
