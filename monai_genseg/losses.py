"""The segmentation loss on a deep-supervised segmenter's output (:func:`monai_genseg.networks.segmenter`)."""

from __future__ import annotations

import torch
import torch.nn as nn
from monai.losses import DeepSupervisionLoss


class DeepSupervisedLoss(nn.Module):
    """``loss`` on the full-resolution logits, plus, when the segmenter returns its lower heads too (training
    mode with deep supervision: a stack along dim 1), on each of theirs, weighted 1, 1/2, 1/4 and normalised
    to sum to 1 (nnU-Net's weighting, through MONAI's :class:`~monai.losses.DeepSupervisionLoss`).

    A plain logits tensor (eval mode, or a network without heads) gets ``loss`` alone, so one loss serves
    training, validation and the generator's feedback.
    """

    def __init__(self, loss: nn.Module, weight_mode: str = "exp") -> None:
        super().__init__()
        self.loss = loss
        self.supervised = DeepSupervisionLoss(loss, weight_mode=weight_mode)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.dim() != target.dim() + 1:
            return self.loss(logits, target)
        outputs = list(torch.unbind(logits, 1))
        return self.supervised(outputs, target) / sum(self.supervised.get_weights(len(outputs)))
