from .genseg_trainer import MODES, GenSegTrainer
from .hypergradient import HYPERGRADIENT_METHODS, unrolled_hypergradient

__all__ = ["MODES", "GenSegTrainer", "HYPERGRADIENT_METHODS", "unrolled_hypergradient"]
