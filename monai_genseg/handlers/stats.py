"""Output transforms that let MONAI's Stats/TensorBoard handlers report every GenSeg stage."""

from __future__ import annotations

LOSS_KEYS = ("loss", "loss_real", "loss_synthetic", "loss_generator", "loss_generator_l1", "loss_discriminator", "loss_val")


def stage_losses(output: dict) -> dict[str, float]:
    """The losses present in a :class:`GenSegTrainer` output, as ``{name: float}`` for ``StatsHandler``."""
    return {k: float(output[k]) for k in LOSS_KEYS if k in output}
