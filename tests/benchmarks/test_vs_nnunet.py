"""The comparison's split: the labelled and unseen folders every figure in vs_nnunet.md is measured on."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

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
