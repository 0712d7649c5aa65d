# The class BundleGen imports as genseg.scripts.algo.GensegAlgo; its code lives in the installed package.
from monai_genseg.auto3dseg.algo import GensegAlgo

__all__ = ["GensegAlgo"]
