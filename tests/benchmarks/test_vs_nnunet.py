"""The comparison's split: the labelled and unseen folders every figure in vs_nnunet.md is measured on."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "vs_nnunet.py"
spec = importlib.util.spec_from_file_location("vs_nnunet", PATH)
vs_nnunet = importlib.util.module_from_spec(spec)
spec.loader.exec_module(vs_nnunet)


def _names(folder: Path) -> list[str]:
    return sorted(Path(e["image"]).name for e in json.loads((folder / "dataset.json").read_text())["training"])


def test_split_only_writes_a_seeded_disjoint_split_of_every_case_and_trains_nothing(tmp_path, monkeypatch, capsys):
    from monai_genseg.data import load_datalist

    source = _photos(tmp_path / "set", [(0, 0)] * 10)
    argv = ["vs_nnunet.py", "--dataset_dir", str(source), "--num_labeled", "4", "--split_only"]
    runs = []
    for out in ("a", "b"):
        monkeypatch.setattr(sys, "argv", argv + ["--seed", "0", "--output", str(tmp_path / out)])
        vs_nnunet.main()
        runs.append((_names(tmp_path / out / "labelled"), _names(tmp_path / out / "unseen")))
    (labelled, unseen), again = runs
    assert again == (labelled, unseen)  # the same seed gives the same split
    assert (
        len(labelled) == 4 and len(unseen) == 6 and set(labelled) | set(unseen) == {f"{i:04d}.jpg" for i in range(10)}
    )
    assert [len(load_datalist(tmp_path / "a" / part)) for part in ("labelled", "unseen")] == [4, 6]  # folders load
    assert not (tmp_path / "a" / "results.json").exists() and "unseen:" in capsys.readouterr().out

    linked = tmp_path / "a" / "labelled" / "imagesTr" / labelled[0]
    assert linked.is_symlink() and linked.resolve() == (source / "images" / labelled[0]).resolve()

    monkeypatch.setattr(sys, "argv", argv + ["--seed", "1", "--output", str(tmp_path / "c")])
    vs_nnunet.main()
    assert _names(tmp_path / "c" / "labelled") != labelled


def test_another_split_into_a_used_output_is_refused_and_leaves_it_as_it_was(tmp_path, monkeypatch):
    source = _photos(tmp_path / "set", [(0, 0)] * 10)
    argv = ["vs_nnunet.py", "--dataset_dir", str(source), "--num_labeled", "4", "--split_only", "--output"]
    monkeypatch.setattr(sys, "argv", argv + [str(tmp_path / "out"), "--seed", "0"])
    vs_nnunet.main()
    before = sorted(p.name for p in (tmp_path / "out" / "labelled" / "imagesTr").iterdir())
    monkeypatch.setattr(sys, "argv", argv + [str(tmp_path / "out"), "--seed", "1"])
    with pytest.raises(SystemExit, match="holds another split"):
        vs_nnunet.main()
    assert sorted(p.name for p in (tmp_path / "out" / "labelled" / "imagesTr").iterdir()) == before
    assert _names(tmp_path / "out" / "labelled") == before


def _photos(root: Path, squares: list[tuple[int, int]]) -> Path:
    """Real 32x24 RGB JPEGs with 0/255 PNG masks, each mask a 8x8 square at (row, col)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    for i, (r, c) in enumerate(squares):
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(root / "images" / f"{i:04d}.jpg")
        mask = np.zeros((24, 32), np.uint8)
        mask[r : r + 8, c : c + 8] = 255
        Image.fromarray(mask).save(root / "masks" / f"{i:04d}.png")
    return root


def test_a_2d_set_becomes_nnunets_natural_image_dataset_with_label_indices(tmp_path):
    from PIL import Image

    from monai_genseg.bundle import get_recipe

    labelled, unseen = _photos(tmp_path / "lab", [(2, 3), (10, 20)]), _photos(tmp_path / "new", [(4, 4)])
    raw = tmp_path / "raw"
    assert vs_nnunet.nnunet_raw(raw, labelled, [unseen], get_recipe("skin_lesion2d")) == ".png"
    meta = json.loads((raw / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "R", "1": "G", "2": "B"} and meta["file_ending"] == ".png"
    assert meta["labels"] == {"background": 0, "lesion": 1} and meta["numTraining"] == 2
    assert sorted(p.name for p in (raw / "labelsTr").iterdir()) == ["0000.png", "0001.png"]
    label = np.asarray(Image.open(raw / "labelsTr" / "0001.png"))
    expected = np.zeros((24, 32), np.uint8)
    expected[10:18, 20:28] = 1
    np.testing.assert_array_equal(label, expected)  # 0/255 became label indices, in place
    first = np.asarray(Image.open(raw / "labelsTr" / "0000.png"))
    assert first[2:10, 3:11].all() and first.sum() == 64  # the labelled 0000's square, not the unseen 0000's
    image = np.asarray(Image.open(raw / "imagesTr" / "0000_0000.png"))
    np.testing.assert_array_equal(image, np.asarray(Image.open(labelled / "images" / "0000.jpg").convert("RGB")))
    assert [p.name for p in (raw / "imagesTs0").iterdir()] == ["0000_0000.png"]  # unseen: no label written

    again = _photos(tmp_path / "lab2", [(0, 0)])  # a second run into the same folder: no leftovers join it
    vs_nnunet.nnunet_raw(raw, again, [unseen], get_recipe("skin_lesion2d"))
    assert json.loads((raw / "dataset.json").read_text())["numTraining"] == 1
    assert [p.name for p in (raw / "labelsTr").iterdir()] == ["0000.png"]


def test_cases_that_share_a_name_are_refused_before_anything_is_written(tmp_path):
    from PIL import Image

    from monai_genseg.bundle import get_recipe

    folder = _photos(tmp_path / "set", [(2, 3), (10, 20)])
    Image.open(folder / "images" / "0001.jpg").save(folder / "images" / "0001.png")
    (folder / "masks" / "0001.png").rename(folder / "masks" / "x.png")
    entries = [{"image": "images/0000.jpg", "label": "masks/0000.png"}]
    entries += [{"image": f"images/0001.{e}", "label": "masks/x.png"} for e in ("jpg", "png")]
    (folder / "list.json").write_text(json.dumps(entries))
    with pytest.raises(SystemExit, match="two cases share a file name"):
        vs_nnunet.nnunet_raw(tmp_path / "raw", folder / "list.json", [], get_recipe("skin_lesion2d"))
    assert not (tmp_path / "raw").exists()


def test_3d_cases_are_linked_and_named_by_modality_so_ct_gets_nnunets_ct_normalisation(tmp_path):
    import nibabel as nib

    from monai_genseg.bundle import get_recipe

    def msd(folder: Path, name: str) -> Path:
        for sub in ("imagesTr", "labelsTr"):
            (folder / sub).mkdir(parents=True)
            nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), folder / sub / f"{name}.nii.gz")
        entry = {"image": f"./imagesTr/{name}.nii.gz", "label": f"./labelsTr/{name}.nii.gz"}
        (folder / "dataset.json").write_text(json.dumps({"training": [entry]}))
        return folder

    labelled, unseen = msd(tmp_path / "lab", "case_1"), msd(tmp_path / "new", "case_2")
    for bundle, modality in (("liver3d", "CT"), ("hippocampus3d", "MR")):
        raw = tmp_path / bundle
        assert vs_nnunet.nnunet_raw(raw, labelled, [unseen], get_recipe(bundle)) == ".nii.gz"
        assert json.loads((raw / "dataset.json").read_text())["channel_names"] == {"0": modality}
        linked = raw / "imagesTr" / "case_1_0000.nii.gz"
        assert linked.is_symlink() and linked.resolve() == (labelled / "imagesTr" / "case_1.nii.gz").resolve()
        assert [p.name for p in (raw / "labelsTr").iterdir()] == ["case_1.nii.gz"]
        assert [p.name for p in (raw / "imagesTs0").iterdir()] == ["case_2_0000.nii.gz"]


def test_2d_predictions_are_scored_against_the_masks_as_the_bundles_read_them(tmp_path):
    from PIL import Image

    from monai_genseg.bundle import get_recipe

    unseen = _photos(tmp_path / "new", [(2, 3), (10, 20)])
    pred = tmp_path / "pred"
    pred.mkdir()
    exact = np.zeros((24, 32), np.uint8)
    exact[2:10, 3:11] = 1
    half = np.zeros((24, 32), np.uint8)
    half[10:18, 20:24] = 1  # half of the second square: Dice 2*32/(64+32)
    Image.fromarray(exact).save(pred / "0000.png")
    Image.fromarray(half).save(pred / "0001.png")
    s = vs_nnunet.score(pred, unseen, get_recipe("skin_lesion2d"))
    assert s["val_mean_dice_lesion"]["mean"] == pytest.approx((1 + 2 / 3) / 2, abs=1e-5)
    assert s["val_mean_dice_mean"]["mean"] == pytest.approx(s["val_mean_dice_lesion"]["mean"])
    assert s["hd95_lesion"]["mean"] == pytest.approx(4 / 2, abs=0.5)  # 0 and the 4-pixel half missed, in pixels
    with open(tmp_path / "pred_per_case.csv") as f:  # per case, to pair with evaluate.yaml's metrics_per_case.csv
        rows = list(csv.DictReader(f))
    assert {r["case"]: float(r["val_mean_dice_mean"]) for r in rows} == pytest.approx(
        {"0000.jpg": 1.0, "0001.jpg": 2 / 3}
    )
    assert set(rows[0]) <= set(
        _evaluate_columns(tmp_path / "evaluate")
    )  # the names evaluate.yaml writes, so the two pair
    assert s["val_mean_dice_lesion"]["n"] == 2 and s["hd95_mean"]["n"] == 2

    Image.fromarray(np.zeros((24, 32), np.uint8)).save(pred / "0001.png")  # nothing predicted: HD95 is infinite
    s = vs_nnunet.score(pred, unseen, get_recipe("skin_lesion2d"))
    assert s["hd95_lesion"] == {"mean": 0.0, "std": 0.0, "n": 1}  # left out, as evaluate.yaml's metrics.json does
    assert s["val_mean_dice_lesion"]["mean"] == pytest.approx(0.5) and s["val_mean_dice_lesion"]["n"] == 2
    (pred / "0001.png").unlink()
    Image.fromarray(half[:20]).save(pred / "0001.png")
    with pytest.raises(SystemExit, match="0001.jpg is \\(20, 32\\), its label \\(24, 32\\)"):
        vs_nnunet.score(pred, unseen, get_recipe("skin_lesion2d"))


def _evaluate_columns(folder: Path) -> list[str]:
    """The columns evaluate.yaml's CaseMetricsWriter writes for skin_lesion2d's metrics (Dice, IoU, HD95)."""
    import torch
    from ignite.engine import Engine

    from monai_genseg.handlers import CaseMetricsWriter

    engine = Engine(lambda e, b: None)
    engine.state.metric_details = {m: torch.zeros(1, 1) for m in ("val_mean_dice", "iou", "hd95")}
    writer = CaseMetricsWriter(folder, ["lesion"])
    writer._cases.append("0000.jpg")
    writer(engine)
    with open(folder / "metrics_per_case.csv") as f:
        return next(csv.reader(f))


def test_options_that_contradict_each_other_are_refused(tmp_path, monkeypatch, capsys):
    base = ["vs_nnunet.py", "--output", str(tmp_path / "out")]
    for extra, message in (
        (["--dataset_dir", "a", "--labelled_dir", "b", "--unseen_dir", "c"], "not both"),
        (["--labelled_dir", "b"], "--labelled_dir needs --unseen_dir"),
    ):
        monkeypatch.setattr(sys, "argv", base + extra)
        with pytest.raises(SystemExit):
            vs_nnunet.main()
        assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


FAKE_NNUNET = """#!{python}
# a stand-in for one of nnU-Net v2's commands: logs its arguments; nnUNetv2_predict writes each input's mask
import json, os, sys
from pathlib import Path
import numpy as np
from PIL import Image
with open(os.environ["FAKE_NNUNET_LOG"], "a") as f:
    f.write(json.dumps([Path(sys.argv[0]).name, sys.argv[1:], os.environ["nnUNet_results"]]) + "\\n")
if Path(sys.argv[0]).name == "nnUNetv2_predict":
    i, o = Path(sys.argv[sys.argv.index("-i") + 1]), Path(sys.argv[sys.argv.index("-o") + 1])
    o.mkdir(parents=True)
    for image in i.iterdir():
        name = image.name.replace("_0000.png", ".png")
        mask = Path(os.environ["FAKE_NNUNET_MASKS_" + i.name]) / name  # the unseen folder imagesTs<i> came from
        Image.fromarray((np.asarray(Image.open(mask)) > 127).astype(np.uint8)).save(o / name)
sys.exit(int(os.environ.get("FAKE_NNUNET_FAIL", "0")) if Path(sys.argv[0]).name == "nnUNetv2_train" else 0)
"""


def _fake_nnunet(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for command in ("nnUNetv2_plan_and_preprocess", "nnUNetv2_train", "nnUNetv2_predict"):
        (bin_dir / command).write_text(FAKE_NNUNET.format(python=sys.executable))
        (bin_dir / command).chmod(0o755)
    return bin_dir


def test_nnunet_runs_plan_train_predict_on_the_device_asked_and_each_folder_is_scored(tmp_path, monkeypatch):
    from monai_genseg.bundle import get_recipe

    labelled = _photos(tmp_path / "lab", [(2, 3), (10, 20)])
    unseen = [_photos(tmp_path / "val", [(4, 4)]), _photos(tmp_path / "other", [(0, 0), (8, 8)])]
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_NNUNET_LOG", str(log))
    for i, folder in enumerate(unseen):
        monkeypatch.setenv(f"FAKE_NNUNET_MASKS_imagesTs{i}", str(folder / "masks"))
    bin_dir, out = _fake_nnunet(tmp_path), tmp_path / "out"
    result = vs_nnunet.nnunet(bin_dir, "T_5epochs", labelled, unseen, out, get_recipe("skin_lesion2d"), "cuda")

    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c[0] for c in calls] == ["nnUNetv2_plan_and_preprocess", "nnUNetv2_train"] + ["nnUNetv2_predict"] * 2
    assert calls[1][1] == ["104", "2d", "all", "-tr", "T_5epochs", "-device", "cuda"]  # asked for, not guessed
    assert all(c[1][-2:] == ["-device", "cuda"] for c in calls[2:]) and "T_5epochs" in calls[2][1]
    assert {c[2] for c in calls} == {str(out / "nnunet" / "results")}  # its folders under --output only
    assert set(result["seconds"]) == {"plan", "train", "predict0", "predict1"}
    scores = result["scores"]
    assert [scores[str(u)]["val_mean_dice_lesion"] for u in unseen] == [
        {"mean": pytest.approx(1.0), "std": pytest.approx(0.0), "n": n} for n in (1, 2)
    ]  # each folder's predictions against its own masks
    assert (out / "nnunet" / "predictions1_per_case.csv").is_file()

    monkeypatch.setenv("FAKE_NNUNET_FAIL", "3")  # a failed step stops the comparison and names its log
    with pytest.raises(SystemExit, match="failed \\(3\\); see .*nnunet_train.log"):
        vs_nnunet.nnunet(bin_dir, "T_5epochs", labelled, unseen, tmp_path / "out2", get_recipe("skin_lesion2d"))
