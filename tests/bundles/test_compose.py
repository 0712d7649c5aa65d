"""The bundle floor: typed recipes, a core that knows no data source, layers, one compose, and writing a bundle."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from monai_genseg.bundle import (
    RECIPES,
    STANDARD,
    MonaiLabel,
    Overrides,
    Split,
    compose,
    default_bundle_root,
    get_recipe,
    write,
)
from monai_genseg.bundle.core import core

SOURCE_KEYS = ("dataset_dir", "data_root", "datalist", "split", "num_labeled", "num_val")


def test_recipes_are_immutable_and_composing_never_shares_their_values():
    r = get_recipe("hippocampus3d")
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.presets["demo"].epoch_length = 1
    with pytest.raises(TypeError):
        r.presets["demo"] = r.presets["gpu"]
    first = compose(r, *STANDARD)
    first.train["presets"]["demo"]["patch_size"][0] = 1  # a caller edits its own copy
    first.train["load_transforms"][-1]["keys"].append("extra")
    second = compose(r, *STANDARD)
    assert second.train["presets"]["demo"]["patch_size"] == [32, 32, 32] and r.presets["demo"].patch_size == (
        32,
        32,
        32,
    )
    assert "extra" not in second.train["load_transforms"][-1]["keys"]


def test_the_core_knows_no_data_source_and_split_adds_one():
    for r in RECIPES.values():
        assert not set(SOURCE_KEYS) & set(core(r)), r.name
    train = compose(get_recipe("skin_lesion2d"), Split()).train
    assert train["num_labeled"] is None and train["num_val"] is None  # split_cases sizes them from the data
    assert "demo_dataset('skin_lesion2d'" in train["data_root"] and train["is_demo"] == "$not @dataset_dir"
    assert list(train).index("dataset_dir") == list(train).index("bundle_root") + 1  # where a reader looks for it


def test_layers_add_files_and_a_fixed_scale():
    bundle = compose(
        get_recipe("liver3d"), *STANDARD, MonaiLabel(), Overrides({"presets#demo#epoch_length": 3}), scale="demo"
    )
    assert list(bundle.configs) == ["train", "evaluate", "multi_gpu_train", "inference"]
    assert bundle.train["scale"] == bundle.configs["inference"]["scale"] == "demo" and bundle.train["overwrite"] is True
    assert bundle.train["presets"]["demo"]["epoch_length"] == 3
    targets = [h["_target_"] for h in bundle.train["train"]["handlers"]]
    # MONAI Label's generator loader runs before the warm-up, which must see whether a generator was restored
    warmup = targets.index("monai_genseg.handlers.GeneratorWarmup")
    assert targets[warmup - 1] == "monai.handlers.CheckpointLoader"
    assert targets[-1] == "monai_genseg.handlers.TrainStatsWriter"  # after validation, for MONAI Label's clients
    with pytest.raises(ValueError, match="--scale 'tpu' is not one of"):
        compose(get_recipe("liver3d"), scale="tpu")


def test_write_refuses_an_existing_bundle_and_overwrite_keeps_the_users_files(tmp_path):
    bundle = compose(get_recipe("polyp2d"), *STANDARD)
    target = write(bundle, tmp_path)
    assert (
        (target / "configs" / "train.yaml").is_file()
        and (target / "LICENSE").is_file()
        and (target / "models").is_dir()
    )
    (target / "models" / "model.pt").write_bytes(b"trained")
    (target / "configs" / "train.yaml").write_text("edited")
    with pytest.raises(FileExistsError, match="polyp2d exists; pass overwrite=True"):
        write(bundle, tmp_path)
    assert (target / "configs" / "train.yaml").read_text() == "edited"
    write(bundle, tmp_path, overwrite=True)
    assert (target / "models" / "model.pt").read_bytes() == b"trained"
    assert (target / "configs" / "train.yaml").read_text().startswith("# Generated from the 'polyp2d' recipe")
    assert not [p for p in target.rglob("*.tmp")]  # every file written whole


@pytest.mark.parametrize(
    "argv",
    [
        ["__main__.py", "run", "--config_file", "work/mine/liver3d/configs/train.yaml"],
        ["__main__.py", "run", "--config_file=work/mine/liver3d/configs/train.yaml", "--seed", "1"],
        [
            "__main__.py",
            "run",
            "--config_file",
            "['work/mine/liver3d/configs/train.yaml','work/mine/liver3d/configs/evaluate.yaml']",
        ],
    ],
)
def test_outputs_go_beside_the_configs_that_run(argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert default_bundle_root(argv) == str(tmp_path / "work" / "mine" / "liver3d")


def test_without_a_config_file_outputs_go_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert default_bundle_root(["pytest", "-q"]) == os.getcwd()
    assert default_bundle_root(["x", "--config_file", "loose.yaml"]) == str(
        Path.cwd()
    )  # not a bundle's configs/ folder


def test_config_paths_with_spaces_and_the_dashed_option(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert default_bundle_root(["m", "run", "--config_file", "my bundle/configs/train.yaml"]) == str(
        tmp_path / "my bundle"
    )
    assert default_bundle_root(["m", "run", "--config-file=b/configs/train.yaml"]) == str(tmp_path / "b")


def test_only_skin_lesions_rotate_at_any_angle():
    # a dermoscope has no up (measured on ISIC: benchmarks/vs_nnunet.md); X-rays and ultrasound have one, and
    # the other recipes' any-angle rotation was not measured
    for name, recipe in RECIPES.items():
        train = compose(recipe, *STANDARD).train
        (affine,) = [t for t in train["train"]["standard_augmentation"] if t["_target_"] == "RandAffined"]
        if name == "skin_lesion2d":
            assert affine["rotate_range"] == [3.1416] and affine["prob"] == 0.6 and affine["scale_range"] == [0.25] * 2
        elif recipe.spatial_dims == 2:
            assert affine["rotate_range"] == [0.26] and affine["prob"] == 0.3
        else:
            assert affine["rotate_range"] == [0.52] * 3
