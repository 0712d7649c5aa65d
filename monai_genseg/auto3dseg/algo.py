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

from monai_genseg.auto3dseg.run import MULTI_GPU_OVERLAY
from monai_genseg.auto3dseg.stats import recipe_from_stats
from monai_genseg.bundle_configs import (
    LOGGING_CONF,
    _load_transforms,
    multi_gpu_config,
    to_yaml,
    train_config,
)
from monai_genseg.recipes import Recipe

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


def algo_config(r: Recipe, datalist: str, dataroot: str, fold: int, bundle_root: str, knobs: dict) -> dict:
    """The GenSeg training config for one fold: the bundles' wiring with Auto3DSeg's data split and paths."""
    cfg = train_config(r)
    cfg.update(knobs)  # the template's hyper_parameters.yaml: mode, scale, seed, ...
    for key in ("dataset_dir", "data_root", "datalist", "num_labeled"):  # the bundles' own split, replaced by the fold's
        cfg.pop(key)
    cfg.update({
        "bundle_root": bundle_root,
        "ckpt_path": os.path.join(bundle_root, "models"),  # BundleAlgo.get_score reads progress.yaml here
        "ckpt_dir": "@ckpt_path",
        "data_list_file_path": datalist,
        "data_file_base_dir": dataroot,
        "fold": fold,
        "split": "$monai_genseg.auto3dseg.fold_split(@data_list_file_path, @data_file_base_dir, @fold)",
        # the architecture step's batch: the whole fold up to 8 cases (the bundles' num_val), then it cycles through the fold
        "num_val": "$min(len(@split['val']), 8)",
    })
    cfg["imports"] = [i for i in cfg["imports"] if i != "$import monai_genseg.auto3dseg"] + ["$import monai_genseg.auto3dseg"]
    cfg["validate"]["handlers"].append({"_target_": "monai_genseg.auto3dseg.ProgressWriter", "path": "$@ckpt_path + '/progress.yaml'",
                                        "model_path": "$@ckpt_path + '/model.pt'"})
    cfg["infer"] = {
        "preprocessing": {"_target_": "Compose", "transforms": _load_transforms(r, ["image"])},
        "inferer": {"_target_": "SlidingWindowInferer", "roi_size": "@patch_size", "sw_batch_size": 4, "overlap": 0.5, "mode": "gaussian"},
    }
    return cfg


class GensegAlgo(BundleAlgo):
    """Auto3DSeg's handle on one GenSeg fold; see the module docstring."""

    def fill_template_config(self, data_stats_filename: str, output_path: str, **kwargs: Any) -> dict:
        fold = int(kwargs.pop("fold", 0))
        if not self.data_list_file:
            raise ValueError("GensegAlgo needs Auto3DSeg's data source config (set_data_source / BundleGen data_src_cfg_name)")
        source = ConfigParser.load_config_file(self.data_list_file)
        stats = ConfigParser.load_config_file(data_stats_filename)
        config_file = Path(output_path) / "configs" / "hyper_parameters.yaml"
        knobs = dict(ConfigParser.load_config_file(str(config_file)) or {})
        r = recipe_from_stats(stats, modality=str(source.get("modality", "ct")), source=data_stats_filename)
        paths = {k: os.path.abspath(str(source[k])) for k in ("datalist", "dataroot")}
        cfg = algo_config(r, paths["datalist"], paths["dataroot"], fold, os.path.abspath(output_path), knobs)
        _write(config_file, cfg, f"GenSeg fold {fold}, filled by GensegAlgo.fill_template_config from {data_stats_filename}")
        _write(Path(output_path) / MULTI_GPU_OVERLAY, multi_gpu_config(r), "merged by scripts/train.py when run under torchrun")
        (config_file.parent / "logging.conf").write_text(LOGGING_CONF)  # ConfigWorkflow's default place: INFO to stdout
        filled = {"fold": fold, "num_classes": r.num_classes, "image_channels": r.image_channels, "modality": r.modality,
                  "presets": r.presets, "intensity": r.intensity}
        return {"hyper_parameters.yaml": filled}


def _write(path: Path, cfg: dict, note: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {note}\n" + to_yaml(cfg))
