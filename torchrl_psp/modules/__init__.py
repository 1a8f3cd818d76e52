"""Saliency, gradient reversal, auxiliary heads and the pixel DreamerV3 agent builder."""

from torchrl_psp.modules.actor import ActionClamp, BoundedNormalActorNet, PolicyCarry
from torchrl_psp.modules.adversarial_head import AdversarialActionHead
from torchrl_psp.modules.compiled import REGIONS, CompiledAgent, CompiledRegion, compile_agent
from torchrl_psp.modules.dreamer import DreamerV3Agent, default_device, make_dreamer_v3
from torchrl_psp.modules.dreamer_config import (
    DREAMER_V3_PRESETS,
    DreamerV3Config,
    dreamer_v3_config,
)
from torchrl_psp.modules.encoder_vjp import (
    EncoderPassCapture,
    capture_encoder_pass,
    conv2d_input_gradient,
    encoder_input_gradient,
    supports_encoder_capture,
)
from torchrl_psp.modules.gradient_reversal import GradientReversal, gradient_reversal
from torchrl_psp.modules.image_codec import (
    ChannelsLastImageDecoder,
    ChannelsLastImageEncoder,
    channel_rms_norm_silu,
)
from torchrl_psp.modules.mlp import NormSiLUMLP, rms_norm_silu
from torchrl_psp.modules.prototypes import Prototypes, random_translate, translate
from torchrl_psp.modules.saliency import PolicySaliency, image_to_unit_float
from torchrl_psp.modules.synthetic import synthetic_replay_sample

__all__ = [
    "AdversarialActionHead",
    "BoundedNormalActorNet",
    "ChannelsLastImageDecoder",
    "ChannelsLastImageEncoder",
    "CompiledAgent",
    "CompiledRegion",
    "REGIONS",
    "channel_rms_norm_silu",
    "compile_agent",
    "DREAMER_V3_PRESETS",
    "DreamerV3Agent",
    "DreamerV3Config",
    "EncoderPassCapture",
    "GradientReversal",
    "NormSiLUMLP",
    "PolicyCarry",
    "ActionClamp",
    "PolicySaliency",
    "Prototypes",
    "capture_encoder_pass",
    "conv2d_input_gradient",
    "default_device",
    "dreamer_v3_config",
    "encoder_input_gradient",
    "gradient_reversal",
    "image_to_unit_float",
    "make_dreamer_v3",
    "rms_norm_silu",
    "random_translate",
    "supports_encoder_capture",
    "synthetic_replay_sample",
    "translate",
]
