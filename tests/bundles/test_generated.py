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


def _targets(node):
    """Every ``_target_`` string in a parsed config."""
    if isinstance(node, dict):
        if isinstance(node.get("_target_"), str):
            yield node["_target_"]
        for value in node.values():
            yield from _targets(value)
    elif isinstance(node, list):
        for value in node:
            yield from _targets(value)


def _locate_as_python_312(path: str):
    """``pydoc.locate`` from Python 3.12 on, which MONAI's config parser uses: the longest importable module
    prefix wins, so a function named like its own module resolves to the module (3.11 returned the function)."""
    import importlib

    parts, obj, n = path.split("."), None, 0
    while n < len(parts):
        name = ".".join(parts[: n + 1])
        try:
            obj, n = importlib.import_module(name), n + 1
        except ModuleNotFoundError as err:  # as pydoc.safeimport: only "no such module" ends the prefix
            if err.name != name:
                raise
            break
    for part in parts[n:]:
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_target_resolves_to_a_callable_on_every_python(name):
    import yaml

    from monai_genseg.bundle import Auto3DSeg, MonaiLabel

    auto3dseg = Auto3DSeg(datalist="datalist.json", dataroot="data", fold=0, bundle_root="fold0")
    targets = set()
    for layers in (STANDARD, (*STANDARD, MonaiLabel()), (auto3dseg,)):  # the bundles, MONAI Label's, Auto3DSeg's
        for rel, text in render(compose(RECIPES[name], *layers)).items():
            if rel.endswith((".yaml", ".json")):
                targets |= {(rel, t) for t in _targets(yaml.safe_load(text)) if "." in t}  # bare: MONAI's lookup
    assert any(t == "monai_genseg.networks.segmenter" for _, t in targets)
    for rel, target in sorted(targets):
        obj = _locate_as_python_312(target)
        assert callable(obj), f"{name}/{rel}: _target_ {target} resolves to {obj!r}, not a class or function"
