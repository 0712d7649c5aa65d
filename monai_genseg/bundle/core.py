"""The wiring every GenSeg bundle shares: the training program, built from a recipe, that knows no data source.

:func:`core` returns the train config with the networks, transforms, optimizers, trainer, validation
and checkpoints. Where the cases come from (a seeded split of a folder, Auto3DSeg's folds, MONAI
Label's datastore) is a layer's job (:mod:`.layers`): the core only reads ``@split['train']`` and
``@split['val']``.
"""

from __future__ import annotations

from typing import Any

from monai_genseg.bundle.recipes import Recipe

IMPORTS = [
    "$import os",
    "$import numpy",
    "$import torch",
    "$import monai",
    "$import monai_genseg",
    "$import monai_genseg.bundle",
    "$import monai_genseg.data",
    "$import monai_genseg.handlers",
]
FROM_ENGINE = "$monai.handlers.from_engine(['pred', 'label'])"
DEVICE = "$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')"

Config = dict[str, Any]


def load_transforms(r: Recipe, keys: list[str]) -> list[Config]:
    """Reading, orienting/resampling or resizing, and intensity scaling: shared by training, validation and
    inference."""
    has_label = "label" in keys
    out: list[Config] = [{"_target_": "LoadImaged", "keys": keys, "ensure_channel_first": True, "image_only": True}]
    if r.spatial_dims == 3:
        out[0]["reader"] = "$monai_genseg.data.SimpleITKReader"  # NRRD, MHA, DICOM; NIfTI falls through to nibabel
        out += [
            {"_target_": "Orientationd", "keys": keys, "axcodes": "RAS"},
            {
                "_target_": "Spacingd",
                "keys": keys,
                "pixdim": "$@preset['pixdim']",
                "mode": ["bilinear", "nearest"][: len(keys)],
            },
        ]
    else:
        out.append(
            {"_target_": "monai_genseg.transforms.MatchChannelsd", "keys": "image", "channels": r.image_channels}
        )
        if has_label:
            out.append(
                {"_target_": "monai_genseg.transforms.MaskToLabelsd", "keys": "label", "num_classes": r.num_classes}
            )
    out += [dict(t) for t in r.intensity]
    if r.spatial_dims == 2:
        out.append(
            {
                "_target_": "Resized",
                "keys": keys,
                "spatial_size": "$@preset['patch_size']",
                "mode": ["area", "nearest"][: len(keys)],
            }
        )
    elif r.crop_foreground:
        out.append({"_target_": "CropForegroundd", "keys": keys, "source_key": "image", "allow_smaller": True})
    if r.spatial_dims == 3 and has_label:
        out.append({"_target_": "SpatialPadd", "keys": keys, "spatial_size": "@patch_size"})
    out.append({"_target_": "EnsureTyped", "keys": keys})
    return out


def augmentation(r: Recipe, strong: bool = False) -> list[Config]:
    """The augmentation of the real pairs, the same in every mode.

    ``standard``: flips and an affine (:attr:`Recipe.affine_range`: 2D p=0.3, +-15 degrees, +-10% scale; 3D p=0.6,
    +-30, +-25%; skin_lesion2d any angle, p=0.6, +-25%).
    ``strong``: the geometry the generator's masks get (:class:`RandMaskAugment`: rotation, scale
    0.8-1.2, shear, elastic, on every item), applied to image and label together, so a baseline sees
    what a synthetic pair would add by warping alone. Both share the intensity jitter.
    """
    d, both = r.spatial_dims, ["image", "label"]
    if strong:
        geometry = [
            {
                "_target_": "monai_genseg.transforms.RandPairedAugmentd",
                "keys": both,
                "spatial_dims": d,
                "mode": ["bilinear", "nearest"],
                "flip_prob": r.flip_prob,
            }
        ]
    else:
        geometry = [{"_target_": "RandFlipd", "keys": both, "spatial_axis": [a], "prob": 0.5} for a in r.mirror_axes]
        prob, angle, zoom = r.affine_range
        geometry.append(
            {
                "_target_": "RandAffined",
                "keys": both,
                "prob": prob,
                "rotate_range": [angle] * (1 if d == 2 else 3),
                "scale_range": [zoom] * d,
                "mode": ["bilinear", "nearest"],
                "padding_mode": "zeros",
            }
        )
    return geometry + [
        {"_target_": "RandScaleIntensityd", "keys": "image", "factors": 0.1, "prob": 0.5},
        {"_target_": "RandShiftIntensityd", "keys": "image", "offsets": 0.05, "prob": 0.5},
        {"_target_": "RandGaussianNoised", "keys": "image", "std": 0.01, "prob": 0.2},
    ]


def sliding_window(roi_size: str) -> Config:
    """Whole-image inference by overlapping patches blended with a Gaussian (nnU-Net's weighting)."""
    return {
        "_target_": "SlidingWindowInferer",
        "roi_size": roi_size,
        "sw_batch_size": 4,
        "overlap": 0.5,
        "mode": "gaussian",
    }


def network_def(r: Recipe, deep_supervision: bool | str = False) -> Config:
    """The segmenter (:func:`monai_genseg.networks.segmenter`, nnU-Net's U-Net) sized by the preset;
    ``deep_supervision`` only matters in training (the inference copy passes False: same weights)."""
    return {
        "_target_": "monai_genseg.networks.segmenter",
        "spatial_dims": r.spatial_dims,
        "in_channels": r.image_channels,
        "out_channels": "@num_classes",
        "channels": "$@preset['segmenter_channels']",
        "deep_supervision": deep_supervision,
    }


def data_check(r: Recipe, data: str, **extra: str) -> str:
    """The expression that checks ``data`` against the recipe before anything trains or runs."""
    args = f"spatial_dims={r.spatial_dims}, num_classes=@num_classes, image_channels={r.image_channels}"
    if r.value_range is not None:
        args += f", value_range={list(r.value_range)}"
    more = "".join(f", {k}={v}" for k, v in extra.items())
    return f"$monai_genseg.data.require_valid_dataset({data}, {args}{more})"


def presets(r: Recipe) -> dict[str, Config]:
    """Every preset of the recipe as fresh plain dicts: the config can be edited without touching the recipe."""
    return {name: p.as_config() for name, p in r.presets.items()}


def _patch_sampling(num_samples: int | str) -> Config:
    return {
        "_target_": "RandCropByPosNegLabeld",
        "keys": ["image", "label"],
        "label_key": "label",
        "spatial_size": "@patch_size",
        "pos": 2,
        "neg": 1,
        "num_samples": num_samples,
    }


def _cache(data: str, transform: str) -> Config:
    return {
        "_target_": "CacheDataset",
        "data": data,
        "transform": transform,
        "cache_rate": 1.0,
        "num_workers": None,  # caching threads, before training: every CPU (the loaders follow --num_workers)
    }


def _loader(dataset: str, batch_size: int | str, shuffle: bool) -> Config:
    return {
        "_target_": "DataLoader",
        "dataset": dataset,
        "batch_size": batch_size,
        "shuffle": shuffle,
        "num_workers": "@num_workers",
    }


def _adam(params: str, lr: float | str, **kw: Any) -> Config:
    return {"_target_": "torch.optim.Adam", "params": params, "lr": lr, **kw}


def _settings(r: Recipe) -> Config:
    """The run options a user sets on the command line, and the objects every stage shares."""
    return {
        "imports": list(IMPORTS),
        "bundle_root": "$monai_genseg.bundle.default_bundle_root()",
        "mode": "auto",
        "augmentation": "standard",
        "train_on_val": "auto",
        "seed": 0,
        "scale": "auto",
        "time_budget_minutes": 15,
        "model_selection": "final",
        "deep_supervision": True,
        "hypergradient": "exact",
        "unroll": "optimizer",
        "feedback_lr": 2.0e-5,
        "arch_update_interval": "$@preset['arch_update_interval']",
        "generator_update_interval": "$@preset['generator_update_interval']",
        "amp": True,
        "resume": False,
        "overwrite": False,
        "num_workers": "$monai_genseg.bundle.default_workers(@device)",
        "is_demo": False,  # the Split layer sets it: the embedded demo trains with the demo preset
        "run_mode": "$monai_genseg.bundle.resolve_mode(@mode, @is_demo)",
        "presets": presets(r),
        "replan": "$not monai_genseg.bundle.flag('resume', @resume)",
        "preset": "$monai_genseg.bundle.preset_for_run(@scale, @presets, @ckpt_dir, is_demo=@is_demo, "
        f"cases=@split['train'] + @split['val'], spatial_dims={r.spatial_dims}, in_channels={r.image_channels}, "
        "num_classes=@num_classes, device=@device, time_budget_minutes=@time_budget_minutes, mode=@run_mode, "
        "replan=@replan, amp=monai_genseg.bundle.flag('amp', @amp))",
        "device": DEVICE,
        "ckpt_dir": "$@bundle_root + '/models'",
        "output_dir": "$@bundle_root + '/eval'",
        "num_classes": r.num_classes,
        "class_names": list(r.class_names),
        "patch_size": "$@preset['patch_size']",
        "val_interval": 1,
    }


def _models(r: Recipe) -> Config:
    """The segmenter, the generator and its discriminator, their losses and optimizers."""
    return {
        "network_def": network_def(r, "@deep_supervision"),
        "network": "$@network_def.to(@device)",
        "generator": {
            "_target_": "monai_genseg.networks.MaskToImageGenerator",
            "spatial_dims": r.spatial_dims,
            "label_channels": "@num_classes",
            "out_channels": r.image_channels,
            "channels": "$@preset['generator_channels']",
        },
        "generator_net": "$@generator.to(@device)",
        "discriminator": {
            "_target_": "PatchDiscriminator",
            "spatial_dims": r.spatial_dims,
            "num_layers_d": 3,
            "channels": "$@preset['discriminator_channels']",
            "in_channels": f"$@num_classes + {r.image_channels}",
            "norm": "INSTANCE",
        },
        "discriminator_net": "$@discriminator.to(@device)",
        "random_states": {"_target_": "monai_genseg.handlers.RandomStates", "randomizables": ["@train#mask_augment"]},
        # on the full-resolution logits and, with deep supervision, the lower heads' (nnU-Net's weights)
        "loss": {
            "_target_": "monai_genseg.losses.DeepSupervisedLoss",
            "loss": {"_target_": "DiceCELoss", "to_onehot_y": True, "softmax": True},
        },
        "optimizer": _adam("$@network.parameters()", 0.001, weight_decay=1.0e-5),
        # warm-up, then cosine decay to zero at the step ceiling: the final weights are the converged ones
        "lr_scheduler": {
            "_target_": "monai.optimizers.WarmupCosineSchedule",
            "optimizer": "@optimizer",
            "warmup_steps": "$@preset['lr_warmup_iterations']",
            "t_total": "$@preset['epoch_length'] * @preset['max_epochs']",
            "warmup_multiplier": 0.01,
        },
        "generator_optimizer": _adam("$@generator_net.weight_parameters()", 0.0002, betas=[0.5, 0.999]),
        "discriminator_optimizer": _adam("$@discriminator_net.parameters()", 0.0002, betas=[0.5, 0.999]),
        # no weight decay: the hypergradient is ~1e-5 per logit, a coupled decay of 1e-3 would pin alpha near uniform
        "arch_optimizer": _adam("$@generator_net.arch_parameters()", 0.003, betas=[0.5, 0.999]),
        # Stage III's step on the generator weights, with moments of its own; its lr is the feedback's weight
        "feedback_optimizer": _adam("$@generator_net.weight_parameters()", "@feedback_lr", betas=[0.5, 0.999]),
        "load_transforms": load_transforms(r, ["image", "label"]),
    }


def _checkpointed() -> Config:
    """Everything a resumed run restores, by name in ``genseg_checkpoint.pt``."""
    names = [
        "network",
        "generator_net",
        "discriminator_net",
        "optimizer",
        "lr_scheduler",
        "generator_optimizer",
        "discriminator_optimizer",
        "arch_optimizer",
        "feedback_optimizer",
        "random_states",
    ]
    keys = {"network": "model", "generator_net": "generator", "discriminator_net": "discriminator"}
    saved: Config = {keys.get(n, n): f"@{n}" for n in names}
    saved["best_metric"] = {
        "_target_": "monai_genseg.handlers.BestMetricState",
        "engine": "@validate#evaluator",
        "model_path": "$@ckpt_dir + '/model.pt'",
    }
    return saved


def _train(r: Recipe) -> Config:
    """``train``: the real pairs' loader, the architecture step's loader, the handlers and the GenSeg trainer."""
    if r.spatial_dims == 3:
        transforms = "$@load_transforms + [@patch_sampling] + @train#augmentation"
        arch_transforms = "$monai.transforms.Compose(@load_transforms + [@arch_patch_sampling])"
        batch: int | str = 1
    else:
        transforms = "$@load_transforms + @train#augmentation"
        arch_transforms = "$monai.transforms.Compose(@load_transforms)"
        batch = "$@preset['batch_size']"
    every_50 = {"interval": 50}
    return {
        "standard_augmentation": augmentation(r),
        "strong_augmentation": augmentation(r, strong=True),
        "augmentation": "$monai_genseg.bundle.choose('augmentation', @augmentation, "
        "{'standard': @train#standard_augmentation, 'strong': @train#strong_augmentation})",
        "preprocessing": {"_target_": "Compose", "transforms": transforms},
        "dataset": _cache(
            "$monai_genseg.bundle.training_cases(@split, @run_mode, @train_on_val)", "@train#preprocessing"
        ),
        "dataloader": _loader("@train#dataset", batch, True),
        # the architecture step reads the validation cases, whoever sets them
        # (MONAI Label overrides validate#dataset#data)
        "arch_dataset": _cache("@validate#dataset#data", arch_transforms),
        "arch_dataloader": _loader("@train#arch_dataset", "$len(@validate#dataset#data)", False),
        "mask_augment": {
            "_target_": "monai_genseg.transforms.RandMaskAugment",
            "spatial_dims": r.spatial_dims,
            "flip_prob": r.flip_prob,
        },
        "inferer": {"_target_": "SimpleInferer"},
        "handlers": [
            {
                "_target_": "ValidationHandler",
                "validator": "@validate#evaluator",
                "epoch_level": True,
                "interval": "@val_interval",
            },
            {"_target_": "LrScheduleHandler", "lr_scheduler": "@lr_scheduler", "epoch_level": False, "print_lr": False},
            {  # a planned run keeps its --time_budget_minutes on any machine; presets run their steps
                "_target_": "monai_genseg.handlers.TimeBudget",
                "budget_seconds": "$60 * @time_budget_minutes if @scale == 'auto' and not @is_demo else None",
                "lr_scheduler": "@lr_scheduler",
            },
            {
                "_target_": "StatsHandler",
                "tag_name": "train_loss",
                "iteration_log": "$lambda engine, event: engine.state.iteration % 10 == 0",
                "output_transform": "$monai_genseg.handlers.stage_losses",
            },
            {
                "_target_": "TensorBoardStatsHandler",
                "log_dir": "@output_dir",
                "tag_name": "train_loss",
                "output_transform": "$monai_genseg.handlers.stage_losses",
            },
            {
                "_target_": "monai_genseg.handlers.GenotypeLogger",
                "generator": "@generator_net",
                **every_50,
                "log_dir": "$@output_dir + '/genotype'",
            },
            {
                "_target_": "monai_genseg.handlers.SyntheticGallery",
                "generator": "@generator_net",
                "num_classes": "@num_classes",
                "output_dir": "$@output_dir + '/gallery'",
                **every_50,
            },
            {"_target_": "monai_genseg.handlers.ProgressBar", "persist": False},
            {
                "_target_": "monai_genseg.handlers.SyntheticPairSaver",
                "output_dir": "$@output_dir + '/synthetic'",
                "max_pairs": 2,
            },
            {
                "_target_": "monai_genseg.handlers.AtomicCheckpointSaver",
                "save_dir": "@ckpt_dir",
                "filename": "genseg_checkpoint.pt",
                "save_dict": _checkpointed(),
                "engine_key": "trainer",
                "resume": "$monai_genseg.bundle.flag('resume', @resume)",
                "overwrite": "$monai_genseg.bundle.flag('overwrite', @overwrite)",
            },
            # last: it runs at the start after every loader, so a resumed run (iteration > 0) skips it
            {
                "_target_": "monai_genseg.handlers.GeneratorWarmup",
                "iterations": "$@preset['generator_warmup_iterations']",
            },
        ],
        "trainer": {
            "_target_": "monai_genseg.engines.GenSegTrainer",
            "device": "@device",
            "max_epochs": "$@preset['max_epochs']",
            "epoch_length": "$@preset['epoch_length']",
            "train_data_loader": "@train#dataloader",
            "network": "@network",
            "optimizer": "@optimizer",
            "loss_function": "@loss",
            "inferer": "@train#inferer",
            "generator": "@generator_net",
            "generator_optimizer": "@generator_optimizer",
            "discriminator": "@discriminator_net",
            "discriminator_optimizer": "@discriminator_optimizer",
            "arch_optimizer": "@arch_optimizer",
            "val_data_loader": "@train#arch_dataloader",
            "mask_augment": "@train#mask_augment",
            "num_classes": "@num_classes",
            "mode": "@run_mode",
            "generation": {
                "_target_": "monai_genseg.engines.GenerationSettings",
                "lambda_l1": 100.0,
                "lambda_syn": 1.0,
                "syn_rampup_iterations": "$@preset['syn_rampup_iterations']",
                "generator_update_interval": "@generator_update_interval",
            },
            "feedback": {
                "_target_": "monai_genseg.engines.FeedbackSettings",
                "arch_update_interval": "@arch_update_interval",
                "hypergradient": "@hypergradient",
                "unroll": "@unroll",
            },
            "feedback_optimizer": "$@feedback_optimizer if @feedback_lr > 0 else None",
            "train_handlers": "@train#handlers",
            "amp": "$monai_genseg.bundle.flag('amp', @amp)",
            "cpu_bf16": "$bool(@preset.get('cpu_bf16'))",
        },
    }


def _validate() -> Config:
    """``validate``: the segmenter on the validation cases each epoch; ``model.pt`` keeps the best."""
    return {
        "preprocessing": {"_target_": "Compose", "transforms": "@load_transforms"},
        "dataset": _cache("$@split['val']", "@validate#preprocessing"),
        "dataloader": _loader("@validate#dataset", 1, False),
        "inferer": sliding_window("@patch_size"),
        "postprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "Activationsd", "keys": "pred", "softmax": True},
                {
                    "_target_": "AsDiscreted",
                    "keys": ["pred", "label"],
                    "argmax": [True, False],
                    "to_onehot": "$[@num_classes, @num_classes]",
                },
            ],
        },
        "key_metric": {
            "val_mean_dice": {"_target_": "MeanDice", "include_background": False, "output_transform": FROM_ENGINE}
        },
        # stops the trainer (set in ``run``) after early_stop_patience validations without a better Dice
        "early_stop": {
            "_target_": "EarlyStopHandler",
            "patience": "$@preset['early_stop_patience']",
            "score_function": "$monai.handlers.stopping_fn_from_metric('val_mean_dice')",
            "epoch_level": True,
        },
        "handlers": [
            {"_target_": "StatsHandler", "iteration_log": False},
            {"_target_": "TensorBoardStatsHandler", "log_dir": "@output_dir", "iteration_log": False},
            "@validate#early_stop",
            {
                "_target_": "monai_genseg.handlers.AtomicCheckpointSaver",
                "save_dir": "@ckpt_dir",
                "filename": "model.pt",
                "save_dict": {"model": "@network"},
                # final: the weights at each validation, so the last one's at the end; best: the best Dice's
                "save_key_metric": "$monai_genseg.bundle.choose('model_selection', @model_selection, "
                "{'final': False, 'best': True})",
                "overwrite": "$monai_genseg.bundle.flag('resume', @resume) or "
                "monai_genseg.bundle.flag('overwrite', @overwrite)",
            },
        ],
        "evaluator": {
            "_target_": "SupervisedEvaluator",
            "device": "@device",
            "val_data_loader": "@validate#dataloader",
            "network": "@network",
            "inferer": "@validate#inferer",
            "postprocessing": "@validate#postprocessing",
            "key_val_metric": "@validate#key_metric",
            "val_handlers": "@validate#handlers",
            "amp": "$monai_genseg.bundle.flag('amp', @amp)",
        },
    }


def core(r: Recipe) -> Config:
    """The train config of recipe ``r`` without a data source: a layer must define ``split``."""
    cfg = {**_settings(r), **_models(r)}
    if r.spatial_dims == 3:
        cfg["patch_sampling"] = _patch_sampling("$@preset['samples_per_volume']")
        cfg["arch_patch_sampling"] = _patch_sampling(1)
    cfg["train"] = _train(r)
    cfg["validate"] = _validate()
    cfg["initialize"] = [
        # every run option checked at once, bundle_root held for this run, one-line errors
        "$monai_genseg.bundle.start_run(@bundle_root, @mode, @scale, @presets, resume=@resume, overwrite=@overwrite, "
        "seed=@seed, train_on_val=@train_on_val, amp=@amp, model_selection=@model_selection, "
        "time_budget_minutes=@time_budget_minutes)",
        # the cases this run reads, also when MONAI Label or Auto3DSeg give them instead of the split
        data_check(
            r,
            "monai_genseg.bundle.cases_to_check(@train#dataset#data, @validate#dataset#data)",
            source="'the training and validation cases'",
        ),
        "$monai.utils.set_determinism(seed=@seed)",
        "$@train#mask_augment.set_random_state(seed=@seed)",
    ]
    cfg["run"] = ["$@validate#early_stop.set_trainer(@train#trainer)", "$@train#trainer.run()"]
    return cfg
