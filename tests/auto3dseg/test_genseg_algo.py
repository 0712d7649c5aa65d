"""GenSeg as an Auto3DSeg algorithm: data analysis -> recipe, BundleGen, two folds of training, the ensemble."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml
from monai.apps.auto3dseg import AutoRunner, BundleGen
from monai.auto3dseg.utils import algo_from_json

from monai_genseg.auto3dseg import TEMPLATES_DIR, copy_template, recipe_from_stats
from monai_genseg.data import write_liver_demo

# the CPU preset shrunk so that a fold trains in seconds; AutoRunner passes these to scripts/train.py
TINY = {
    "scale": "demo",
    "presets#demo#patch_size": [32, 32, 32],
    "presets#demo#epoch_length": 3,
    "presets#demo#max_epochs": 2,
    "presets#demo#generator_warmup_iterations": 2,
    "presets#demo#syn_rampup_iterations": 0,
    "num_workers": 0,
}


def _stats(labels=(0, 1, 2), spacing=(0.8, 0.8, 2.5), shape=(512, 512, 100), channels=1) -> dict:
    return {
        "stats_summary": {
            "image_stats": {
                "spacing": {"median": list(spacing)},
                "shape": {"median": list(shape)},
                "channels": {"max": channels},
            },
            "image_foreground_stats": {"intensity": {"percentile_00_5": -80.0, "percentile_99_5": 220.0}},
            "label_stats": {"labels": list(labels)},
        }
    }


def test_recipe_follows_the_data_analysis():
    r = recipe_from_stats(_stats(), modality="ct")
    assert r.num_classes == 3 and r.image_channels == 1 and r.spatial_dims == 3
    assert r.intensity[0]["a_min"] == -80.0 and r.intensity[0]["a_max"] == 220.0  # CT: foreground percentiles
    assert r.presets["gpu"]["pixdim"] == [0.8, 0.8, 2.5]
    assert r.presets["gpu"]["patch_size"] == [128, 128, 112] and r.presets["demo"]["patch_size"] == [48, 48, 32]
    small = recipe_from_stats(_stats(shape=(20, 30, 9)), modality="mri")
    assert small.presets["demo"]["patch_size"] == [
        24,
        32,
        16,
    ]  # never larger than the data needs, divisible by the strides
    assert small.intensity[0]["_target_"] == "ScaleIntensityRangePercentilesd"  # MR has no absolute scale


@pytest.mark.parametrize(
    "stats,problem",
    [
        (_stats(labels=(0, 1, 4)), "not 0..N-1"),
        (_stats(labels=(0,)), "not 0..N-1"),
        (_stats(spacing=(1.0, 1.0), shape=(64, 64)), "2D images"),
        ({"stats_summary": {}}, "is this a DataAnalyzer"),
    ],
)
def test_unusable_analysis_is_refused_with_the_file_named(stats, problem):
    with pytest.raises(ValueError, match=problem) as err:
        recipe_from_stats(stats, source="work/datastats.yaml")
    assert "work/datastats.yaml" in str(err.value)


@pytest.fixture(scope="module")
def liver_input(tmp_path_factory) -> dict:
    """Eight phantom CT cases in two folds, plus one case to predict, as Auto3DSeg's input config."""
    root = tmp_path_factory.mktemp("a3d")
    data = write_liver_demo(root / "liver", num_cases=9, seed=0, shape=(40, 32, 32), spacing=(8.0, 8.0, 5.0))
    cases = json.loads((data / "dataset.json").read_text())["training"]
    datalist = {
        "training": [dict(c, fold=i % 2) for i, c in enumerate(cases[:8])],
        "testing": [{"image": cases[8]["image"]}],
    }
    (root / "datalist.json").write_text(json.dumps(datalist, indent=4))
    return {"modality": "ct", "datalist": str(root / "datalist.json"), "dataroot": str(data)}


def test_autorunner_analyses_generates_trains_two_folds_and_ensembles(tmp_path, liver_input):
    work = tmp_path / "work"
    runner = AutoRunner(work_dir=str(work), input=liver_input, algos="genseg", templates_path_or_url=str(TEMPLATES_DIR))
    runner.set_num_fold(2)
    runner.set_device_info(cmd_prefix=sys.executable)
    runner.set_training_params(TINY)
    runner.set_ensemble_method("AlgoEnsembleBestN", n_best=2)
    runner.run()

    stats = yaml.safe_load((work / "datastats.yaml").read_text())["stats_summary"]
    datalist = json.loads(Path(liver_input["datalist"]).read_text())["training"]
    for fold in (0, 1):
        algo_dir = work / f"genseg_{fold}"
        cfg = yaml.safe_load((algo_dir / "configs" / "hyper_parameters.yaml").read_text())
        assert cfg["fold"] == fold and cfg["num_classes"] == 3
        assert cfg["num_workers"] == "$monai_genseg.bundle.default_workers(@device)"  # none on a CPU
        window = cfg["load_transforms"][3]
        assert window["a_min"] == pytest.approx(stats["image_foreground_stats"]["intensity"]["percentile_00_5"])
        # the fold's cases drive validation and the architecture step; the others train
        from monai_genseg.auto3dseg import fold_split

        split = fold_split(liver_input["datalist"], liver_input["dataroot"], fold)
        assert sorted(Path(c["image"]).name for c in split["val"]) == sorted(
            Path(c["image"]).name for c in datalist if c["fold"] == fold
        )
        progress = yaml.safe_load((algo_dir / "models" / "progress.yaml").read_text())
        scores = [p["best_avg_dice_score"] for p in progress]
        assert scores == sorted(scores) and 0 <= scores[-1] <= 1  # appended only when the best improves
        algo, _ = algo_from_json(str(algo_dir / "algo_object.json"), template_path=str(work / "algorithm_templates"))
        assert type(algo).__name__ == "GensegAlgo" and algo.get_score() == scores[-1]
        assert (algo_dir / "models" / "model.pt").is_file()

    (prediction,) = list((work / "ensemble_output").rglob("*.nii.gz"))
    image = nib.load(
        Path(liver_input["dataroot"]) / json.loads(Path(liver_input["datalist"]).read_text())["testing"][0]["image"]
    )
    pred = nib.load(prediction)
    assert pred.shape == image.shape and np.allclose(pred.affine, image.affine)  # back in the input's own grid
    assert set(np.unique(np.asarray(pred.dataobj))) <= {0, 1, 2}


def test_template_runs_beside_other_algorithms(tmp_path, liver_input):
    """``monai-genseg auto3dseg-template DEST`` puts genseg next to other templates; BundleGen finds both."""
    templates = tmp_path / "templates"
    other = templates / "plainunet" / "scripts"  # stands in for MONAI's own templates, which are a download
    other.mkdir(parents=True)
    (other / "algo.py").write_text(
        "from monai.apps.auto3dseg import BundleAlgo\n\n\nclass PlainunetAlgo(BundleAlgo):\n    pass\n"
    )
    (templates / "plainunet" / "configs").mkdir()
    copy_template(templates)
    with pytest.raises(FileExistsError, match="overwrite"):
        copy_template(templates)  # a user's edited template is never replaced silently

    from monai.apps.auto3dseg import DataAnalyzer

    stats = tmp_path / "datastats.yaml"
    DataAnalyzer(
        liver_input["datalist"], liver_input["dataroot"], output_path=str(stats), device="cpu", worker=0
    ).get_all_case_stats()
    src = tmp_path / "input.yaml"
    src.write_text(yaml.safe_dump(liver_input))
    gen = BundleGen(
        algo_path=str(tmp_path),
        templates_path_or_url=str(templates),
        data_stats_filename=str(stats),
        data_src_cfg_name=str(src),
    )
    gen.generate(str(tmp_path / "algos"), num_fold=1)
    assert sorted(h["identifier"] for h in gen.get_history()) == ["genseg_0", "plainunet_0"]
    assert (tmp_path / "algos" / "genseg_0" / "configs" / "hyper_parameters.yaml").is_file()


def test_fold_trains_under_torchrun_with_the_multi_gpu_overlay(tmp_path, liver_input):
    """What BundleAlgo runs on a machine with several GPUs: torchrun over scripts/train.py; 2 gloo processes here."""
    from monai.apps.auto3dseg import DataAnalyzer

    stats, src = tmp_path / "datastats.yaml", tmp_path / "input.yaml"
    DataAnalyzer(
        liver_input["datalist"], liver_input["dataroot"], output_path=str(stats), device="cpu", worker=0
    ).get_all_case_stats()
    src.write_text(yaml.safe_dump(liver_input))
    gen = BundleGen(
        algo_path=str(tmp_path),
        templates_path_or_url=str(TEMPLATES_DIR),
        data_stats_filename=str(stats),
        data_src_cfg_name=str(src),
    )
    gen.generate(str(tmp_path / "algos"), num_fold=1)
    algo = tmp_path / "algos" / "genseg_0"
    overrides = [f"--{k}={v if not isinstance(v, list) else ','.join(map(str, v))}" for k, v in TINY.items()]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port=29541",
        str(algo / "scripts" / "train.py"),
        "run",
        f"--config_file={algo / 'configs' / 'hyper_parameters.yaml'}",
        *overrides,
    ]
    proc = subprocess.run(
        cmd, cwd=tmp_path, capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=600
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "rank 0: replicas consistent" in log and "rank 1: replicas consistent" in log
    assert yaml.safe_load((algo / "models" / "progress.yaml").read_text())[-1]["best_avg_dice_score"] >= 0
