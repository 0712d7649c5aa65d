"""The training plan: sizes from a fingerprint, the step budget, where it is saved and who reads it."""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import replace
from pathlib import Path

import pytest

from monai_genseg.bundle import get_recipe, preset_for_run
from monai_genseg.bundle.plan import (
    MAX_VOLUME_VOXELS,
    PATCH_VOXELS,
    Fingerprint,
    Plan,
    fingerprint,
    make_plan,
)
from monai_genseg.data import demo_dataset, load_datalist, split_cases

DEMO_3D = get_recipe("hippocampus3d").presets["demo"]
DEMO_2D = get_recipe("skin_lesion2d").presets["demo"]


def _plan(fp: Fingerprint, device="cpu", minutes=15.0, seconds=0.1, mode="baseline", demo=None) -> Plan:
    demo = demo or (DEMO_3D if fp.spatial_dims == 3 else DEMO_2D)
    return make_plan(fp, demo, device, minutes, mode, 1, 3, seconds_per_step=seconds)


def test_a_small_3d_image_is_covered_whole_and_the_network_reaches_a_4_voxel_bottleneck():
    plan = _plan(Fingerprint(8, (35.5, 49.0, 35.5), (1.0, 1.0, 1.0), 0.057))
    p = plan.preset
    assert p.pixdim == (1.0, 1.0, 1.0) and p.patch_size == (40, 56, 40)  # the median image, divisible by 2**3
    assert p.segmenter_channels == (32, 64, 128, 256)  # nnU-Net's widths: a 0.1 s step fits plenty of steps
    assert all(s % 2 ** (len(p.generator_channels)) == 0 for s in p.patch_size)  # the generator fits the patch too
    assert p.samples_per_volume == 2 and p.batch_size is None
    assert "the patch covers the whole median image" in plan.reasons


def test_the_step_budget_follows_the_time_budget_the_measured_step_and_the_mode():
    fp = Fingerprint(8, (35.5, 49.0, 35.5), (1.0, 1.0, 1.0), 0.057)
    short, long, genseg = _plan(fp, minutes=5), _plan(fp, minutes=20), _plan(fp, minutes=20, mode="end2end")

    def steps(plan):
        return plan.preset.epoch_length * plan.preset.max_epochs

    assert steps(long) == pytest.approx(4 * steps(short), rel=0.02)
    assert steps(genseg) < steps(long) / 2  # a GenSeg step costs more: fewer of them in the same time
    p = long.preset
    assert p.max_epochs == 20 and 0 < p.lr_warmup_iterations < steps(long) / 10 and p.early_stop_patience == 6
    tiny = _plan(fp, minutes=0.01)
    assert steps(tiny) >= 20 and any("raised to" in r for r in tiny.reasons)


def test_a_large_ct_is_coarsened_on_a_cpu_and_cut_into_patches_that_fit():
    fp = Fingerprint(2, (512.0, 512.0, 140.0), (0.7, 0.7, 1.6), 0.05)
    cpu, gpu = _plan(fp), _plan(fp, device="cuda")
    resampled = [n * s0 / s for n, s0, s in zip(fp.median_shape, fp.median_spacing, cpu.preset.pixdim)]
    assert math.prod(resampled) <= MAX_VOLUME_VOXELS * 1.01
    assert gpu.preset.pixdim == fp.median_spacing  # a GPU keeps the median spacing
    for plan, kind in ((cpu, "cpu"), (gpu, "cuda")):
        assert math.prod(plan.preset.patch_size) <= 1.5 * PATCH_VOXELS[(kind, 3)]
    assert max(gpu.preset.segmenter_channels) <= 320


def _cpu(bf16_speed: float):
    """A CPU's step cost: 0.3 s for a 16-wide network in float32, 4x that at twice the width, and bfloat16
    ``bf16_speed`` times float32 (0.5: AMX cores; 1.3: emulated)."""

    def seconds(preset, bf16: bool) -> float:
        return 0.3 * (preset.segmenter_channels[0] / 16) ** 2 * (bf16_speed if bf16 else 1.0)

    return seconds


def test_a_cpu_plan_takes_bfloat16_where_it_measures_faster_and_32_wide_where_that_leaves_enough_steps():
    fp = Fingerprint(8, (35.5, 49.0, 35.5), (1.0, 1.0, 1.0), 0.057)
    amx = make_plan(fp, DEMO_3D, "cpu", 15, "baseline", 1, 3, seconds_per_step=_cpu(0.5))
    assert amx.precision == "bfloat16" and amx.preset.cpu_bf16 is True
    assert amx.preset.segmenter_channels == (32, 64, 128, 256) and amx.seconds_per_step == pytest.approx(0.6)
    assert "bfloat16" in amx.describe()
    emulated = make_plan(fp, DEMO_3D, "cpu", 15, "baseline", 1, 3, seconds_per_step=_cpu(1.3))
    assert emulated.precision == "float32" and emulated.preset.cpu_bf16 is False
    # 32-wide in float32 (1.2 s) fits about 500 steps in 15 minutes, too few: 16-wide, as before AMX
    assert emulated.preset.segmenter_channels == (16, 32, 64, 128)
    assert any("16-wide instead" in r for r in emulated.reasons)
    refused = make_plan(fp, DEMO_3D, "cpu", 15, "baseline", 1, 3, seconds_per_step=_cpu(0.5), amp=False)  # --amp false
    assert refused.precision == "float32" and refused.preset.segmenter_channels[0] == 16
    gpu = make_plan(fp, DEMO_3D, "cuda", 15, "baseline", 1, 3, seconds_per_step=0.01)
    assert gpu.precision == "bfloat16" and gpu.preset.cpu_bf16 is None and "cpu_bf16" not in gpu.preset.as_config()
    assert Plan.from_json(amx.to_json()) == amx


def test_2d_resolution_comes_from_the_data():
    isic = _plan(Fingerprint(40, (256.0, 192.0), (1.0, 1.0), 0.17)).preset
    assert isic.patch_size == (256, 192) and isic.batch_size == 8 and isic.pixdim is None
    photo = _plan(Fingerprint(40, (2000.0, 1500.0), (1.0, 1.0), 0.17)).preset
    assert math.prod(photo.patch_size) <= 1.5 * PATCH_VOXELS[("cpu", 2)]
    assert photo.patch_size[0] / photo.patch_size[1] == pytest.approx(4 / 3, rel=0.15)  # proportions kept
    wound = _plan(Fingerprint(40, (1024.0, 1024.0), (1.0, 1.0), 0.0003))
    assert any("under 8 voxels" in r for r in wound.reasons)


def test_the_plan_round_trips_through_json_and_says_what_it_chose():
    plan = _plan(Fingerprint(8, (35.5, 49.0, 35.5), (1.0, 1.0, 1.0), 0.057))
    assert Plan.from_json(plan.to_json()) == plan
    text = plan.describe()
    assert "patch 40x56x40" in text and "steps" in text and "cosine" in text


def test_a_plan_from_another_version_is_refused_with_its_path(tmp_path):
    """A plan saved with the earlier UNet segmenter's sizes: its weights do not fit, so say so before loading."""
    saved = json.loads(_plan(Fingerprint(8, (35.5, 49.0, 35.5), (1.0, 1.0, 1.0), 0.057)).to_json())
    saved["preset"]["segmenter_res_units"] = 2
    (tmp_path / "plan.json").write_text(json.dumps(saved))
    presets = {k: v.as_config() for k, v in get_recipe("hippocampus3d").presets.items()}
    with pytest.raises(ValueError, match=r"plan.json: unknown size keys \['segmenter_res_units'\], written by another"):
        preset_for_run("auto", presets, str(tmp_path))


@pytest.fixture(scope="module")
def real_like(tmp_path_factory):
    """The hippocampus demo's labelled cases, handed over as a user's dataset would be (not the demo)."""
    root = demo_dataset("hippocampus3d", seed=0)
    return split_cases(load_datalist(root), 6, 2, 0)


def test_fingerprint_reads_monai_dataanalyzer_statistics(real_like):
    cases = real_like["train"] + real_like["val"]
    fp = fingerprint(cases, 3)
    assert fp.num_cases == 8 and fp.spatial_dims == 3 and len(fp.median_spacing) == 3
    assert all(n > 8 for n in fp.median_shape) and 0 < fp.foreground_fraction < 1


def test_preset_for_run_plans_real_data_saves_the_plan_and_every_later_reader_gets_it(tmp_path, real_like):
    presets = {k: v.as_config() for k, v in get_recipe("hippocampus3d").presets.items()}
    cases = real_like["train"] + real_like["val"]
    common = dict(cases=cases, spatial_dims=3, in_channels=1, num_classes=3, time_budget_minutes=0.05)
    planned = preset_for_run("auto", presets, str(tmp_path), replan=True, **common)
    saved = json.loads((tmp_path / "plan.json").read_text())
    assert saved["preset"] == planned and saved["fingerprint"]["num_cases"] == 8 and saved["seconds_per_step"] > 0
    assert preset_for_run("auto", presets, str(tmp_path)) == planned  # evaluation, inference, resume
    # no plan yet (MONAI Label parses inference before the first training): the demo's sizes
    assert preset_for_run("auto", presets, str(tmp_path / "elsewhere")) == presets["demo"]
    with pytest.raises(FileNotFoundError, match="plan.json: no training plan"):
        preset_for_run("auto", {}, str(tmp_path / "elsewhere"))


def test_the_demo_data_gets_the_demo_preset_and_the_demo_preset_on_real_data_warns(tmp_path, caplog):
    presets = {k: v.as_config() for k, v in get_recipe("hippocampus3d").presets.items()}
    assert preset_for_run("auto", presets, str(tmp_path), is_demo=True, replan=True) == presets["demo"]
    assert json.loads((tmp_path / "plan.json").read_text())["preset"] == presets["demo"]
    with caplog.at_level(logging.WARNING):
        assert preset_for_run("demo", presets, str(tmp_path / "real"), is_demo=False, replan=True) == presets["demo"]
    assert "--scale demo trains a smoke-test budget" in caplog.text


def test_an_edited_preset_whose_patch_the_networks_cannot_halve_is_refused_before_training(tmp_path):
    presets = {k: v.as_config() for k, v in get_recipe("hippocampus3d").presets.items()}
    # the gpu preset edited as for a 40x56x40 image: a 4-level segmenter halves it 3 times, the generator's 4 do not
    presets["gpu"].update(patch_size=[40, 56, 40], segmenter_channels=[16, 32, 64, 128])
    plain = preset_for_run("gpu", presets, str(tmp_path / "plain"), mode="baseline", replan=True)
    assert plain["patch_size"] == [40, 56, 40]
    with pytest.raises(ValueError, match=r"presets#gpu#patch_size \[40, 56, 40\].*divisible by 16.*generator_channels"):
        preset_for_run("gpu", presets, str(tmp_path / "genseg"), mode="end2end", replan=True)
    presets["gpu"]["segmenter_channels"] = [32, 64, 128, 256, 320]  # 5 levels halve 4 times: 40 is not a multiple of 16
    with pytest.raises(ValueError, match=r"divisible by 16 for presets#gpu#segmenter_channels.*e\.g\. \[48, 64, 48\]"):
        preset_for_run("gpu", presets, str(tmp_path / "deep"), mode="baseline", replan=True)
    # the embedded demo trains GenSeg with the demo preset: an edited demo patch is checked too
    presets["demo"]["patch_size"] = [36, 36, 36]
    with pytest.raises(ValueError, match=r"presets#demo#patch_size \[36, 36, 36\]"):
        preset_for_run("auto", presets, str(tmp_path / "demo"), is_demo=True, mode="end2end", replan=True)
    assert not any(
        (tmp_path / d / "plan.json").exists() for d in ("genseg", "deep", "demo")
    )  # refused, nothing written


def test_training_stops_early_on_a_validation_plateau_and_model_pt_holds_the_final_weights(tmp_path):
    import torch

    from .test_liver3d import TINY, run_bundle

    # a zero learning rate: the validation Dice cannot improve, so patience 1 stops the run after epoch 2 of 6
    settings = dict(TINY, mode="baseline", bundle_root=str(tmp_path))
    settings.update({"presets#demo#max_epochs": 6, "presets#demo#early_stop_patience": 1, "optimizer#lr": 0.0})
    run_bundle(["train.yaml"], cwd=tmp_path, **settings)
    ckpt = torch.load(tmp_path / "models" / "genseg_checkpoint.pt", weights_only=True)
    assert ckpt["trainer"]["iteration"] == 2 * TINY["presets#demo#epoch_length"]
    final = torch.load(tmp_path / "models" / "model.pt", weights_only=True)
    assert all(torch.equal(final[k], v) for k, v in ckpt["model"].items())  # --model_selection final


def test_the_learning_rate_warms_up_then_decays_to_zero_at_the_step_ceiling():
    from monai.bundle import ConfigParser

    from monai_genseg.bundle import STANDARD, compose

    parser = ConfigParser(compose(get_recipe("hippocampus3d"), *STANDARD, scale="demo").train)
    scheduler = parser.get_parsed_content("lr_scheduler")
    preset, optimizer = DEMO_3D, scheduler.optimizer
    total = preset.epoch_length * preset.max_epochs
    lrs = []
    for _ in range(total):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    peak = lrs.index(max(lrs))
    assert lrs[0] < 0.1 * max(lrs) and peak == preset.lr_warmup_iterations and max(lrs) == pytest.approx(1e-3)
    assert lrs[-1] < 1e-3 * 0.01 and all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1 :]))


def _bundle_run(name: str, configs: list[str], root, **settings):
    from .test_liver3d import run_bundle

    config_dir = BUNDLES / name / "configs"
    return run_bundle(configs, root, config_dir=config_dir, **dict(settings, bundle_root=str(root), num_workers=0))


BUNDLES = Path(__file__).resolve().parents[2] / "bundles"
GPU_SMALL = {  # the gpu preset's networks, on small images for a few steps
    "presets#gpu#patch_size": [64, 64],
    "presets#gpu#batch_size": 2,
    "presets#gpu#epoch_length": 2,
    "presets#gpu#max_epochs": 1,
    "presets#gpu#generator_warmup_iterations": 1,
    "presets#gpu#syn_rampup_iterations": 0,
}


@pytest.mark.parametrize("scale", ["auto", "gpu"])
def test_each_preset_trains_evaluates_and_infers_on_a_users_dataset(tmp_path, scale):
    data = Path(
        demo_dataset("skin_lesion2d", seed=0)
    )  # handed over as --dataset_dir: real data as far as the run knows
    settings = dict(dataset_dir=str(data), scale=scale, num_labeled=6, num_val=2)
    if scale == "auto":
        settings["time_budget_minutes"] = 0.01  # the plan's floor: 20 steps
    else:
        settings.update(GPU_SMALL, mode="end2end")
    train = _bundle_run("skin_lesion2d", ["train.yaml"], tmp_path, **settings)
    plan = json.loads((tmp_path / "models" / "plan.json").read_text())
    if scale == "auto":
        assert "plan (cpu, 0.01 min, mode baseline)" in train.stdout + train.stderr
        assert plan["fingerprint"]["num_cases"] == 8 and plan["preset"]["epoch_length"] * 20 >= 20
        # 0.6 s hold fewer than the plan's 20 epochs: the run keeps the budget (handlers.TimeBudget)
        kept = re.findall(r"of the 0.01-minute budget are left: training (\d+) epochs", train.stdout + train.stderr)
        assert kept and int(kept[-1]) < 20
        steps = int(kept[-1]) * plan["preset"]["epoch_length"]
        assert f"mode baseline: {steps} segmenter steps trained" in train.stdout + train.stderr
        # the default on real data never runs the generator: no gallery of it, no genotype log
        assert not {"gallery", "genotype"} & {p.name for p in (tmp_path / "eval").iterdir()}
        assert "GenotypeLogger" not in train.stdout + train.stderr
    else:
        assert plan["preset"]["segmenter_channels"] == [32, 64, 128, 256, 512] and plan["reasons"] == ["preset gpu"]
        assert "budget are left" not in train.stdout + train.stderr  # a named preset runs all its steps
    _bundle_run("skin_lesion2d", ["train.yaml", "evaluate.yaml"], tmp_path, **settings)
    summary = json.loads((tmp_path / "eval" / "metrics.json").read_text())["summary"]
    assert summary["val_mean_dice_lesion"]["n"] > 0
    # inference with no --scale reads the sizes from models/plan.json
    _bundle_run("skin_lesion2d", ["inference.yaml"], tmp_path, dataset_dir=str(data / "images"))
    assert len(list((tmp_path / "eval" / "predictions").glob("*_seg.png"))) == len(list((data / "images").iterdir()))


def _plan_on_rank(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist

    from monai_genseg.bundle.plan import _from_rank_zero

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        # each rank "times" a different step, as two processes on one machine do
        widths = (16, 32) if rank == 0 else (32, 64)
        shared = _from_rank_zero(lambda: widths)
        Path(out, f"rank{rank}.json").write_text(json.dumps(shared))
    finally:
        dist.destroy_process_group()


def test_a_distributed_run_trains_rank_zeros_plan_on_every_rank(tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_plan_on_rank, args=(port, str(tmp_path)), nprocs=2)
    assert [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)] == [[16, 32], [16, 32]]


def test_a_plan_saved_before_the_precision_choice_reads_as_float32(tmp_path):
    saved = json.loads(_plan(Fingerprint(8, (35.5, 49.0, 35.5), (1.0, 1.0, 1.0), 0.057), seconds=1.0).to_json())
    del saved["precision"], saved["preset"]["cpu_bf16"]
    plan = Plan.from_json(json.dumps(saved))
    assert plan.precision == "float32" and plan.preset.cpu_bf16 is None


def test_the_bundle_hands_the_plans_precision_to_the_trainer(tmp_path):
    """The config wiring: a saved plan's ``cpu_bf16`` reaches ``GenSegTrainer(cpu_bf16=...)`` on a resumed run."""
    from monai.bundle import ConfigParser

    plan = make_plan(
        Fingerprint(8, (35.5, 49.0, 35.5), (1.0, 1.0, 1.0), 0.057), DEMO_3D, "cpu", 15, "baseline", 1, 3, _cpu(0.5)
    )
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "plan.json").write_text(plan.to_json())
    config = Path(__file__).resolve().parents[2] / "bundles" / "hippocampus3d" / "configs" / "train.yaml"
    data = demo_dataset("hippocampus3d", seed=0)  # read by the split the plan's call names, not planned from
    for saved, expected in ((plan, True), (replace(plan, preset=replace(plan.preset, cpu_bf16=False)), False)):
        (tmp_path / "models" / "plan.json").write_text(saved.to_json())
        parser = ConfigParser()
        parser.read_config(str(config))
        parser.update({"bundle_root": str(tmp_path), "resume": True, "dataset_dir": str(data)})
        parser.parse()
        assert parser.get_parsed_content("train#trainer#cpu_bf16") is expected
