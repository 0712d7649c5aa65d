from .genseg_trainer import (
    MODES,
    FeedbackSettings,
    GenerationSettings,
    GenSegEvents,
    GenSegTrainer,
    ModeFacts,
    bce_discriminator_loss,
    bce_generator_loss,
)
from .hypergradient import HYPERGRADIENT_METHODS, UNROLLS, adam_update, sgd_update, unrolled_hypergradient

__all__ = [
    "MODES",
    "FeedbackSettings",
    "GenerationSettings",
    "GenSegEvents",
    "GenSegTrainer",
    "ModeFacts",
    "bce_discriminator_loss",
    "bce_generator_loss",
    "HYPERGRADIENT_METHODS",
    "UNROLLS",
    "adam_update",
    "sgd_update",
    "unrolled_hypergradient",
]
