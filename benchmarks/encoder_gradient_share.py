"""Which world-model terms drive a run's image encoder, from its checkpoint and replay.

Loads a run (read only, :func:`~torchrl_psp.training.open_run`), draws ``--batches``
batches from its replay, and for each ``loss_model_*`` term of its world-model loss takes
the gradient of that term alone with respect to the image encoder's parameters. Prints,
averaged over the batches, each term's gradient norm, its share of the sum of the norms,
and its cosine with the sum of the other terms' gradients; for a run with PSP's
adversarial action head also the head's ``adv_action_r2`` (``1 - MSE / Var(a)``: 0 =
the encoding reveals nothing of the previous action, below 0 = the head does worse than
predicting the mean action), and the root mean square of the encoder's output.

The adversarial term's gradient is the one the encoder receives: ``-epsilon`` times
``grad L_adv`` through the gradient-reversal layer. If it dwarfs the other terms, the
encoder is trained mostly to defeat the head; the optimiser's adaptive gradient clipping
then scales the sum, so the other terms' share of the update shrinks with it.

Usage::

    python benchmarks/encoder_gradient_share.py <run directory> [--batches 4]

Nothing is written into the run directory. Copy a running run's directory first if its
replay could be saved while this reads it.
"""

from __future__ import annotations

import torch

from torchrl_psp.training import open_run_for_replay_batches


def term_gradients(
    losses, terms: list[str], parameters: list[torch.nn.Parameter]
) -> dict[str, torch.Tensor]:
    """The flattened gradient of each loss term alone with respect to ``parameters``."""
    gradients = {}
    for i, term in enumerate(terms):
        value = losses.get(term).sum()
        grads = torch.autograd.grad(
            value, parameters, retain_graph=i < len(terms) - 1, allow_unused=True
        )
        gradients[term] = torch.cat(
            [
                (g if g is not None else torch.zeros_like(p)).reshape(-1)
                for g, p in zip(grads, parameters)
            ]
        )
    return gradients


def gradient_table(gradients: dict[str, torch.Tensor]) -> dict[str, tuple[float, float, float]]:
    """Per term: gradient norm, share of the summed norms, cosine with the other terms' sum."""
    total = sum(gradients.values())
    norms = {term: g.norm().item() for term, g in gradients.items()}
    norm_sum = sum(norms.values()) or 1.0
    table = {}
    for term, g in gradients.items():
        rest = total - g
        denominator = (g.norm() * rest.norm()).item()
        cosine = (g @ rest).item() / denominator if denominator > 0 else float("nan")
        table[term] = (norms[term], norms[term] / norm_sum, cosine)
    return table


def main() -> None:
    # one backward pass per term through the same graph: compiled regions must keep
    # their saved buffers for the next pass
    torch._functorch.config.donated_buffer = False
    args, run = open_run_for_replay_batches(__doc__.split("\n")[0])
    loss = run.parts.loss.model_loss
    parameters = [p for p in run.parts.agent.encoder.parameters() if p.requires_grad]
    rows: dict[str, list[tuple[float, float, float]]] = {}
    r2, encoded_rms = [], []
    for _ in range(args.batches):
        losses, output = loss(run.replay.sample())
        encoded = output.get(("next", getattr(loss.tensor_keys, "encoded", "encoded_latents")))
        encoded_rms.append(encoded.detach().pow(2).mean().sqrt().item())
        terms = sorted(key for key in losses.keys() if key.startswith("loss_model_"))
        for term, row in gradient_table(term_gradients(losses, terms, parameters)).items():
            rows.setdefault(term, []).append(row)
        if "adv_action_r2" in losses.keys():
            r2.append(losses.get("adv_action_r2").item())
    print(run.describe(args.batches))
    print("| term | encoder gradient norm | share | cosine with the rest |")
    print("|---|---:|---:|---:|")
    for term, values in rows.items():
        norm, share, cosine = (sum(v[i] for v in values) / len(values) for i in range(3))
        print(f"| {term} | {norm:.4g} | {share:.3f} | {cosine:+.3f} |")
    print(f"encoder output RMS: {sum(encoded_rms) / len(encoded_rms):.4g}")
    if r2:
        print(f"adv_action_r2: {sum(r2) / len(r2):+.3f} (mean of {len(r2)} batches)")


if __name__ == "__main__":
    main()
