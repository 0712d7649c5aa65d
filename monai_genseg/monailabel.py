"""Prepare a GenSeg bundle for MONAI Label's ``monaibundle`` app.

MONAI Label loads a bundle folder as is: it reads ``configs/inference.yaml`` and ``configs/train.yaml``
and puts its own values into them (``bundle_root``, the data, ``train#trainer#max_epochs``, and a
``CheckpointLoader`` at the front of ``train#handlers``). It cannot choose a preset, and it retrains
over the same ``models/model.pt``. So the copy written here fixes ``scale`` in both configs, sets
``overwrite: true`` in its train config, and adds a loader that continues the generator from the
previous training. It does that to this copy only, never to ``bundles/``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from monai_genseg.bundle_configs import train_config, write_bundle_copy
from monai_genseg.recipes import get_recipe

GENSEG_CHECKPOINT = "@ckpt_dir + '/genseg_checkpoint.pt'"
NOTE = "# Prepared for MONAI Label by `monai-genseg monailabel-bundle`: scale fixed, retraining overwrites models/.\n"


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
        name: a bundle of ``bundles/`` (``monai-genseg bundles`` lists them).
        dest: the MONAI Label app's model folder (e.g. ``apps/monaibundle/model``).
        scale: the preset the model was (or will be) trained with, ``cpu`` or ``gpu``.
        model: a trained ``models/model.pt`` of that bundle and scale to copy in; MONAI Label offers
            inference only for a bundle that has one.
        overrides: further config settings for training, e.g. ``{"presets#gpu#epoch_length": 100}``.
        overwrite: replace an existing ``dest/<name>``.
    """
    if model is not None and not Path(model).is_file():
        raise FileNotFoundError(f"{model}: no such model file to copy into the bundle.")
    # MONAI Label's CheckpointLoader restores the segmenter only; this one continues the generator (its
    # architecture logits included) and the discriminator from the previous training, once there is one
    # (its _target_ is spelt out: MONAI Label adds its own loader only if no handler's _target_ is "CheckpointLoader")
    continue_gan = {"_target_": "monai.handlers.CheckpointLoader", "_disabled_": f"$not os.path.exists({GENSEG_CHECKPOINT})",
                    "load_path": f"${GENSEG_CHECKPOINT}", "map_location": "@device",
                    "load_dict": {"generator": "@generator_net", "discriminator": "@discriminator_net"}}
    settings = {"overwrite": True, "train#handlers": train_config(get_recipe(name))["train"]["handlers"] + [continue_gan], **(overrides or {})}
    target = write_bundle_copy(name, dest, scale, settings, overwrite=overwrite, note=NOTE)
    if model is not None:
        shutil.copyfile(model, target / "models" / "model.pt")
    return target
