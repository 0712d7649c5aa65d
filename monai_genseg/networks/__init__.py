from .generator import DOWN_OPS, UP_OPS, MaskToImageGenerator, MixedOp, one_hot_mask
from .nnunet import segmenter

__all__ = ["DOWN_OPS", "UP_OPS", "MaskToImageGenerator", "MixedOp", "one_hot_mask", "segmenter"]
