"""Unit errors name the kind of value wherever the value is written (a fuzzer found a mixture
weight whose unit error raised KeyError: its unit table was a copy the error text did not know)."""

from __future__ import annotations

import pytest

from tracedsl.diagnostics import DiagnosticError
from tracedsl.language.lower import compile_text


@pytest.mark.parametrize(("text", "kind"), [
    ("turns mix { chat 7A%: uniform(min=2, max=6), agent 30%: constant(20) } truncate\n", "a probability"),
    ("turn { output empirical { 1k: 5X%, 4k: 50% } }\n", "a probability"),
    ("class a 6Q% { context 100k }\nclass b 40% { context 100k }\n", "a probability"),
    ("arrivals stages { 5zz at 1/s }\n", "a duration"),
    ("latency { prefill 20q/s }\n", "tokens per second"),
    ("context 128q\n", "a token count"),
])
def test_a_unit_error_names_the_kind_of_value(text, kind):
    with pytest.raises(DiagnosticError) as raised:
        compile_text(text, "u.trace")
    messages = [d.message for d in raised.value.diagnostics]
    assert any(f"is not {kind}" in m for m in messages), messages
