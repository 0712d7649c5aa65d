from .argmax import ArgMax, ArgMaxd
from .channels import MaskToLabels, MaskToLabelsd, MatchChannels, MatchChannelsd
from .mask_augment import (
    RandMaskAugment,
    RandMaskAugmentd,
    RandPairedAugment,
    RandPairedAugmentd,
    anatomy_safe_flip_prob,
)

__all__ = [
    "ArgMax",
    "ArgMaxd",
    "MaskToLabels",
    "MaskToLabelsd",
    "MatchChannels",
    "MatchChannelsd",
    "RandMaskAugment",
    "RandMaskAugmentd",
    "RandPairedAugment",
    "RandPairedAugmentd",
    "anatomy_safe_flip_prob",
]
