"""benchmarks/saliency_weight_share.py: the agent/background shares by hand."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "saliency_weight_share.py"
_SPEC = importlib.util.spec_from_file_location("saliency_weight_share", _PATH)
saliency_weight_share = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(saliency_weight_share)


def test_mask_shares_by_hand():
    # one 2x2 image, agent = the two left pixels
    weights = torch.tensor([[[3.0, 1.0], [1.0, 1.0]]])
    error = torch.tensor([[[1.0, 2.0], [1.0, 4.0]]])
    mask = torch.tensor([[[True, False], [True, False]]])
    shares = saliency_weight_share.mask_shares(weights, error, mask)
    assert shares["agent_fraction"] == 0.5
    assert shares["weight_agent"] == 2.0 and shares["weight_background"] == 1.0
    assert math.isclose(shares["weight_share"], 4.0 / 6.0, rel_tol=1e-6)
    assert math.isclose(shares["error_share_unweighted"], 2.0 / 8.0, rel_tol=1e-6)
    # weighted error: agent 3*1 + 1*1 = 4, background 2 + 4 = 6
    assert math.isclose(shares["error_share_weighted"], 4.0 / 10.0, rel_tol=1e-6)
    empty = saliency_weight_share.mask_shares(weights, error, torch.zeros_like(mask))
    assert math.isnan(empty["weight_agent"]) and empty["weight_share"] == 0.0
    with pytest.raises(ValueError, match="same shape"):
        saliency_weight_share.mask_shares(weights, error, mask[..., :1])


def test_salience_contrast_by_hand():
    # 4 pixels, agent = first: the median (quantile 0.5) of (8, 2, 2, 0) is 2
    salience = torch.tensor([[[8.0, 2.0], [2.0, 0.0]]])
    mask = torch.tensor([[[True, False], [False, False]]])
    contrast = saliency_weight_share.salience_contrast(salience, mask, quantile=0.5)
    assert math.isclose(contrast["salience_ratio_raw"], 8.0 / (4.0 / 3.0), rel_tol=1e-6)
    assert math.isclose(contrast["salience_ratio_clipped"], 2.0 / (4.0 / 3.0), rel_tol=1e-6)
    assert contrast["agent_clipped"] == 1.0
    unclipped = saliency_weight_share.salience_contrast(salience, mask, quantile=1.0)
    assert unclipped["agent_clipped"] == 0.0
    assert unclipped["salience_ratio_clipped"] == unclipped["salience_ratio_raw"]
