"""Read a GenSegTrainer output for MONAI's Stats/TensorBoard handlers and for our own."""

from __future__ import annotations

from typing import Any

from monai.transforms import Decollated

LOSS_KEYS = (
    "loss",
    "loss_real",
    "loss_synthetic",
    "loss_generator",
    "loss_generator_l1",
    "loss_discriminator",
    "loss_val",
    "hypergradient_norm",
    "feedback_share",
)


def output_items(output: dict | list[dict] | None) -> list[dict[str, Any]]:
    """The trainer output as one dict per batch item, whether or not the trainer decollated it; none before the
    first iteration (a resumed run that had nothing left to do)."""
    if output is None:
        return []
    return list(output) if isinstance(output, (list, tuple)) else Decollated(keys=None, detach=True)(output)


def stage_losses(output: dict | list[dict]) -> dict[str, float]:
    """The losses present in a :class:`GenSegTrainer` output, as ``{name: float}`` for ``StatsHandler``."""
    first = output[0] if isinstance(output, (list, tuple)) else output
    return {k: float(first[k]) for k in LOSS_KEYS if k in first}
