"""DreamerPro's prototype objectives, one equation per function (Deng et al. 2022, §3).

Equation labels (DP1)-(DP6) are those of ``docs/dreamerpro.rst``; each also names the
SwAV equation (Caron et al. 2020) it instantiates. Shapes: ``N`` embeddings (batch and
time flattened), ``K`` prototypes.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

__all__ = [
    "projection_norm_loss",
    "prototype_log_probs",
    "sinkhorn_knopp",
    "swapped_prediction_loss",
    "temporal_prototype_loss",
]


def _check_pair(name: str, first: torch.Tensor, second: torch.Tensor) -> None:
    if first.shape != second.shape or first.ndim != 2:
        raise ValueError(
            f"{name} reads two (N, K) tensors of the same shape; got {tuple(first.shape)} and "
            f"{tuple(second.shape)}."
        )


def prototype_log_probs(scores: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """``log p^(k) = log softmax_k(z^T c_k / tau)`` (DP2; SwAV Eq. 2).

    Args:
        scores: ``(*batch, K)`` cosine scores ``z^T c_k`` of normalised embeddings.
        temperature: ``tau`` (DreamerPro: 0.1).

    Examples:
        >>> prototype_log_probs(torch.tensor([[0.0, 0.0]]), 0.1).exp()
        tensor([[0.5000, 0.5000]])
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}.")
    return F.log_softmax(scores.float() / temperature, dim=-1)


@torch.no_grad()
def sinkhorn_knopp(
    scores: torch.Tensor, epsilon: float = 0.0125, iterations: int = 3
) -> torch.Tensor:
    """Equipartitioned soft assignments ``Q`` of ``N`` embeddings to ``K`` prototypes (DP3).

    SwAV's transport problem (SwAV Eqs. 3-5): ``Q* = argmax_Q Tr(Q^T C^T Z) + eps H(Q)``
    over the polytope whose prototype marginals are ``1/K`` and whose embedding marginals
    are ``1/N``; its solution ``Q* = Diag(u) exp(C^T Z / eps) Diag(v)`` is approached by
    alternately rescaling the prototypes (columns here) to ``1/K`` and the embeddings
    (rows) to ``1/N``, ``iterations`` times each, in log space. The result is multiplied
    by ``N``: every row is an assignment that sums to 1 (exactly, the last rescaling is
    the rows'), and each prototype receives about ``N/K`` of the mass (exactly in the
    limit of many iterations). No gradient flows: the assignments are targets.

    Args:
        scores: ``(N, K)`` scores ``z_n^T c_k``.
        epsilon: entropy weight ``eps`` (DreamerPro on DMC: 0.0125).
        iterations: rescalings of each kind (DreamerPro: 3).

    Returns:
        ``(N, K)`` float32 assignments.

    Examples:
        >>> q = sinkhorn_knopp(torch.tensor([[1.0, 0.0], [1.0, 0.0]]), epsilon=1.0, iterations=1)
        >>> q
        tensor([[0.5000, 0.5000],
                [0.5000, 0.5000]])
        >>> q = sinkhorn_knopp(torch.randn(6, 3), epsilon=0.5, iterations=50)
        >>> torch.allclose(q.sum(1), torch.ones(6)), torch.allclose(q.sum(0), torch.full((3,), 2.0))
        (True, True)
    """
    if scores.ndim != 2:
        raise ValueError(f"sinkhorn_knopp reads scores (N, K); got {tuple(scores.shape)}.")
    if epsilon <= 0 or iterations < 1:
        raise ValueError(
            f"epsilon must be positive and iterations at least 1; got {epsilon} and {iterations}."
        )
    num_samples, num_prototypes = scores.shape
    log_q = scores.float() / epsilon
    log_q = log_q - torch.logsumexp(log_q.flatten(), dim=0)
    for _ in range(iterations):
        log_q = log_q - torch.logsumexp(log_q, dim=0, keepdim=True) - math.log(num_prototypes)
        log_q = log_q - torch.logsumexp(log_q, dim=1, keepdim=True) - math.log(num_samples)
    return (log_q + math.log(num_samples)).exp()


def swapped_prediction_loss(
    log_probs_1: torch.Tensor,
    log_probs_2: torch.Tensor,
    targets_1: torch.Tensor,
    targets_2: torch.Tensor,
) -> torch.Tensor:
    """``J_SwAV = -1/2 mean_n [q^(2)_n . log p^(1)_n + q^(1)_n . log p^(2)_n]`` (DP4; SwAV Eq. 1).

    Each view predicts the other view's assignment: the observation-embedding
    prototype loss of DreamerPro.

    Args:
        log_probs_1, log_probs_2: ``(N, K)`` :func:`prototype_log_probs` of views 1 and 2.
        targets_1, targets_2: ``(N, K)`` :func:`sinkhorn_knopp` assignments of the views.

    Examples:
        >>> half = torch.full((1, 2), 0.5).log()
        >>> swapped_prediction_loss(half, half, torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]))
        tensor(0.6931)
    """
    for name, tensor in (("log_probs_2", log_probs_2), ("targets_1", targets_1)):
        _check_pair(f"swapped_prediction_loss ({name})", log_probs_1, tensor)
    _check_pair("swapped_prediction_loss (targets_2)", log_probs_1, targets_2)
    first = (targets_2.detach() * log_probs_1).sum(-1).mean()
    second = (targets_1.detach() * log_probs_2).sum(-1).mean()
    return -0.5 * (first + second)


def temporal_prototype_loss(log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``J_Temp = -mean_n q_n . log u_n`` (DP5): the latent state predicts the observation's assignment.

    ``u_n`` is the prototype distribution of the RSSM state ``s_t = (z_t, h_t)`` projected
    and normalised; ``q_n`` the :func:`sinkhorn_knopp` assignment of the same view's image
    at the same step. DreamerPro's temporal prototype loss, in place of reconstruction.

    Args:
        log_probs: ``(N, K)`` :func:`prototype_log_probs` of the latent states.
        targets: ``(N, K)`` assignments of the matching images.

    Examples:
        >>> log_u = torch.tensor([[0.25, 0.75]]).log()
        >>> temporal_prototype_loss(log_u, torch.tensor([[0.0, 1.0]]))
        tensor(0.2877)
    """
    _check_pair("temporal_prototype_loss", log_probs, targets)
    return -(targets.detach() * log_probs).sum(-1).mean()


def projection_norm_loss(projections: torch.Tensor) -> torch.Tensor:
    """``mean_n (||w_n|| - 1)^2`` of projections ``w`` before normalisation (DP6).

    A term of the authors' released code (weight 1, on the image and on the latent
    projections), not written in the paper: it keeps the projections near the unit
    sphere, where the cosine scores are read.

    Args:
        projections: ``(*batch, D)``.

    Examples:
        >>> projection_norm_loss(torch.tensor([[3.0, 4.0], [0.6, 0.8]]))
        tensor(8.)
    """
    return (projections.float().norm(dim=-1) - 1.0).square().mean()
