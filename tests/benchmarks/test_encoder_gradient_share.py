"""benchmarks/encoder_gradient_share.py: per-term gradients and the table's numbers by hand."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import torch
from tensordict import TensorDict

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "encoder_gradient_share.py"
_SPEC = importlib.util.spec_from_file_location("encoder_gradient_share", _PATH)
encoder_gradient_share = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(encoder_gradient_share)


def test_each_term_gets_its_own_gradient():
    weight = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    unused = torch.nn.Parameter(torch.tensor([3.0]))
    losses = TensorDict(
        {"loss_model_a": (weight**2).sum(), "loss_model_b": 3 * weight[0]}, batch_size=[]
    )
    gradients = encoder_gradient_share.term_gradients(
        losses, ["loss_model_a", "loss_model_b"], [weight, unused]
    )
    torch.testing.assert_close(gradients["loss_model_a"], torch.tensor([2.0, 4.0, 0.0]))
    torch.testing.assert_close(gradients["loss_model_b"], torch.tensor([3.0, 0.0, 0.0]))


def test_norms_shares_and_cosines_by_hand():
    table = encoder_gradient_share.gradient_table(
        {
            "a": torch.tensor([3.0, 4.0]),
            "b": torch.tensor([0.0, 5.0]),
            "c": torch.tensor([0.0, 0.0]),
        }
    )
    norm, share, cosine = table["a"]
    assert norm == 5.0 and share == 0.5
    assert math.isclose(cosine, 20.0 / (5.0 * 5.0))  # a . b / (|a| |b|), c adds nothing
    norm, share, cosine = table["b"]
    assert norm == 5.0 and share == 0.5 and math.isclose(cosine, 0.8)
    norm, share, cosine = table["c"]
    assert norm == 0.0 and share == 0.0 and math.isnan(cosine)
