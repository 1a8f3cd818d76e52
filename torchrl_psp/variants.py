"""The project's variants in one table: what each world-model loss is and what it needs.

Every part that depends on the variant reads :data:`VARIANT_SPECS`: the loss builder
(:func:`~torchrl_psp.objectives.make_model_loss`), the recipe's configuration checks
(:func:`~torchrl_psp.training.config_errors`), the agent builder (its decoder,
:attr:`VariantSpec.decoder`), the trainer (compilation), the figures
(:func:`~torchrl_psp.training.evaluation.model_figures`) and the score tables (column
order). A new variant is one entry here (and, for a new kind of loss, its builder).

This module imports nothing heavy, so that light tools (``recipes/compare.py``) can read
it without importing torch or TorchRL.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ADVERSARIAL_HEAD_VARIANTS", "VARIANT_SPECS", "VariantSpec", "variant_spec"]


@dataclass(frozen=True)
class VariantSpec:
    """One variant: its world-model loss and what the loss reads from the environment.

    Attributes:
        name: the variant's name (``variant=`` of the recipe).
        description: one line for docs and help texts.
        agent: the agent and its trainer: ``"dreamerv3"`` (world model + actor-critic,
            :class:`~torchrl_psp.training.DreamerTrainer`) or ``"drqv2"`` (model-free, no
            world model: :class:`~torchrl_psp.baselines.DrQv2Trainer`).
        model_loss: the kind of world-model loss: ``"dreamer"`` (TorchRL's
            ``DreamerV3ModelLoss``), ``"psp"`` (:class:`~torchrl_psp.objectives.PSPModelLoss`),
            ``"sd"`` (:class:`~torchrl_psp.objectives.SDModelLoss`) or ``"dreamerpro"``
            (:class:`~torchrl_psp.objectives.DreamerProModelLoss`, reconstruction-free:
            no decoder); ``None`` for an agent without a world model.
        saliency: PSP's weighting: ``"actor"`` (policy saliency), ``"value"`` (value
            gradient) or ``None`` (no saliency weighting).
        adversarial_head: PSP's adversarial action head.
        segments: the loss aggregates salience within ``"segments"`` (PSP Eq. 2).
        mask_head: SD's learned mask head with the selective L2 loss.
        task_mask: SD's mask source: ``"gt"`` (ground truth), ``"learned"`` (a
            segmenter) or ``None`` (no task mask read).
        figures: what the evaluation draws: ``"reconstruction"`` and, for SD,
            ``"sd_masks"``; DrQ-v2 ``"augmentation"``; DreamerPro nothing (no decoder).
        compile_on_cuda: compiled and CUDA-graph captured by ``optim.compile=auto`` on
            CUDA (only variants tested under compilation).
    """

    name: str
    description: str
    model_loss: str | None = "dreamer"
    saliency: str | None = None
    adversarial_head: bool = False
    segments: bool = False
    mask_head: bool = False
    task_mask: str | None = None
    figures: tuple[str, ...] = ("reconstruction",)
    compile_on_cuda: bool = False
    agent: str = "dreamerv3"

    @property
    def world_model(self) -> bool:
        """Whether the variant trains a world model (and has a world-model loss)."""
        return self.agent == "dreamerv3"

    @property
    def decoder(self) -> bool:
        """Whether the variant's agent has an image decoder (``make_dreamer_v3(decoder=...)``).

        Every world-model variant reconstructs images except DreamerPro; a variant without
        a world model has none.

        Examples:
            >>> variant_spec("psp").decoder, variant_spec("dreamerpro").decoder
            (True, False)
            >>> variant_spec("drqv2").decoder
            False
        """
        return self.world_model and self.model_loss != "dreamerpro"

    def __post_init__(self) -> None:
        if self.agent not in ("dreamerv3", "drqv2"):
            raise ValueError(f"agent must be dreamerv3 or drqv2; got {self.agent!r}.")
        if not self.world_model:
            world_model_fields = (self.saliency, self.adversarial_head, self.segments)
            if self.model_loss is not None or self.compile_on_cuda or any(world_model_fields):
                raise ValueError(f"{self.name}: a {self.agent} agent has no world-model loss.")
            if self.mask_head or self.task_mask:
                raise ValueError(f"{self.name}: the task mask and its head are SD's.")
            return
        if self.model_loss not in ("dreamer", "psp", "sd", "dreamerpro"):
            raise ValueError(
                f"model_loss must be dreamer, psp, sd or dreamerpro; got {self.model_loss!r}."
            )
        if not self.decoder and {"reconstruction", "sd_masks"} & set(self.figures):
            raise ValueError(f"{self.name}: DreamerPro has no decoder to draw reconstructions.")
        if self.saliency not in (None, "actor", "value"):
            raise ValueError(f"saliency must be None, actor or value; got {self.saliency!r}.")
        if self.task_mask not in (None, "gt", "learned"):
            raise ValueError(f"task_mask must be None, gt or learned; got {self.task_mask!r}.")
        if self.model_loss != "psp" and (self.saliency or self.adversarial_head or self.segments):
            raise ValueError(f"{self.name}: saliency, adversarial head and segments are PSP's.")
        if self.model_loss != "sd" and (self.mask_head or self.task_mask):
            raise ValueError(f"{self.name}: the task mask and its head are SD's.")
        if self.model_loss == "sd" and self.task_mask is None:
            raise ValueError(f"{self.name}: an SD loss reads a task mask (gt or learned).")
        if self.segments and self.saliency is None:
            raise ValueError(f"{self.name}: segments aggregate a saliency; set saliency.")


def _psp(name: str, description: str, **fields) -> VariantSpec:
    options = dict(saliency="actor", adversarial_head=True, segments=True)
    options.update(fields)
    return VariantSpec(name, description, model_loss="psp", **options)


def _sd(name: str, description: str, **fields) -> VariantSpec:
    return VariantSpec(
        name, description, model_loss="sd", figures=("reconstruction", "sd_masks"), **fields
    )


#: Every variant, in the column order of the score tables (SPEC §4 plus ablations, then
#: the papers' baselines).
VARIANT_SPECS: dict[str, VariantSpec] = {
    spec.name: spec
    for spec in (
        VariantSpec("dreamer", "DreamerV3: plain reconstruction of x_t", compile_on_cuda=True),
        _psp("psp", "PSP: policy saliency aggregated by segments + adversarial action head"),
        _psp("psp_noseg", "PSP without segment aggregation (pixel-wise weights)", segments=False),
        _psp("psp_noadv", "PSP without the adversarial head", adversarial_head=False),
        _sd("sd_gt", "SD: reconstruct x_t * m_t (ground-truth mask)", task_mask="gt"),
        _sd(
            "sd_approx",
            "SD: reconstruct x_t * m_t (learned mask) with selective L2",
            task_mask="learned",
            mask_head=True,
        ),
        _sd("sd_l2", "SD: reconstruct x_t * m_t (learned mask), naive L2", task_mask="learned"),
        _psp(
            "psp_nosal",
            "PSP without saliency weighting (adversarial head only)",
            saliency=None,
            segments=False,
        ),
        _psp(
            "psp_value",
            "PSP with value-gradient (VaGraM-style) instead of policy saliency",
            saliency="value",
        ),
        VariantSpec(
            "drqv2",
            "DrQ-v2: model-free actor-critic on randomly shifted images (no world model)",
            agent="drqv2",
            model_loss=None,
            figures=("augmentation",),
        ),
        VariantSpec(
            "dreamerpro",
            "DreamerPro: reconstruction-free, prototypes (SwAV) + temporal prototype loss",
            model_loss="dreamerpro",
            figures=(),
        ),
    )
}


#: The variants with PSP's adversarial action head (those ``psp.epsilon`` applies to).
ADVERSARIAL_HEAD_VARIANTS: tuple[str, ...] = tuple(
    sorted(name for name, spec in VARIANT_SPECS.items() if spec.adversarial_head)
)


def variant_spec(name: str) -> VariantSpec:
    """The spec of a variant.

    Raises:
        ValueError: an unknown name; the message lists the known ones.

    Examples:
        >>> spec = variant_spec("sd_l2")
        >>> spec.model_loss, spec.task_mask, spec.mask_head
        ('sd', 'learned', False)
        >>> variant_spec("sd_gt").task_mask
        'gt'
    """
    try:
        return VARIANT_SPECS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown variant {name!r}; expected one of {sorted(VARIANT_SPECS)}."
        ) from None
