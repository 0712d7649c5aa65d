"""What the MONAI model zoo's CI checks that can run offline: files, metadata fields and version rules,
4-space JSON, and a TorchScript export of the segmenter that reloads and gives the same output."""

from __future__ import annotations

import json
import re

import pytest
import torch
import yaml
from monai.bundle import ConfigParser, ckpt_export

from monai_genseg.bundle import RECIPES

from .test_liver3d import BUNDLE

NAMES = sorted(RECIPES)
META_FIELDS = (
    "version",
    "changelog",
    "monai_version",
    "pytorch_version",
    "numpy_version",
    "required_packages_version",
    "name",
    "task",
    "description",
    "authors",
    "copyright",
    "network_data_format",
)
IO_FIELDS = ("type", "format", "num_channels", "spatial_shape", "dtype", "value_range")


@pytest.mark.parametrize("name", NAMES)
def test_required_files_and_metadata(name):
    root = BUNDLE.parent / name
    for rel in (
        "configs/metadata.json",
        "configs/inference.yaml",
        "configs/train.yaml",
        "configs/logging.conf",
        "LICENSE",
        "docs/README.md",
        "docs/data_license.txt",
    ):
        assert (root / rel).is_file(), rel
    text = (root / "configs" / "metadata.json").read_text()
    meta = json.loads(text)
    assert text == json.dumps(meta, indent=4) + "\n", "metadata.json must be 4-space indented JSON"
    for field in META_FIELDS:
        assert meta.get(field) not in (None, "", {}), field
    assert re.fullmatch(r"\d+\.\d+\.\d+", meta["version"])
    latest = max(meta["changelog"], key=lambda v: tuple(int(x) for x in v.split(".")))
    assert latest == meta["version"], "the changelog's newest entry must be the bundle version"
    fmt = meta["network_data_format"]
    for part, key in (("inputs", "image"), ("outputs", "pred")):
        assert all(f in fmt[part][key] for f in IO_FIELDS), f"{part}.{key}"
    assert (
        fmt["outputs"]["pred"]["num_channels"]
        == len(fmt["outputs"]["pred"]["channel_def"])
        == RECIPES[name].num_classes
    )


@pytest.mark.parametrize("name", ["hippocampus3d", "skin_lesion2d"])
def test_torchscript_export_reloads_with_the_same_output(name, tmp_path):
    cfg = BUNDLE.parent / name / "configs"
    parser = ConfigParser()
    parser.read_config(str(cfg / "inference.yaml"))
    net = parser.get_parsed_content("network_def")
    torch.save(net.state_dict(), tmp_path / "model.pt")
    ckpt_export(
        net_id="network_def",
        filepath=str(tmp_path / "model.ts"),
        ckpt_file=str(tmp_path / "model.pt"),
        meta_file=str(cfg / "metadata.json"),
        config_file=str(cfg / "inference.yaml"),
    )
    scripted = torch.jit.load(str(tmp_path / "model.ts"))
    x = torch.rand(1, RECIPES[name].image_channels, *[32] * RECIPES[name].spatial_dims)
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), net(x))


def test_zoo_package_lists_large_weights_in_large_files_yml(tmp_path):
    """Over the limit, weights leave the package for large_files.yml, and MONAI's own download_large_files
    fetches them back with the hash checked; under it, they are copied."""
    from monai.bundle import download_large_files

    from monai_genseg.model_zoo import package_for_zoo

    uploads = tmp_path / "uploads"
    uploads.mkdir()
    model = uploads / "model.pt"
    torch.save({"w": torch.arange(4096, dtype=torch.float32)}, model)
    with pytest.raises(ValueError, match="over the zoo's .* MB limit; pass url_base"):
        package_for_zoo("liver3d", tmp_path / "zoo", model, limit=1024)

    pkg = package_for_zoo("liver3d", tmp_path / "zoo", model, url_base=uploads.as_uri(), limit=1024)
    assert not (pkg / "models" / "model.pt").exists()
    (entry,) = yaml.safe_load((pkg / "large_files.yml").read_text())["large_files"]
    assert entry["path"] == "models/model.pt" and entry["hash_type"] == "md5" and entry["url"].endswith("/model.pt")
    assert yaml.safe_load((pkg / "configs" / "inference.yaml").read_text())["scale"] == "gpu"
    download_large_files(bundle_path=str(pkg))
    assert (pkg / "models" / "model.pt").read_bytes() == model.read_bytes()

    small = package_for_zoo("liver3d", tmp_path / "zoo_small", model, scale="demo")
    assert (small / "models" / "model.pt").read_bytes() == model.read_bytes() and not (
        small / "large_files.yml"
    ).exists()
    assert (
        yaml.safe_load((small / "configs" / "train.yaml").read_text())["overwrite"] is False
    )  # the zoo copy keeps the safety net


def test_repackaging_replaces_the_weights_and_large_files_list(tmp_path):
    from monai_genseg.model_zoo import package_for_zoo

    big, small = tmp_path / "big.pt", tmp_path / "small.pt"
    big.write_bytes(b"x" * 2000)
    small.write_bytes(b"y" * 10)
    first = package_for_zoo("polyp2d", tmp_path / "zoo", big, scale="demo", url_base="https://example.org", limit=1000)
    assert (first / "large_files.yml").is_file() and not (first / "models" / "model.pt").exists()
    again = package_for_zoo("polyp2d", tmp_path / "zoo", small, scale="demo", limit=1000, overwrite=True)
    assert not (again / "large_files.yml").exists()  # it would point at the old weights
    assert (again / "models" / "model.pt").read_bytes() == b"y" * 10
