"""Every bundle is generated from one recipe by one builder: the checked-in files must match it."""

from pathlib import Path

import pytest

from monai_genseg.bundle import RECIPES, STANDARD, compose, render
from monai_genseg.bundle.render import LOGGING_CONF, REGENERATE

BUNDLES = Path(__file__).resolve().parents[2] / "bundles"


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_checked_in_bundle_matches_its_recipe(name):
    for rel, text in render(compose(RECIPES[name], *STANDARD)).items():
        path = BUNDLES / name / rel
        assert path.read_text() == text, f"{path} is stale: run {REGENERATE}"
    assert (BUNDLES / name / "configs" / "logging.conf").read_text() == LOGGING_CONF
    assert (BUNDLES / name / "LICENSE").is_file()


def test_no_bundle_without_a_recipe():
    assert sorted(p.name for p in BUNDLES.iterdir() if p.is_dir()) == sorted(RECIPES)
