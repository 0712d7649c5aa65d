from .case_metrics import CaseMetricsWriter
from .case_timer import CaseTimer
from .checkpoint import AtomicCheckpointSaver, BestMetricState, RandomStates, atomic_torch_save
from .gallery import SyntheticGallery
from .genotype import GenotypeLogger
from .progress import ProgressBar
from .stats import output_items, stage_losses
from .synthetic_saver import SyntheticPairSaver
from .time_budget import TimeBudget
from .train_stats import TrainStatsWriter
from .warmup import GeneratorWarmup

__all__ = [
    "AtomicCheckpointSaver",
    "BestMetricState",
    "CaseMetricsWriter",
    "CaseTimer",
    "GeneratorWarmup",
    "GenotypeLogger",
    "ProgressBar",
    "RandomStates",
    "SyntheticGallery",
    "SyntheticPairSaver",
    "TimeBudget",
    "TrainStatsWriter",
    "atomic_torch_save",
    "output_items",
    "stage_losses",
]
