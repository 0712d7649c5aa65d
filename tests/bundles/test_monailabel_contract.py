"""The contract MONAI Label's bundle tasks (monailabel 0.8.5) rely on, checked without installing MONAI Label.

BundleTrainTask runs ``monai.bundle.run(run_id="run", init_id=None, final_id=None, meta_file, config_file,
**overrides)`` with the overrides built below; BundleInferTask parses ``network_def``, ``preprocessing``
(its LoadImaged set to ``image_only=False``), ``inferer`` and ``postprocessing`` (SaveImaged dropped) from
``configs/inference.yaml``, with ``bundle_root`` set to the bundle folder, and loads ``models/model.pt``.
``scripts/monailabel_check.sh`` runs the real tasks in an environment of their own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
import yaml
from monai.bundle import ConfigParser
from monai.transforms import Compose, LoadImaged, SaveImaged

from monai_genseg.data import write_liver_demo
from monai_genseg.monailabel import prepare_bundle

REPO_TRAIN = Path(__file__).resolve().parents[2] / "bundles" / "liver3d" / "configs" / "train.yaml"
QUICK = {
    "scale": "demo",
    "presets#demo#patch_size": [32, 32, 32],
    "presets#demo#epoch_length": 3,
    "presets#demo#generator_warmup_iterations": 2,
    "presets#demo#syn_rampup_iterations": 0,
    "num_workers": 0,
}


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> list[dict]:
    """Six labelled volumes, as MONAI Label's datastore lists them: absolute image and label paths."""
    root = write_liver_demo(
        tmp_path_factory.mktemp("studies") / "liver", num_cases=6, seed=1, shape=(40, 32, 32), spacing=(8.0, 8.0, 5.0)
    )
    return [
        {"image": str(root / c["image"]), "label": str(root / c["label"])}
        for c in json.loads((root / "dataset.json").read_text())["training"]
    ]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return prepare_bundle("liver3d", tmp_path_factory.mktemp("app") / "model", scale="demo", overrides=QUICK)


def train_task_overrides(bundle: Path, train: list[dict], val: list[dict], max_epochs: int = 1) -> dict:
    """BundleTrainTask.__call__'s overrides: the literal train#handlers with a CheckpointLoader in front once
    model.pt exists, unless some handler's ``_target_`` is already the string "CheckpointLoader"."""
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "train.yaml"))
    handlers = parser.get("train#handlers", [])
    model = bundle / "models" / "model.pt"
    if model.exists() and not [h for h in handlers if h.get("_target_") == "CheckpointLoader"]:
        handlers.insert(
            0,
            {
                "_target_": "CheckpointLoader",
                "load_path": str(model),
                "load_dict": {"model": "$@network"},
                "strict": False,
            },
        )
    return {
        "bundle_root": str(bundle),
        "train#trainer#max_epochs": max_epochs,
        "train#dataset#data": train,
        "device": "cpu",
        "train#handlers": handlers,
        "validate#dataset#data": val,
    }


def run_train_task(bundle: Path, overrides: dict, cache: Path) -> subprocess.CompletedProcess:
    args = {
        "run_id": "run",
        "init_id": None,
        "final_id": None,
        "meta_file": str(bundle / "configs" / "metadata.json"),
        "config_file": str(bundle / "configs" / "train.yaml"),
        **overrides,
    }
    spec = cache.parent / "call.json"
    spec.write_text(json.dumps(args))
    code = "import json, sys, monai.bundle; monai.bundle.run(**json.load(open(sys.argv[1])))"
    env = dict(os.environ, MONAI_GENSEG_CACHE=str(cache))
    return subprocess.run(
        [sys.executable, "-c", code, str(spec)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=600,
        env=env,
    )


def test_a_copy_without_a_model_starts_untrained_and_says_so(bundle):
    """MONAI Label lists a bundle for inference only if models/model.pt exists when the server starts."""
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    assert meta["description"].startswith("UNTRAINED WEIGHTS")
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.yaml"))
    parser["bundle_root"] = str(bundle)
    network = parser.get_parsed_content("network_def", instantiate=True)
    network.load_state_dict(torch.load(bundle / "models" / "model.pt", weights_only=True))  # the served network's


def test_prepared_copy_fixes_scale_and_lets_retraining_replace_models(bundle):
    train = yaml.safe_load((bundle / "configs" / "train.yaml").read_text())
    infer = yaml.safe_load((bundle / "configs" / "inference.yaml").read_text())
    assert train["scale"] == infer["scale"] == "demo" and train["overwrite"] is True
    assert train["presets"]["demo"]["epoch_length"] == 3
    from monai_genseg.bundle import RECIPES

    assert RECIPES["liver3d"].presets["demo"]["epoch_length"] == 40  # the copy's settings never leak into the recipe
    assert yaml.safe_load(REPO_TRAIN.read_text())["overwrite"] is False  # the repository's bundle keeps its safety net
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    assert meta["network_data_format"]["outputs"]["pred"]["channel_def"] == {
        "0": "background",
        "1": "liver",
        "2": "tumour",
    }
    assert {"multi_gpu_train.yaml", "logging.conf"} <= {p.name for p in (bundle / "configs").iterdir()}
    with pytest.raises(FileExistsError, match="overwrite"):
        prepare_bundle("liver3d", bundle.parent, scale="demo")


def test_architecture_step_reads_the_validation_cases_monailabel_gives(bundle, cases):
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "train.yaml"))
    for key, value in train_task_overrides(bundle, cases[:4], cases[4:]).items():
        parser[key] = value
    assert parser.get_parsed_content("train#arch_dataset#data") == cases[4:]


def test_train_task_trains_on_its_cases_then_continues_from_model_pt(bundle, cases, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    model = bundle / "models" / "model.pt"
    untrained = model.read_bytes()  # the copy starts with untrained weights: MONAI Label lists it from the start
    proc = run_train_task(bundle, train_task_overrides(bundle, cases[:4], cases[4:]), cache)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    restored_generator = f"Restored all variables from {bundle / 'models' / 'genseg_checkpoint.pt'}"
    assert restored_generator not in proc.stdout + proc.stderr  # no generator to continue from yet
    assert "generator warm-up 2/2" in proc.stdout + proc.stderr
    first = model.read_bytes()
    assert first != untrained  # the server's BasicInferTask reloads model.pt when it changes: no restart
    assert not any(cache.iterdir())  # the demo data was never made: only MONAI Label's cases were read

    proc = run_train_task(bundle, train_task_overrides(bundle, cases[:4], cases[4:], max_epochs=2), cache)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"Restored all variables from {model}" in proc.stdout + proc.stderr
    assert (
        f"Restored all variables from {bundle / 'models' / 'genseg_checkpoint.pt'}" in proc.stdout + proc.stderr
    )  # the generator too
    assert "generator warm-up" not in proc.stdout + proc.stderr  # it was warmed up by the training that saved it
    stats = json.loads((bundle / "models" / "train_stats.json").read_text())  # what MONAI Label's trainers keep
    assert stats["epoch"] == 2 and "total_time" in stats and stats["eval"]["key_metric_name"] == "val_mean_dice"
    assert 0 <= stats["best_metric"] <= 1 and stats["eval"]["best_metric_epoch"] in (1, 2)
    assert len(stats["genotype"]) > 0 and all(isinstance(g, str) for g in stats["genotype"])
    assert model.read_bytes() != first  # retraining replaced the best model, as MONAI Label expects


def test_train_task_refuses_a_bad_label_before_training(bundle, cases, tmp_path):
    bad = tmp_path / "bad_label.nii.gz"
    label = nib.load(cases[0]["label"])
    nib.save(nib.Nifti1Image(np.asarray(label.dataobj) * 3, label.affine), bad)
    cache = tmp_path / "cache"
    cache.mkdir()
    proc = run_train_task(
        bundle, train_task_overrides(bundle, [dict(cases[0], label=str(bad))] + cases[1:4], cases[4:]), cache
    )
    assert proc.returncode != 0
    assert "DataCheckError" in proc.stderr and f"{bad}: label values" in proc.stderr


def test_infer_task_pipeline_gives_labels_in_the_image_grid(bundle, cases):
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.yaml"))
    parser.config.update({"bundle_root": str(bundle)})
    network = parser.get_parsed_content("network_def", instantiate=True)
    model = bundle / "models" / "model.pt"
    if not model.exists():  # run alone, without the training test before it
        torch.save(network.state_dict(), model)
    checkpoint = torch.load(model, map_location="cpu", weights_only=True)
    network.load_state_dict(checkpoint.get("model", checkpoint))  # BasicInferTask's reading of model.pt
    network.eval()
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    labels = {
        v: int(k) for k, v in meta["network_data_format"]["outputs"]["pred"]["channel_def"].items() if v != "background"
    }

    pre = list(parser.get_parsed_content("preprocessing", instantiate=True).transforms)
    for t in pre:
        if isinstance(t, LoadImaged):
            t._loader.image_only = False
    # MONAI Label also adds the string key "image_path"; MONAI 1.6's Spacingd then fails (docs/monailabel.md)
    data = Compose(pre)({"image": cases[0]["image"]})
    with torch.no_grad():
        data["pred"] = parser.get_parsed_content("inferer", instantiate=True)(data["image"][None], network)[0]
    post = [
        t
        for t in parser.get_parsed_content("postprocessing", instantiate=True).transforms
        if not isinstance(t, SaveImaged)
    ]
    data = Compose(post)(data)
    original = nib.load(cases[0]["image"]).shape
    assert tuple(data["pred"].shape[-3:]) == original  # Invertd brought the labels back to the image's grid
    assert set(torch.unique(data["pred"]).int().tolist()) <= {0, *labels.values()}
    assert labels == {"liver": 1, "tumour": 2}


def test_2d_infer_task_writes_a_png_label_of_the_image_size_and_orientation(tmp_path):
    """BundleInferTask's pipeline on a non-square 2D image, then what MONAI Label 0.8.5 does after it:
    ``Restored`` (it squeezes only 4-D results) and ``Writer`` (it transposes the array and writes it with
    ITK, here SimpleITK, which reads arrays the same way), as the defaults the copy asks for: PNG, uint8."""
    import SimpleITK as sitk
    from PIL import Image

    bundle = prepare_bundle("skin_lesion2d", tmp_path / "model", scale="demo", overrides={"num_workers": 0})
    infer = yaml.safe_load((bundle / "configs" / "inference.yaml").read_text())
    assert infer["displayable_configs"] == {"result_extension": ".png", "result_dtype": "uint8"}
    picture = np.zeros((48, 64, 3), np.uint8)  # rows x columns: 64 wide, 48 high
    picture[5:20, 8:40] = 255  # a bright block near the top left
    Image.fromarray(picture).save(tmp_path / "case.png")

    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.yaml"))
    parser.config.update({"bundle_root": str(bundle)})
    pre = list(parser.get_parsed_content("preprocessing", instantiate=True).transforms)
    for t in pre:
        if isinstance(t, LoadImaged):
            t._loader.image_only = False
    data = Compose(pre)({"image": str(tmp_path / "case.png")})

    def brightness(x):  # a stand-in network: class 1 where the first channel is bright
        return torch.cat([0.5 - x[:, :1], x[:, :1] - 0.5], dim=1)

    with torch.no_grad():
        data["pred"] = parser.get_parsed_content("inferer", instantiate=True)(data["image"][None], brightness)[0]
    post = parser.get_parsed_content("postprocessing", instantiate=True).transforms
    data = Compose([t for t in post if not isinstance(t, SaveImaged)])(data)
    pred = data["pred"]
    assert pred.ndim == 2  # Restored keeps it as it is, and the writer makes a 2D image of it
    written = tmp_path / "label.png"
    sitk.WriteImage(
        sitk.GetImageFromArray(np.asarray(pred).T.astype(infer["displayable_configs"]["result_dtype"])), written
    )
    label = np.asarray(Image.open(written))
    assert label.shape == picture.shape[:2] and set(np.unique(label)) <= {0, 1}
    assert (label == (picture[..., 0] > 127)).mean() > 0.97  # where the block is, not transposed or flipped
