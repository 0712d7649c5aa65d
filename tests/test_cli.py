import subprocess
import sys
from pathlib import Path

import numpy as np

from monai_genseg.cli import check_data, demo_data


def test_demo_data_then_check_data(tmp_path):
    root = demo_data(output_dir=str(tmp_path / "demo"), num_cases=3)
    assert "3 cases checked, no errors" in check_data(root, num_labeled=2, num_val=1)


def test_check_data_exits_nonzero_listing_problems(tmp_path):
    root = demo_data(output_dir=str(tmp_path / "demo"), num_cases=2)
    proc = subprocess.run(
        [sys.executable, "-m", "monai_genseg.cli", "check-data", root, "--num_labeled", "4"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    assert proc.returncode == 1
    assert "needs 12 labelled cases (num_labeled + num_val), found 2" in proc.stderr


def test_check_data_for_a_2d_bundle(tmp_path):
    root = demo_data("skin_lesion2d", output_dir=str(tmp_path / "skin"), num_cases=4)
    assert "4 cases checked, no errors" in check_data(root, bundle="skin_lesion2d", num_labeled=3, num_val=1)


def _fake_checkpoint(bundle, path):
    """A GenSeg checkpoint holding a freshly initialised generator of ``bundle``."""
    import torch
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(Path(__file__).resolve().parents[1] / "bundles" / bundle / "configs" / "train.yaml"))
    torch.save({"generator": parser.get_parsed_content("generator").state_dict()}, path)
    return str(path)


def test_synthesize_writes_pairs_from_a_folder_of_masks(tmp_path):
    import nibabel as nib
    import pytest
    from PIL import Image

    from monai_genseg.cli import synthesize

    masks2d = demo_data("skin_lesion2d", output_dir=str(tmp_path / "skin"), num_cases=2)
    ckpt = _fake_checkpoint("skin_lesion2d", tmp_path / "skin.pt")
    assert (
        synthesize("skin_lesion2d", ckpt, f"{masks2d}/masks", str(tmp_path / "out2d"), num=3)
        == f"6 pairs written to {tmp_path / 'out2d'}"
    )
    image = Image.open(tmp_path / "out2d" / "0000_syn2_image.png")
    assert image.size == (64, 64) and image.mode == "RGB"
    with pytest.raises(FileExistsError):
        synthesize("skin_lesion2d", ckpt, f"{masks2d}/masks", str(tmp_path / "out2d"), num=3)

    masks3d = demo_data("hippocampus3d", output_dir=str(tmp_path / "hip"), num_cases=1)
    ckpt3d = _fake_checkpoint("hippocampus3d", tmp_path / "hip.pt")
    synthesize("hippocampus3d", ckpt3d, f"{masks3d}/labelsTr", str(tmp_path / "out3d"), num=2)
    mask = nib.load(tmp_path / "out3d" / "case_000_syn1_mask.nii.gz")
    source = nib.load(f"{masks3d}/labelsTr/case_000.nii.gz")
    assert mask.shape == (40, 48, 40)  # padded to a multiple of 8 for the generator's three levels
    assert set(np.unique(np.asarray(mask.dataobj))) <= {0, 1, 2}
    np.testing.assert_allclose(mask.affine[:3, :3], source.affine[:3, :3])
    with pytest.raises(ValueError, match="not a GenSeg training checkpoint"):
        import torch

        torch.save({"model": {}}, tmp_path / "model.pt")
        synthesize("hippocampus3d", str(tmp_path / "model.pt"), f"{masks3d}/labelsTr", str(tmp_path / "x"))


def test_export_writes_torchscript(tmp_path):
    import torch
    from monai.bundle import ConfigParser

    from monai_genseg.cli import export

    parser = ConfigParser()
    parser.read_config(str(Path(__file__).resolve().parents[1] / "bundles" / "polyp2d" / "configs" / "inference.yaml"))
    parser["bundle_root"] = str(tmp_path)  # the sizes export reads too: no plan there, the demo preset
    net = parser.get_parsed_content("network_def").eval()
    torch.save(net.state_dict(), tmp_path / "model.pt")
    export("polyp2d", str(tmp_path / "model.pt"), str(tmp_path / "model.ts"), bundle_root=str(tmp_path))
    exported = torch.jit.load(str(tmp_path / "model.ts"))
    x = torch.rand(1, 3, 96, 64)  # not the 64x64 it was traced at: any size the strides divide
    with torch.no_grad():
        assert exported(x).shape == (1, 2, 96, 64) and torch.allclose(exported(x), net(x), atol=1e-5)


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "monai_genseg.cli", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
    )


def test_monailabel_bundle_and_auto3dseg_template_commands(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"weights")
    proc = _cli(
        "monailabel-bundle",
        "hippocampus3d",
        str(tmp_path / "app"),
        "--scale",
        "demo",
        "--model",
        str(tmp_path / "model.pt"),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    bundle = tmp_path / "app" / "hippocampus3d"
    assert (bundle / "models" / "model.pt").read_bytes() == b"weights" and (
        bundle / "configs" / "inference.yaml"
    ).is_file()
    again = _cli("monailabel-bundle", "hippocampus3d", str(tmp_path / "app"))
    assert again.returncode != 0 and "exists; pass overwrite=True" in again.stderr
    missing = _cli("monailabel-bundle", "hippocampus3d", str(tmp_path / "other"), "--model", str(tmp_path / "nope.pt"))
    assert missing.returncode != 0 and "nope.pt: no such model file" in missing.stderr

    proc = _cli("auto3dseg-template", str(tmp_path / "templates"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {p.name for p in (tmp_path / "templates" / "genseg" / "scripts").iterdir()} >= {
        "algo.py",
        "train.py",
        "infer.py",
    }
    help_text = _cli("--help")
    assert "monailabel-bundle" in help_text.stdout + help_text.stderr


def _one_line_error(proc, expected: str) -> None:
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert expected in proc.stderr.strip().splitlines()[0], proc.stderr[-2000:]


def test_command_mistakes_are_one_line(tmp_path):
    demo = demo_data("skin_lesion2d", output_dir=str(tmp_path / "skin"), num_cases=3)
    _one_line_error(
        _cli("check-data", demo, "--num_labeled", "-3", "--num_val", "0"), "--num_labeled -3 is not a whole number >= 1"
    )
    _one_line_error(
        _cli("check-data", demo, "--nmu_labeled", "3"),
        "monai-genseg check-data: unknown option --nmu_labeled; it takes --dataset_dir, --bundle, --num_labeled",
    )
    _one_line_error(_cli("export", "polyp2d", "--scale", "tpu"), "--scale 'tpu' is not one of ['demo', 'gpu']")
    _one_line_error(_cli("init", "liver4d", str(tmp_path)), "unknown bundle 'liver4d'")


def test_synthesize_refuses_what_is_not_a_mask_before_loading_the_generator(tmp_path):
    skin = demo_data("skin_lesion2d", output_dir=str(tmp_path / "skin"), num_cases=2)
    ckpt = _fake_checkpoint("skin_lesion2d", tmp_path / "skin.pt")
    out = str(tmp_path / "out")
    _one_line_error(
        _cli("synthesize", "skin_lesion2d", ckpt, f"{skin}/masks", out, "--num", "0"), "--num 0 is not a whole number"
    )
    proc = _cli("synthesize", "skin_lesion2d", ckpt, f"{skin}/images", out)  # photographs given as masks
    _one_line_error(proc, "DataCheckError: 2 problem(s) in the masks")
    assert "an image rather than a mask?" in proc.stderr
    hip = demo_data("hippocampus3d", output_dir=str(tmp_path / "hip"), num_cases=1)
    proc = _cli("synthesize", "hippocampus3d", ckpt, f"{skin}/masks", out)
    _one_line_error(proc, "DataCheckError")
    assert "mask is 2D (96, 96) but this bundle is 3D" in proc.stderr and hip
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_fires_own_flags_and_shortcuts_are_not_unknown_options():
    from monai_genseg.cli import unknown_option

    assert unknown_option(["init", "liver3d", "--", "--trace"]) is None
    assert unknown_option(["init", "liver3d", "--d", "out"]) is None  # fire's shortcut for --dest
    assert "unknown option --dset" in unknown_option(["init", "liver3d", "--dset", "out"])
