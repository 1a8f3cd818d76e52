"""Where a run's policy looks, and where PSP's reconstruction weights go: agent or background.

Loads a run (read only, :func:`~torchrl_psp.training.open_run`), draws ``--batches``
batches from its replay and rebuilds the ground-truth agent mask of every frame (from the
stored segments, :func:`~torchrl_psp.envs.gt_segmentation.task_mask_from_segments`, or
from the stored task mask, which ``sd_gt`` keeps instead). It prints, averaged over the
batches:

* the fraction of pixels that belong to the agent (the task mask);
* the policy's salience per pixel (PSP Eq. 1) on the agent over that on the background,
  raw and after the 99th-percentile clip (Eq. 2), and how many agent pixels the clip
  lowers;
* the mean weight on agent pixels and on background pixels (the weights average 1 over
  each image, SPEC section 2) and the agent's share of the weights;
* for a run that trains with PSP's weights, the agent's share of the reconstruction
  error before and after weighting (``sum mask * e / sum e`` with ``e`` the per-pixel
  error summed over colour channels, times ``W''`` for the weighted one): what the
  world model is asked to spend its image loss on.

A run with saliency weights (``psp``, ``psp_noseg``, ``psp_noadv``) runs its world-model
loss on each batch, which computes ``W''`` as in training. Any other variant with
DreamerV3's actor (``dreamer``, ``sd_gt``, ``dreamerpro``, ...) gets the same salience
from a :class:`~torchrl_psp.modules.PolicySaliency` over its own encoder, posterior and
actor (beliefs and posterior samples from its world-model loss, DreamerPro's
augmentation shift set to zero), and the weights PSP *would* compute from it (PSP's
defaults; within segments where the replay has them, per pixel otherwise). PSP's design
(PSP Fig. 5) is that the salience, and with it the weights, sit on the agent. The run
must have been recorded with ``env.segmentation=gt``.

Usage::

    python benchmarks/saliency_weight_share.py <run directory> [--batches 4]
    python benchmarks/saliency_weight_share.py <run directory> --episodes 2

``--episodes N`` reads N evaluation episodes played by the run's policy (its mode, in the
run's evaluation environment) instead of replay batches: the way to measure variants
whose replay keeps no segmentation (``dreamer``, ``dreamerpro``).

Nothing is written into the run directory. Copy a running run's directory first if its
replay could be saved while this reads it.
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Iterator

import torch
from tensordict import TensorDictBase

from torchrl_psp.envs.gt_segmentation import task_mask_from_segments
from torchrl_psp.keys import SEGMENTS_KEY, TASK_MASK_KEY
from torchrl_psp.modules import PolicySaliency
from torchrl_psp.objectives import PSPModelLoss
from torchrl_psp.objectives.weights import finite_magnitude, per_image_quantile, segment_weights
from torchrl_psp.training import open_run_for_replay_batches
from torchrl_psp.training.evaluation import evaluate_policy


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


def _trained_weights(
    loss, sample, captured: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Salience and per-pixel reconstruction error of a variant that trains with PSP's weights."""
    _, output = loss(sample)
    target, prediction = loss._target_and_prediction(loss._images(sample), output)
    error = loss._pixel_error(target, prediction.detach()).sum(-3)
    return captured["salience"], error


def _policy_salience(run, loss, saliency: PolicySaliency, sample) -> torch.Tensor:
    """The policy's salience on the replay images, for a variant that does not compute it.

    The beliefs and posterior samples come from the variant's own world-model loss on the
    sample (DreamerPro's random shift set to zero, so that they belong to the images the
    policy sees when it acts).
    """
    if hasattr(loss, "max_shift"):
        loss.max_shift = 0
    with torch.no_grad():
        _, output = loss(sample)
    belief, state = output.get(("next", "belief")), output.get(("next", "state"))
    images = sample.get(("next", run.parts.agent.pixels_key))
    return saliency.gradient(images, belief, state).abs().sum(-3)


def _agent_mask(sample, model, run) -> tuple[torch.Tensor | None, torch.Tensor]:
    """The sample's segments (or ``None``) and the agent mask ``(*batch, H, W)``.

    The mask is rebuilt from the stored segments, or read from the stored task mask
    (``sd_gt`` keeps the mask, not the segments).
    """
    height, width = sample.get(("next", run.parts.agent.pixels_key)).shape[-2:]
    frame_shape = (*sample.batch_size, height, width)
    segments = sample.get(("next", SEGMENTS_KEY), None)
    if segments is not None:
        return segments, task_mask_from_segments(segments, model).reshape(frame_shape)
    task_mask = sample.get(("next", TASK_MASK_KEY), None)
    if task_mask is None:
        raise ValueError(
            f"{run.run_dir}: the replay has neither ('next', {SEGMENTS_KEY!r}) nor ('next', "
            f"{TASK_MASK_KEY!r}): variant {run.parts.cfg.variant!r} stores no ground-truth "
            "segmentation, so the agent mask cannot be rebuilt; --episodes N reads "
            "evaluation episodes, which have it."
        )
    return None, task_mask.bool().reshape(frame_shape)


def _episodes_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--episodes",
        type=int,
        default=0,
        help="read N evaluation episodes played by the run's policy (its mode) instead of "
        "replay batches (for variants whose replay keeps no segmentation)",
    )


def _samples(args: argparse.Namespace, run) -> Iterator[TensorDictBase]:
    """``args.batches`` replay batches, or ``args.episodes`` evaluation episodes ``(1, T)``.

    An evaluation episode keeps the loss's entries and the environment's segmentation,
    as the trainer's figures do.
    """
    if not args.episodes:
        for _ in range(args.batches):
            yield run.replay.sample()
        return
    keys = [*run.parts.loss.in_keys, ("next", SEGMENTS_KEY), ("next", TASK_MASK_KEY)]
    max_steps = run.parts.cfg.eval.max_steps
    for _ in range(args.episodes):
        episode = evaluate_policy(run.parts.eval_env, run.parts.policy, 1, max_steps)
        yield episode.first_episode.select(*keys, strict=False).unsqueeze(0)


def main() -> None:
    args, run = open_run_for_replay_batches(
        __doc__.split("\n")[0], add_arguments=_episodes_argument
    )
    cfg = run.parts.cfg
    loss = run.parts.loss.model_loss
    if cfg.env.segmentation != "gt":
        raise ValueError(
            f"{args.run_dir}: recorded with env.segmentation={cfg.env.segmentation!r}; the "
            "agent mask needs the ground-truth segments (env.segmentation=gt)."
        )
    from dm_control import suite

    model = suite.load(cfg.env.domain, cfg.env.task).physics.model
    trains_with_weights = getattr(loss, "saliency", None) is not None
    captured: dict[str, torch.Tensor] = {}
    if trains_with_weights:
        alpha, quantile, use_segments = loss.alpha, loss.quantile, loss.use_segments
        weights_from_salience = loss._salience_weights

        def capture(tensordict, images, salience):
            captured["salience"] = salience.detach()
            return weights_from_salience(tensordict, images, salience)

        loss._salience_weights = capture
    else:
        agent = run.parts.agent
        saliency = PolicySaliency(agent.encoder, agent.posterior, agent.actor)
        defaults = inspect.signature(PSPModelLoss).parameters
        alpha, quantile = defaults["alpha"].default, defaults["quantile"].default
        use_segments = True  # within segments where the sample has them, else per pixel
    label = "as trained" if trains_with_weights else "as psp would"
    settings = {f"{label} (quantile {quantile:g})": quantile, "no clipping": 1.0}
    rows: dict[str, dict[str, list[float]]] = {setting: {} for setting in settings}
    for sample in _samples(args, run):
        segments, mask = _agent_mask(sample, model, run)
        if trains_with_weights and use_segments and segments is None:
            raise ValueError(
                f"{args.run_dir}: the replay has no ('next', {SEGMENTS_KEY!r}) for the "
                f"aggregation of variant {cfg.variant!r}."
            )
        if trains_with_weights:
            salience, error = _trained_weights(loss, sample, captured)
        else:  # no decoder error to weigh: the error rows are left out
            salience, error = _policy_salience(run, loss, saliency, sample), torch.ones(mask.shape)
        salience = salience.reshape(mask.shape)
        for setting, clip in settings.items():
            weights = segment_weights(
                salience,
                segments if use_segments else None,
                alpha=alpha,
                quantile=clip,
            )
            values = {
                **mask_shares(weights, error, mask),
                **salience_contrast(salience, mask, clip),
            }
            for name, value in values.items():
                rows[setting].setdefault(name, []).append(value)
    if args.episodes:
        print(
            f"{args.run_dir}: variant {cfg.variant}, {run.counters.get('updates', 0)} updates, "
            f"{args.episodes} evaluation episodes"
        )
    else:
        print(run.describe(args.batches))
    if not trains_with_weights:
        print(
            f"variant {cfg.variant!r} does not train with PSP's weights: the weights are "
            "those PSP would compute from this policy's salience (alpha "
            f"{alpha:g}, {'per pixel' if segments is None else 'within segments'})"
        )
    print("| quantity | " + " | ".join(settings) + " |")
    print("|---|" + "---:|" * len(settings))
    for name, label in _LABELS.items():
        if name.startswith("error_share") and not trains_with_weights:
            continue
        means = [sum(rows[s][name]) / len(rows[s][name]) for s in settings]
        print(f"| {label} | " + " | ".join(f"{m:.3f}" for m in means) + " |")


if __name__ == "__main__":
    main()
