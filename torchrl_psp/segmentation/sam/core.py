"""Batched building blocks on top of ``segment_anything``'s modules.

SAM's :class:`~segment_anything.SamPredictor` works on one image at a time and its mask
decoder repeats one image embedding for every prompt. The functions here run the same
modules on batches of frames, each frame with its own prompts, and expose two hooks of
PerSAM (an additive bias on the token-to-image attention logits, and an embedding added
to every decoder token). With no hook they compute what SAM computes (tested against
``Sam.mask_decoder``).

Coordinates: frames are ``(H, W)``; SAM resizes the longest side to the encoder input
size ``S`` (1024 for the released models) and pads to ``S x S``. Point prompts are given
in frame pixel coordinates ``(x, y)`` and mapped like ``ResizeLongestSide.apply_coords``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:  # segment_anything is imported where a SAM is built
    from segment_anything.modeling import Sam

__all__ = [
    "FrameGeometry",
    "decode",
    "dense_prompt",
    "encode",
    "frame_geometry",
    "logits_to_frames",
    "preprocess",
    "sparse_prompt",
]

#: Point labels understood by :func:`sparse_prompt` (SAM's conventions).
PAD, NEGATIVE, POSITIVE, BOX_TOP_LEFT, BOX_BOTTOM_RIGHT = -1, 0, 1, 2, 3


@dataclass(frozen=True)
class FrameGeometry:
    """Sizes involved in running SAM on ``(height, width)`` frames at encoder input ``size``."""

    height: int
    width: int
    size: int  # encoder input side S
    resized: tuple[int, int]  # frame size after resizing the longest side to S
    grid: tuple[int, int]  # image-embedding grid (S / patch size)

    @property
    def low_res(self) -> tuple[int, int]:
        """Size of the decoder's mask logits (4x the embedding grid)."""
        return 4 * self.grid[0], 4 * self.grid[1]


def frame_geometry(sam: Sam, height: int, width: int, size: int | None = None) -> FrameGeometry:
    """Geometry of ``height x width`` frames for ``sam`` run at encoder input ``size``.

    Args:
        sam: the model.
        height: frame height.
        width: frame width.
        size: encoder input side; ``None`` uses the model's own (1024 for released SAMs).
            Smaller sizes (multiples of the patch size) are an approximation: see
            :func:`encode`.

    Examples:
        >>> from torchrl_psp.segmentation import build_tiny_sam
        >>> frame_geometry(build_tiny_sam(), 64, 32)
        FrameGeometry(height=64, width=32, size=256, resized=(256, 128), grid=(16, 16))
    """
    patch = sam.image_encoder.patch_embed.proj.kernel_size[0]
    size = int(size or sam.image_encoder.img_size)
    if size <= 0 or size % patch:
        raise ValueError(f"encoder input size must be a positive multiple of {patch}, got {size}.")
    scale = size / max(height, width)
    resized = (int(height * scale + 0.5), int(width * scale + 0.5))
    return FrameGeometry(height, width, size, resized, (size // patch, size // patch))


def preprocess(sam: Sam, frames: torch.Tensor, geometry: FrameGeometry) -> torch.Tensor:
    """Turns uint8 frames ``(N, H, W, 3)`` into SAM's normalised, padded ``(N, 3, S, S)`` input."""
    x = frames.permute(0, 3, 1, 2).float()
    if (x.shape[-2], x.shape[-1]) != geometry.resized:
        x = F.interpolate(x, geometry.resized, mode="bilinear", align_corners=False, antialias=True)
    x = (x - sam.pixel_mean) / sam.pixel_std
    pad_h, pad_w = geometry.size - geometry.resized[0], geometry.size - geometry.resized[1]
    return F.pad(x, (0, pad_w, 0, pad_h))


def encode(sam: Sam, images: torch.Tensor) -> torch.Tensor:
    """Image embeddings ``(N, C, S/16, S/16)`` of preprocessed images ``(N, 3, S, S)``.

    At the model's own input size this is ``sam.image_encoder(images)``. At a smaller
    size ``S`` the absolute position embedding (learned for a 64x64 token grid) is
    resampled bicubically to the ``S/16`` grid; the relative position tables of the
    global-attention blocks are resampled by SAM itself, and windowed blocks pad to their
    window. This is an approximation of the model (it was trained at 1024 only); its
    effect must be measured with real weights.
    """
    encoder = sam.image_encoder
    if images.shape[-1] == encoder.img_size:
        return encoder(images)
    x = encoder.patch_embed(images)  # (N, h, w, C)
    if encoder.pos_embed is not None:
        pos = encoder.pos_embed.permute(0, 3, 1, 2)
        pos = F.interpolate(pos, x.shape[1:3], mode="bicubic", align_corners=False)
        x = x + pos.permute(0, 2, 3, 1).to(x.dtype)
    for block in encoder.blocks:
        x = block(x)
    return encoder.neck(x.permute(0, 3, 1, 2))


def sparse_prompt(
    sam: Sam, coords: torch.Tensor, labels: torch.Tensor, geometry: FrameGeometry
) -> torch.Tensor:
    """Embeds point/box-corner prompts ``(B, N, 2)`` (frame ``(x, y)``) with ``labels`` ``(B, N)``.

    Labels follow SAM: ``-1`` padding, ``0`` negative point, ``1`` positive point, ``2``/``3``
    top-left/bottom-right box corners. Without box corners SAM appends one padding point;
    callers add it themselves (label ``-1``).
    """
    encoder = sam.prompt_encoder
    scale = torch.tensor(
        [geometry.resized[1] / geometry.width, geometry.resized[0] / geometry.height],
        device=coords.device,
    )
    points = coords.float() * scale + 0.5  # SAM shifts to the pixel centre
    embedding = encoder.pe_layer.forward_with_coords(points, (geometry.size, geometry.size))
    table = torch.cat(
        [encoder.not_a_point_embed.weight] + [e.weight for e in encoder.point_embeddings], dim=0
    )
    embedding = torch.where((labels == PAD).unsqueeze(-1), 0.0, embedding)
    return embedding + table[labels.long() + 1]


def dense_prompt(
    sam: Sam, batch: int, geometry: FrameGeometry, mask_logits: torch.Tensor | None = None
) -> torch.Tensor:
    """Dense prompt ``(B, C, h, w)``: SAM's "no mask" embedding, or the embedding of low-res
    mask logits ``(B, 1, 4h, 4w)`` (as returned by :func:`decode`)."""
    encoder = sam.prompt_encoder
    if mask_logits is not None:
        return encoder.mask_downscaling(mask_logits)
    return encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch, -1, *geometry.grid)


def _attention(layer, q, k, v, bias: torch.Tensor | None = None) -> torch.Tensor:
    """SAM's decoder ``Attention`` through ``scaled_dot_product_attention``, with an optional
    additive bias on the logits (broadcast to ``(B, heads, Nq, Nk)``)."""
    heads = layer.num_heads
    q, k, v = layer.q_proj(q), layer.k_proj(k), layer.v_proj(v)
    b, nq, c = q.shape
    q = q.reshape(b, nq, heads, c // heads).transpose(1, 2)
    k = k.reshape(b, k.shape[1], heads, c // heads).transpose(1, 2)
    v = v.reshape(b, v.shape[1], heads, c // heads).transpose(1, 2)
    if bias is not None:
        bias = bias.to(q.dtype)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    return layer.out_proj(out.transpose(1, 2).reshape(b, nq, c))


def _two_way_transformer(transformer, image, image_pe, tokens, bias):
    """``TwoWayTransformer.forward`` with ``bias`` added to every token-to-image attention."""
    keys = image.flatten(2).transpose(1, 2)
    key_pe = image_pe.flatten(2).transpose(1, 2)
    queries, query_pe = tokens, tokens
    for layer in transformer.layers:
        if layer.skip_first_layer_pe:
            queries = _attention(layer.self_attn, queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + _attention(layer.self_attn, q, q, queries)
        queries = layer.norm1(queries)
        k = keys + key_pe
        queries = layer.norm2(
            queries + _attention(layer.cross_attn_token_to_image, queries + query_pe, k, keys, bias)
        )
        queries = layer.norm3(queries + layer.mlp(queries))
        k = keys + key_pe
        keys = layer.norm4(
            keys + _attention(layer.cross_attn_image_to_token, k, queries + query_pe, queries)
        )
    out = _attention(
        transformer.final_attn_token_to_image, queries + query_pe, keys + key_pe, keys, bias
    )
    return transformer.norm_final_attn(queries + out), keys


def decode(
    sam: Sam,
    image_embeddings: torch.Tensor,
    sparse: torch.Tensor,
    dense: torch.Tensor,
    token_offset: torch.Tensor | None = None,
    attention_bias: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Runs SAM's mask decoder on one prompt per row.

    Args:
        sam: the model.
        image_embeddings: ``(B, C, h, w)``, the embedding of each row's image (rows of the
            same image may share storage, e.g. ``emb.expand`` or ``emb[index]``).
        sparse: ``(B, N, C)`` prompt tokens from :func:`sparse_prompt`.
        dense: ``(B, C, h, w)`` from :func:`dense_prompt`.
        token_offset: optional ``(B, C)`` added to every decoder token (PerSAM's
            target-semantic prompting).
        attention_bias: optional ``(B, h * w)`` added to the logits of every
            token-to-image attention (PerSAM's target-guided attention).

    Returns:
        ``(logits, iou)``: mask logits ``(B, 4, 4h, 4w)`` and predicted IoUs ``(B, 4)``;
        index 0 is SAM's single-mask output, 1..3 its multi-mask outputs.
    """
    decoder = sam.mask_decoder
    rows = sparse.shape[0]
    output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
    tokens = torch.cat([output_tokens.unsqueeze(0).expand(rows, -1, -1), sparse], dim=1)
    if token_offset is not None:
        tokens = tokens + token_offset.unsqueeze(1)
    src = image_embeddings + dense
    b, c, h, w = src.shape
    image_pe = sam.prompt_encoder.pe_layer((h, w)).unsqueeze(0).to(src.dtype)
    bias = None if attention_bias is None else attention_bias[:, None, None, :]
    hs, src = _two_way_transformer(
        decoder.transformer, src, image_pe.expand(b, -1, -1, -1), tokens, bias
    )
    mask_tokens = hs[:, 1 : 1 + decoder.num_mask_tokens]
    upscaled = decoder.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
    hyper = torch.stack(
        [mlp(mask_tokens[:, i]) for i, mlp in enumerate(decoder.output_hypernetworks_mlps)], dim=1
    )
    bu, cu, hu, wu = upscaled.shape
    logits = (hyper @ upscaled.reshape(bu, cu, hu * wu)).reshape(bu, -1, hu, wu)
    return logits, decoder.iou_prediction_head(hs[:, 0])


def logits_to_frames(logits: torch.Tensor, geometry: FrameGeometry) -> torch.Tensor:
    """Resamples maps over the padded encoder input ``(B, K, h, w)`` to frames ``(B, K, H, W)``.

    Works for any map covering the ``S x S`` input: the decoder's low-res mask logits
    (4x the embedding grid) or a map on the embedding grid itself. The padded part is
    cropped and the rest resized bilinearly straight to the frame size (SAM goes through
    ``S x S`` first; for frames much smaller than ``S`` both read the same logits up to
    interpolation weights).
    """
    map_h, map_w = logits.shape[-2:]
    crop_h = -(-geometry.resized[0] * map_h // geometry.size)
    crop_w = -(-geometry.resized[1] * map_w // geometry.size)
    logits = logits[..., :crop_h, :crop_w]
    if (crop_h, crop_w) == (geometry.height, geometry.width):
        return logits.float()
    return F.interpolate(
        logits.float(), (geometry.height, geometry.width), mode="bilinear", align_corners=False
    )
