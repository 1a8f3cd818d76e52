"""The first step of an episode in training equals acting (and the official DreamerV3).

Regression test of ``docs/parity.rst`` row 12: TorchRL's rollout zeroed state, belief and
action on an ``is_init`` row, so training saw ``o_1`` as the first observation
(``h_1 = f(0, 0, 0)``) while acting computed ``h_1 = f(h_0, z_0, a_0)`` from the posterior
of ``o_0``. Runs without the reference environment (part of the default run).
"""

from __future__ import annotations

import torch
from tensordict import TensorDict
from torchrl.data import Bounded

from torchrl_psp.modules import make_dreamer_v3


def _agent():
    torch.manual_seed(0)
    agent = make_dreamer_v3(
        Bounded(-1, 1, (2,)), (3, 16, 16), preset="tiny", image_mults=(1, 2), device="cpu"
    )
    with torch.no_grad():  # non-trivial dynamics: the zero-state belief must differ
        for parameter in agent.prior.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    return agent


def _act(agent, pixels, state, belief, previous_action, is_init):
    """The acting policy's state update (encoder + RSSMStateEstimatorV3) on one image."""
    td = TensorDict(
        {
            agent.pixels_key: pixels,
            "state": state,
            "belief": belief,
            "previous_action": previous_action,
            "is_init": torch.tensor([[is_init]]),
        },
        [1],
    )
    agent.policy[1](agent.policy[0](td))
    return td["state"], td["belief"]


@torch.no_grad()
def test_training_continues_from_the_acting_state_of_o0():
    agent = _agent()
    cfg, A = agent.config, agent.action_dim
    images = torch.randint(0, 256, (4, 1, 3, 16, 16), dtype=torch.uint8)
    actions = torch.rand(3, 1, A) * 2 - 1
    zeros = (torch.zeros(1, cfg.state_dim), torch.zeros(1, cfg.rnn_hidden_dim))
    # Acting from the episode start: o_0 from a zero state, then o_1 after a_0.
    z0, h0 = _act(agent, images[0], *zeros, torch.zeros(1, A), True)
    z1, h1 = _act(agent, images[1], z0, h0, actions[0], False)
    # The replay row of o_0 -> o_1 stores the acting posterior of o_0 at its root.
    sample = TensorDict(
        {
            "state": torch.cat([z0, z1, torch.zeros_like(z0)])[None],
            "belief": torch.cat([h0, h1, torch.zeros_like(h0)])[None],
            "action": actions[:, 0][None],
            "is_init": torch.tensor([[[True], [False], [True]]]),  # another episode at t=2
            ("next", agent.pixels_key): images[1:, 0][None],
        },
        [1, 3],
    )
    output = agent.world_model(sample.clone())
    # Row 0: h_1 = f(h_0, z_0, a_0), the acting belief of o_1 (before: f(0, 0, 0)).
    torch.testing.assert_close(output["next", "belief"][:, 0], h1)
    zero_start = agent.prior._update_belief(*zeros, torch.zeros(1, A))
    assert not torch.allclose(output["next", "belief"][:, 0], zero_start)
    # A later is_init still resets: zero state, belief and action.
    torch.testing.assert_close(output["next", "belief"][:, 2], zero_start)
    # The input's is_init is left as it was.
    assert sample["is_init"].squeeze(-1).tolist() == [[True, False, True]]
    assert output["is_init"].squeeze(-1).tolist() == [[True, False, True]]
