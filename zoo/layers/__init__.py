"""Custom layers of the zoo; each is `.keras`-serializable under the `zoo` package."""

from zoo.layers.contrastive import ContrastiveHead, ContrastiveLoss
from zoo.layers.cross_attention import CrossModalAttention
from zoo.layers.decibels import PowerToDecibels
from zoo.layers.film import FiLM
from zoo.layers.gated import GatedFusion
from zoo.layers.image_adapter import BackboneImageAdapter
from zoo.layers.last_token import LastTokenPooling
from zoo.layers.late_fusion import LateFusion
from zoo.layers.masked_pooling import MaskedGlobalAveragePooling1D
from zoo.layers.packed_lstm import PackedLSTM
from zoo.layers.position_encoding import SinusoidalPositionEncoding
from zoo.layers.sequence_mask import PaddingMaskedSequence
from zoo.layers.transformer_encoder import TransformerEncoderBlock
from zoo.layers.waveform import FixedLengthWaveform
from zoo.layers.weighted_sum import WeightedSumFusion

__all__ = [
    "BackboneImageAdapter",
    "ContrastiveHead",
    "ContrastiveLoss",
    "CrossModalAttention",
    "FiLM",
    "FixedLengthWaveform",
    "GatedFusion",
    "LastTokenPooling",
    "LateFusion",
    "MaskedGlobalAveragePooling1D",
    "PackedLSTM",
    "PaddingMaskedSequence",
    "PowerToDecibels",
    "SinusoidalPositionEncoding",
    "TransformerEncoderBlock",
    "WeightedSumFusion",
]
