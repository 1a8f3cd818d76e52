"""Policy-Shaped Prediction, Segmentation Dreamer and DreamerPro losses on TorchRL's DreamerV3 losses."""

from torchrl_psp.objectives.dreamerpro import DreamerProModelLoss, dreamerpro_components
from torchrl_psp.objectives.prototype_losses import (
    projection_norm_loss,
    prototype_log_probs,
    sinkhorn_knopp,
    swapped_prediction_loss,
    temporal_prototype_loss,
)
from torchrl_psp.objectives.psp import PSPModelLoss, adversarial_action_loss
from torchrl_psp.objectives.reconstruction import (
    ImageReconstructionModelLoss,
    check_chw_image,
    check_image_scale,
)
from torchrl_psp.objectives.sd import SDModelLoss
from torchrl_psp.objectives.selective_l2 import selective_l2_filter
from torchrl_psp.objectives.stepper import (
    FiniteUpdateStepper,
    NonFiniteUpdateError,
    make_optimization_stepper,
)
from torchrl_psp.objectives.variants import (
    VARIANTS,
    DreamerV3VariantLoss,
    make_model_loss,
    make_variant_loss,
)
from torchrl_psp.objectives.weights import (
    finite_magnitude,
    per_image_quantile,
    segment_mean,
    segment_weights,
    weight_statistics,
)

__all__ = [
    "VARIANTS",
    "DreamerProModelLoss",
    "DreamerV3VariantLoss",
    "FiniteUpdateStepper",
    "ImageReconstructionModelLoss",
    "NonFiniteUpdateError",
    "PSPModelLoss",
    "SDModelLoss",
    "adversarial_action_loss",
    "check_chw_image",
    "check_image_scale",
    "dreamerpro_components",
    "finite_magnitude",
    "make_model_loss",
    "make_optimization_stepper",
    "make_variant_loss",
    "per_image_quantile",
    "projection_norm_loss",
    "prototype_log_probs",
    "segment_mean",
    "segment_weights",
    "selective_l2_filter",
    "sinkhorn_knopp",
    "swapped_prediction_loss",
    "temporal_prototype_loss",
    "weight_statistics",
]
