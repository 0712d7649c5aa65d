"""Layers on the core wiring, and :func:`compose`, the one way every caller builds a bundle.

A layer adds what one use needs to a :class:`Bundle` (its config files, by name): a data split, an
evaluation overlay, inference, multi-GPU training, or the changes MONAI Label, Auto3DSeg or the model
zoo ask for. The repository's bundles are ``compose(recipe, *STANDARD)``; MONAI Label's copy adds
:class:`MonaiLabel`. No module outside this package edits a config it did not compose.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from monai_genseg.bundle.core import (
    DEVICE,
    FROM_ENGINE,
    IMPORTS,
    Config,
    core,
    data_check,
    load_transforms,
    network_def,
    sliding_window,
)
from monai_genseg.bundle.recipes import Recipe
from monai_genseg.data.datalist import NUM_VAL


@dataclass
class Bundle:
    """A bundle being composed: its recipe, its configs by file stem (``train``, ``evaluate``, ...), the
    note that heads a copy's configs, and the scale a copy is fixed to (``None``: the user picks)."""

    recipe: Recipe
    configs: dict[str, Config]
    note: str = ""
    scale: str | None = None

    @property
    def train(self) -> Config:
        return self.configs["train"]


class Layer(Protocol):
    def apply(self, bundle: Bundle) -> None:
        """Add to ``bundle`` in place."""


def _insert_after(cfg: Config, anchor: str, items: Config) -> Config:
    """``cfg`` with ``items`` placed right after key ``anchor`` (the order a reader sees in the YAML)."""
    out: Config = {}
    for key, value in cfg.items():
        out[key] = value
        if key == anchor:
            out.update(items)
    return out


def set_by_id(cfg: Config, config_id: str, value: Any) -> None:
    """``cfg[a][b][0]... = value`` for a MONAI config id ``a#b#0...``; the parents must exist."""
    *parents, last = config_id.split("#")
    node: Any = cfg
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


@dataclass(frozen=True)
class Split:
    """The cases of ``--dataset_dir`` (or the embedded demo), split with ``seed`` into ``num_labeled``
    training, ``num_val`` validation and held-out cases. Left unset, a dataset's cases all train or
    validate (:func:`~monai_genseg.data.split_cases`); the demo keeps its default held-out cases."""

    def apply(self, bundle: Bundle) -> None:
        cfg = _insert_after(bundle.train, "bundle_root", {"dataset_dir": None})
        cfg = _insert_after(cfg, "train_on_val", {"num_labeled": None, "num_val": None})
        cfg["is_demo"] = "$not @dataset_dir"
        cfg = _insert_after(
            cfg,
            "output_dir",
            {
                "data_root": "$@dataset_dir if @dataset_dir else "
                f"monai_genseg.data.demo_dataset('{bundle.recipe.name}', seed=0)",
                "datalist": "$monai_genseg.data.load_datalist(@data_root, check_files=False)",
                "split": "$monai_genseg.data.split_cases(@datalist, @num_labeled, @num_val, @seed, "
                "source=@data_root, demo=@is_demo)",
            },
        )
        bundle.configs["train"] = cfg


def _segmenter_loader(load_path: str) -> Config:
    return {
        "_target_": "CheckpointLoader",
        "load_path": load_path,
        "load_dict": {"model": "@network"},
        "map_location": "@device",
    }


@dataclass(frozen=True)
class Evaluate:
    """``evaluate.yaml``, an overlay on train: per-case Dice, IoU and HD95 of the held-out cases (or of
    ``--eval_dataset_dir``) with the best (``model.pt``) or the final weights."""

    def apply(self, bundle: Bundle) -> None:
        r = bundle.recipe
        bundle.configs["evaluate"] = {
            "eval_dataset_dir": None,
            "eval_checkpoint": "model",
            "tta": True,
            "largest_component": r.largest_component,
            "replan": False,  # the sizes the weights were trained with, from models/plan.json
            "validate#inferer": _mirrored("@validate#sliding_window", r),
            "validate#sliding_window": sliding_window("@patch_size"),
            "validate#postprocessing#transforms": [
                {"_target_": "Activationsd", "keys": "pred", "softmax": True},
                {"_target_": "monai_genseg.transforms.ArgMaxd", "keys": "pred"},
                _largest_component(r),
                {"_target_": "AsDiscreted", "keys": ["pred", "label"], "to_onehot": "$[@num_classes, @num_classes]"},
            ],
            "validate#dataset#data": "$monai_genseg.bundle.cases_to_evaluate(@split, @eval_dataset_dir)",
            "validate#additional_metrics": {
                "iou": {"_target_": "MeanIoUHandler", "include_background": False, "output_transform": FROM_ENGINE},
                "hd95": {
                    "_target_": "HausdorffDistance",
                    "include_background": False,
                    "percentile": 95,
                    "output_transform": FROM_ENGINE,
                },
            },
            "validate#evaluator#additional_metrics": "@validate#additional_metrics",
            "validate#handlers": [
                _segmenter_loader("$monai_genseg.bundle.checkpoint_to_evaluate(@ckpt_dir, @eval_checkpoint)"),
                {"_target_": "StatsHandler", "iteration_log": False},
                {
                    "_target_": "monai_genseg.handlers.CaseMetricsWriter",
                    "output_dir": "@output_dir",
                    "class_names": "@class_names",
                },
            ],
            "initialize": [
                "$monai_genseg.bundle.start_run(@bundle_root, @mode, @scale, @presets, seed=@seed, tta=@tta, "
                "largest_component=@largest_component)",
                data_check(r, "@validate#dataset#data", source="'the evaluation cases'"),
                "$monai.utils.set_determinism(seed=@seed)",
            ],
            "run": ["$@validate#evaluator.run()"],
        }


def _mirrored(inferer: str, r: Recipe) -> Config:
    """``inferer`` averaged over the recipe's mirror flips when ``tta`` is on (nnU-Net's test-time mirroring)."""
    return {
        "_target_": "monai_genseg.inferers.MirroringInferer",
        "inferer": inferer,
        "spatial_axes": f"$list({list(r.mirror_axes)}) if monai_genseg.bundle.flag('tta', @tta) else []",
    }


def _largest_component(r: Recipe) -> Config:
    """Keep each class's largest connected piece of the argmax prediction, when ``largest_component`` is on."""
    return {
        "_target_": "KeepLargestConnectedComponentd",
        "keys": "pred",
        "applied_labels": list(range(1, r.num_classes)),
        "is_onehot": False,
        "independent": True,
        "_disabled_": "$not monai_genseg.bundle.flag('largest_component', @largest_component)",
    }


@dataclass(frozen=True)
class Inference:
    """``inference.yaml``, a program of its own: the segmenter of ``models/model.pt`` on a folder of images
    (default: the demo's held-out images), predictions written in each input's geometry."""

    def apply(self, bundle: Bundle) -> None:
        r = bundle.recipe
        ext = ".nii.gz" if r.spatial_dims == 3 else ".png"
        save = {
            "_target_": "SaveImaged",
            "keys": "pred",
            "output_dir": "@output_dir",
            "output_postfix": "seg",
            "output_ext": ext,
            "output_dtype": "$numpy.uint8",
            "resample": False,
            "separate_folder": False,
            "print_log": False,
        }
        if r.spatial_dims == 2:
            save["scale"] = 255
        net_keys = ("pixdim",) * (r.spatial_dims == 3) + ("patch_size", "segmenter_channels")
        bundle.configs["inference"] = {
            "imports": list(IMPORTS),
            "bundle_root": "$monai_genseg.bundle.default_bundle_root()",
            "dataset_dir": None,
            "scale": "auto",
            "tta": True,
            "largest_component": r.largest_component,
            "presets": {s: {k: v for k, v in p.as_config().items() if k in net_keys} for s, p in r.presets.items()},
            # auto: the sizes the weights were trained with, from models/plan.json
            "preset": "$monai_genseg.bundle.preset_for_run(@scale, @presets, @ckpt_dir)",
            "device": DEVICE,
            "ckpt_dir": "$@bundle_root + '/models'",
            "output_dir": "$@bundle_root + '/eval/predictions'",
            "overwrite": False,
            "num_classes": r.num_classes,
            "datalist": "$monai_genseg.bundle.image_files(@dataset_dir) if @dataset_dir "
            f"else monai_genseg.bundle.demo_test_images('{r.name}')",
            "network_def": network_def(r),
            "network": "$@network_def.to(@device)",
            "preprocessing": {"_target_": "Compose", "transforms": load_transforms(r, ["image"])},
            "dataset": {"_target_": "Dataset", "data": "@datalist", "transform": "@preprocessing"},
            "dataloader": {
                "_target_": "DataLoader",
                "dataset": "@dataset",
                "batch_size": 1,
                "shuffle": False,
                "num_workers": "$monai_genseg.bundle.default_workers(@device)",
            },
            "sliding_window": sliding_window("$@preset['patch_size']"),
            "inferer": _mirrored("@sliding_window", r),
            "postprocessing": {
                "_target_": "Compose",
                "transforms": [
                    {"_target_": "Activationsd", "keys": "pred", "softmax": True},
                    {
                        "_target_": "Invertd",
                        "keys": "pred",
                        "transform": "@preprocessing",
                        "orig_keys": "image",
                        "nearest_interp": False,
                        "to_tensor": True,
                    },
                    {"_target_": "monai_genseg.transforms.ArgMaxd", "keys": "pred"},
                    _largest_component(r),
                    save,
                ],
            },
            "handlers": [
                _segmenter_loader("$@ckpt_dir + '/model.pt'"),
                {"_target_": "StatsHandler", "iteration_log": False},
                {"_target_": "monai_genseg.handlers.CaseTimer"},
                {"_target_": "monai_genseg.handlers.ProgressBar", "persist": True},
            ],
            "evaluator": {
                "_target_": "SupervisedEvaluator",
                "device": "@device",
                "val_data_loader": "@dataloader",
                "network": "@network",
                "inferer": "@inferer",
                "postprocessing": "@postprocessing",
                "val_handlers": "@handlers",
                "amp": True,
            },
            "initialize": [
                "$monai_genseg.bundle.start_inference(@output_dir, @scale, @presets, overwrite=@overwrite, tta=@tta, "
                "largest_component=@largest_component)",
                data_check(r, "@datalist", source="'the inference inputs'"),
                "$monai.utils.set_determinism(seed=0)",
                f"$monai_genseg.bundle.check_prediction_targets(@datalist, @output_dir, 'seg', '{ext}', @overwrite)",
            ],
            "run": ["$@evaluator.run()"],
        }


@dataclass(frozen=True)
class MultiGPU:
    """``multi_gpu_train.yaml``, an overlay on train for ``torchrun``: one process per GPU (or CPU process
    with gloo), data split by DistributedSampler, gradients of all four optimizers averaged by
    GenSegTrainer, rank-0 handlers. Apply it after the layers that change train's ``initialize``."""

    def apply(self, bundle: Bundle) -> None:
        bundle.configs["multi_gpu_train"] = {
            "imports": IMPORTS + ["$import torch.distributed as dist"],
            "device": "$torch.device(f'cuda:{dist.get_rank()}' if torch.cuda.is_available() else 'cpu')",
            "train#sampler": {
                "_target_": "DistributedSampler",
                "dataset": "@train#dataset",
                "even_divisible": True,
                "shuffle": True,
            },
            "train#dataloader#sampler": "@train#sampler",
            "train#dataloader#shuffle": False,
            "train#trainer#distributed": True,
            # every rank validates its share; logging, pictures and checkpoints come from rank 0 only
            "train#trainer#train_handlers": "$monai_genseg.bundle.handlers_for_rank(@train#handlers, dist.get_rank())",
            "validate#sampler": {
                "_target_": "DistributedSampler",
                "dataset": "@validate#dataset",
                "even_divisible": False,
                "shuffle": False,
            },
            "validate#dataloader#sampler": "@validate#sampler",
            # early stopping runs on every rank (the Dice is reduced across ranks), so all stop together
            "validate#evaluator#val_handlers": "$[@validate#early_stop] if dist.get_rank() > 0 else @validate#handlers",
            "initialize": [
                "$dist.is_initialized() or "
                "dist.init_process_group(backend='nccl' if torch.cuda.is_available() else 'gloo')",
                "$torch.cuda.set_device(@device) if torch.cuda.is_available() else None",
            ]
            + list(bundle.train["initialize"]),
            "run": list(bundle.train["run"]),
            "finalize": ["$dist.is_initialized() and dist.destroy_process_group()"],
        }


GENSEG_CHECKPOINT = "@ckpt_dir + '/genseg_checkpoint.pt'"


@dataclass(frozen=True)
class MonaiLabel:
    """What MONAI Label's ``monaibundle`` app needs: it retrains over the same ``models/``, so training may
    overwrite it, and a loader continues the generator from the previous training.

    MONAI Label's own CheckpointLoader restores the segmenter only; this one restores the generator (its
    architecture logits included) and the discriminator once there is a checkpoint. Its ``_target_`` is
    spelt out: MONAI Label adds its own loader only if no handler's ``_target_`` is "CheckpointLoader".
    A restored generator was warmed up by the training that saved it, so a retraining skips the warm-up.
    ``models/train_stats.json`` says how training goes, where MONAI Label's trainers keep it.

    2D: MONAI Label's ``Restored`` squeezes only 4-D results and its writer transposes the array it gets,
    so the copy's inference ends with a label of the image's (W, H) and no channel, as 8-bit label indices,
    and asks for a PNG by default (``displayable_configs``, which MONAI Label merges into every request).
    """

    note: str = (
        "# Prepared for MONAI Label by `monai-genseg monailabel-bundle`: scale fixed, retraining overwrites models/.\n"
    )

    def apply(self, bundle: Bundle) -> None:
        bundle.train["overwrite"] = True
        handlers = bundle.train["train"]["handlers"]
        warmup = [i for i, h in enumerate(handlers) if h.get("_target_") == "monai_genseg.handlers.GeneratorWarmup"]
        handlers.insert(
            warmup[0] if warmup else len(handlers),  # the warm-up runs after every loader
            {
                "_target_": "monai.handlers.CheckpointLoader",
                "_disabled_": f"$not os.path.exists({GENSEG_CHECKPOINT})",
                "load_path": f"${GENSEG_CHECKPOINT}",
                "map_location": "@device",
                "load_dict": {"generator": "@generator_net", "discriminator": "@discriminator_net"},
            },
        )
        handlers.append(  # after validation: MONAI Label's BasicTrainTask keeps train_stats.json in models/
            {
                "_target_": "monai_genseg.handlers.TrainStatsWriter",
                "path": "$@ckpt_dir + '/train_stats.json'",
                "evaluator": "@validate#evaluator",
                "generator": "@generator_net",
            }
        )
        for handler in handlers:
            if handler.get("_target_") == "monai_genseg.handlers.GeneratorWarmup":
                handler["iterations"] = (
                    f"$0 if os.path.exists({GENSEG_CHECKPOINT}) else @preset['generator_warmup_iterations']"
                )
        if bundle.recipe.spatial_dims == 2 and "inference" in bundle.configs:
            inference = bundle.configs["inference"]
            inference["postprocessing"]["transforms"] += [
                {"_target_": "SqueezeDimd", "keys": "pred", "dim": 0},
                {"_target_": "CastToTyped", "keys": "pred", "dtype": "$numpy.uint8"},
            ]
            inference["displayable_configs"] = {"result_extension": ".png", "result_dtype": "uint8"}
        bundle.note = self.note


@dataclass(frozen=True)
class ModelZoo:
    """A copy for a model-zoo pull request: the configs say which preset the shipped weights fit."""

    note: str = (
        "# Packaged for the MONAI model zoo by `monai-genseg zoo-package`: scale fixed to the shipped weights.\n"
    )

    def apply(self, bundle: Bundle) -> None:
        bundle.note = self.note


@dataclass(frozen=True)
class Auto3DSeg:
    """One Auto3DSeg fold instead of the bundles' own split: the fold's cases from Auto3DSeg's datalist,
    ``progress.yaml`` for ``BundleAlgo.get_score``, and an ``infer`` section for the ensemble's InferClass."""

    datalist: str
    dataroot: str
    fold: int
    bundle_root: str

    def apply(self, bundle: Bundle) -> None:
        cfg = bundle.train
        cfg.update(
            {
                "bundle_root": self.bundle_root,
                "ckpt_path": os.path.join(self.bundle_root, "models"),  # BundleAlgo.get_score reads progress.yaml here
                "ckpt_dir": "@ckpt_path",
                "data_list_file_path": self.datalist,
                "data_file_base_dir": self.dataroot,
                "fold": self.fold,
                "split": "$monai_genseg.auto3dseg.fold_split(@data_list_file_path, @data_file_base_dir, @fold)",
            }
        )
        # the architecture step's batch: the whole fold up to NUM_VAL cases, then it cycles through the fold
        cfg["train"]["arch_dataloader"]["batch_size"] = f"$min(len(@validate#dataset#data), {NUM_VAL})"
        cfg["imports"].append("$import monai_genseg.auto3dseg")
        cfg["validate"]["handlers"].append(
            {
                "_target_": "monai_genseg.auto3dseg.ProgressWriter",
                "path": "$@ckpt_path + '/progress.yaml'",
                "model_path": "$@ckpt_path + '/model.pt'",
            }
        )
        cfg["infer"] = {
            "preprocessing": {"_target_": "Compose", "transforms": load_transforms(bundle.recipe, ["image"])},
            "inferer": sliding_window("@patch_size"),
        }


@dataclass(frozen=True)
class Overrides:
    """Config values by MONAI config id (``presets#cpu#epoch_length``, ``mode``), set in ``config``
    (default ``train``): the run options a copy ships with."""

    values: Mapping[str, Any] = field(default_factory=dict)
    config: str = "train"

    def apply(self, bundle: Bundle) -> None:
        for config_id, value in self.values.items():
            set_by_id(bundle.configs[self.config], config_id, value)


STANDARD: tuple[Layer, ...] = (Split(), Evaluate(), MultiGPU(), Inference())


def compose(recipe: Recipe, *layers: Layer, scale: str | None = None) -> Bundle:
    """The bundle of ``recipe``: the core train config, each layer applied in order, then ``scale`` fixed
    in the train and inference configs (a copy whose weights fit one preset) if given."""
    bundle = Bundle(recipe, {"train": core(recipe)})
    for layer in layers:
        layer.apply(bundle)
    if scale is not None:
        if scale != "auto":
            recipe.preset(scale)  # one line naming --scale and the presets there are
        bundle.scale = scale
        for name in ("train", "inference"):
            if name in bundle.configs:
                bundle.configs[name]["scale"] = scale
                if scale != "auto":  # weights of a known preset: no plan to make or read
                    bundle.configs[name]["preset"] = "$@presets[@scale]"
    return bundle
