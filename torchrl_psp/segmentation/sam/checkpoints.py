"""Loading Segment Anything (SAM) models: user checkpoints, and tiny random models for tests.

Nothing is downloaded at run time: checkpoints are files the user downloads once from
the official Segment Anything release (:data:`SAM_CHECKPOINT_URLS`).
"""

from __future__ import annotations

import os
import pickle
import zipfile
from functools import partial
from typing import TYPE_CHECKING

import torch

from torchrl_psp.utils.device import resolve_device

if TYPE_CHECKING:  # segment_anything is imported by the functions that build a SAM
    from segment_anything.modeling import Sam

__all__ = ["SAM_CHECKPOINT_URLS", "build_tiny_sam", "load_sam", "resolve_sam"]

#: Official download locations of the Segment Anything checkpoints, per model type.
SAM_CHECKPOINT_URLS: dict[str, str] = {
    "vit_b": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
    "vit_l": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth",
    "vit_h": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth",
}


def _where_to_get(model_type: str) -> str:
    return (
        f"Download the official {model_type} checkpoint from {SAM_CHECKPOINT_URLS[model_type]} "
        "(see https://github.com/facebookresearch/segment-anything#model-checkpoints) and pass "
        "its local path; nothing is downloaded at run time."
    )


def load_sam(
    model_type: str,
    checkpoint: str | os.PathLike,
    device: torch.device | str | None = "auto",
) -> Sam:
    """Builds a SAM model of ``model_type`` with the weights of a local ``checkpoint`` file.

    The model is built and loaded by ``segment_anything.sam_model_registry[model_type]
    (checkpoint=path)``, put in eval mode and moved to ``device``.

    Args:
        model_type: ``"vit_b"``, ``"vit_l"`` or ``"vit_h"``.
        checkpoint: path of the ``.pth`` file (one of :data:`SAM_CHECKPOINT_URLS`).
        device: where the model runs; ``"auto"`` picks CUDA when present.

    Raises:
        ValueError: unknown ``model_type``, or a file that is not a SAM checkpoint of that
            type (corrupt, truncated, or of another model type).
        FileNotFoundError: no file at ``checkpoint``; the message says where to get it.

    Examples:
        >>> load_sam("vit_b", "/nonexistent/sam_vit_b.pth")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        FileNotFoundError: SAM checkpoint not found: '/nonexistent/sam_vit_b.pth'. Download ...
    """
    if model_type not in SAM_CHECKPOINT_URLS:
        raise ValueError(
            f"Unknown SAM model_type {model_type!r}; expected one of {sorted(SAM_CHECKPOINT_URLS)}."
        )
    path = os.fspath(checkpoint)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"SAM checkpoint not found: {path!r}. {_where_to_get(model_type)}")
    from segment_anything import sam_model_registry

    try:
        sam = sam_model_registry[model_type](checkpoint=path)
    except (
        RuntimeError,
        EOFError,
        OSError,
        KeyError,
        AttributeError,
        ValueError,
        pickle.UnpicklingError,
        zipfile.BadZipFile,
    ) as err:
        raise ValueError(
            f"Could not load {path!r} as a SAM {model_type} checkpoint (corrupt or truncated "
            f"file, or a checkpoint of another model type): {type(err).__name__}: "
            f"{str(err)[:300]}. {_where_to_get(model_type)}"
        ) from err
    return sam.eval().to(resolve_device(device))


def build_tiny_sam(
    seed: int = 0,
    image_size: int = 256,
    device: torch.device | str | None = "cpu",
) -> Sam:
    """Builds a tiny SAM with random weights from ``segment_anything.modeling``.

    Same architecture family as the real models (ViT image encoder with windowed and
    global attention and relative positions, prompt encoder, two-way transformer mask
    decoder with 3 multi-mask outputs and an IoU head), scaled down to about 0.2M
    parameters so that it runs in milliseconds on a CPU. Its masks are meaningless: use it
    for smoke tests, doctests and cost measurements of the plumbing, never for quality.

    Args:
        seed: seed of the random weights (the global RNG is left untouched).
        image_size: encoder input size (a multiple of 16; real SAM uses 1024).
        device: where the model lives.

    Examples:
        >>> sam = build_tiny_sam(seed=0)
        >>> sam.image_encoder.img_size, sum(p.numel() for p in sam.parameters()) < 300_000
        (256, True)
    """
    if image_size % 16 or image_size <= 0:
        raise ValueError(f"image_size must be a positive multiple of 16, got {image_size}.")
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    dim, prompt_dim = 32, 32
    grid = image_size // 16
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        sam = Sam(
            image_encoder=ImageEncoderViT(
                depth=2,
                embed_dim=dim,
                img_size=image_size,
                mlp_ratio=2.0,
                norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                num_heads=2,
                patch_size=16,
                qkv_bias=True,
                use_rel_pos=True,
                global_attn_indexes=(1,),
                window_size=14,
                out_chans=prompt_dim,
            ),
            prompt_encoder=PromptEncoder(
                embed_dim=prompt_dim,
                image_embedding_size=(grid, grid),
                input_image_size=(image_size, image_size),
                mask_in_chans=4,
            ),
            mask_decoder=MaskDecoder(
                num_multimask_outputs=3,
                transformer=TwoWayTransformer(
                    depth=2, embedding_dim=prompt_dim, mlp_dim=64, num_heads=2
                ),
                transformer_dim=prompt_dim,
                iou_head_depth=2,
                iou_head_hidden_dim=32,
            ),
        )
        # Real checkpoints have non-zero absolute and relative position embeddings.
        for name, param in sam.image_encoder.named_parameters():
            if name == "pos_embed" or name.endswith(("rel_pos_h", "rel_pos_w")):
                torch.nn.init.normal_(param, std=0.02)
    return sam.eval().to(resolve_device(device))


def resolve_sam(
    sam: Sam | None,
    model_type: str,
    checkpoint: str | os.PathLike | None,
    device: torch.device | str | None = "auto",
) -> Sam:
    """The model a transform runs: ``sam`` moved to ``device``, or ``load_sam(model_type,
    checkpoint, device)``.

    Raises:
        ValueError: neither ``sam`` nor ``checkpoint`` given, or both.

    Examples:
        >>> resolve_sam(None, "vit_b", None)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: No SAM model: pass checkpoint=<path of the vit_b .pth file> ...
    """
    if sam is not None and checkpoint is not None:
        raise ValueError("Pass either a built `sam` model or a `checkpoint` path, not both.")
    if sam is None:
        if checkpoint is None:
            if model_type not in SAM_CHECKPOINT_URLS:
                raise ValueError(
                    f"Unknown SAM model_type {model_type!r}; expected one of "
                    f"{sorted(SAM_CHECKPOINT_URLS)}."
                )
            raise ValueError(
                f"No SAM model: pass checkpoint=<path of the {model_type} .pth file> "
                f"({SAM_CHECKPOINT_URLS[model_type]}), or sam=<a built model>; "
                "build_tiny_sam() gives a tiny random model for smoke tests."
            )
        return load_sam(model_type, checkpoint, device)
    from segment_anything.modeling import Sam

    if not isinstance(sam, Sam):
        raise ValueError(f"`sam` must be a segment_anything Sam model, got {type(sam).__name__}.")
    return sam.eval().to(resolve_device(device))
