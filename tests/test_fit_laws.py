"""Choosing a law (tracedsl.analysis.fit.laws): draws of each family through tracedsl's own laws
come back as that family, two populations of delays as a mix, the rest as a table; every text compiles to the law that was scored."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from tracedsl import families
from tracedsl.analysis.fit.laws import (
    KS_THRESHOLD,
    MEAN_TOLERANCE,
    SUBSAMPLE,
    fit_count,
    fit_delay,
    fit_law,
)
from tracedsl.analysis.fit.laws_families import Slot
from tracedsl.language import compile_source

N = 20_000
FIXTURES = Path(__file__).parent / "fixtures" / "mooncake-fast25"

# Where a law's text goes in a tiny spec, and where the compiled IR keeps it.
_SPECS = {
    # new_tokens keeps its bias beside the law in the IR: the session prefix is a plain token law.
    "session": ("prefix {{\n  session {}\n}}\n", lambda p: p.cache.layer2),
    "output": ("turn {{\n  output {}\n}}\n", lambda p: p.generation_length),
    "delay": ("turn {{\n  delay {}\n}}\n", lambda p: p.inter_turn_delay.law),
    "think": ("request {{\n  calls constant(2)\n  message constant(1k)\n  think {}\n}}\n", lambda p: p.request.think),
    "turns": ("turns {} truncate\n", lambda p: p.turns.target),
    "calls": ("request {{\n  calls {}\n  message constant(1k)\n  think constant(1s)\n}}\n", lambda p: p.request.calls),
}
_SLOTS = {"session": Slot("tokens"), "output": Slot("tokens", floor=30), "delay": Slot("ms"),
          "think": Slot("ms"), "turns": Slot("count"), "calls": Slot("count")}


def compiled(text: str, slot: str):
    """The IR law of ``text`` compiled in ``slot`` of a tiny spec (a syntax error raises)."""
    template, pick = _SPECS[slot]
    workload, _warnings = compile_source(template.format(text), "fit.trace")
    return pick(workload.params)


def draws(text: str, slot: str, n: int = N, seed: int = 1) -> np.ndarray:
    """n values of the law as the fast engine writes them in ``slot`` (its law, its rounding)."""
    model = compiled(text, slot)
    u = np.random.default_rng(seed).random(n)
    return _SLOTS[slot].engine(families.law(model, "fast").sample(u), model)


def assert_sound(fitted, slot: str, values: np.ndarray) -> None:
    """The text compiles to the very law that was scored; the comment is one line; the mean holds."""
    assert compiled(fitted.text, slot) == fitted.model, fitted.text
    assert fitted.comment.startswith("# ") and "\n" not in fitted.comment
    assert f"KS {fitted.ks:.3f}" in fitted.comment and f"n={values.size:,}" in fitted.comment
    assert abs(fitted.mean / values.mean() - 1.0) <= MEAN_TOLERANCE


# (law drawn, slot, family expected back, {parameter: relative tolerance}); the tolerances
# are a few standard errors of the estimate at 20,000 draws (pareto's alpha is matched to a
# heavy-tailed sample mean, so wider).
RECOVERY = [
    ("lognormal(mean=6k, median=4k)", "session", "lognormal", {"mean": 0.03, "median": 0.03}),
    ("gamma(shape=0.8, mean=2k)", "session", "gamma", {"shape": 0.04, "mean": 0.03}),
    ("gamma(shape=3, mean=2k)", "session", "gamma", {"shape": 0.05, "mean": 0.02}),
    ("weibull(shape=1.5, scale=3k)", "session", "weibull", {"shape": 0.03, "scale": 0.02}),
    ("exponential(mean=500)", "session", "exponential", {"mean": 0.03}),
    ("normal(mean=2k, sd=500)", "session", "normal", {"mean": 0.01, "sd": 0.03}),
    ("uniform(min=1k, max=4k)", "session", "uniform", {"min": 0.01, "max": 0.01}),
    ("pareto(alpha=1.3, min=200)", "session", "pareto", {"alpha": 0.1, "min": 0.01}),
    ("constant(1k)", "session", "constant", {"value": 0.0}),
    ("lognormal(mean=600, median=350, max=8k)", "output", "lognormal", {"mean": 0.05, "median": 0.05}),
    ("lognormal(mean=2.5s, median=1.8s)", "delay", "lognormal", {"mean": 0.03, "median": 0.03}),
    ("weibull(shape=0.7, scale=3s)", "delay", "weibull", {"shape": 0.03, "scale": 0.04}),
    ("exponential(mean=800ms)", "delay", "exponential", {"mean": 0.03}),
    ("gamma(shape=2, mean=20, min=1, max=60)", "turns", "gamma", {"shape": 0.1, "mean": 0.05}),
    ("uniform(min=2, max=8)", "turns", "uniform", {"min": 0.0, "max": 0.0}),
    ("lognormal(mean=9, median=2, min=1, max=300)", "calls", "lognormal", {"mean": 0.1, "median": 0.1}),
]


def _fit(values: np.ndarray, slot: str):
    if slot in ("turns", "calls"):
        return fit_count(values, slot=slot)
    if slot in ("delay", "think"):
        return fit_delay(values)
    return fit_law(values, unit="tokens", name=slot)


@pytest.mark.parametrize(("text", "slot", "family", "tolerances"), RECOVERY, ids=[r[0] for r in RECOVERY])
def test_each_family_comes_back(text, slot, family, tolerances):
    values = draws(text, slot)
    fitted = _fit(values, slot)
    truth = compiled(text, slot)
    assert fitted.family == family, fitted.comment
    for name, tolerance in tolerances.items():
        got, want = getattr(fitted.model, name), getattr(truth, name)
        assert abs(got / want - 1.0) <= tolerance, f"{name}: {got} vs {want} ({fitted.text})"
    assert fitted.ks <= 0.02, fitted.comment
    assert_sound(fitted, slot, values)


def test_a_bimodal_delay_becomes_a_mix_with_its_weights():
    text = "mix { a 70%: lognormal(mean=1s, median=800ms), b 30%: lognormal(mean=60s, median=40s) }"
    values = draws(text, "delay")
    fitted = fit_delay(values)
    assert fitted.family == "mix", fitted.comment
    weights = [component.weight for component in fitted.model.components]
    assert weights == pytest.approx([0.7, 0.3], abs=0.02)
    assert fitted.ks <= 0.02 and "2 populations" in fitted.comment
    assert_sound(fitted, "delay", values)


def test_tool_and_human_gaps_of_other_families_split_too():
    text = "mix { tool 80%: exponential(mean=800ms, max=30s), human 20%: pareto(alpha=1.4, min=20s, max=20min) }"
    values = draws(text, "delay")
    fitted = fit_delay(values)
    assert fitted.family == "mix"
    assert [c.weight for c in fitted.model.components] == pytest.approx([0.8, 0.2], abs=0.01)
    assert [c.law.kind for c in fitted.model.components] == ["exponential", "pareto"]
    assert_sound(fitted, "delay", values)


@pytest.mark.parametrize("text", ["lognormal(mean=2.5s, median=1.8s)", "exponential(mean=800ms)",
                                  "weibull(shape=0.7, scale=3s)", "pareto(alpha=1.4, min=50ms, max=10min)",
                                  "gamma(shape=0.5, mean=4s)"])
def test_one_population_stays_one_law(text):
    fitted = fit_delay(draws(text, "delay"))
    assert fitted.family != "mix", fitted.comment
    assert "one population" in fitted.comment


def test_zero_delays_are_their_own_component():
    values = draws("mix { z 20%: constant(0ms), b 80%: lognormal(mean=2.5s, median=1.8s) }", "delay")
    fitted = fit_delay(values)
    zero = fitted.model.components[0]
    assert zero.law.kind == "constant" and zero.law.value == 0.0
    assert zero.weight == pytest.approx(0.2, abs=0.01)
    assert fitted.ks <= 0.02
    assert_sound(fitted, "delay", values)


@pytest.mark.parametrize("slot", ["delay", "think"])
def test_zeros_beside_two_populations_are_one_mix_in_either_delay_slot(slot):
    text = "mix { z 10%: constant(0ms), a 60%: lognormal(mean=1s, median=800ms), b 30%: lognormal(mean=60s, median=40s) }"
    values = draws(text, slot)
    fitted = fit_delay(values)
    assert [c.name for c in fitted.model.components] == ["zero", "short", "long"]
    assert [c.weight for c in fitted.model.components] == pytest.approx([0.1, 0.6, 0.3], abs=0.015)
    assert fitted.ks <= 0.02
    assert_sound(fitted, slot, values)


def test_request_openings_split_think_from_tool_latency():
    rng = np.random.default_rng(5)
    opens = rng.random(N) < 0.25
    think = draws("lognormal(mean=60s, median=20s)", "think", seed=2)
    tool = draws("exponential(mean=1s)", "delay", seed=3)
    values = np.where(opens, think, tool)
    fitted = fit_delay(values, opens_request=opens)
    split = fitted.split
    assert split is not None and split.think_share == pytest.approx(opens.mean())
    assert split.think.family == "lognormal" and split.tool.family == "exponential"
    assert_sound(split.think, "think", values[opens])
    assert_sound(split.tool, "delay", values[~opens])
    assert_sound(fitted, "delay", values)
    with pytest.raises(ValueError, match="flags"):
        fit_delay(values, opens_request=opens[:-1])


def test_data_no_family_fits_fall_back_to_a_table():
    # Two separate humps of tokens: no single family is within the threshold.
    rng = np.random.default_rng(7)
    values = np.floor(np.where(rng.random(N) < 0.6, rng.normal(2000, 200, N), rng.normal(9000, 500, N)))
    fitted = fit_law(values, unit="tokens", name="session")
    assert fitted.family == "empirical", fitted.comment
    assert "no family within KS" in fitted.comment
    # A table's KS is about one bin's share at most (3.5%), and its mean is the data's.
    assert len(fitted.model.values) <= 32 and fitted.ks <= 0.04
    assert_sound(fitted, "session", values)


def test_few_distinct_values_make_an_exact_table():
    values = draws("empirical { 1: 50%, 2: 30%, 5: 20% }", "calls")
    fitted = fit_count(values, slot="calls")
    assert fitted.family == "empirical" and fitted.model.values == [1.0, 2.0, 5.0]
    assert fitted.ks < 1e-4  # the law's side is a grid of 65,536 draws
    assert_sound(fitted, "calls", values)


def test_output_floor_is_the_engines():
    # Outputs below 30 tokens are written as 30: a law that ignored it would miss the mean.
    values = draws("lognormal(mean=200, median=60)", "output")
    assert (values == 30).mean() > 0.2
    fitted = fit_law(values, unit="tokens", name="output")
    assert fitted.ks <= 0.02
    assert_sound(fitted, "output", values)


def test_same_input_same_text():
    values = draws("weibull(shape=0.8, scale=10, min=1, max=500)", "turns")
    first, second = fit_count(values), fit_count(values.copy())
    assert (first.text, first.comment) == (second.text, second.comment)
    delays = draws("mix { a 70%: lognormal(mean=1s, median=800ms), b 30%: lognormal(mean=60s, median=40s) }", "delay")
    assert fit_delay(delays).text == fit_delay(delays.copy()).text


def test_ten_million_values_fit_in_seconds():
    values = np.floor(np.random.default_rng(3).lognormal(8.0, 1.0, 10_000_000))
    start = time.perf_counter()
    fitted = fit_law(values, unit="tokens", name="session")
    elapsed = time.perf_counter() - start
    assert fitted.family == "lognormal"
    assert f"KS on {SUBSAMPLE:,} drawn" in fitted.comment and "n=10,000,000" in fitted.comment
    assert elapsed < 15.0  # about 1 s alone; the bound leaves room for a shared machine
    assert fitted.ks <= KS_THRESHOLD
    start = time.perf_counter()
    delays = fit_delay(values)
    assert time.perf_counter() - start < 15.0 and delays.family == "lognormal"


def test_bad_input_is_a_value_error():
    with pytest.raises(ValueError, match="no finite values"):
        fit_law([np.nan], unit="tokens", name="session")
    with pytest.raises(ValueError, match="unknown unit"):
        fit_law([1.0], unit="bytes", name="session")
    with pytest.raises(ValueError, match="count slot"):
        fit_count([1.0], slot="fanout")


def test_the_public_mooncake_conversation_trace():
    rows = [json.loads(line) for line in (FIXTURES / "conversation_trace.jsonl").read_text().splitlines() if line]
    inputs = np.array([row["input_length"] for row in rows], dtype=float)
    outputs = np.array([row["output_length"] for row in rows], dtype=float)
    for values, slot in ((inputs, "session"), (outputs, "output")):
        fitted = fit_law(values, unit="tokens", name=slot)
        assert fitted.ks <= 0.03, fitted.comment
        assert_sound(fitted, slot, values)
    assert "below the engine's floor" in fit_law(outputs, unit="tokens", name="output").comment
    # Its timestamps tick in whole seconds of ~3 s: one population, however sharp the peak.
    gaps = np.diff(np.sort([float(row["timestamp"]) for row in rows]))
    fitted = fit_delay(gaps)
    assert "2 populations" not in fitted.comment
    assert_sound(fitted, "delay", gaps)


@pytest.mark.parametrize(("values", "slot"), [
    ([5.0], "session"), ([0.0, 0.0, 0.0], "session"), ([1.0, 100.0], "session"), ([1e13, 5.0], "session"),
    ([1.0, 2.0, 3.0] * 10, "output"), ([0.0] * 10, "delay"), ([-5.0, 10.0, 20.0, 30.0], "delay"),
    ([0.1, 0.2, 0.1, 0.3] * 10, "delay"), ([0.0, 0.0], "calls"), ([1.0, 2.0], "turns"),
], ids=str)
def test_small_and_odd_inputs_still_give_a_law_that_compiles(values, slot):
    fitted = _fit(np.array(values), slot)
    assert compiled(fitted.text, slot) == fitted.model
    assert fitted.comment.startswith("# ") and "\n" not in fitted.comment
