import json

import nibabel as nib
import numpy as np
import pytest

from monai_genseg.data import liver_phantom, load_msd_datalist, split_cases, write_liver_demo


def test_phantom_looks_like_liver_ct():
    image, label = liver_phantom(np.random.default_rng(0), (40, 32, 20), (8.0, 8.0, 10.0))
    assert image.dtype == np.int16 and label.dtype == np.uint8
    assert set(np.unique(label)) <= {0, 1, 2} and (label == 1).sum() > 100
    assert image.min() <= -900  # air
    liver, tissue = image[label == 1].mean(), image[(label == 0) & (image > 0) & (image < 200)].mean()
    assert 40 < liver < 90 and liver > tissue  # liver is brighter than other soft tissue


def test_demo_dataset_is_msd_layout_with_spacing(tmp_path):
    root = write_liver_demo(tmp_path / "demo", num_cases=3, seed=1, shape=(24, 24, 16))
    items = load_msd_datalist(root)
    assert len(items) == 3
    img = nib.load(items[0]["image"])
    assert img.shape == (24, 24, 16) and tuple(img.header.get_zooms()) == (4.0, 4.0, 5.0)
    with pytest.raises(FileExistsError):
        write_liver_demo(root, num_cases=1)
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]  # no temporary folders left behind


def test_missing_files_are_all_named(tmp_path):
    (tmp_path / "dataset.json").write_text(json.dumps({"training": [{"image": "a.nii.gz", "label": "b.nii.gz"}]}))
    with pytest.raises(FileNotFoundError) as err:
        load_msd_datalist(tmp_path)
    assert "a.nii.gz" in str(err.value) and "b.nii.gz" in str(err.value)
    with pytest.raises(FileNotFoundError, match="no dataset.json"):
        load_msd_datalist(tmp_path / "nowhere")


def test_split_is_seeded_disjoint_and_says_what_is_missing():
    cases = [{"image": str(i)} for i in range(10)]
    a, b = split_cases(cases, 6, 2, seed=3), split_cases(cases, 6, 2, seed=3)
    assert a == b and len(a["train"]) == 6 and len(a["val"]) == 2 and len(a["test"]) == 2
    assert not {c["image"] for c in a["train"]} & {c["image"] for c in a["val"]}
    with pytest.raises(ValueError, match="needs num_labeled \\+ num_val = 8 \\+ 4 = 12 labelled cases, found 10"):
        split_cases(cases, 8, 4)


def test_a_users_dataset_trains_on_every_case_by_default_and_the_demo_keeps_held_out_cases():
    eight, forty = [{"image": str(i)} for i in range(8)], [{"image": str(i)} for i in range(60)]
    s = split_cases(eight, None, None, seed=0)
    assert (len(s["train"]), len(s["val"]), len(s["test"])) == (6, 2, 0)  # a quarter validates
    s = split_cases(forty, None, None, seed=0)
    assert (len(s["train"]), len(s["val"]), len(s["test"])) == (52, 8, 0)  # at most 8 validate
    assert len(split_cases(forty, 10, None, seed=0)["test"]) == 42  # a count given holds the rest out
    demo = split_cases(forty, None, None, seed=0, demo=True)
    assert (len(demo["train"]), len(demo["val"])) == (32, 8) and len(demo["test"]) == 20
