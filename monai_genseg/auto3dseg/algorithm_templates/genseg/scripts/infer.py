# BundleAlgo.get_inferer loads InferClass from here; the ensemble calls InferClass(configs).infer(image_file).
from monai_genseg.auto3dseg.run import InferClass

__all__ = ["InferClass"]
