"""GenSeg as an Auto3DSeg algorithm template (``genseg``), for ``AutoRunner`` and ``BundleGen``.

    from monai.apps.auto3dseg import AutoRunner
    from monai_genseg.auto3dseg import TEMPLATES_DIR
    AutoRunner(input="input.yaml", algos="genseg", templates_path_or_url=str(TEMPLATES_DIR)).run()

See ``docs/auto3dseg.md`` for running it beside MONAI's own algorithms.
"""

from .algo import TEMPLATES_DIR, GensegAlgo, algo_bundle, copy_template
from .run import InferClass, ProgressWriter, fold_split, train
from .stats import recipe_from_stats

__all__ = [
    "TEMPLATES_DIR",
    "GensegAlgo",
    "InferClass",
    "ProgressWriter",
    "algo_bundle",
    "copy_template",
    "fold_split",
    "recipe_from_stats",
    "train",
]
