"""``GensegAlgo``: GenSeg as an Auto3DSeg algorithm, beside segresnet, dints and swinunetr.

``BundleGen`` copies ``algorithm_templates/genseg`` once per fold and calls ``fill_template_config``,
which reads the data analysis and writes the whole GenSeg training config (the same wiring as the
bundles under ``bundles/``) into ``configs/hyper_parameters.yaml``. ``scripts/train.py`` runs it and
keeps ``models/progress.yaml`` (``best_avg_dice_score``) for ``get_score``; ``scripts/infer.py``
holds the ``InferClass`` the ensemble calls.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from monai.apps.auto3dseg import BundleAlgo
from monai.bundle import ConfigParser

from monai_genseg.atomic import atomic_write_text
from monai_genseg.auto3dseg.run import MULTI_GPU_OVERLAY
from monai_genseg.auto3dseg.stats import recipe_from_stats
from monai_genseg.bundle import Auto3DSeg, Bundle, MultiGPU, Overrides, Recipe, compose, to_yaml
from monai_genseg.bundle.render import LOGGING_CONF

TEMPLATES_DIR = Path(__file__).resolve().parent / "algorithm_templates"


def copy_template(dest: str | os.PathLike, overwrite: bool = False) -> Path:
    """Copy the ``genseg`` template into ``dest`` (e.g. a folder that holds MONAI's own algorithm templates),
    so that ``AutoRunner(templates_path_or_url=dest)`` runs it beside them."""
    target = Path(dest) / "genseg"
    if target.exists():
        if not overwrite:
            raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
        shutil.rmtree(target)
    shutil.copytree(TEMPLATES_DIR / "genseg", target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def algo_bundle(r: Recipe, datalist: str, dataroot: str, fold: int, bundle_root: str, knobs: dict) -> Bundle:
    """One fold's GenSeg training config and its multi-GPU overlay: the bundles' wiring with Auto3DSeg's
    data split and paths, and ``knobs``, the template's ``hyper_parameters.yaml`` (mode, scale, seed, ...)."""
    return compose(r, Overrides(knobs), Auto3DSeg(datalist, dataroot, fold, bundle_root), MultiGPU())


class GensegAlgo(BundleAlgo):
    """Auto3DSeg's handle on one GenSeg fold; see the module docstring."""

    def fill_template_config(self, data_stats_filename: str, output_path: str, **kwargs: Any) -> dict:
        fold = int(kwargs.pop("fold", 0))
        if not self.data_list_file:
            raise ValueError(
                "GensegAlgo needs Auto3DSeg's data source config (set_data_source / BundleGen data_src_cfg_name)"
            )
        source = ConfigParser.load_config_file(self.data_list_file)
        stats = ConfigParser.load_config_file(data_stats_filename)
        config_file = Path(output_path) / "configs" / "hyper_parameters.yaml"
        knobs = dict(ConfigParser.load_config_file(str(config_file)) or {})
        r = recipe_from_stats(stats, modality=str(source.get("modality", "ct")), source=data_stats_filename)
        paths = {k: os.path.abspath(str(source[k])) for k in ("datalist", "dataroot")}
        bundle = algo_bundle(r, paths["datalist"], paths["dataroot"], fold, os.path.abspath(output_path), knobs)
        _write(
            config_file,
            bundle.train,
            f"GenSeg fold {fold}, filled by GensegAlgo.fill_template_config from {data_stats_filename}",
        )
        overlay = bundle.configs["multi_gpu_train"]
        _write(Path(output_path) / MULTI_GPU_OVERLAY, overlay, "merged by scripts/train.py when run under torchrun")
        atomic_write_text(
            config_file.parent / "logging.conf", LOGGING_CONF
        )  # ConfigWorkflow's default place: INFO to stdout
        filled = {
            "fold": fold,
            "num_classes": r.num_classes,
            "image_channels": r.image_channels,
            "modality": r.modality,
            "presets": bundle.train["presets"],
            "intensity": [dict(t) for t in r.intensity],
        }
        return {"hyper_parameters.yaml": filled}


def _write(path: Path, cfg: dict, note: str) -> None:
    atomic_write_text(path, f"# {note}\n" + to_yaml(cfg))
