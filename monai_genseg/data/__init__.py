from .checks import DataCheckError, check_dataset, require_valid_dataset
from .datalist import (
    NUM_LABELED,
    NUM_VAL,
    load_datalist,
    load_folder_datalist,
    load_msd_datalist,
    seeded_order,
    split_cases,
)
from .demo import cache_dir, demo_dataset
from .demo_liver import liver_phantom, write_liver_demo
from .sitk_reader import SimpleITKReader

__all__ = [
    "NUM_LABELED",
    "NUM_VAL",
    "SimpleITKReader",
    "load_datalist",
    "load_folder_datalist",
    "DataCheckError",
    "check_dataset",
    "require_valid_dataset",
    "seeded_order",
    "cache_dir",
    "demo_dataset",
    "liver_phantom",
    "load_msd_datalist",
    "split_cases",
    "write_liver_demo",
]
