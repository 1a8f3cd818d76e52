"""One device rule behind the agent builder, the SAM loaders and the recipe's config check."""

from __future__ import annotations

import pytest
import torch

from torchrl_psp.modules import default_device
from torchrl_psp.segmentation import resolve_device as segmentation_resolve_device
from torchrl_psp.training.config import ConfigError
from torchrl_psp.training.config import resolve_device as config_resolve_device
from torchrl_psp.utils.device import resolve_device

AUTO = torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize(
    "resolve", [resolve_device, default_device, segmentation_resolve_device, config_resolve_device]
)
def test_every_resolver_follows_the_same_rule(resolve):
    assert resolve(None) == AUTO
    assert resolve("auto") == AUTO
    assert resolve("cpu") == torch.device("cpu")
    assert resolve(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(RuntimeError):
        resolve("not-a-device")


def test_segmentation_exports_the_shared_resolver():
    assert segmentation_resolve_device is resolve_device


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available")
def test_cuda_without_cuda():
    assert resolve_device("cuda") == torch.device("cuda")  # fails where it is used
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda", require_available=True)
    with pytest.raises(ConfigError, match="CUDA is not available"):
        config_resolve_device("cuda:0")
