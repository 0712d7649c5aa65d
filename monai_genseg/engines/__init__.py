from .genseg_trainer import MODES, GenSegTrainer, ModeFacts
from .hypergradient import HYPERGRADIENT_METHODS, UNROLLS, adam_update, sgd_update, unrolled_hypergradient

__all__ = ["MODES", "GenSegTrainer", "ModeFacts", "HYPERGRADIENT_METHODS", "UNROLLS", "adam_update", "sgd_update", "unrolled_hypergradient"]
