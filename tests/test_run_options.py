"""Run options are real booleans and whole numbers: a word a user types means what it says, or gets one line."""

from __future__ import annotations

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
