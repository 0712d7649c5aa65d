import numpy as np
import pytest
from PIL import Image

from monai_genseg.data import load_datalist
from monai_genseg.data.converters import convert_busi, convert_montgomery


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8)).save(path)


def test_busi_masks_of_one_case_are_merged(tmp_path):
    src = tmp_path / "BUSI" / "benign"
    _png(src / "benign (1).png", np.full((8, 8), 100))
    first, second = np.zeros((8, 8)), np.zeros((8, 8))
    first[1:3, 1:3], second[5:7, 5:7] = 255, 255
    _png(src / "benign (1)_mask.png", first)
    _png(src / "benign (1)_mask_1.png", second)
    _png(src / "benign (2).png", np.full((8, 8), 50))
    _png(src / "benign (2)_mask.png", np.zeros((8, 8)))
    assert convert_busi(tmp_path / "BUSI", tmp_path / "out") == 2
    pairs = load_datalist(tmp_path / "out")
    assert [p["image"].split("/")[-1] for p in pairs] == ["benign_1.png", "benign_2.png"]
    merged = np.asarray(Image.open(pairs[0]["label"]))
    assert merged.sum() == 8 * 255 and merged[1, 1] == merged[6, 6] == 255
    with pytest.raises(FileExistsError):
        convert_busi(tmp_path / "BUSI", tmp_path / "out")


def test_montgomery_left_and_right_lungs_are_merged(tmp_path):
    src = tmp_path / "MontgomerySet"
    _png(src / "CXR_png" / "MCUCXR_0001_0.png", np.full((6, 6), 90))
    left, right = np.zeros((6, 6)), np.zeros((6, 6))
    left[:, :2], right[:, 4:] = 255, 255
    _png(src / "ManualMask" / "leftMask" / "MCUCXR_0001_0.png", left)
    _png(src / "ManualMask" / "rightMask" / "MCUCXR_0001_0.png", right)
    assert convert_montgomery(src, tmp_path / "out") == 1
    mask = np.asarray(Image.open(tmp_path / "out" / "masks" / "MCUCXR_0001_0.png"))
    assert (mask[:, :2] == 255).all() and (mask[:, 4:] == 255).all() and (mask[:, 2:4] == 0).all()
    (src / "ManualMask" / "rightMask" / "MCUCXR_0001_0.png").unlink()
    with pytest.raises(FileNotFoundError, match="missing lung masks"):
        convert_montgomery(src, tmp_path / "out2")


def test_montgomery_12_bit_x_rays_become_8_bit_the_bundle_reads(tmp_path):
    src = tmp_path / "MontgomerySet"
    (src / "CXR_png").mkdir(parents=True)
    Image.fromarray((np.arange(36).reshape(6, 6) * 100).astype(np.uint16)).save(src / "CXR_png" / "MCUCXR_0002_0.png")
    _png(src / "ManualMask" / "leftMask" / "MCUCXR_0002_0.png", np.zeros((6, 6)))
    _png(src / "ManualMask" / "rightMask" / "MCUCXR_0002_0.png", np.full((6, 6), 255))
    convert_montgomery(src, tmp_path / "out")
    image = np.asarray(Image.open(tmp_path / "out" / "images" / "MCUCXR_0002_0.png"))
    assert image.dtype == np.uint8 and image.min() == 0 and image.max() == 255
