"""monai-genseg: GenSeg (Zhang et al., Nat. Commun. 2025) as MONAI networks, transforms, engines and bundles."""

__version__ = "0.1.0"
