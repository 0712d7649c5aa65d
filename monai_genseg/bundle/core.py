"""The shared wiring of every GenSeg bundle, written out per recipe.

Each bundle under ``bundles/`` is self-contained (MONAI's runner, MONAI Label and the model zoo read
one folder), but its configs are generated here from a :class:`~monai_genseg.recipes.Recipe`, so a
change to the trainer's wiring is made once. Regenerate after editing this file or a recipe:

    python -m monai_genseg.bundle_configs bundles/

``tests/bundles/test_generated.py`` fails while a checked-in bundle differs from what this writes.
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
from pathlib import Path

import yaml

from monai_genseg import __version__
from monai_genseg.recipes import RECIPES, Recipe, get_recipe

IMPORTS = ["$import os", "$import numpy", "$import torch", "$import torch.utils.tensorboard", "$import monai", "$import monai_genseg",
           "$import monai_genseg.bundle", "$import monai_genseg.data", "$import monai_genseg.handlers"]
FROM_ENGINE = "$monai.handlers.from_engine(['pred', 'label'])"


def _load_transforms(r: Recipe, keys: list[str]) -> list[dict]:
    """Reading, orienting/resampling or resizing, and intensity scaling: shared by training, validation and inference."""
    has_label = "label" in keys
    out: list[dict] = [{"_target_": "LoadImaged", "keys": keys, "ensure_channel_first": True, "image_only": True}]
    if r.spatial_dims == 3:
        out[0]["reader"] = "$monai_genseg.data.SimpleITKReader"  # NRRD, MHA, DICOM; NIfTI falls through to nibabel
        out += [
            {"_target_": "Orientationd", "keys": keys, "axcodes": "RAS"},
            {"_target_": "Spacingd", "keys": keys, "pixdim": "$@preset['pixdim']", "mode": ["bilinear", "nearest"][: len(keys)]},
        ]
    else:
        out.append({"_target_": "monai_genseg.transforms.MatchChannelsd", "keys": "image", "channels": r.image_channels})
        if has_label:
            out.append({"_target_": "monai_genseg.transforms.MaskToLabelsd", "keys": "label", "num_classes": r.num_classes})
    out += [dict(t) for t in r.intensity]
    if r.spatial_dims == 2:
        out.append({"_target_": "Resized", "keys": keys, "spatial_size": "$@preset['patch_size']", "mode": ["area", "nearest"][: len(keys)]})
    elif r.crop_foreground:
        out.append({"_target_": "CropForegroundd", "keys": keys, "source_key": "image", "allow_smaller": True})
    if r.spatial_dims == 3 and has_label:
        out.append({"_target_": "SpatialPadd", "keys": keys, "spatial_size": "@patch_size"})
    out.append({"_target_": "EnsureTyped", "keys": keys})
    return out


def _flip_prob(r: Recipe) -> float:
    # after RAS orientation anatomy has a fixed direction: a flip would swap e.g. anterior and posterior
    return 0.5 if r.spatial_dims == 2 else 0.0


def _augmentation(r: Recipe, strong: bool = False) -> list[dict]:
    """The augmentation of the real pairs, the same in every mode.

    ``standard``: flips and a mild affine (p=0.3, +-15 degrees, +-10% scale). ``strong``: the geometry the
    generator's masks get (:class:`RandMaskAugment`: rotation, scale 0.8-1.2, shear, elastic, on every
    item), applied to image and label together, so a baseline sees what a synthetic pair would add by
    warping alone. Both share the intensity jitter.
    """
    d, both = r.spatial_dims, ["image", "label"]
    if strong:
        geometry = [{"_target_": "monai_genseg.transforms.RandPairedAugmentd", "keys": both, "spatial_dims": d,
                     "mode": ["bilinear", "nearest"], "flip_prob": _flip_prob(r)}]
    else:
        geometry = [{"_target_": "RandFlipd", "keys": both, "spatial_axis": [0], "prob": 0.5}]
        if d == 2:
            geometry.append({"_target_": "RandFlipd", "keys": both, "spatial_axis": [1], "prob": 0.5})
        geometry.append({"_target_": "RandAffined", "keys": both, "prob": 0.3, "rotate_range": [0.26] * (1 if d == 2 else 3),
                         "scale_range": [0.1] * d, "mode": ["bilinear", "nearest"], "padding_mode": "zeros"})
    return geometry + [
        {"_target_": "RandScaleIntensityd", "keys": "image", "factors": 0.1, "prob": 0.5},
        {"_target_": "RandShiftIntensityd", "keys": "image", "offsets": 0.05, "prob": 0.5},
        {"_target_": "RandGaussianNoised", "keys": "image", "std": 0.01, "prob": 0.2},
    ]


def _network_def(r: Recipe) -> dict:
    return {"_target_": "UNet", "spatial_dims": r.spatial_dims, "in_channels": r.image_channels, "out_channels": "@num_classes",
            "channels": "$@preset['segmenter_channels']", "strides": "$[2] * (len(@preset['segmenter_channels']) - 1)",
            "num_res_units": "$@preset['segmenter_res_units']", "norm": "instance"}


def _patch_sampling(num_samples) -> dict:
    return {"_target_": "RandCropByPosNegLabeld", "keys": ["image", "label"], "label_key": "label",
            "spatial_size": "@patch_size", "pos": 2, "neg": 1, "num_samples": num_samples}


def _data_check(r: Recipe, data: str, **extra) -> str:
    args = f"spatial_dims={r.spatial_dims}, num_classes=@num_classes, image_channels={r.image_channels}"
    more = "".join(f", {k}={v}" for k, v in extra.items())
    return f"$monai_genseg.data.require_valid_dataset({data}, {args}{more})"


def _cache(data: str, transform: str) -> dict:
    return {"_target_": "CacheDataset", "data": data, "transform": transform, "cache_rate": 1.0, "num_workers": "@num_workers"}


def _loader(dataset: str, batch_size, shuffle: bool) -> dict:
    return {"_target_": "DataLoader", "dataset": dataset, "batch_size": batch_size, "shuffle": shuffle, "num_workers": "@num_workers"}


def _adam(params: str, lr: float, **kw) -> dict:
    return {"_target_": "torch.optim.Adam", "params": params, "lr": lr, **kw}


def train_config(r: Recipe) -> dict:
    d3 = r.spatial_dims == 3
    cfg: dict = {
        "imports": IMPORTS,
        "bundle_root": f"$monai_genseg.bundle.default_bundle_root('{r.name}')",
        "dataset_dir": None,
        "mode": "end2end",
        "augmentation": "standard",
        "train_on_val": False,
        "num_labeled": 32,
        "num_val": 8,
        "seed": 0,
        "scale": "cpu",
        "hypergradient": "exact",
        "unroll": "optimizer",
        "feedback_lr": 2.0e-5,
        "arch_update_interval": "$@preset['arch_update_interval']",
        "generator_update_interval": "$@preset['generator_update_interval']",
        "amp": True,
        "resume": False,
        "overwrite": False,
        "num_workers": 2,
        "presets": r.presets,
        "preset": "$@presets[@scale]",
        "device": "$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')",
        "ckpt_dir": "$@bundle_root + '/models'",
        "output_dir": "$@bundle_root + '/eval'",
        "data_root": f"$@dataset_dir if @dataset_dir else monai_genseg.data.demo_dataset('{r.name}', seed=0)",
        "datalist": "$monai_genseg.data.load_datalist(@data_root, check_files=False)",
        "split": "$monai_genseg.data.split_cases(@datalist, @num_labeled, @num_val, @seed, source=@data_root)",
        "num_classes": r.num_classes,
        "class_names": list(r.class_names),
        "patch_size": "$@preset['patch_size']",
        "val_interval": 1,
        "network_def": _network_def(r),
        "network": "$@network_def.to(@device)",
        "generator": {"_target_": "monai_genseg.networks.MaskToImageGenerator", "spatial_dims": r.spatial_dims,
                      "label_channels": "@num_classes", "out_channels": r.image_channels, "channels": "$@preset['generator_channels']"},
        "generator_net": "$@generator.to(@device)",
        "discriminator": {"_target_": "PatchDiscriminator", "spatial_dims": r.spatial_dims, "num_layers_d": 3,
                          "channels": "$@preset['discriminator_channels']", "in_channels": f"$@num_classes + {r.image_channels}", "norm": "INSTANCE"},
        "discriminator_net": "$@discriminator.to(@device)",
        "random_states": {"_target_": "monai_genseg.handlers.RandomStates", "randomizables": ["@train#mask_augment"]},
        "loss": {"_target_": "DiceCELoss", "to_onehot_y": True, "softmax": True},
        "optimizer": _adam("$@network.parameters()", 0.001, weight_decay=1.0e-5),
        "generator_optimizer": _adam("$@generator_net.weight_parameters()", 0.0002, betas=[0.5, 0.999]),
        "discriminator_optimizer": _adam("$@discriminator_net.parameters()", 0.0002, betas=[0.5, 0.999]),
        # no weight decay: the hypergradient is ~1e-5 per logit, a coupled decay of 1e-3 would pin alpha near uniform
        "arch_optimizer": _adam("$@generator_net.arch_parameters()", 0.003, betas=[0.5, 0.999]),
        # Stage III's step on the generator weights, with moments of its own; its lr is the feedback's weight
        "feedback_optimizer": _adam("$@generator_net.weight_parameters()", "@feedback_lr", betas=[0.5, 0.999]),
        "load_transforms": _load_transforms(r, ["image", "label"]),
    }
    if d3:
        cfg["patch_sampling"] = _patch_sampling("$@preset['samples_per_volume']")
        cfg["arch_patch_sampling"] = _patch_sampling(1)
        train_tf, arch_tf = "$@load_transforms + [@patch_sampling] + @train#augmentation", "$monai.transforms.Compose(@load_transforms + [@arch_patch_sampling])"
        batch = 1
    else:
        train_tf, arch_tf = "$@load_transforms + @train#augmentation", "$monai.transforms.Compose(@load_transforms)"
        batch = "$@preset['batch_size']"
    save_all = {k: f"@{v}" for k, v in [("model", "network"), ("generator", "generator_net"), ("discriminator", "discriminator_net"),
                                          ("optimizer", "optimizer"), ("generator_optimizer", "generator_optimizer"),
                                          ("discriminator_optimizer", "discriminator_optimizer"), ("arch_optimizer", "arch_optimizer"),
                                          ("feedback_optimizer", "feedback_optimizer"), ("random_states", "random_states")]}
    save_all["best_metric"] = {"_target_": "monai_genseg.handlers.BestMetricState", "engine": "@validate#evaluator"}
    cfg["train"] = {
        "standard_augmentation": _augmentation(r),
        "strong_augmentation": _augmentation(r, strong=True),
        "augmentation": "$monai_genseg.bundle.choose('augmentation', @augmentation, "
                        "{'standard': @train#standard_augmentation, 'strong': @train#strong_augmentation})",
        "preprocessing": {"_target_": "Compose", "transforms": train_tf},
        "dataset": _cache("$monai_genseg.bundle.training_cases(@split, @mode, @train_on_val)", "@train#preprocessing"),
        "dataloader": _loader("@train#dataset", batch, True),
        # the architecture step reads the validation cases, whoever sets them (MONAI Label overrides validate#dataset#data)
        "arch_dataset": _cache("@validate#dataset#data", arch_tf),
        "arch_dataloader": _loader("@train#arch_dataset", "@num_val", False),
        "mask_augment": {"_target_": "monai_genseg.transforms.RandMaskAugment", "spatial_dims": r.spatial_dims, "flip_prob": _flip_prob(r)},
        "inferer": {"_target_": "SimpleInferer"},
        "handlers": [
            {"_target_": "ValidationHandler", "validator": "@validate#evaluator", "epoch_level": True, "interval": "@val_interval"},
            {"_target_": "StatsHandler", "tag_name": "train_loss", "iteration_log": "$lambda engine, event: engine.state.iteration % 10 == 0",
             "output_transform": "$monai_genseg.handlers.stage_losses"},
            {"_target_": "TensorBoardStatsHandler", "log_dir": "@output_dir", "tag_name": "train_loss", "output_transform": "$monai_genseg.handlers.stage_losses"},
            {"_target_": "monai_genseg.handlers.GenotypeLogger", "generator": "@generator_net", "interval": 50,
             "summary_writer": "$torch.utils.tensorboard.SummaryWriter(@output_dir + '/genotype')"},
            {"_target_": "monai_genseg.handlers.SyntheticGallery", "generator": "@generator_net", "num_classes": "@num_classes",
             "output_dir": "$@output_dir + '/gallery'", "interval": 50},
            {"_target_": "monai_genseg.handlers.ProgressBar", "persist": False},
            {"_target_": "monai_genseg.handlers.SyntheticPairSaver", "output_dir": "$@output_dir + '/synthetic'", "max_pairs": 2},
            {"_target_": "monai_genseg.handlers.AtomicCheckpointSaver", "save_dir": "@ckpt_dir", "filename": "genseg_checkpoint.pt",
             "save_dict": save_all, "engine_key": "trainer", "resume": "@resume", "overwrite": "@overwrite"},
        ],
        "trainer": {
            "_target_": "monai_genseg.engines.GenSegTrainer", "device": "@device", "max_epochs": "$@preset['max_epochs']",
            "epoch_length": "$@preset['epoch_length']", "train_data_loader": "@train#dataloader", "network": "@network",
            "optimizer": "@optimizer", "loss_function": "@loss", "inferer": "@train#inferer", "generator": "@generator_net",
            "generator_optimizer": "@generator_optimizer", "discriminator": "@discriminator_net",
            "discriminator_optimizer": "@discriminator_optimizer", "arch_optimizer": "@arch_optimizer",
            "val_data_loader": "@train#arch_dataloader", "mask_augment": "@train#mask_augment", "num_classes": "@num_classes",
            "mode": "@mode", "lambda_l1": 100.0, "lambda_syn": 1.0, "syn_rampup_iterations": "$@preset['syn_rampup_iterations']",
            "generator_warmup_iterations": "$@preset['generator_warmup_iterations']", "arch_update_interval": "@arch_update_interval",
            "generator_update_interval": "@generator_update_interval", "hypergradient": "@hypergradient", "unroll": "@unroll",
            "feedback_optimizer": "$@feedback_optimizer if @feedback_lr > 0 else None",
            "train_handlers": "@train#handlers", "amp": "@amp",
        },
    }
    cfg["validate"] = {
        "preprocessing": {"_target_": "Compose", "transforms": "@load_transforms"},
        "dataset": _cache("$@split['val']", "@validate#preprocessing"),
        "dataloader": _loader("@validate#dataset", 1, False),
        "inferer": {"_target_": "SlidingWindowInferer", "roi_size": "@patch_size", "sw_batch_size": 4, "overlap": 0.25},
        "postprocessing": {"_target_": "Compose", "transforms": [
            {"_target_": "Activationsd", "keys": "pred", "softmax": True},
            {"_target_": "AsDiscreted", "keys": ["pred", "label"], "argmax": [True, False], "to_onehot": "$[@num_classes, @num_classes]"},
        ]},
        "key_metric": {"val_mean_dice": {"_target_": "MeanDice", "include_background": False, "output_transform": FROM_ENGINE}},
        "handlers": [
            {"_target_": "StatsHandler", "iteration_log": False},
            {"_target_": "TensorBoardStatsHandler", "log_dir": "@output_dir", "iteration_log": False},
            {"_target_": "monai_genseg.handlers.AtomicCheckpointSaver", "save_dir": "@ckpt_dir", "filename": "model.pt",
             "save_dict": {"model": "@network"}, "save_key_metric": True, "overwrite": "$@resume or @overwrite"},
        ],
        "evaluator": {"_target_": "SupervisedEvaluator", "device": "@device", "val_data_loader": "@validate#dataloader",
                      "network": "@network", "inferer": "@validate#inferer", "postprocessing": "@validate#postprocessing",
                      "key_val_metric": "@validate#key_metric", "val_handlers": "@validate#handlers", "amp": "@amp"},
    }
    cfg["initialize"] = [
        # the cases this run reads, also when MONAI Label or Auto3DSeg give them instead of the split
        _data_check(r, "@train#dataset#data + @validate#dataset#data", source="'the training and validation cases'"),
        "$monai.utils.set_determinism(seed=@seed)",
        "$@train#mask_augment.set_random_state(seed=@seed)",
    ]
    cfg["run"] = ["$@train#trainer.run()"]
    return cfg


def evaluate_config(r: Recipe) -> dict:
    return {
        "eval_dataset_dir": None,
        "eval_checkpoint": "best",
        "validate#dataset#data": "$monai_genseg.bundle.cases_to_evaluate(@split, @eval_dataset_dir)",
        "validate#additional_metrics": {
            "iou": {"_target_": "MeanIoUHandler", "include_background": False, "output_transform": FROM_ENGINE},
            "hd95": {"_target_": "HausdorffDistance", "include_background": False, "percentile": 95, "output_transform": FROM_ENGINE},
        },
        "validate#evaluator#additional_metrics": "@validate#additional_metrics",
        "validate#handlers": [
            {"_target_": "CheckpointLoader", "load_path": "$monai_genseg.bundle.checkpoint_to_evaluate(@ckpt_dir, @eval_checkpoint)",
             "load_dict": {"model": "@network"}, "map_location": "@device"},
            {"_target_": "StatsHandler", "iteration_log": False},
            {"_target_": "monai_genseg.handlers.CaseMetricsWriter", "output_dir": "@output_dir", "class_names": "@class_names"},
        ],
        "initialize": [
            _data_check(r, "@validate#dataset#data", source="'the evaluation cases'"),
            "$monai.utils.set_determinism(seed=@seed)",
        ],
        "run": ["$@validate#evaluator.run()"],
    }


def inference_config(r: Recipe) -> dict:
    ext, scale = (".nii.gz", None) if r.spatial_dims == 3 else (".png", 255)
    save = {"_target_": "SaveImaged", "keys": "pred", "output_dir": "@output_dir", "output_postfix": "seg", "output_ext": ext,
            "output_dtype": "$numpy.uint8", "resample": False, "separate_folder": False, "print_log": False}
    if scale:
        save["scale"] = scale
    net_keys = ("pixdim", "patch_size", "segmenter_channels", "segmenter_res_units") if r.spatial_dims == 3 else ("patch_size", "segmenter_channels", "segmenter_res_units")
    return {
        "imports": IMPORTS,
        "bundle_root": f"$monai_genseg.bundle.default_bundle_root('{r.name}')",
        "dataset_dir": None,
        "scale": "cpu",
        "presets": {s: {k: p[k] for k in net_keys} for s, p in r.presets.items()},
        "preset": "$@presets[@scale]",
        "device": "$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')",
        "ckpt_dir": "$@bundle_root + '/models'",
        "output_dir": "$@bundle_root + '/eval/predictions'",
        "overwrite": False,
        "num_classes": r.num_classes,
        "datalist": f"$monai_genseg.bundle.image_files(@dataset_dir) if @dataset_dir else monai_genseg.bundle.demo_test_images('{r.name}')",
        "network_def": _network_def(r),
        "network": "$@network_def.to(@device)",
        "preprocessing": {"_target_": "Compose", "transforms": _load_transforms(r, ["image"])},
        "dataset": {"_target_": "Dataset", "data": "@datalist", "transform": "@preprocessing"},
        "dataloader": {"_target_": "DataLoader", "dataset": "@dataset", "batch_size": 1, "shuffle": False, "num_workers": 2},
        "inferer": {"_target_": "SlidingWindowInferer", "roi_size": "$@preset['patch_size']", "sw_batch_size": 4, "overlap": 0.5, "mode": "gaussian"},
        "postprocessing": {"_target_": "Compose", "transforms": [
            {"_target_": "Activationsd", "keys": "pred", "softmax": True},
            {"_target_": "Invertd", "keys": "pred", "transform": "@preprocessing", "orig_keys": "image", "nearest_interp": False, "to_tensor": True},
            {"_target_": "AsDiscreted", "keys": "pred", "argmax": True},
            save,
        ]},
        "handlers": [
            {"_target_": "CheckpointLoader", "load_path": "$@ckpt_dir + '/model.pt'", "load_dict": {"model": "@network"}, "map_location": "@device"},
            {"_target_": "StatsHandler", "iteration_log": False},
        ],
        "evaluator": {"_target_": "SupervisedEvaluator", "device": "@device", "val_data_loader": "@dataloader", "network": "@network",
                      "inferer": "@inferer", "postprocessing": "@postprocessing", "val_handlers": "@handlers", "amp": True},
        "initialize": [
            _data_check(r, "@datalist", source="'the inference inputs'"),
            "$monai.utils.set_determinism(seed=0)",
            f"$monai_genseg.bundle.check_prediction_targets(@datalist, @output_dir, 'seg', '{ext}', @overwrite)",
        ],
        "run": ["$@evaluator.run()"],
    }


def multi_gpu_config(r: Recipe) -> dict:
    """Overlay for ``torchrun``: one process per GPU (or CPU process with gloo), data split by
    DistributedSampler, gradients of all four optimizers averaged by GenSegTrainer, rank-0 handlers."""
    return {
        "imports": IMPORTS + ["$import torch.distributed as dist"],
        "device": "$torch.device(f'cuda:{dist.get_rank()}' if torch.cuda.is_available() else 'cpu')",
        "train#sampler": {"_target_": "DistributedSampler", "dataset": "@train#dataset", "even_divisible": True, "shuffle": True},
        "train#dataloader#sampler": "@train#sampler",
        "train#dataloader#shuffle": False,
        "train#trainer#distributed": True,
        # every rank validates its share; logging, pictures and checkpoints come from rank 0 only
        "train#trainer#train_handlers": "$monai_genseg.bundle.handlers_for_rank(@train#handlers, dist.get_rank())",
        "validate#sampler": {"_target_": "DistributedSampler", "dataset": "@validate#dataset", "even_divisible": False, "shuffle": False},
        "validate#dataloader#sampler": "@validate#sampler",
        "validate#evaluator#val_handlers": "$None if dist.get_rank() > 0 else @validate#handlers",
        "initialize": [
            "$dist.is_initialized() or dist.init_process_group(backend='nccl' if torch.cuda.is_available() else 'gloo')",
            "$torch.cuda.set_device(@device) if torch.cuda.is_available() else None",
        ] + train_config(r)["initialize"],
        "run": ["$@train#trainer.run()"],
        "finalize": ["$dist.is_initialized() and dist.destroy_process_group()"],
    }


# the versions the bundles were last verified with; written as constants so the generated files do
# not change (and the staleness test does not fail) whenever a newer release is installed
VERIFIED_WITH = {"monai": "1.6.1", "torch": "2.13.0", "numpy": "2.4.6", "nibabel": "5.4.2", "pytorch-ignite": "0.5.5", "pillow": "13.0.0"}


def metadata(r: Recipe) -> dict:
    factor = 2 ** len(r.presets["gpu"]["segmenter_channels"])  # the deepest level keeps at least 2 voxels
    shape = [f"{factor}*n"] * r.spatial_dims
    io = {"is_patch_data": r.spatial_dims == 3, "spatial_shape": shape, "dtype": "float32"}
    return {
        "schema": "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20240725.json",
        "version": "0.1.0",
        "changelog": {"0.1.0": "first release: GenSeg end2end training, inference and per-case evaluation"},
        "monai_version": VERIFIED_WITH["monai"],
        "pytorch_version": VERIFIED_WITH["torch"],
        "numpy_version": VERIFIED_WITH["numpy"],
        "required_packages_version": {"monai-genseg": __version__, **{k: VERIFIED_WITH[k] for k in ("nibabel", "pytorch-ignite", "pillow")}},
        "supported_apps": {},
        "name": f"GenSeg {r.task[0].lower()}{r.task[1:]}",
        "task": f"{r.task} from a few labelled cases",
        "description": "A UNet segmenter trained with GenSeg: a searchable mask-to-image generator makes extra image/mask pairs from "
        "augmented real masks, and its architecture is updated from the segmenter's validation loss.",
        "authors": "monai-genseg contributors",
        "copyright": "Copyright (c) monai-genseg contributors",
        "data_source": f"{r.dataset}; an embedded synthetic demo set when no data is given",
        "data_type": "nibabel" if r.spatial_dims == 3 else "png/jpg",
        "image_classes": f"{r.image_channels} channel {r.modality}: {r.intensity_text}",
        "label_classes": ", ".join(f"{i} {n}" for i, n in enumerate(("background", *r.class_names))),
        "pred_classes": ", ".join(f"{i} {n}" for i, n in enumerate(("background", *r.class_names))),
        "eval_metrics": {},
        "intended_use": "Research only; not for clinical diagnosis",
        "references": [
            "Zhang L, et al. Generative AI enables medical image segmentation in ultra low-data regimes. Nature Communications (2025).",
            "Isola P, et al. Image-to-Image Translation with Conditional Adversarial Networks. CVPR (2017).",
            "Liu H, et al. DARTS: Differentiable Architecture Search. ICLR (2019).",
        ],
        "network_data_format": {
            "inputs": {"image": {"type": "image", "format": r.image_format, "modality": r.modality, "num_channels": r.image_channels,
                                 **io, "value_range": [0, 1], "channel_def": {str(i): c for i, c in enumerate(["R", "G", "B"] if r.image_channels == 3 else ["image"])}}},
            "outputs": {"pred": {"type": "image", "format": "segmentation", "num_channels": r.num_classes, **io, "value_range": [],
                                 "channel_def": {str(i): n for i, n in enumerate(("background", *r.class_names))}}},
        },
    }


def bundle_readme(r: Recipe) -> str:
    cfg = f"bundles/{r.name}/configs"
    cpu, gpu = r.presets["cpu"], r.presets["gpu"]
    sizes = "x".join(map(str, cpu["patch_size"])), "x".join(map(str, gpu["patch_size"]))
    return f"""# {r.name}: GenSeg for {r.task[0].lower()}{r.task[1:]}

A {r.spatial_dims}D UNet segmenter trained with GenSeg from a few labelled {r.modality} {"volumes" if r.spatial_dims == 3 else "images"}.
A searchable mask-to-image generator turns deformed copies of the labelled masks into extra synthetic
pairs, and its architecture is updated from the segmenter's loss on real validation cases.
This file is generated by `python -m monai_genseg.bundle_configs bundles/` from the `{r.name}` recipe.

## Data

**Default: an embedded synthetic demo** ({"3D phantoms, MSD layout" if r.spatial_dims == 3 else "96x96 PNG pairs"}) generated on first
use under `~/.cache/monai_genseg/`. It shows the pipeline working; it says nothing about accuracy.

**Real data: {r.dataset}.** Licence: {r.licence}. Expected layout: {r.layout}.
`--dataset_dir` takes that folder (or a datalist JSON file); the labelled cases are split with
`seed` into `num_labeled` training (32), `num_val` validation (8) and held-out cases.
Classes: {", ".join(f"{i} {n}" for i, n in enumerate(("background", *r.class_names)))}.

## Commands

```bash
python -m monai.bundle run --config_file {cfg}/train.yaml                              # demo, CPU preset
python -m monai.bundle run --config_file {cfg}/train.yaml --dataset_dir DATA --scale gpu   # real data, full size
python -m monai.bundle run --config_file "['{cfg}/train.yaml','{cfg}/evaluate.yaml']" --dataset_dir DATA --scale gpu
python -m monai.bundle run --config_file "['{cfg}/train.yaml','{cfg}/evaluate.yaml']" --dataset_dir DATA --eval_dataset_dir OTHER --scale gpu
python -m monai.bundle run --config_file {cfg}/inference.yaml --dataset_dir NEW_IMAGES --scale gpu
# the plain baseline to compare with: every labelled case, strong paired augmentation, final weights scored
python -m monai.bundle run --config_file {cfg}/train.yaml --dataset_dir DATA --mode baseline --train_on_val true --augmentation strong
python -m monai.bundle run --config_file "['{cfg}/train.yaml','{cfg}/evaluate.yaml']" --dataset_dir DATA --eval_checkpoint final
```

Modes (`--mode`): `end2end` (GenSeg, default), `joint` (end2end without the feedback loop),
`separate` (a frozen pix2pix generator), `baseline` (real pairs only). The generator's modes push the
real batch and as many synthetic pairs through the segmenter per step; every mode takes the same
number of segmenter steps on the same real batch stream.

`evaluate.yaml` scores the held-out cases, or every case of `--eval_dataset_dir` (any supported
layout, e.g. another dataset of the same task), writing per-case Dice, IoU and HD95 to
`eval/metrics_per_case.csv` and `eval/metrics.json`. Use the same `--scale` everywhere.

## Preprocessing

{r.intensity_text}; {"resampled to " + "x".join(map(str, cpu["pixdim"])) + " mm (cpu) / " + "x".join(map(str, gpu["pixdim"])) + " mm (gpu); patches" if r.spatial_dims == 3 else "images resized to"}
{sizes[0]} (cpu) or {sizes[1]} (gpu). Training augmentation shared by all modes: flips, small
affine, intensity scale/shift, noise (`--augmentation standard`), or the generator's mask geometry
applied to image and label together (`--augmentation strong`). Validation and inference: sliding window; predictions are
written in the input's geometry ({"NIfTI" if r.spatial_dims == 3 else "PNG masks, 0/255"}).

## Disclaimer

Research software; not for clinical use.
"""


class _Dumper(yaml.SafeDumper):
    """Block style for mappings, one-line lists of scalars (``keys: [image, label]``), no YAML anchors."""

    def ignore_aliases(self, data) -> bool:
        return True


def _represent_list(dumper: yaml.SafeDumper, data: list):
    flat = all(isinstance(x, (str, int, float, bool, type(None))) for x in data) and len(data) <= 12
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


_Dumper.add_representer(list, _represent_list)


HEADER = ("# Generated by `python -m monai_genseg.bundle_configs bundles/` from the '{name}' recipe:\n"
          "# edit monai_genseg/recipes.py or monai_genseg/bundle_configs.py, not this file.\n")


def to_yaml(cfg: dict) -> str:
    """A config as the bundles write it: keys in order, block mappings, one-line scalar lists."""
    return yaml.dump(cfg, Dumper=_Dumper, sort_keys=False, width=120, default_flow_style=False)


def render(r: Recipe) -> dict[str, str]:
    """Every generated file of a bundle, path relative to the bundle folder -> content."""
    def dump(cfg: dict, what: str) -> str:
        return HEADER.format(name=r.name) + f"# {what}\n" + to_yaml(cfg)

    cfg = f"bundles/{r.name}/configs"
    return {
        "configs/train.yaml": dump(train_config(r), f"train: python -m monai.bundle run --config_file {cfg}/train.yaml [--dataset_dir DIR] [--scale gpu]"),
        "configs/evaluate.yaml": dump(evaluate_config(r), f"evaluate (overlay): --config_file \"['{cfg}/train.yaml','{cfg}/evaluate.yaml']\""),
        "configs/multi_gpu_train.yaml": dump(multi_gpu_config(r), f"multi-GPU: torchrun --nproc_per_node N -m monai.bundle run --config_file \"['{cfg}/train.yaml','{cfg}/multi_gpu_train.yaml']\""),
        "configs/inference.yaml": dump(inference_config(r), f"inference: python -m monai.bundle run --config_file {cfg}/inference.yaml --dataset_dir IMAGES"),
        "configs/metadata.json": json.dumps(metadata(r), indent=4) + "\n",
        "docs/README.md": bundle_readme(r),
        # the model zoo asks for the data's licence conditions in docs/data_license.txt
        "docs/data_license.txt": f"Data: {r.dataset}\nLicence: {r.licence}\n"
        "The weights of this bundle were trained on that data; its terms apply to their use.\n",
    }


LOGGING_CONF = """[loggers]
keys=root

[handlers]
keys=consoleHandler

[formatters]
keys=fullFormatter

[logger_root]
level=INFO
handlers=consoleHandler

[handler_consoleHandler]
class=StreamHandler
level=INFO
formatter=fullFormatter
args=(sys.stdout,)

[formatter_fullFormatter]
format=%(asctime)s - %(name)s - %(levelname)s - %(message)s
"""


def write_bundle_copy(name: str, dest: str | Path, scale: str, train_settings: dict | None = None, overwrite: bool = False,
                      note: str = "") -> Path:
    """Write ``dest/<name>``: the generated bundle with ``scale`` fixed in its train and inference configs
    (the weights shipped with a copy fit one preset) and ``train_settings`` applied to its train config.
    Used for MONAI Label and the model zoo; ``bundles/`` itself is never changed."""
    from monai.bundle import ConfigParser

    r = get_recipe(name)
    if scale not in r.presets:
        raise ValueError(f"scale must be one of {sorted(r.presets)}, got '{scale}'.")
    target = Path(dest) / name
    if target.exists():
        if not overwrite:
            raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
        shutil.rmtree(target)

    def fixed(cfg: dict, settings: dict) -> str:
        parser = ConfigParser(copy.deepcopy(cfg))  # the configs share the recipe's presets: never edit those in place
        for key, value in settings.items():
            parser[key] = value  # nested ids such as "presets#cpu#epoch_length" work too
        return note + to_yaml(parser.get())

    files = dict(render(r), **{"configs/logging.conf": LOGGING_CONF})
    files["configs/train.yaml"] = fixed(train_config(r), {"scale": scale, **(train_settings or {})})
    files["configs/inference.yaml"] = fixed(inference_config(r), {"scale": scale})
    _write_files(target, files)
    (target / "models").mkdir(exist_ok=True)
    return target


def _write_files(target: Path, files: dict[str, str]) -> list[Path]:
    """A bundle's generated files below ``target``, and the project's LICENSE beside them."""
    written = []
    for rel, text in files.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    license_file = Path(__file__).resolve().parent.parent / "LICENSE"
    if license_file.is_file():
        shutil.copyfile(license_file, target / "LICENSE")
    return written


def write_bundles(root: str | Path, names: list[str] | None = None) -> list[Path]:
    """Write (or rewrite) the generated files of each recipe's bundle below ``root``."""
    written = []
    for name in names or list(RECIPES):
        written += _write_files(Path(root) / name, dict(render(RECIPES[name]), **{"configs/logging.conf": LOGGING_CONF}))
    return written


if __name__ == "__main__":
    for p in write_bundles(sys.argv[1] if len(sys.argv) > 1 else "bundles"):
        print(p)
