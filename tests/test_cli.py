import subprocess
import sys

from monai_genseg.cli import check_data, demo_data


def test_demo_data_then_check_data(tmp_path):
    root = demo_data(output_dir=str(tmp_path / "demo"), num_cases=3)
    assert "3 cases checked, no errors" in check_data(root, num_labeled=2, num_val=1)


def test_check_data_exits_nonzero_listing_problems(tmp_path):
    root = demo_data(output_dir=str(tmp_path / "demo"), num_cases=2)
    proc = subprocess.run(
        [sys.executable, "-m", "monai_genseg.cli", "check-data", root, "--num_labeled", "4"], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "needs 12 labelled cases (num_labeled + num_val), found 2" in proc.stderr


def test_check_data_for_a_2d_bundle(tmp_path):
    root = demo_data("skin_lesion2d", output_dir=str(tmp_path / "skin"), num_cases=4)
    assert "4 cases checked, no errors" in check_data(root, bundle="skin_lesion2d", num_labeled=3, num_val=1)
