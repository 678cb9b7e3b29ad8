"""``turns`` of every family: the IR, the fast engine's target counts against the law, the text, AIPerf's refusal, and W102 for every family."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from tracedsl import families
from tracedsl.codes import W_BOUNDS, W_NOT_AIPERF, W_UNFIT_TARGETS
from tracedsl.diagnostics import DiagnosticError
from tracedsl.engine import EngineError, RunRequest, endings, get_engine
from tracedsl.engine.model import SessionModel
from tracedsl.engine.samplers import session_keys
from tracedsl.ir import GenerationParams, TurnLaw, Turns, Workload
from tracedsl.language.decompile import decompile
from tracedsl.language.lower import compile_text
from tracedsl.limits import MAX_TURNS
from tracedsl.reports import targets

# Turns this small always fit: a session reaches its target, so its rows are the target.
_SMALL = "context 1M\nprefix { global 0  groups 1 of 0  session constant(100) }\nturn {\n" \
    "  new_tokens constant(10)\n  output constant(30)\n}\n"


def _compile(text: str):
    return compile_text(text, "t.trace")


def _params(turns: str, small: bool = True) -> GenerationParams:
    return _compile((_SMALL if small else "") + f"turns {turns}\n")[0].params


def _targets(params: GenerationParams, sessions: int = 20000) -> np.ndarray:
    model = SessionModel.build(params, sessions, 7)
    keys = session_keys(model.run_key, 2 * np.arange(sessions, dtype=np.int64))
    return endings.target_turns(model, keys)


def _expected(cdf, low: int, high: int) -> np.ndarray:
    """P(count = k) for k in [low, high]: round-half-even of a continuous draw, clipped."""
    edges = np.arange(low, high + 1) + 0.5
    inside = np.diff(np.concatenate([[0.0], cdf(edges[:-1]), [1.0]]))
    return inside


def _chi_square(counts: np.ndarray, probabilities: np.ndarray, low: int) -> float:
    observed = np.bincount(counts - low, minlength=probabilities.size)
    assert observed.size == probabilities.size, "a count outside [min, max]"
    expected = probabilities * counts.size
    keep = expected > 5  # pool the sparse cells into one
    observed = np.append(observed[keep], observed[~keep].sum())
    expected = np.append(expected[keep], expected[~keep].sum())
    if expected[-1] == 0:
        observed, expected = observed[:-1], expected[:-1]
    return stats.chisquare(observed, expected).pvalue


def test_a_law_is_turns_law_and_the_lognormal_stays_the_reference():
    law = _params("uniform(min=2, max=8) truncate", small=False)
    assert isinstance(law.turns, TurnLaw)
    assert law.generation_params()["turns"] == {
        "law": {"kind": "uniform", "min": 2.0, "max": 8.0}, "allow_truncation": True,
        "max_session_attempts": None}
    assert (law.turns.min, law.turns.max) == (2, 8)
    reference = _params("lognormal(mean=12, median=10, min=2, max=40)", small=False)
    assert isinstance(reference.turns, Turns)
    assert reference.generation_params()["turns"] == {
        "mean": 12, "median": 10, "min": 2, "max": 40, "allow_truncation": False,
        "max_session_attempts": 100}


def test_uniform_targets_follow_the_rounded_law():
    counts = _targets(_params("uniform(min=2, max=8) truncate"))
    assert counts.min() == 2 and counts.max() == 8
    probabilities = _expected(stats.uniform(loc=2, scale=6).cdf, 2, 8)
    assert _chi_square(counts, probabilities, 2) > 1e-3


def test_normal_targets_are_drawn_within_the_bounds_then_rounded():
    counts = _targets(_params("normal(mean=10, sd=4, min=3, max=20)"))
    a, b = (3 - 10) / 4, (20 - 10) / 4
    law = stats.truncnorm(a, b, loc=10, scale=4)
    assert _chi_square(counts, _expected(law.cdf, 3, 20), 3) > 1e-3
    # Exact truncation, not clipping: the end counts hold only their half-cells.
    assert np.mean(counts == 3) == pytest.approx(law.cdf(3.5), abs=0.01)


def test_an_unbounded_law_is_clipped_to_one_turn():
    counts = _targets(_params("gamma(shape=2, mean=6) truncate"))
    law = stats.gamma(2, scale=3)
    assert counts.min() == 1
    assert _chi_square(counts, _expected(law.cdf, 1, int(counts.max())), 1) > 1e-3


def test_an_empirical_table_gives_its_values():
    counts = _targets(_params("empirical { 3: 50%, 7: 30%, 12: 20% }"))
    assert set(np.unique(counts)) == {3, 7, 12}
    probabilities = np.zeros(10)
    probabilities[[0, 4, 9]] = (0.5, 0.3, 0.2)
    assert _chi_square(counts, probabilities, 3) > 1e-3


def test_a_mix_of_laws():
    params = _params("mix { 60%: constant(2), 40%: pareto(alpha=1.5, min=5, max=40) } truncate")
    counts = _targets(params)

    def cdf(x):
        pareto = np.where(x >= 40, 1.0, stats.pareto(1.5, scale=5).cdf(x) / stats.pareto(1.5, scale=5).cdf(40))
        return 0.6 * (x >= 2) + 0.4 * pareto

    assert _chi_square(counts, _expected(cdf, 2, 40), 2) > 1e-3


def test_the_engine_ends_each_session_at_its_target():
    params = _params("uniform(min=2, max=8)")
    chunks = list(get_engine("fast").generate(RunRequest(params, 3000, 5)))
    turns = np.concatenate([np.diff(chunk.row_offsets) for chunk in chunks])
    assert turns.min() == 2 and turns.max() == 8
    assert _chi_square(turns, _expected(stats.uniform(loc=2, scale=6).cdf, 2, 8), 2) > 1e-3
    expected = targets.turns(params)
    assert expected.mean == pytest.approx(5.0, abs=1e-3)
    assert turns.mean() == pytest.approx(expected.mean, abs=0.1)


def test_a_law_keeps_the_lognormal_bytes():
    # The reference's lognormal is drawn as before: the targets of a lognormal-only spec are its.
    params = _params("lognormal(mean=12, median=10, min=2, max=40)")
    counts = _targets(params, 2000)
    law = params.turns.as_lognormal()
    assert counts.min() >= 2 and counts.max() <= 40
    drawn = families.law(law, "fast").sample(
        endings.uniforms(session_keys(SessionModel.build(params, 2000, 7).run_key,
                                      2 * np.arange(2000, dtype=np.int64)), 0, endings.TARGET_TURNS))
    assert np.array_equal(counts, np.clip(np.rint(drawn), 2, 40))


@pytest.mark.parametrize(
    "turns",
    [
        "uniform(min=2, max=8) truncate",
        "normal(mean=10, sd=4, min=3, max=20) retry 7",
        "gamma(shape=0.8, mean=6)",
        "weibull(shape=1.5, scale=9, max=50) truncate",
        "pareto(alpha=1.3, min=2, max=300)",
        "exponential(mean=5, min=1)",
        "constant(4) truncate",
        "empirical { 3: 50%, 7: 30%, 12: 20% }",
        "mix { 70%: normal(mean=6, sd=2, min=1), 30%: pareto(alpha=1.5, min=10, max=60) } truncate",
    ],
)
def test_round_trip(turns):
    workload = _compile(_SMALL + f"turns {turns}\n")[0]
    again = _compile(decompile(workload))[0]
    assert again == workload
    assert Workload.model_validate_json(workload.model_dump_json()) == workload


def test_the_bounds_are_whole_turns():
    with pytest.raises(DiagnosticError) as error:
        _compile("turns uniform(min=1.5, max=8)\n")
    assert "min (1.5) must be a whole number of turns" in str(error.value)


def test_a_law_in_turns_is_a_plain_number():
    with pytest.raises(DiagnosticError) as error:
        _compile("turns uniform(min=2k, max=8k)\n")
    assert "'2k' is not a plain number" in str(error.value)


def test_aiperf_refuses_a_law_with_a_located_warning():
    _, warnings = _compile("turns uniform(min=2, max=8) truncate\n")
    found = [w for w in warnings if w.code == W_NOT_AIPERF]
    assert len(found) == 1 and found[0].span.line == 1 and found[0].span.column == 7
    assert "lognormal only, not a uniform law" in found[0].message
    params = _params("uniform(min=2, max=8) truncate")
    with pytest.raises(EngineError) as error:
        list(get_engine("aiperf").generate(RunRequest(params, 10, 1)))
    assert error.value.path == "turns.law"


def test_the_reference_turns_compile_without_the_aiperf_warning():
    _, warnings = _compile("turns lognormal(mean=12, median=10, min=2, max=40) truncate\n")
    assert not [w for w in warnings if w.code == W_NOT_AIPERF]


def test_unfit_targets_warn_for_a_law():
    text = ("context 40k\nprefix { global 0  groups 1 of 0 }\nturn { new_tokens constant(2k) }\n"
            "turns uniform(min=2, max=60)\n")
    _, warnings = _compile(text)
    unfit = [w for w in warnings if w.code == W_UNFIT_TARGETS]
    assert len(unfit) == 1 and "of sessions draw a target of" in unfit[0].message
    assert unfit[0].path == "turns.law.max"


def test_an_unbounded_law_has_the_largest_max():
    params = _params("exponential(mean=5)")
    assert (params.turns.min, params.turns.max) == (1, MAX_TURNS)


# W102 for every family -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slot", "law", "words"),
    [
        ("prefix { session %s }", "normal(mean=2k, sd=500, min=3k)", "2.3% of the normal's mass"),
        ("turn { delay %s }", "pareto(alpha=1.5, min=1s, max=1.3s)", "33% of the pareto's mass"),
        ("turn { new_tokens %s }", "gamma(shape=2, mean=2k, max=500)", "9% of the gamma's mass"),
        ("turn { output %s }", "empirical { 100: 80%, 400: 20%, min=200 }", "20% of the empirical's mass"),
        ("turn { output %s }", "mix { 50%: constant(100), 50%: uniform(min=200, max=300), min=150, max=250 }",
         "25% of the mix's mass"),
        ("turns %s truncate", "mix { 50%: uniform(min=1, max=4), 50%: uniform(min=10, max=20), min=15 }",
         "25% of the mix's mass"),
    ],
)
def test_bounds_that_cut_most_of_any_law_warn(slot, law, words):
    _, warnings = _compile(slot % law + "\n")
    found = [w for w in warnings if w.code == W_BOUNDS]
    assert len(found) == 1, [w.message for w in warnings]
    assert words in found[0].message
    assert "so the mean moves from" in found[0].message and "and the median from" in found[0].message


def test_the_effect_is_the_cut_laws_figures():
    _, warnings = _compile("prefix { session normal(mean=2k, sd=500, min=3k) }\n")
    message = next(w.message for w in warnings if w.code == W_BOUNDS)
    cut = stats.truncnorm((3000 - 2000) / 500, np.inf, loc=2000, scale=500)
    assert f"the mean moves from 2000 to ~{round(cut.mean(), -1):.0f}" in message
    assert f"the median from 2000 to ~{round(cut.median(), -1):.0f}" in message


def test_bounds_that_keep_most_of_the_mass_do_not_warn():
    _, warnings = _compile("prefix { session normal(mean=2k, sd=500, min=1k) }\n"
                           "turns pareto(alpha=1.5, min=2, max=40) truncate\n")
    assert not [w for w in warnings if w.code == W_BOUNDS]


def test_a_hopeless_smallest_target_points_at_the_laws_min():
    text = ("context 40k\nprefix { global 0  groups 1 of 0 }\nturn { new_tokens constant(2k) }\n"
            "turns uniform(min=100, max=200)\n")
    with pytest.raises(DiagnosticError) as error:
        _compile(text)
    (first, *_) = error.value.diagnostics
    assert "turns.min (100) almost never fits" in first.message
    assert (first.span.line, first.span.column) == (4, 19)
