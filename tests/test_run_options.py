"""Run options are real booleans and whole numbers: a word a user types means what it says, or gets one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monai_genseg.bundle import FLAG_WORDS, flag, whole


@given(st.sampled_from(sorted(FLAG_WORDS)), st.sampled_from([str.lower, str.upper, str.title]))
def test_every_spelling_of_true_and_false_is_read_as_such(word, case):
    assert flag("overwrite", case(word)) is FLAG_WORDS[word]
    assert flag("overwrite", FLAG_WORDS[word]) is FLAG_WORDS[word]


@given(st.text().filter(lambda t: t.strip().lower() not in FLAG_WORDS))
def test_any_other_word_is_refused_naming_the_option(text):
    with pytest.raises(ValueError, match="--resume .* is not true or false"):
        flag("resume", text)


@given(st.one_of(st.integers(max_value=0), st.floats(), st.text(), st.booleans()))
def test_whole_numbers_only(value):
    with pytest.raises(ValueError, match="--num_labeled .* is not a whole number >= 1"):
        whole("num_labeled", value, 1)


def test_the_new_run_options_are_checked_before_anything_runs(monkeypatch):
    import importlib.util

    from monai_genseg.bundle import positive, resolve_mode, training_cases
    from monai_genseg.bundle.runtime import needs_skimage

    assert positive("time_budget_minutes", 2.5) == 2.5
    for bad in (0, -1, "5", True):
        with pytest.raises(ValueError, match="--time_budget_minutes"):
            positive("time_budget_minutes", bad)
    assert resolve_mode("auto", is_demo=True) == "end2end" and resolve_mode("auto", is_demo=False) == "baseline"
    assert resolve_mode("joint", is_demo=False) == "joint"
    split = {"train": [1, 2], "val": [3]}
    assert training_cases(split, "baseline") == [1, 2, 3] and training_cases(split, "end2end") == [1, 2]
    assert training_cases(split, "baseline", "false") == [1, 2]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "skimage" else object())
    assert needs_skimage("false") is False
    with pytest.raises(ValueError, match="--largest_component true needs scikit-image"):
        needs_skimage(True)


@pytest.mark.parametrize(("cpus", "workers"), [(1, 2), (2, 2), (4, 2), (16, 8), (128, 8)])
def test_data_loading_workers_follow_the_cpus_this_process_may_use(monkeypatch, cpus, workers):
    """2 workers starve a GPU on a 16-core machine; a CPU run loads in its own process (loader processes
    preempt the step's threads: steps 1.6-2x slower on 2 cores)."""
    import torch

    from monai_genseg.bundle import default_workers

    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    assert default_workers(torch.device("cuda:1")) == default_workers("cuda") == workers
    assert default_workers(torch.device("cpu")) == default_workers("cpu") == 0
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_workers() == 0  # no device named: CUDA's if there is one


@pytest.mark.parametrize("config", ["train.yaml", "inference.yaml"])
def test_a_cpu_run_loads_data_in_the_training_process(config):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(Path(__file__).resolve().parents[1] / "bundles" / "liver3d" / "configs" / config)
    parser["device"] = "$torch.device('cpu')"
    assert parser.get_parsed_content("num_workers" if config == "train.yaml" else "dataloader#num_workers") == 0
