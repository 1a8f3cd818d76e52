"""The batched SAM blocks compute what segment_anything's own modules compute."""

from __future__ import annotations

import pytest
import torch

from torchrl_psp.segmentation import build_tiny_sam
from torchrl_psp.segmentation.sam import core as sam_core


@pytest.fixture()
def setup(tiny_sam, frames):
    geometry = sam_core.frame_geometry(tiny_sam, 32, 32)
    with torch.no_grad():
        embeddings = sam_core.encode(tiny_sam, sam_core.preprocess(tiny_sam, frames, geometry))
    return tiny_sam, geometry, embeddings


def test_geometry():
    sam = build_tiny_sam()  # encoder input 256
    g = sam_core.frame_geometry(sam, 64, 48)
    assert g.resized == (256, 192) and g.grid == (16, 16) and g.low_res == (64, 64)
    assert sam_core.frame_geometry(sam, 64, 64, 128).grid == (8, 8)
    with pytest.raises(ValueError, match="multiple of 16"):
        sam_core.frame_geometry(sam, 64, 64, 100)


def test_preprocess_matches_sam(tiny_sam, frames):
    g = sam_core.frame_geometry(tiny_sam, 32, 32)
    x = sam_core.preprocess(tiny_sam, frames, g)
    assert x.shape == (3, 3, 128, 128)
    # An image already at the input size is only normalised and padded, as Sam.preprocess.
    g_full = sam_core.frame_geometry(tiny_sam, 128, 128)
    big = torch.randint(0, 256, (1, 128, 128, 3), dtype=torch.uint8)
    expected = tiny_sam.preprocess(big[0].permute(2, 0, 1).float())
    torch.testing.assert_close(sam_core.preprocess(tiny_sam, big, g_full)[0], expected)


def test_encode_full_size_is_the_image_encoder(setup, frames):
    sam, g, embeddings = setup
    with torch.no_grad():
        expected = sam.image_encoder(sam_core.preprocess(sam, frames, g))
    torch.testing.assert_close(embeddings, expected)
    assert embeddings.shape == (3, 32, 8, 8)


def test_encode_at_a_smaller_input_size(frames):
    sam = build_tiny_sam(image_size=256)
    g = sam_core.frame_geometry(sam, 32, 32, 64)
    with torch.no_grad():
        out = sam_core.encode(sam, sam_core.preprocess(sam, frames, g))
    assert out.shape == (3, 32, 4, 4) and torch.isfinite(out).all()


def test_sparse_prompt_matches_prompt_encoder(setup):
    sam, g, _ = setup
    coords = torch.tensor([[[3.0, 7.0], [20.0, 11.0], [0.0, 0.0]]])
    labels = torch.tensor([[1, 0, -1]])
    ours = sam_core.sparse_prompt(sam, coords, labels, g)
    scale = g.size / 32
    expected, _ = sam.prompt_encoder(
        points=(coords[:, :2] * scale, labels[:, :2]), boxes=None, masks=None
    )
    torch.testing.assert_close(ours, expected)
    box = torch.tensor([[[2.0, 3.0], [20.0, 25.0]]])
    ours_box = sam_core.sparse_prompt(sam, box, torch.tensor([[2, 3]]), g)
    expected_box, _ = sam.prompt_encoder(points=None, boxes=box.reshape(1, 4) * scale, masks=None)
    torch.testing.assert_close(ours_box, expected_box)


@pytest.mark.parametrize("with_mask", [False, True])
def test_decode_matches_mask_decoder(setup, with_mask):
    sam, g, embeddings = setup
    coords = torch.tensor([[[5.0, 9.0], [0.0, 0.0]], [[17.0, 12.0], [0.0, 0.0]]])
    labels = torch.tensor([[1, -1], [1, -1]])
    mask_in = torch.randn(2, 1, *g.low_res) if with_mask else None
    with torch.no_grad():
        sparse = sam_core.sparse_prompt(sam, coords, labels, g)
        dense = sam_core.dense_prompt(sam, 2, g, mask_in)
        logits, iou = sam_core.decode(sam, embeddings[:2], sparse, dense)
        for i in range(2):
            ref_logits, ref_iou = sam.mask_decoder(
                image_embeddings=embeddings[i : i + 1],
                image_pe=sam.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse[i : i + 1],
                dense_prompt_embeddings=dense[i : i + 1],
                multimask_output=True,
            )
            torch.testing.assert_close(logits[i : i + 1, 1:], ref_logits, rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(iou[i : i + 1, 1:], ref_iou, rtol=1e-4, atol=1e-4)


def test_decode_hooks(setup):
    sam, g, embeddings = setup
    coords = torch.tensor([[[5.0, 9.0], [0.0, 0.0]]])
    with torch.no_grad():
        sparse = sam_core.sparse_prompt(sam, coords, torch.tensor([[1, -1]]), g)
        dense = sam_core.dense_prompt(sam, 1, g)
        plain, _ = sam_core.decode(sam, embeddings[:1], sparse, dense)
        zero_bias, _ = sam_core.decode(
            sam, embeddings[:1], sparse, dense, attention_bias=torch.zeros(1, 64)
        )
        biased, _ = sam_core.decode(
            sam, embeddings[:1], sparse, dense, attention_bias=torch.randn(1, 64) * 3
        )
        offset, _ = sam_core.decode(
            sam, embeddings[:1], sparse, dense, token_offset=torch.randn(1, 32)
        )
    torch.testing.assert_close(plain, zero_bias)
    assert not torch.allclose(plain, biased) and not torch.allclose(plain, offset)


def test_logits_to_frames_crops_padding():
    sam = build_tiny_sam()  # 256 input, 64x64 low-res logits
    g = sam_core.frame_geometry(sam, 32, 16)  # resized to 256x128: right half is padding
    logits = torch.zeros(1, 1, 64, 64)
    logits[..., 32:] = 100.0  # padding region
    out = sam_core.logits_to_frames(logits, g)
    assert out.shape == (1, 1, 32, 16) and out.abs().max() == 0


@pytest.mark.parametrize("shape", [(8, 8), (32, 32)])
def test_logits_to_frames_any_map_resolution(shape):
    """Grid-sized maps (PerSAM's similarity) and low-res logits both map onto the frame."""
    sam = build_tiny_sam(image_size=128)  # grid 8x8, low-res 32x32
    g = sam_core.frame_geometry(sam, 32, 16)  # left half of the input is the frame
    logits = torch.zeros(1, 1, *shape)
    logits[..., : shape[1] // 2] = 1.0
    logits[..., shape[1] // 2 :] = 100.0  # padding
    out = sam_core.logits_to_frames(logits, g)
    assert out.shape == (1, 1, 32, 16)
    torch.testing.assert_close(out, torch.ones_like(out))
