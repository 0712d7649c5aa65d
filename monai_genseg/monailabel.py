"""Prepare a GenSeg bundle for MONAI Label's ``monaibundle`` app.

MONAI Label loads a bundle folder as is: it reads ``configs/inference.yaml`` and ``configs/train.yaml``
and puts its own values into them (``bundle_root``, the data, ``train#trainer#max_epochs``, and a
``CheckpointLoader`` at the front of ``train#handlers``). It cannot choose a preset, and it retrains
over the same ``models/model.pt``. So the copy written here fixes ``scale`` in both configs, sets
``overwrite: true`` in its train config, and adds a loader that continues the generator from the
previous training (:class:`~monai_genseg.bundle.MonaiLabel`). It does that to this copy only.
"""

from __future__ import annotations

import os
from pathlib import Path

from monai_genseg.atomic import atomic_copy
from monai_genseg.bundle import STANDARD, MonaiLabel, Overrides, compose, get_recipe, write


def prepare_bundle(
    name: str,
    dest: str | os.PathLike,
    scale: str = "gpu",
    model: str | os.PathLike | None = None,
    overrides: dict | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``dest/<name>``: bundle ``name`` with ``scale`` fixed and retraining allowed to replace ``models/``.

    Args:
        name: a bundle (``monai-genseg bundles`` lists them).
        dest: the MONAI Label app's model folder (e.g. ``apps/monaibundle/model``).
        scale: the preset the model was (or will be) trained with, ``demo``, ``gpu`` or ``auto`` (a plan from the data).
        model: a trained ``models/model.pt`` of that bundle and scale to copy in; MONAI Label offers
            inference only for a bundle that has one.
        overrides: further config settings for training, e.g. ``{"presets#gpu#epoch_length": 100}``.
        overwrite: rewrite the configs of an existing ``dest/<name>`` (its ``models/`` stay).
    """
    if model is not None and not Path(model).is_file():
        raise FileNotFoundError(f"{model}: no such model file to copy into the bundle.")
    bundle = compose(get_recipe(name), *STANDARD, MonaiLabel(), Overrides(overrides or {}), scale=scale)
    target = write(bundle, dest, overwrite=overwrite)
    if model is not None:
        atomic_copy(model, target / "models" / "model.pt")
    return target
