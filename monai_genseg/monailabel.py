"""Prepare a GenSeg bundle for MONAI Label's ``monaibundle`` app.

MONAI Label loads a bundle folder as is: it reads ``configs/inference.yaml`` and ``configs/train.yaml``
and puts its own values into them (``bundle_root``, the data, ``train#trainer#max_epochs``, and a
``CheckpointLoader`` at the front of ``train#handlers``). It cannot choose a preset, and it retrains
over the same ``models/model.pt``. So the copy written here fixes ``scale`` in both configs, sets
``overwrite: true`` in its train config, and adds a loader that continues the generator from the
previous training (:class:`~monai_genseg.bundle.MonaiLabel`). It does that to this copy only.

MONAI Label offers inference only for a bundle that had ``models/model.pt`` when the server started, and
reloads that file when a training replaces it. So a copy made without a trained model starts with
untrained weights, and its ``/info`` description says so: the first training then makes inference
useful without a restart. With ``scale="auto"`` the first training plans the network's sizes, so the
server must be restarted after it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from monai_genseg.atomic import atomic_copy, atomic_write_text
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
        model: a trained ``models/model.pt`` of that bundle and scale to copy in. Without one (and without
            a ``models/model.pt`` there already), the copy gets untrained weights, so that MONAI Label
            lists it for inference from the start and serves the first training's weights without a restart.
        overrides: further config settings for training, e.g. ``{"presets#gpu#epoch_length": 100}``.
        overwrite: rewrite the configs of an existing ``dest/<name>`` (its ``models/`` stay).
    """
    if model is not None and not Path(model).is_file():
        raise FileNotFoundError(f"{model}: no such model file to copy into the bundle.")
    bundle = compose(get_recipe(name), *STANDARD, MonaiLabel(), Overrides(overrides or {}), scale=scale)
    target = write(bundle, dest, overwrite=overwrite)
    weights = target / "models" / "model.pt"
    if model is not None:
        atomic_copy(model, weights)
    elif not weights.exists() and scale != "auto":
        _untrained_weights(target)
    return target


UNTRAINED = (
    "UNTRAINED WEIGHTS when this copy was made: inference is meaningless until the first training, after "
    "which MONAI Label serves the trained models/model.pt without a restart. "
)


def _untrained_weights(bundle: Path) -> None:
    """``models/model.pt`` of the copy's network, freshly initialised (seed 0), and a description saying so."""
    from monai.bundle import ConfigParser

    from monai_genseg.handlers import atomic_torch_save

    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.yaml"))
    parser["bundle_root"] = str(bundle)
    torch.manual_seed(0)
    network = parser.get_parsed_content("network_def", instantiate=True)
    (bundle / "models").mkdir(exist_ok=True)
    atomic_torch_save(network.state_dict(), bundle / "models" / "model.pt")
    meta_file = bundle / "configs" / "metadata.json"
    meta = json.loads(meta_file.read_text())
    meta["description"] = UNTRAINED + meta.get("description", "")
    atomic_write_text(meta_file, json.dumps(meta, indent=4) + "\n")
