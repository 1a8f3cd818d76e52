"""Where a PSP run's reconstruction weights go: agent pixels or background, from its checkpoint.

Loads a run with saliency weights (``psp``, ``psp_noseg``, ``psp_noadv``; read only,
:func:`~torchrl_psp.training.open_run`), draws ``--batches`` batches from its replay and
runs its world-model loss on each, which computes PSP's weights ``W''`` from the policy's
saliency as in training. With the ground-truth segments stored in the replay (the task
mask is rebuilt from them, :func:`~torchrl_psp.envs.gt_segmentation.task_mask_from_segments`),
it prints, averaged over the batches:

* the fraction of pixels that belong to the agent (the task mask);
* the mean weight on agent pixels and on background pixels (the weights average 1 over
  each image, SPEC section 2);
* the agent's share of the weights, and its share of the reconstruction error before and
  after weighting (``sum mask * e / sum e`` with ``e`` the per-pixel error summed over
  colour channels, times ``W''`` for the weighted one): what the world model is asked
  to spend its image loss on.

PSP's design (PSP Fig. 5) is that the agent's share grows with the weighting. The run
must have been recorded with ``env.segmentation=gt`` so that the replay holds
``("next", "segments")``.

Usage::

    python benchmarks/saliency_weight_share.py <run directory> [--batches 4]

Nothing is written into the run directory. Copy a running run's directory first if its
replay could be saved while this reads it.
"""

from __future__ import annotations

import torch

from torchrl_psp.envs.gt_segmentation import task_mask_from_segments
from torchrl_psp.keys import SEGMENTS_KEY
from torchrl_psp.objectives.weights import finite_magnitude, per_image_quantile, segment_weights
from torchrl_psp.training import open_run_for_replay_batches


def mask_shares(weights: torch.Tensor, error: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """Agent fraction, mean weights, and the agent's share of weight and of error.

    Args:
        weights: PSP's per-pixel weights, shape ``(*batch, H, W)``.
        error: per-pixel reconstruction error (summed over channels), same shape.
        mask: the task (agent) mask, same shape, boolean.

    Examples:
        >>> w = torch.tensor([[2.0, 2.0], [0.0, 0.0]])
        >>> e = torch.tensor([[1.0, 1.0], [1.0, 1.0]])
        >>> m = torch.tensor([[True, False], [False, False]])
        >>> shares = mask_shares(w, e, m)
        >>> shares["agent_fraction"], shares["weight_agent"], shares["error_share_weighted"]
        (0.25, 2.0, 0.5)
    """
    if not (weights.shape == error.shape == mask.shape):
        raise ValueError(
            f"weights {tuple(weights.shape)}, error {tuple(error.shape)} and mask "
            f"{tuple(mask.shape)} must have the same shape (*batch, H, W)."
        )
    mask = mask.bool()
    agent, background = mask.float(), (~mask).float()

    def ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> float:
        return (
            (numerator.sum() / denominator.sum()).item() if denominator.sum() > 0 else float("nan")
        )

    weighted = weights * error
    return {
        "agent_fraction": agent.mean().item(),
        "weight_agent": ratio(weights * agent, agent),
        "weight_background": ratio(weights * background, background),
        "weight_share": ratio(weights * agent, weights),
        "error_share_unweighted": ratio(error * agent, error),
        "error_share_weighted": ratio(weighted * agent, weighted),
    }


def salience_contrast(
    salience: torch.Tensor, mask: torch.Tensor, quantile: float
) -> dict[str, float]:
    """How the salience separates the agent, and how much of it the clipping (Eq. 2) removes.

    Returns the mean salience on agent pixels over the mean on background pixels, raw and
    after clipping each image at its ``quantile``, and the fraction of agent pixels that
    the clipping lowers (salience above the image's quantile).

    Examples:
        >>> salience = torch.tensor([[[9.0, 1.0], [1.0, 1.0]]])
        >>> mask = torch.tensor([[[True, False], [False, False]]])
        >>> contrast = salience_contrast(salience, mask, quantile=0.5)
        >>> contrast["salience_ratio_raw"], contrast["salience_ratio_clipped"]
        (9.0, 1.0)
        >>> contrast["agent_clipped"]
        1.0
    """
    height, width = salience.shape[-2:]
    flat = finite_magnitude(salience.detach().float().reshape(-1, height * width))
    threshold = per_image_quantile(flat, quantile).unsqueeze(-1)
    agent = mask.reshape(flat.shape).bool()

    def ratio(values: torch.Tensor) -> float:
        background = values[~agent].mean()
        return (values[agent].mean() / background).item() if background > 0 else float("nan")

    clipped = torch.minimum(flat, threshold)
    return {
        "salience_ratio_raw": ratio(flat),
        "salience_ratio_clipped": ratio(clipped),
        "agent_clipped": (flat > threshold)[agent].float().mean().item(),
    }


_LABELS = {
    "agent_fraction": "agent pixels (fraction of the image)",
    "salience_ratio_raw": "salience per pixel, agent / background, raw",
    "salience_ratio_clipped": "salience per pixel, agent / background, clipped",
    "agent_clipped": "agent pixels lowered by the clipping (fraction)",
    "weight_agent": "mean weight on agent pixels",
    "weight_background": "mean weight on background pixels",
    "weight_share": "agent's share of the weights",
    "error_share_unweighted": "agent's share of the reconstruction error, unweighted",
    "error_share_weighted": "agent's share of the reconstruction error, weighted",
}


def main() -> None:
    args, run = open_run_for_replay_batches(__doc__.split("\n")[0])
    cfg = run.parts.cfg
    loss = run.parts.loss.model_loss
    if getattr(loss, "saliency", None) is None:
        raise ValueError(
            f"{args.run_dir}: variant {cfg.variant!r} computes no saliency weights; this "
            "measures the psp and psp_noadv variants."
        )
    if cfg.env.segmentation != "gt":
        raise ValueError(
            f"{args.run_dir}: recorded with env.segmentation={cfg.env.segmentation!r}; the "
            "agent mask needs the ground-truth segments (env.segmentation=gt)."
        )
    from dm_control import suite

    model = suite.load(cfg.env.domain, cfg.env.task).physics.model
    captured = {}
    weights_from_salience = loss._salience_weights

    def capture(tensordict, images, salience):
        captured["salience"] = salience.detach()
        return weights_from_salience(tensordict, images, salience)

    loss._salience_weights = capture
    settings = {f"as trained (quantile {loss.quantile:g})": loss.quantile, "no clipping": 1.0}
    rows: dict[str, dict[str, list[float]]] = {setting: {} for setting in settings}
    for _ in range(args.batches):
        sample = run.replay.sample()
        segments = sample.get(("next", SEGMENTS_KEY), None)
        if segments is None:
            raise ValueError(
                f"{args.run_dir}: the replay has no ('next', {SEGMENTS_KEY!r}): variant "
                f"{cfg.variant!r} does not store segments, so the agent mask cannot be rebuilt."
            )
        mask = task_mask_from_segments(segments, model)
        losses, output = loss(sample)
        target, prediction = loss._target_and_prediction(loss._images(sample), output)
        error = loss._pixel_error(target, prediction.detach()).sum(-3)
        salience = captured["salience"].reshape(mask.shape)
        for setting, quantile in settings.items():
            weights = segment_weights(
                salience,
                segments if loss.use_segments else None,
                alpha=loss.alpha,
                quantile=quantile,
            )
            values = {
                **mask_shares(weights, error, mask),
                **salience_contrast(salience, mask, quantile),
            }
            for name, value in values.items():
                rows[setting].setdefault(name, []).append(value)
    print(run.describe(args.batches))
    print("| quantity | " + " | ".join(settings) + " |")
    print("|---|" + "---:|" * len(settings))
    for name, label in _LABELS.items():
        means = [sum(rows[s][name]) / len(rows[s][name]) for s in settings]
        print(f"| {label} | " + " | ".join(f"{m:.3f}" for m in means) + " |")


if __name__ == "__main__":
    main()
