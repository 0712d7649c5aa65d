"""Prepare a GenSeg bundle for MONAI Label's ``monaibundle`` app.

MONAI Label loads a bundle folder as is: it reads ``configs/inference.yaml`` and ``configs/train.yaml``
and puts its own values into them (``bundle_root``, the data, ``train#trainer#max_epochs``, and a
``CheckpointLoader`` at the front of ``train#handlers``). It cannot choose a preset, and it retrains
over the same ``models/model.pt``. So the copy written here fixes ``scale`` in both configs, and
sets ``overwrite: true`` in its train config. It does that to this copy only, never to ``bundles/``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from monai.bundle import ConfigParser

from monai_genseg.bundle_configs import LOGGING_CONF, inference_config, render, to_yaml, train_config
from monai_genseg.recipes import RECIPES

NOTE = "# Prepared for MONAI Label by `monai-genseg monailabel-bundle`: scale fixed, retraining overwrites models/.\n"


def _with(cfg: dict, settings: dict) -> dict:
    parser = ConfigParser(cfg)
    for key, value in settings.items():
        parser[key] = value  # nested ids such as "presets#cpu#epoch_length" work too
    return parser.get()


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
    if name not in RECIPES:
        raise ValueError(f"unknown bundle '{name}'; available: {sorted(RECIPES)}.")
    r = RECIPES[name]
    if scale not in r.presets:
        raise ValueError(f"scale must be one of {sorted(r.presets)}, got '{scale}'.")
    if model is not None and not Path(model).is_file():
        raise FileNotFoundError(f"{model}: no such model file to copy into the bundle.")
    target = Path(dest) / name
    if target.exists():
        if not overwrite:
            raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
        shutil.rmtree(target)
    files = render(r)
    files["configs/train.yaml"] = NOTE + to_yaml(_with(train_config(r), {"scale": scale, "overwrite": True, **(overrides or {})}))
    files["configs/inference.yaml"] = NOTE + to_yaml(_with(inference_config(r), {"scale": scale}))
    files["configs/logging.conf"] = LOGGING_CONF
    for rel, text in files.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    licence = Path(__file__).resolve().parent.parent / "LICENSE"
    if licence.is_file():
        shutil.copyfile(licence, target / "LICENSE")
    (target / "models").mkdir(exist_ok=True)
    if model is not None:
        shutil.copyfile(model, target / "models" / "model.pt")
    return target
