"""The floor that makes bundles.

- :mod:`.recipes`: what differs between tasks (typed :class:`Recipe` and :class:`Preset`).
- :mod:`.core`: the wiring every bundle shares, knowing no data source.
- :mod:`.layers`: what one use adds (split, evaluate, inference, multi-GPU, MONAI Label, Auto3DSeg,
  model zoo) and :func:`compose`, the one way to build a bundle.
- :mod:`.plan`: a training plan sized from the data (DataAnalyzer) and a time budget.
- :mod:`.render`: YAML, metadata, README and files.
- :mod:`.runtime`: what the configs call at run time, as ``monai_genseg.bundle.<name>``.

    from monai_genseg.bundle import STANDARD, compose, get_recipe, write
    write(compose(get_recipe("liver3d"), *STANDARD), "bundles")
"""

from .layers import (
    STANDARD,
    Auto3DSeg,
    Bundle,
    Evaluate,
    Inference,
    Layer,
    ModelZoo,
    MonaiLabel,
    MultiGPU,
    Overrides,
    Split,
    compose,
)
from .plan import Plan, preset_for_run
from .recipes import RECIPES, Preset, Recipe, get_recipe
from .render import render, to_yaml, write
from .runtime import (
    FLAG_WORDS,
    IMAGE_PATTERNS,
    cases_to_check,
    cases_to_evaluate,
    check_prediction_targets,
    checkpoint_to_evaluate,
    choose,
    default_bundle_root,
    default_workers,
    demo_test_images,
    flag,
    handlers_for_rank,
    image_files,
    positive,
    resolve_mode,
    start_inference,
    start_run,
    training_cases,
    whole,
)

__all__ = [
    "FLAG_WORDS",
    "IMAGE_PATTERNS",
    "RECIPES",
    "STANDARD",
    "Auto3DSeg",
    "Bundle",
    "Evaluate",
    "Inference",
    "Layer",
    "ModelZoo",
    "MonaiLabel",
    "MultiGPU",
    "Overrides",
    "Plan",
    "Preset",
    "Recipe",
    "Split",
    "cases_to_check",
    "cases_to_evaluate",
    "check_prediction_targets",
    "checkpoint_to_evaluate",
    "choose",
    "compose",
    "default_bundle_root",
    "default_workers",
    "flag",
    "demo_test_images",
    "get_recipe",
    "handlers_for_rank",
    "image_files",
    "positive",
    "preset_for_run",
    "resolve_mode",
    "start_inference",
    "start_run",
    "render",
    "to_yaml",
    "training_cases",
    "whole",
    "write",
]
