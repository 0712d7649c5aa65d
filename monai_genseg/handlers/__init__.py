from .case_metrics import CaseMetricsWriter
from .gallery import SyntheticGallery
from .genotype import GenotypeLogger
from .synthetic_saver import SyntheticPairSaver

__all__ = ["CaseMetricsWriter", "SyntheticGallery", "GenotypeLogger", "SyntheticPairSaver"]
from .checkpoint import AtomicCheckpointSaver, BestMetricState, RandomStates, atomic_torch_save
from .progress import ProgressBar
from .stats import output_items, stage_losses

__all__ += ["AtomicCheckpointSaver", "BestMetricState", "RandomStates", "ProgressBar", "atomic_torch_save", "output_items", "stage_losses"]
