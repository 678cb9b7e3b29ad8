"""docs/language.md cannot drift from the grammar: its examples compile and it names every keyword."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT
from tracedsl.language.errors import keywords
from tracedsl.language.lower import compile_text

DOC = (ROOT / "docs" / "language.md").read_text()
EXAMPLES = re.findall(r"```trace\n(.*?)```", DOC, re.DOTALL)


def test_the_doc_has_examples():
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_example_in_the_doc_compiles(example):
    compile_text(example, "docs/language.md")


def test_every_keyword_of_the_grammar_is_documented():
    documented = set(re.findall(r"`([^`]+)`", DOC))
    words = {word for text in documented for word in re.findall(r"[a-z_]+", text)}
    missing = [word for word in keywords() if word not in words]
    assert not missing, f"keywords not explained in docs/language.md: {missing}"


def test_every_unit_is_documented():
    from tracedsl.language.lower import PROBABILITY_UNITS, TIME_UNITS, TOKEN_UNITS

    for unit in [*TOKEN_UNITS, *TIME_UNITS, *PROBABILITY_UNITS]:
        if unit:
            assert f"`{unit}`" in DOC, unit
