"""Loading SAM checkpoints and building tiny models."""

from __future__ import annotations

import pytest
import torch
from segment_anything import sam_model_registry

from torchrl_psp.segmentation import SAM_CHECKPOINT_URLS, build_tiny_sam, load_sam, resolve_device
from torchrl_psp.segmentation.sam.checkpoints import resolve_sam


def _tiny_builder(checkpoint=None):
    """Stands in for sam_model_registry['vit_b']: same loading steps as segment_anything."""
    sam = build_tiny_sam(seed=1)
    if checkpoint is not None:
        with open(checkpoint, "rb") as f:
            sam.load_state_dict(torch.load(f))
    return sam


def test_missing_checkpoint_names_path_and_url(tmp_path):
    path = tmp_path / "sam_vit_b.pth"
    with pytest.raises(FileNotFoundError) as err:
        load_sam("vit_b", path)
    assert str(path) in str(err.value)
    assert SAM_CHECKPOINT_URLS["vit_b"] in str(err.value)


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    """Through the real registry (builds a random vit_b first, as segment_anything does)."""
    path = tmp_path / "sam_vit_b.pth"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError) as err:
        load_sam("vit_b", path)
    message = str(err.value)
    assert "corrupt" in message and str(path) in message
    assert SAM_CHECKPOINT_URLS["vit_b"] in message


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04garbage"])
def test_empty_or_truncated_checkpoint(tmp_path, monkeypatch, content):
    path = tmp_path / "sam_vit_l.pth"
    path.write_bytes(content)
    monkeypatch.setitem(sam_model_registry, "vit_l", _tiny_builder)
    with pytest.raises(ValueError, match="corrupt or truncated") as err:
        load_sam("vit_l", path)
    assert SAM_CHECKPOINT_URLS["vit_l"] in str(err.value)


def test_unknown_model_type():
    with pytest.raises(ValueError, match="vit_b"):
        load_sam("vit_x", "whatever.pth")


def test_loading_goes_through_the_registry(tmp_path, monkeypatch):
    path = tmp_path / "tiny.pth"
    torch.save(build_tiny_sam(seed=3).state_dict(), path)
    monkeypatch.setitem(sam_model_registry, "vit_b", _tiny_builder)
    sam = load_sam("vit_b", path, device="cpu")
    assert not sam.training
    expected = build_tiny_sam(seed=3).state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in sam.state_dict().items())


def test_checkpoint_of_another_model_is_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "other.pth"
    torch.save({"image_encoder.unexpected": torch.zeros(1)}, path)
    monkeypatch.setitem(sam_model_registry, "vit_b", _tiny_builder)
    with pytest.raises(ValueError, match="another model type"):
        load_sam("vit_b", path)


@pytest.mark.slow
def test_real_vit_b_checkpoint_roundtrip(tmp_path):
    """A vit_b state dict (random weights, 375 MB) loads through the real registry."""
    path = tmp_path / "sam_vit_b.pth"
    torch.save(sam_model_registry["vit_b"]().state_dict(), path)
    sam = load_sam("vit_b", path, device="cpu")
    assert sum(p.numel() for p in sam.parameters()) > 90_000_000


def test_tiny_sam_is_deterministic_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b, c = build_tiny_sam(seed=0), build_tiny_sam(seed=0), build_tiny_sam(seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb), name
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


def test_tiny_sam_size_validation():
    with pytest.raises(ValueError, match="multiple of 16"):
        build_tiny_sam(image_size=100)


def test_resolve_device_and_sam():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    with pytest.raises(ValueError, match="checkpoint="):
        resolve_sam(None, "vit_h", None)
    with pytest.raises(ValueError, match="not both"):
        resolve_sam(build_tiny_sam(), "vit_b", "x.pth")
    with pytest.raises(ValueError, match="Sam model"):
        resolve_sam(torch.nn.Linear(2, 2), "vit_b", None)
    assert resolve_sam(build_tiny_sam(), "vit_b", None, "cpu").pixel_mean.device.type == "cpu"
