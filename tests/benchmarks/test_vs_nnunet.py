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


def _photo_folder(root: Path, n: int) -> Path:
    """A 2D set in the images/ + masks/ layout (the ISIC folders'); the split only reads names."""
    for sub, suffix in (("images", ".jpg"), ("masks", ".png")):
        (root / sub).mkdir(parents=True)
        for i in range(n):
            (root / sub / f"{i:04d}{suffix}").write_bytes(b"")
    return root


def _names(folder: Path) -> list[str]:
    return sorted(Path(e["image"]).name for e in json.loads((folder / "dataset.json").read_text())["training"])


def test_split_only_writes_a_seeded_disjoint_split_of_every_case_and_trains_nothing(tmp_path, monkeypatch, capsys):
    from monai_genseg.data import load_datalist

    source = _photo_folder(tmp_path / "set", 10)
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
    source = _photo_folder(tmp_path / "set", 10)
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
    image = np.asarray(Image.open(raw / "imagesTr" / "0000_0000.png"))
    np.testing.assert_array_equal(image, np.asarray(Image.open(labelled / "images" / "0000.jpg").convert("RGB")))
    assert [p.name for p in (raw / "imagesTs0").iterdir()] == ["0000_0000.png"]  # unseen: no label written


def test_3d_cases_are_linked_and_named_by_modality_so_ct_gets_nnunets_ct_normalisation(tmp_path):
    import nibabel as nib

    from monai_genseg.bundle import get_recipe

    folder = tmp_path / "msd"
    for sub in ("imagesTr", "labelsTr"):
        (folder / sub).mkdir(parents=True)
        nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), folder / sub / "case_1.nii.gz")
    entry = {"image": "./imagesTr/case_1.nii.gz", "label": "./labelsTr/case_1.nii.gz"}
    (folder / "dataset.json").write_text(json.dumps({"training": [entry]}))
    for bundle, modality in (("liver3d", "CT"), ("hippocampus3d", "MR")):
        raw = tmp_path / bundle
        assert vs_nnunet.nnunet_raw(raw, folder, [folder], get_recipe(bundle)) == ".nii.gz"
        assert json.loads((raw / "dataset.json").read_text())["channel_names"] == {"0": modality}
        linked = raw / "imagesTr" / "case_1_0000.nii.gz"
        assert linked.is_symlink() and linked.resolve() == (folder / "imagesTr" / "case_1.nii.gz").resolve()
        assert (raw / "labelsTr" / "case_1.nii.gz").is_symlink() and (raw / "imagesTs0" / "case_1_0000.nii.gz").exists()


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
        rows = {r["case"]: float(r["val_mean_dice_mean"]) for r in csv.DictReader(f)}
    assert rows == pytest.approx({"0000.jpg": 1.0, "0001.jpg": 2 / 3})
    (pred / "0001.png").unlink()
    Image.fromarray(half[:20]).save(pred / "0001.png")
    with pytest.raises(SystemExit, match="0001.jpg is \\(20, 32\\), its label \\(24, 32\\)"):
        vs_nnunet.score(pred, unseen, get_recipe("skin_lesion2d"))
