from .channels import MaskToLabels, MaskToLabelsd, MatchChannels, MatchChannelsd
from .mask_augment import RandMaskAugment, RandMaskAugmentd, RandPairedAugment, RandPairedAugmentd

__all__ = [
    "MaskToLabels",
    "MaskToLabelsd",
    "MatchChannels",
    "MatchChannelsd",
    "RandMaskAugment",
    "RandMaskAugmentd",
    "RandPairedAugment",
    "RandPairedAugmentd",
]
