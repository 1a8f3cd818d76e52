"""Parity of DreamerV3's pure functions: the official JAX code against ours, on the same numbers.

"Ours" is TorchRL's function as torchrl-psp's agent configures it (the settings of
:func:`~torchrl_psp.modules.make_dreamer_v3`, :func:`~torchrl_psp.objectives.make_variant_loss`
and :func:`~torchrl_psp.objectives.make_optimization_stepper`). The official side runs in
the reference venv (``conftest.run_reference``); see ``tests/parity/README`` and
``docs/parity.rst``. Agreement: ``rtol = atol = 1e-5`` unless a test says otherwise.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchrl.data import Bounded
from torchrl.modules.functional import symexp, symlog
from torchrl.modules.models.model_based import (
    _default_bins,
    _DreamerV3RMSNorm,
    _straight_through_categorical,
    two_hot_cross_entropy,
    two_hot_decode,
)
from torchrl.objectives import categorical_kl_terms
from torchrl.objectives.dreamer_v3 import _replay_value_target
from torchrl.trainers.algorithms import DreamerV3Optimizer

from torchrl_psp.modules import dreamer_v3_config, make_dreamer_v3
from torchrl_psp.objectives import make_variant_loss

pytestmark = pytest.mark.reference

TOL = {"rtol": 1e-5, "atol": 1e-5}
HORIZON, LAMBDA = 333.0, 0.95


def f32(array) -> np.ndarray:
    return np.asarray(array, dtype=np.float32)


def close(ours: torch.Tensor | np.ndarray, official: np.ndarray, **tol) -> None:
    if isinstance(ours, torch.Tensor):
        ours = ours.detach().double().numpy()
    np.testing.assert_allclose(ours, official, **(tol or TOL))


@pytest.fixture(scope="module")
def loss():
    """The full learner objective of the plain ``dreamer`` variant (tiny agent)."""
    torch.manual_seed(0)
    agent = make_dreamer_v3(
        Bounded(-1, 1, (2,)), (3, 16, 16), preset="tiny", image_mults=(1, 2), device="cpu"
    )
    return make_variant_loss(agent, "dreamer")


def test_symlog_symexp(reference):
    x = f32(np.concatenate([np.linspace(-30, 30, 121), [0.0, 1e-6, -1e-6, 1e3, -1e3]]))
    official = reference("symlog", {"x": x})
    close(symlog(torch.from_numpy(x)), official["symlog"])
    # symexp(30) ~ 1e13: a relative tolerance.
    close(symexp(torch.from_numpy(x)), official["symexp"], rtol=1e-5, atol=0)


@pytest.mark.parametrize("num_bins", [255, 33])
def test_two_hot_bins_loss_and_decode(reference, num_bins):
    """Bins (``paper`` 255, ``tiny`` 33), two-hot cross entropy and the decoded mean."""
    rng = np.random.default_rng(num_bins)
    bins = _default_bins(num_bins).double().numpy()
    target = np.concatenate(
        [
            rng.normal(0, 1, 40),
            rng.normal(0, 100, 40),
            [0.0, 1.0, -1.0, 1e9, -1e9, 5e8],  # zero, small, far outside the support
            bins[[0, 1, num_bins // 2, num_bins // 2 + 3, -1]],  # exactly on a bin
        ]
    )
    logits = rng.normal(0, 3, (len(target), num_bins))
    logits[0] = 0.0  # uniform probabilities: the decoded mean must be 0
    official = reference(
        "twohot", {"logits": f32(logits), "target": f32(target)}, num_bins=num_bins
    )
    # float32 linspace and expm1 round differently: up to 2e-6 relative apart.
    close(_default_bins(num_bins), official["bins"], rtol=1e-5, atol=0)
    ours_bins = _default_bins(num_bins)
    t_logits = torch.from_numpy(f32(logits))
    close(
        two_hot_cross_entropy(t_logits, torch.from_numpy(f32(target)), ours_bins),
        official["loss"],
    )
    # The decoded mean sums terms up to 5e8 that cancel: float32 sums in another order
    # agree to 1e-5 of the summed magnitudes (relative to the result: up to ~2e-5).
    magnitude = (torch.softmax(t_logits.double(), -1) * ours_bins.double().abs()).sum(-1)
    difference = (two_hot_decode(t_logits, ours_bins).double() - official["pred"]).abs()
    assert bool((difference <= 1e-5 * magnitude + 1e-5).all()), float(
        (difference / (magnitude + 1e-12)).max()
    )
    assert float(two_hot_decode(t_logits[:1], ours_bins)) == 0.0 == official["pred"][0]


def test_kl_terms_free_bits_unimix(reference, loss):
    """Dynamics / representation KL as our model loss computes them: values and gradients."""
    model_loss = loss.model_loss
    rng = np.random.default_rng(1)
    B, T, S, C = 3, 5, 4, 6
    # Prior = posterior + noise of scale 0.05 .. 2: some KL sums below the free bits
    # (clamped, zero gradient), some above.
    scale = np.linspace(0.05, 2.0, B * T).reshape(B, T, 1, 1)
    post = f32(rng.normal(size=(B, T, S, C)))
    prior = f32(post + rng.normal(size=(B, T, S, C)) * scale)
    official = reference(
        "kl",
        {"post": post, "prior": prior},
        unimix=model_loss.unimix,
        free_nats=model_loss.free_bits,
    )
    assert (official["dyn"] > 1.0).any() and (official["dyn"] == 1.0).any()
    grads = {}
    for key, index in (("dyn", 0), ("rep", 1)):
        p = torch.tensor(post, requires_grad=True)
        q = torch.tensor(prior, requires_grad=True)
        terms = categorical_kl_terms(p, q, free_nats=model_loss.free_bits, unimix=model_loss.unimix)
        close(terms[index], official[key].mean())
        terms[index].backward()
        # A stopped side gets no gradient at all (None): zero, as in the official code.
        grads[key] = tuple(torch.zeros_like(x) if x.grad is None else x.grad for x in (p, q))
    # Which side is stopped: dyn trains only the prior, rep only the posterior.
    for key in ("dyn", "rep"):
        close(grads[key][0], official[f"{key}_grad_post"], rtol=1e-5, atol=1e-7)
        close(grads[key][1], official[f"{key}_grad_prior"], rtol=1e-5, atol=1e-7)
    assert not official["dyn_grad_post"].any() and not official["rep_grad_prior"].any()


def test_straight_through_sample_gradient(reference, loss):
    """The straight-through sample: one-hot forward, unimixed-softmax gradient backward."""
    rng = np.random.default_rng(2)
    logits, weight = f32(rng.normal(0, 2, (4, 8, 5))), f32(rng.normal(size=(4, 8, 5)))
    unimix = loss.model_loss.unimix
    official = reference("straight_through", {"logits": logits, "weight": weight}, unimix=unimix)
    t_logits = torch.tensor(logits, requires_grad=True)
    sample = _straight_through_categorical(t_logits, unimix)
    (sample * torch.from_numpy(weight)).sum().backward()
    assert torch.equal(sample.detach().sum(-1), torch.ones(4, 8))
    assert set(sample.detach().unique().tolist()) == {0.0, 1.0}
    # The gradient does not depend on which class was drawn: it must agree exactly.
    close(t_logits.grad, official["grad"], rtol=1e-5, atol=1e-7)


def test_lambda_return_imagination(reference, loss):
    """Imagination returns: the official contdisc form (discount inside ``con``, ``disc=1``)
    against our actor loss's ``lambda_target`` (``gamma = 1 - 1/333`` times the continuation)."""
    actor_loss = loss.actor_loss
    gamma = float(actor_loss.value_estimator.gamma)
    lmbda = float(actor_loss.value_estimator.lmbda)
    assert (gamma, lmbda) == pytest.approx((1 - 1 / HORIZON, LAMBDA))
    rng = np.random.default_rng(3)
    N, H = 6, 15
    rew, val = f32(rng.normal(0, 2, (N, H + 1))), f32(rng.normal(0, 10, (N, H + 1)))
    cont = f32(rng.uniform(0.5, 1.0, (N, H + 1)))
    cont[0, 7] = 0.0  # an imagined terminal
    con_official = f32(cont * gamma)  # the official con head's target carries the discount
    official = reference(
        "lambda_return",
        {
            "last": np.zeros_like(rew),
            "term": f32(1 - con_official),
            "rew": rew,
            "val": val,
            "boot": val,
        },
        disc=1.0,
        lam=lmbda,
    )
    # Ours: row t of the rollout holds the reward, value and continuation of state t + 1.
    ours = actor_loss.lambda_target(
        torch.from_numpy(rew[:, 1:, None]),
        torch.from_numpy(val[:, 1:, None]),
        torch.from_numpy(cont[:, 1:, None]),
    )
    close(ours.squeeze(-1), official["ret"], rtol=1e-5, atol=1e-4)


def test_lambda_return_replay(reference, loss):
    """Replay returns bootstrapped from the imagined returns, across an episode end."""
    rng = np.random.default_rng(4)
    B, T = 4, 12
    rew, boot = f32(rng.normal(0, 2, (B, T))), f32(rng.normal(0, 10, (B, T)))
    term = np.zeros((B, T), bool)
    last = np.zeros((B, T), bool)
    term[0, 6] = True  # a terminal step (also last)
    last[1, 4] = True  # a time limit: last, not terminal
    last |= term
    official = reference(
        "lambda_return",
        {"last": f32(last), "term": f32(term), "rew": rew, "val": boot, "boot": boot},
        disc=1 - 1 / loss.continuation_horizon,
        lam=loss.lmbda,
    )
    ours = _replay_value_target(
        torch.from_numpy(rew[..., None]),
        torch.from_numpy(last[..., None]),
        torch.from_numpy(term[..., None]),
        torch.from_numpy(boot[..., None]),
        loss.continuation_horizon,
        loss.lmbda,
    )
    close(ours, official["ret"], rtol=1e-5, atol=1e-4)


def test_return_normalisation_percentile_ema(reference, loss):
    """Percentile EMA (5 / 95, rate 0.01, scale floor 1) over a few updates."""
    retnorm = type(loss.actor_loss.retnorm)(
        quantiles=loss.actor_loss.return_normalization_quantiles,
        rate=loss.actor_loss.return_normalization_rate,
        min_scale=loss.actor_loss.return_normalization_min_scale,
    )
    rng = np.random.default_rng(5)
    batches = [
        f32(rng.normal(mean, spread, (64, 15))) for mean, spread in ((0, 1), (5, 300), (-50, 900))
    ]
    official = reference(
        "retnorm",
        {f"batch{i}": b for i, b in enumerate(batches)},
        rate=retnorm.rate,
        limit=retnorm.min_scale,
        perclo=100 * retnorm.quantiles[0],
        perchi=100 * retnorm.quantiles[1],
        debias=False,
        num_batches=len(batches),
    )["stats"]
    assert official[0, 3] == 1.0 and official[-1, 3] > 1.0  # floor, then above it
    for step, batch in enumerate(batches):
        retnorm.update(torch.from_numpy(batch[..., None]))
        lo, hi, _, scale = official[step]
        close(retnorm.low, [lo], rtol=1e-5, atol=1e-5)
        close(retnorm.high, [hi], rtol=1e-5, atol=1e-5)
        close(retnorm.scale(), [scale], rtol=1e-5, atol=1e-5)


def test_rms_norm(reference):
    eps = dreamer_v3_config("paper").norm_eps
    x = f32(np.random.default_rng(6).normal(0, 3, (5, 16)))
    x[0] = 1e-3  # near-zero input: eps matters
    official = reference("rmsnorm", {"x": x}, eps=eps)
    close(_DreamerV3RMSNorm(16, eps=eps)(torch.from_numpy(x)), official["out"])


def _optimizer_case(params, grads):
    """npz arrays of the optimizer cases."""
    arrays = {f"param_{k}": v for k, v in params.items()}
    for step, g in enumerate(grads):
        arrays.update({f"grad{step}_param_{k}": v for k, v in g.items()})
    return arrays


def _run_ours(params, grads, **options):
    tensors = {k: torch.nn.Parameter(torch.from_numpy(v.copy())) for k, v in params.items()}
    optimizer = DreamerV3Optimizer(list(tensors.values()), **options)
    trajectory = []
    for g in grads:
        for k, p in tensors.items():
            p.grad = torch.from_numpy(g[k].copy())
        optimizer.step()
        trajectory.append({k: p.detach().clone() for k, p in tensors.items()})
    return trajectory


def test_adaptive_gradient_clipping(reference):
    """AGC 0.3 alone: the optimizer step with ``eps`` and ``lr`` so large that the update
    is the clipped gradient itself (``-lr * g / (|g| + eps)`` with ``lr = eps``)."""
    rng = np.random.default_rng(7)
    params = {
        "clipped": f32(rng.normal(0, 0.1, (4, 5))),
        "unclipped": f32(rng.normal(0, 10, (7,))),
        "tiny": f32(np.full((3,), 1e-5)),  # parameter norm below the 1e-3 floor
    }
    grads = {
        "clipped": f32(rng.normal(0, 5, (4, 5))),
        "unclipped": f32(rng.normal(0, 0.01, (7,))),
        "tiny": f32(rng.normal(0, 1, (3,))),
    }
    official = reference(
        "agc",
        {
            **{f"param_{k}": v for k, v in params.items()},
            **{f"grad_param_{k}": v for k, v in grads.items()},
        },
        agc=0.3,
    )
    big = 1e10
    (after,) = _run_ours(params, [grads], lr=big, eps=big, agc=0.3, warmup_steps=0, beta1=0.0)
    for k in params:
        clipped = -(after[k].double().numpy() - params[k])
        close(clipped, official[f"clipped_param_{k}"], rtol=1e-5, atol=1e-6)
    # The case is sensitive: two of the three were clipped.
    assert not np.allclose(official["clipped_param_clipped"], grads["clipped"])
    assert np.allclose(official["clipped_param_unclipped"], grads["unclipped"])


@pytest.mark.parametrize(
    "options",
    [
        # DreamerV3's defaults, as make_optimization_stepper sets them (zero start: the
        # 4e-8-sized updates of the warm-up stay representable in float32).
        {"lr": 4e-5, "agc": 0.3, "eps": 1e-20, "warmup": 1000, "start": 0.0},
        # A short warm-up and a larger rate so that every step moves the parameters.
        {"lr": 1e-2, "agc": 0.3, "eps": 1e-20, "warmup": 3, "start": 0.1},
    ],
    ids=["defaults", "short-warmup"],
)
def test_optimizer_laprop_step(reference, options):
    """LaProp (RMS scaling, then momentum), AGC, warm-up from zero: 6 steps."""
    rng = np.random.default_rng(8)
    start = options["start"]
    params = {
        "w": f32(start * rng.normal(size=(6, 4))),
        "b": f32(start * rng.normal(size=(4,))),
    }
    grads = [
        {k: f32(rng.normal(0, scale, v.shape)) for k, v in params.items()}
        for scale in (1.0, 0.1, 10.0, 1.0, 0.01, 3.0)
    ]
    official = reference(
        "optimizer",
        _optimizer_case(params, grads),
        opt={
            "lr": options["lr"],
            "agc": options["agc"],
            "eps": options["eps"],
            "warmup": options["warmup"],
        },
        steps=len(grads),
    )
    ours = _run_ours(
        params,
        grads,
        lr=options["lr"],
        agc=options["agc"],
        eps=options["eps"],
        warmup_steps=options["warmup"],
    )
    scale = max(np.abs(official[f"step{len(grads) - 1}_param_w"] - params["w"]).max(), 1e-12)
    for step, after in enumerate(ours):
        for k in params:
            moved_ours = after[k].double().numpy() - params[k]
            moved_official = official[f"step{step}_param_{k}"] - params[k]
            # Relative to the size of the updates (float32 parameters).
            close(moved_ours / scale, moved_official / scale, rtol=1e-5, atol=1e-4)
    # Warm-up starts at zero: the first update moves nothing, on both sides.
    assert np.array_equal(official["step0_param_w"], params["w"])


# -- the imagination and replay losses on a given trajectory ---------------------------------
#
# Every network is a table indexed by a one-hot state id, so that our losses (TorchRL's
# DreamerV3ActorLoss / DreamerV3ValueLoss with our options) and the official imag_loss /
# repl_loss see the same numbers for every state of one given imagined trajectory.


class _Table(torch.nn.Module):
    """``(one-hot state id, belief) -> table[id]`` (one or two outputs)."""

    def __init__(self, *tables: np.ndarray):
        super().__init__()
        self.tables = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.from_numpy(f32(t))) for t in tables]
        )

    def forward(self, state: torch.Tensor, belief: torch.Tensor):
        out = tuple(state @ table for table in self.tables)
        return out if len(out) > 1 else out[0]


class _GivenRollout(torch.nn.Module):
    """An imagination environment whose rollout is a given TensorDict."""

    def __init__(self, rollout):
        super().__init__()
        self.given = rollout

    def reset(self, tensordict):
        return tensordict

    def rollout(self, **kwargs):
        return self.given.clone()


def _value_model(table: np.ndarray, num_bins: int):
    from tensordict.nn import TensorDictModule, TensorDictSequential
    from torchrl.modules import SymExpTwoHot

    return TensorDictSequential(
        TensorDictModule(_Table(table), ["state", "belief"], ["state_value_logits"]),
        TensorDictModule(SymExpTwoHot(num_bins), ["state_value_logits"], ["state_value"]),
    )


def _with_slow_critic(value_loss, slow_table: np.ndarray) -> None:
    """Sets the slow critic (the value loss's target parameters) to ``slow_table``."""
    target = value_loss.target_value_model_params.get(("module", "0", "module", "tables", "0"))
    target.data.copy_(torch.from_numpy(f32(slow_table)))


def _critic_logits(rng, shape, num_bins: int) -> np.ndarray:
    """Random critic logits peaked around the middle bins: values of order 1-100, as a
    critic has (uniform random logits give values near 1e6 from the outer bins)."""
    reach = max(1, num_bins // 32)  # bins within symlog distance ~1.25 of zero
    peak = num_bins // 2 + rng.integers(-reach, reach + 1, (*shape, 1))
    distance = np.abs(np.arange(num_bins) - peak) * (32 / num_bins)
    return f32(rng.normal(0, 1, (*shape, num_bins)) - 3.0 * distance)


def _imagination_case(num_bins: int, seed: int = 9):
    rng = np.random.default_rng(seed)
    N, H, A = 4, 15, 2
    ids = np.eye(N * (H + 1), dtype=np.float32).reshape(N, H + 1, N * (H + 1))
    case = {
        "ids": ids,
        "rew": f32(rng.normal(0, 3, (N, H + 1))),
        "cont": f32(rng.uniform(0.6, 1.0, (N, H + 1))),
        "value_logits": _critic_logits(rng, (N, H + 1), num_bins),
        "slow_logits": _critic_logits(rng, (N, H + 1), num_bins),
        "loc": f32(np.tanh(rng.normal(0, 1, (N, H + 1, A)))),
        "scale": f32(rng.uniform(0.1, 1.0, (N, H + 1, A))),
        "action": f32(rng.normal(0, 1, (N, H + 1, A))),
    }
    case["cont"][1, 9] = 1e-6  # an imagined terminal
    return case


def _ours_imagination(loss, case):
    """Our actor and value losses on the case's trajectory (options of ``loss``)."""
    from tensordict import TensorDict
    from tensordict.nn import (
        InteractionType,
        ProbabilisticTensorDictModule,
        ProbabilisticTensorDictSequential,
        TensorDictModule,
        TensorDictSequential,
    )
    from torchrl.modules.distributions import IndependentNormal
    from torchrl.objectives import DreamerV3ActorLoss, DreamerV3ValueLoss
    from torchrl.objectives.utils import ValueEstimators

    ids = torch.from_numpy(case["ids"])
    N, H1, D = ids.shape
    flat = lambda x: x.reshape(N * H1, *x.shape[2:])  # noqa: E731
    num_bins = case["value_logits"].shape[-1]
    belief = torch.zeros(N, H1 - 1, 1)
    rollout = TensorDict(
        {
            "state": ids[:, :-1],
            "belief": belief,
            "action": torch.from_numpy(case["action"][:, :-1]),
            "next": {
                "state": ids[:, 1:],
                "belief": belief,
                "reward": torch.from_numpy(case["rew"][:, 1:, None]),
            },
        },
        [N, H1 - 1],
    )
    actor = ProbabilisticTensorDictSequential(
        TensorDictModule(
            _Table(flat(case["loc"]), flat(case["scale"])), ["state", "belief"], ["loc", "scale"]
        ),
        ProbabilisticTensorDictModule(
            in_keys=["loc", "scale"],
            out_keys=["action"],
            distribution_class=IndependentNormal,
            default_interaction_type=InteractionType.RANDOM,
        ),
    )
    logit = np.log(case["cont"]) - np.log1p(-case["cont"])
    continuation = TensorDictSequential(
        TensorDictModule(_Table(flat(logit[..., None])), ["state", "belief"], ["continue_logits"]),
        TensorDictModule(torch.nn.Sigmoid(), ["continue_logits"], ["continuation"]),
    )
    value = _value_model(flat(case["value_logits"]), num_bins)
    ours = loss.actor_loss
    actor_loss = DreamerV3ActorLoss(
        actor,
        value,
        _GivenRollout(rollout),
        continuation_model=continuation,
        imagination_horizon=ours.imagination_horizon,
        entropy_bonus=ours.entropy_bonus,
        use_reinforce=ours.use_reinforce,
        return_normalization=ours.return_normalization,
        return_normalization_rate=ours.return_normalization_rate,
        return_normalization_quantiles=ours.return_normalization_quantiles,
        return_normalization_min_scale=ours.return_normalization_min_scale,
    )
    estimator = ours.value_estimator
    actor_loss.make_value_estimator(
        ValueEstimators.TDLambda, gamma=float(estimator.gamma), lmbda=float(estimator.lmbda)
    )
    value_loss = DreamerV3ValueLoss(
        value,
        value_loss=loss.value_loss.value_loss,
        num_value_bins=num_bins,
        actor_loss=actor_loss,
        slow_critic_regularization=loss.value_loss.slow_critic_regularization,
    )
    _with_slow_critic(value_loss, flat(case["slow_logits"]))
    start = TensorDict({"state": ids[:, 0], "belief": torch.zeros(N, 1)}, [N])
    actor_out, imagined = actor_loss(start)
    value_out, _ = value_loss(imagined)
    return actor_loss, actor_out, value_out, imagined


def _official_imagination(reference, loss, case):
    gamma = float(loss.actor_loss.value_estimator.gamma)
    return reference(
        "imag_value",
        {
            "rew": case["rew"],
            # The official continuation head learns (1 - 1/horizon) * (1 - terminal).
            "con": f32(gamma * case["cont"]),
            "value_logits": case["value_logits"],
            "slow_logits": case["slow_logits"],
            "loc": case["loc"],
            "scale": case["scale"],
            "action": case["action"],
        },
        num_bins=case["value_logits"].shape[-1],
        horizon=1 / (1 - gamma),
        lam=float(loss.actor_loss.value_estimator.lmbda),
        actent=loss.actor_loss.entropy_bonus,
        slowreg=loss.value_loss.slow_critic_regularization,
    )


def test_imagination_returns_and_return_scale(reference, loss):
    """Returns of an imagined trajectory and the return-normalisation update they make."""
    case = _imagination_case(loss.value_loss.value_bins.numel())
    official = _official_imagination(reference, loss, case)
    actor_loss, _, _, imagined = _ours_imagination(loss, case)
    close(imagined["lambda_target"].squeeze(-1), official["ret"], rtol=1e-5, atol=1e-4)
    close(actor_loss.return_low, official["lo"], rtol=1e-5, atol=1e-5)
    close(actor_loss.return_high, official["hi"], rtol=1e-5, atol=1e-5)


GAMMA_WEIGHT_FINDING = (
    "finding (docs/parity.rst, continuation weights): our imagination weights are "
    "c_0 * prod_{i=1..t} gamma c_i, the official ones prod_{i=0..t} con_i with con = gamma c "
    "(the discount rides in the continuation, also at the start state): ours = official / gamma "
    "(x1.0030 on the actor and critic imagination losses)"
)


@pytest.mark.xfail(strict=True, reason=GAMMA_WEIGHT_FINDING)
def test_imagination_actor_loss(reference, loss):
    """REINFORCE with (return - value) / scale, entropy bonus, continuation weights."""
    case = _imagination_case(loss.value_loss.value_bins.numel())
    official = _official_imagination(reference, loss, case)
    _, actor_out, _, _ = _ours_imagination(loss, case)
    close(actor_out["loss_actor"], official["policy"].mean())


@pytest.mark.xfail(strict=True, reason=GAMMA_WEIGHT_FINDING)
def test_imagination_value_loss(reference, loss):
    """Two-hot critic on the returns plus the slow-critic regulariser, same weights."""
    case = _imagination_case(loss.value_loss.value_bins.numel())
    official = _official_imagination(reference, loss, case)
    _, _, value_out, _ = _ours_imagination(loss, case)
    close(value_out["loss_value"], official["value"].mean())


def test_imagination_losses_differ_only_by_gamma(reference, loss):
    """The one difference of the two imagination losses: a constant factor 1 / gamma."""
    case = _imagination_case(loss.value_loss.value_bins.numel())
    official = _official_imagination(reference, loss, case)
    _, actor_out, value_out, _ = _ours_imagination(loss, case)
    gamma = float(loss.actor_loss.value_estimator.gamma)
    close(gamma * actor_out["loss_actor"], official["policy"].mean())
    close(gamma * value_out["loss_value"], official["value"].mean())


def test_replay_value_loss(reference, loss):
    """The replay critic term (before its 0.3 weight): returns bootstrapped from the
    imagined returns, two-hot loss plus slow regulariser, episode ends masked."""
    from tensordict import TensorDict
    from torchrl.objectives import DreamerV3ValueLoss

    num_bins = loss.value_loss.value_bins.numel()
    rng = np.random.default_rng(10)
    B, T = 3, 10
    ids = np.eye(B * T, dtype=np.float32).reshape(B, T, B * T)
    value_logits = _critic_logits(rng, (B, T), num_bins)
    slow_logits = _critic_logits(rng, (B, T), num_bins)
    rew, boot = f32(rng.normal(0, 2, (B, T))), f32(rng.normal(0, 5, (B, T)))
    term, last = np.zeros((B, T), bool), np.zeros((B, T), bool)
    term[0, 5] = True
    last[1, 3] = True
    last |= term
    official = reference(
        "repl_value",
        {
            "last": last,
            "term": term,
            "rew": rew,
            "boot": boot,
            "value_logits": value_logits,
            "slow_logits": slow_logits,
        },
        num_bins=num_bins,
        horizon=loss.continuation_horizon,
        lam=loss.lmbda,
        slowreg=loss.value_loss.slow_critic_regularization,
    )
    value = _value_model(value_logits.reshape(B * T, num_bins), num_bins)
    value_loss = DreamerV3ValueLoss(
        value,
        value_loss=loss.value_loss.value_loss,
        num_value_bins=num_bins,
        slow_critic_regularization=loss.value_loss.slow_critic_regularization,
    )
    _with_slow_critic(value_loss, slow_logits.reshape(B * T, num_bins))
    replay = TensorDict(
        {
            "state": torch.from_numpy(ids),
            "belief": torch.zeros(B, T, 1),
            "bootstrap": torch.from_numpy(boot),
            "next": {
                "reward": torch.from_numpy(rew[..., None]),
                "done": torch.from_numpy(last[..., None]),
                "terminated": torch.from_numpy(term[..., None]),
            },
        },
        [B, T],
    )
    ours = value_loss.replay_value_loss(replay, horizon=loss.continuation_horizon, lmbda=loss.lmbda)
    close(ours["loss_replay_value"], official["repval"].mean())


def _our_settings(loss) -> dict[str, float]:
    """Our DreamerV3 settings, named as in :func:`reference_runner.case_config`."""
    import inspect

    from torchrl_psp.objectives import make_optimization_stepper

    paper = dreamer_v3_config("paper")
    model, actor, value = loss.model_loss, loss.actor_loss, loss.value_loss
    stepper = make_optimization_stepper(loss)
    optim = stepper.optimizer.defaults
    tau = inspect.signature(make_optimization_stepper).parameters["slow_critic_tau"].default
    return {
        "loss_rec": model.lambda_reco,
        "loss_rew": model.lambda_reward,
        "loss_con": model.lambda_continue,
        "loss_dyn": model.lambda_kl * model.lambda_dynamic,
        "loss_rep": model.lambda_kl * model.lambda_representation,
        "loss_policy": 1.0,  # DreamerV3Loss sums its loss_* entries unweighted
        "loss_value": 1.0,
        "loss_repval": loss.replay_value_loss_weight,
        "opt_lr": optim["lr"],
        "opt_agc": optim["agc"],
        "opt_eps": optim["eps"],
        "opt_beta1": optim["beta1"],
        "opt_beta2": optim["beta2"],
        "opt_warmup": optim["warmup_steps"],
        "free_nats": model.free_bits,
        "unimix": model.unimix,
        "imag_length": actor.imagination_horizon,
        "horizon": 1 / (1 - float(actor.value_estimator.gamma)),
        "lam": float(actor.value_estimator.lmbda),
        "actent": actor.entropy_bonus,
        "slowreg": value.slow_critic_regularization,
        "repl_slowreg": value.slow_critic_regularization,
        "slowvalue_rate": tau,
        "retnorm_rate": actor.return_normalization_rate,
        "retnorm_limit": actor.return_normalization_min_scale,
        "retnorm_perclo": 100 * actor.return_normalization_quantiles[0],
        "retnorm_perchi": 100 * actor.return_normalization_quantiles[1],
        "policy_minstd": paper.policy_min_std,
        "policy_maxstd": paper.policy_max_std,
        "value_bins": paper.num_value_bins,
        "reward_bins": paper.num_reward_bins,
    }


SETTINGS = [
    "loss_rec", "loss_rew", "loss_con", "loss_dyn", "loss_rep", "loss_policy", "loss_value",
    "loss_repval", "opt_lr", "opt_agc", "opt_eps", "opt_beta1", "opt_beta2", "opt_warmup",
    "free_nats", "unimix", "imag_length", "horizon", "lam", "actent", "slowreg",
    "repl_slowreg", "slowvalue_rate", "retnorm_rate", "retnorm_limit", "retnorm_perclo",
    "retnorm_perchi", "policy_minstd", "policy_maxstd", "value_bins", "reward_bins",
]  # fmt: skip
# Settings that differ from the official configs.yaml on purpose (docs/parity.rst):
# name -> (ours, official at f8817c4, the reason).
DELIBERATE = {
    "loss_dyn": (
        0.5,
        1.0,
        "row 7: the DreamerV3 paper's dynamics KL weight (0.5); configs.yaml at f8817c4 "
        "uses 1.0; side-by-side runs pass --agent.loss_scales.dyn 0.5 to the official code",
    ),
}


@pytest.fixture(scope="module")
def official_settings(reference):
    settings = reference("config", {})
    if not settings.pop("present"):
        pytest.skip("the reference venv has no dreamerv3/configs.yaml (setup.sh --repo PATH)")
    return settings


@pytest.mark.parametrize("name", [n for n in SETTINGS if n not in DELIBERATE])
def test_settings_equal_official_configs(official_settings, loss, name):
    """Each scalar setting of the parity table against the official ``configs.yaml``."""
    assert _our_settings(loss)[name] == pytest.approx(official_settings[name], rel=1e-6)


@pytest.mark.parametrize("name", sorted(DELIBERATE))
def test_deliberate_differences_are_the_documented_values(official_settings, loss, name):
    """A deliberate difference holds exactly the two values the parity table states."""
    ours, official, _reason = DELIBERATE[name]
    assert _our_settings(loss)[name] == pytest.approx(ours, rel=1e-6)
    assert official_settings[name] == pytest.approx(official, rel=1e-6)
