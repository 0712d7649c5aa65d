from .mask_augment import RandMaskAugment, RandMaskAugmentd

__all__ = ["RandMaskAugment", "RandMaskAugmentd"]
