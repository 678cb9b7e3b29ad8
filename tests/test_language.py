"""The .trace language: bundled specs match the reference, errors are located, fmt and decompile round-trip."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import FIXTURE_RUNS, ROOT, fixture_dir
from tracedsl.diagnostics import DiagnosticError, Span, render
from tracedsl.ir import GenerationParams, Workload
from tracedsl.language.decompile import decompile
from tracedsl.language.format import format_text
from tracedsl.language.lower import compile_text
from tracedsl.loading import load_spec

CASES = ROOT / "tests" / "cases"
REFERENCE_DATASET = (
    "/tmp/aiperf-venv/lib/python3.11/site-packages/aiperf/dataset/agentic_code_gen/"
    "datasets/1k_sessions_200k_ctx/manifest.json"
)


def _bundled(name: str) -> dict:
    return load_spec(str(ROOT / "specs" / f"{name}.trace")).params.generation_params()


def test_default_trace_is_the_reference_default_config():
    manifest = json.loads((fixture_dir("default_s1_n300") / "manifest.json").read_text())
    assert json.dumps(_bundled("default")) == json.dumps(manifest["generation_params"])


def test_aiperf_defaults_trace_is_the_built_in_defaults():
    assert _bundled("aiperf-defaults") == GenerationParams().generation_params()
    # An empty file means the same thing.
    assert compile_text("", "empty.trace")[0].params == GenerationParams()


def test_inference_day_trace_is_the_bundled_dataset_manifest():
    manifest = json.loads((fixture_dir("manifest1k_s3_n300") / "config.json").read_text())
    assert json.dumps(_bundled("inference-day-2026")) == json.dumps(manifest["generation_params"])


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.trace")), ids=lambda p: p.stem)
def test_every_example_compiles_cleanly_and_is_canonical(path):
    text = path.read_text()
    workload, warnings = compile_text(text, str(path))
    assert workload.name == path.stem
    # W105 says what AIPerf cannot express: the examples of the new families mean to use them.
    assert [w for w in warnings if w.code != "W105"] == []
    assert format_text(text) == text


def test_examples_mean_what_their_comments_say():
    examples = ROOT / "examples"
    restarts = load_spec(str(examples / "restarts.trace")).params
    assert restarts.restart_turn_range == (5, 13) and restarts.restart_initial_probability == 0.25
    units = load_spec(str(examples / "units.trace")).params
    assert units.max_prompt_tokens == 1_200_000 and units.cache.layer1_tokens == 40_000
    assert units.inter_turn_delay.agentic_delay.mean == 2500.0
    assert units.inter_turn_delay.human_delay.mean == 45_000.0
    assert units.inter_turn_delay.agentic_fraction == 0.65
    assert units.reset.base_probability == 0.015
    retry = load_spec(str(examples / "turns-retry.trace")).params
    assert retry.reset is None and retry.turns.max_session_attempts == 50
    mixture = load_spec(str(examples / "delay-mixture.trace")).params.inter_turn_delay
    assert (mixture.agentic_fraction, mixture.max, mixture.agentic_delay.median) == (
        0.8,
        300_000.0,
        900.0,
    )


def _chunks():
    text = (CASES / "errors.trace").read_text()
    for number, chunk in enumerate(text.split("\n---\n")):
        lines = chunk.split("\n")
        marks = [(i + 2, line[4:]) for i, line in enumerate(lines) if line.startswith("### ")]
        source = "\n".join("" if line.startswith("#") else line for line in lines)
        for line, mark in marks:
            code, _, words = mark.partition(" ")
            yield pytest.param(source, line, code, words, id=f"{number}-{code}")


@pytest.mark.parametrize(("source", "line", "code", "words"), list(_chunks()))
def test_error_cases(source, line, code, words):
    with pytest.raises(DiagnosticError) as info:
        compile_text(source, "case.trace")
    found = [
        d
        for d in info.value.diagnostics
        if d.code == code and d.span is not None and d.span.line == line and words in render(d)
    ]
    assert found, "\n".join(render(d, source) for d in info.value.diagnostics)


def test_syntax_error_renders_with_caret_and_expected():
    source = "context 1k\nprefix {\n  sesion lognormal(mean=10k, median=5k)\n}\n"
    with pytest.raises(DiagnosticError) as info:
        compile_text(source, "x.trace")
    assert render(info.value.diagnostics[0], source) == (
        "x.trace:3:3: error[E001]: unexpected 'sesion'; expected 'global', 'groups', 'session' or '}'\n"
        "   3 |   sesion lognormal(mean=10k, median=5k)\n"
        "     |   ^^^^^^\n"
        "   = help: did you mean 'session'?"
    )


def test_semantic_errors_are_collected_together():
    source = "context 5s\nblock 1.5\nturn { output lognorml(mean=1k, median=1k) }\n"
    with pytest.raises(DiagnosticError) as info:
        compile_text(source, "x.trace")
    assert [(d.code, d.span.line) for d in info.value.diagnostics] == [
        ("E104", 1),
        ("E105", 2),
        ("E102", 3),
    ]


def test_turns_with_reset_points_at_both_statements():
    source = "turns lognormal(mean=12, median=10, min=2, max=40)\n\nreset 2%\n"
    with pytest.raises(DiagnosticError) as info:
        compile_text(source, "x.trace")
    (diag,) = info.value.diagnostics
    assert diag.span.line == 1 and [r.span.line for r in diag.related] == [3]


def test_constant_lognormal_is_a_warning_at_its_mean():
    _, warnings = compile_text("turn {\n  output lognormal(mean=1k, median=1k)\n}\n", "x.trace")
    (warning,) = warnings
    assert not warning.is_error and warning.span == Span(2, 25, 2, 27)


def test_restart_range_ends_say_whether_they_are_included():
    ranges = {"[5, 15)": (5, 15), "[5, 14]": (5, 15), "(4, 14]": (5, 15), "(4, 15)": (5, 15)}
    for written, stored in ranges.items():
        params = compile_text(f"restart 10% at turn {written}")[0].params
        assert params.restart_turn_range == stored


def test_units_are_exact():
    params = compile_text(
        "turn { new_tokens lognormal(mean=1.1k, median=0.3k) delay mix { agentic 0.1%: "
        "lognormal(mean=1.1s, median=0.5s) } }"
    )[0].params
    assert params.new_tokens_per_turn.mean == 1100.0  # not 1.1 * 1000 = 1100.0000000000002
    assert params.inter_turn_delay.agentic_delay.mean == 1100.0
    assert params.inter_turn_delay.agentic_fraction == 0.001


def test_fmt_keeps_comments_and_is_idempotent():
    source = (
        "# header comment\n\nreset 1%   # trailing\n# leading of prefix\nprefix { # after brace\n"
        "session lognormal(mean=2k,median=1k) global 3k\n}  # after close\n# the end\n"
    )
    once = format_text(source)
    assert once == (
        "# header comment\n\n"
        "# leading of prefix\n"
        "prefix {  # after brace\n"
        "  global 3k\n"
        "  session lognormal(mean=2k, median=1k)\n"
        "}  # after close\n\n"
        "reset 1%  # trailing\n\n"
        "# the end\n"
    )
    assert format_text(once) == once
    assert compile_text(once)[0] == compile_text(source)[0]


@pytest.mark.parametrize("run", FIXTURE_RUNS)
@pytest.mark.parametrize("form", ["config.json", "manifest.json"])
def test_decompile_round_trips_every_fixture(run, form):
    loaded = load_spec(str(fixture_dir(run) / form))
    workload = Workload(name=loaded.name, params=loaded.params)
    text = decompile(workload, "header")
    assert compile_text(text, "x.trace")[0] == workload
    assert format_text(text) == text


def test_decompile_round_trips_the_reference_bundled_dataset():
    loaded = (
        load_spec(REFERENCE_DATASET) if _exists(REFERENCE_DATASET) else pytest.skip("no reference")
    )
    workload = Workload(name=loaded.name, params=loaded.params)
    assert compile_text(decompile(workload))[0] == workload


def _exists(path: str) -> bool:
    from pathlib import Path

    return Path(path).is_file()


# ---------------------------------------------------------------------------------------------
# Property tests


_positive = st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False)


@st.composite
def _lognormal(draw, *, bounded: bool = True, tokens: bool = False) -> dict:
    if draw(st.booleans()):
        median = draw(_positive)
        mean = median * draw(st.floats(min_value=1.0, max_value=50.0))
        dist = {"mean": mean, "median": median}
    else:
        dist = {
            "mu": draw(st.floats(min_value=-5, max_value=12)),
            "sigma": draw(st.floats(min_value=0, max_value=2)),
        }
    if bounded and draw(st.booleans()):
        # a token count's max is at least one token (the IR refuses less)
        dist["max"] = draw(st.floats(min_value=1.0, max_value=1e9) if tokens else _positive)
    if bounded and draw(st.booleans()):
        dist["min"] = draw(st.floats(min_value=1e-6, max_value=dist.get("max", 1e9)))
    return dist


@st.composite
def _params(draw) -> GenerationParams:
    data = {
        "new_tokens_per_turn": {
            **draw(_lognormal(tokens=True)),
            "bias": draw(st.floats(min_value=0.01, max_value=10)),
        },
        "generation_length": draw(_lognormal(tokens=True)),
        "inter_turn_delay": {
            "agentic_fraction": draw(st.floats(min_value=0, max_value=1)),
            "agentic_delay": draw(_lognormal()),
            "human_delay": draw(_lognormal()),
            "max": draw(st.none() | st.floats(min_value=0, max_value=1e9)),
        },
        # At most 8M: with no reset, a session of 2-token turns would outlast the IR's
        # MAX_SESSION_TURNS on a larger context (tracedsl.limits).
        "max_prompt_tokens": draw(st.integers(min_value=300_000, max_value=8_000_000)),
        "block_size": draw(st.integers(min_value=1, max_value=4096)),
        "cache": {
            "layer1_tokens": draw(st.integers(min_value=0, max_value=100_000)),
            "layer1_5_tokens": draw(st.integers(min_value=0, max_value=100_000)),
            "layer2": {**draw(_lognormal()), "min": 1.0, "max": 1000.0},
            "layer1_5_groups": {
                "num_groups": draw(st.integers(min_value=1, max_value=1000)),
                "zipf_alpha": draw(st.floats(min_value=0, max_value=5)),
            },
        },
    }
    lo = draw(st.integers(min_value=1, max_value=50))
    data["restart_turn_range"] = [lo, lo + draw(st.integers(min_value=1, max_value=50))]
    if draw(st.booleans()):
        median = draw(st.integers(min_value=1, max_value=50))
        mean = median + draw(st.integers(min_value=0, max_value=20))
        truncate = draw(st.booleans())
        data["turns"] = {
            "mean": mean,
            "median": median,
            "min": 1,
            "max": mean + 5,
            "allow_truncation": truncate,
        }
        if not truncate:
            data["turns"]["max_session_attempts"] = draw(st.integers(min_value=1, max_value=1000))
        data["reset"] = draw(st.none())
    else:
        data["reset"] = draw(
            st.none()
            | st.fixed_dictionaries(
                {
                    "base_probability": st.floats(min_value=0, max_value=1),
                    "context_scaling": st.floats(min_value=1, max_value=10),
                }
            )
        )
        data["restart_initial_probability"] = draw(st.floats(min_value=0, max_value=1))
    return GenerationParams.model_validate(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    _params(), st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=20)
)
def test_decompile_round_trips_any_ir(params, name):
    workload = Workload(name=name, params=params)
    text = decompile(workload)
    assert compile_text(text, "x.trace")[0] == workload
    assert format_text(text) == text


_EXAMPLE_TEXTS = [p.read_text() for p in sorted((ROOT / "examples").glob("*.trace"))] + [
    p.read_text() for p in sorted((ROOT / "specs").glob("*.trace"))
]


def _never_a_traceback(text: str) -> None:
    try:
        compile_text(text, "fuzz.trace")
    except DiagnosticError as error:
        for diag in error.diagnostics:
            render(diag, text)
    try:
        format_text(text, "fuzz.trace")
    except DiagnosticError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_give_diagnostics_not_exceptions(data):
    _never_a_traceback(data.decode("utf-8", errors="replace"))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(_EXAMPLE_TEXTS),
    st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 5), st.text(max_size=6)), max_size=4),
)
def test_mutated_examples_give_diagnostics_not_exceptions(text, edits):
    for position, length, insert in edits:
        position %= len(text) + 1
        text = text[:position] + insert + text[position + length :]
    _never_a_traceback(text)


_TOKENS = re.findall(r"[A-Za-z_]+|[0-9.]+[a-zA-Z%]*|[{}()\[\],=:]|#[^\n]*|\n", _EXAMPLE_TEXTS[0])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(sorted(set(_TOKENS)) + ["none", "-1", "1e400", '"x"']), max_size=40)
)
def test_shuffled_tokens_give_diagnostics_not_exceptions(tokens):
    _never_a_traceback(" ".join(tokens))


# A value past the IR's sanity bound (tracedsl/ir.py MAX_*) is an error at that value's own
# line and column, whichever statement holds it: (statements, the oversized value's text).
OVERSIZED = [
    ("context 2e12", "2e12"),
    ("block 1e13", "1e13"),
    ("prefix {\n  global 2e12\n}", "2e12"),
    ("prefix {\n  groups 20_000_000 of 1k\n}", "20_000_000"),
    ("prefix {\n  groups 5 of 3e12\n}", "3e12"),
    ("prefix {\n  session lognormal(mean=2e12, median=5k)\n}", "2e12"),
    ("turn {\n  new_tokens lognormal(mean=6k, median=2e12)\n}", "2e12"),
    ("turn {\n  output lognormal(mean=6k, median=1k, max=5e12)\n}", "5e12"),
    ("turn {\n  delay mix {\n    agentic 70%: lognormal(mean=2s, median=1s)\n"
     "    human 30%: lognormal(mean=40s, median=25s)\n  } max 1e13ms\n}", "1e13ms"),
    ("reset none\nturns lognormal(mean=2e9, median=5, min=1, max=9)", "2e9"),
    ("reset none\nturns lognormal(mean=8, median=5, min=1, max=9) retry 2e9", "2e9"),
]


@pytest.mark.parametrize("body, value", OVERSIZED, ids=[b.split("\n")[-2 if "}" in b else -1]
                         .split("(")[0].strip() for b, _ in OVERSIZED])
def test_an_oversized_value_is_located_at_the_value(body, value):
    text = f'workload "x"\n{body}\n'
    with pytest.raises(DiagnosticError) as error:
        compile_text(text, "w.trace")
    (diag,) = error.value.diagnostics
    assert "less than or equal to" in diag.message
    assert diag.span is not None, render(diag)
    line = text.splitlines()[diag.span.line - 1]
    assert line[diag.span.column - 1:].startswith(value), render(diag, text)


def test_a_block_too_large_for_the_context_points_at_the_block():
    with pytest.raises(DiagnosticError) as error:
        compile_text('workload "x"\nblock 300k\n', "w.trace")
    (diag,) = error.value.diagnostics
    assert "does not fit the context" in diag.message
    assert diag.span is not None and diag.span.line == 2, render(diag)


# --------------------------------------------------------------------------------------------
# Warnings with their effect: bounds that cut away most of the mass, a delay max of 0, and a
# prefix that does not fit because of a default layer


def _warnings(source: str):
    return compile_text(source, "w.trace")[1]


def _figures(message: str) -> list[float]:
    return [float(x) for x in re.findall(r"~([0-9.]+)", message)]


def test_a_max_below_most_of_the_mass_says_every_draw_becomes_it():
    import numpy as np

    from tracedsl.engine.samplers import BoundedLognormal, token_counts

    (warning,) = _warnings("turn { output lognormal(mean=10, median=5, max=1) }")
    assert warning.code == "W102" and warning.span.column == 48  # at max=1
    assert "keep 8.6% of the lognormal's mass" in warning.message
    assert warning.message.endswith("so every draw becomes 1")
    # what the fast engine really does: the exact cut law, then int() and the output floor
    params = compile_text("turn { output lognormal(mean=10, median=5, max=1) }")[0].params
    draws = BoundedLognormal.of(params.generation_length).sample((np.arange(10_000) + 0.5) / 10_000)
    assert set(token_counts(draws, params.output_floor).tolist()) == {1}


def test_a_min_above_the_mean_says_where_the_mean_and_median_move():
    import numpy as np

    from tracedsl.engine.samplers import BoundedLognormal

    source = "prefix { session lognormal(mean=10k, median=5k, min=20k) }"
    (warning,) = _warnings(source)
    assert warning.code == "W102" and warning.path == "cache.layer2.min"
    mean, median = _figures(warning.message)
    draws = BoundedLognormal.of(compile_text(source)[0].params.cache.layer2).sample(
        (np.arange(200_000) + 0.5) / 200_000
    )
    assert mean == pytest.approx(draws.mean(), rel=0.01)
    assert median == pytest.approx(np.median(draws), rel=0.01)
    assert "the mean moves from 10000 to ~" in warning.message


def test_bounds_that_keep_most_of_the_mass_say_nothing():
    assert _warnings("prefix { session lognormal(mean=15k, median=5k, max=30k) }") == []
    assert _warnings("turn { output lognormal(mean=1k, median=800, min=700) }") == []  # keeps 63%


def test_a_tiny_share_of_mass_mentions_the_aiperf_engines_clip():
    (warning,) = _warnings("turn { new_tokens lognormal(mean=10k, median=5k, min=100k) }")
    assert "the aiperf engine redraws 100 times and then clips" in warning.message


def test_a_constant_beyond_its_bound_becomes_the_bound():
    codes = {w.code: w for w in _warnings("turn { new_tokens lognormal(mean=6k, median=6k, max=5k) }")}
    assert set(codes) == {"W101", "W102"}
    assert codes["W102"].message.endswith("every draw becomes 5000")


def test_a_delay_max_of_0ms_says_every_delay_becomes_0():
    (warning,) = _warnings("turn { delay mix { } max 0ms }")
    assert warning.code == "W103" and warning.span.column == 26
    assert "every delay becomes 0ms" in warning.message


def test_a_delay_max_that_clips_most_delays_says_how_many():
    import numpy as np

    from tracedsl.engine.samplers import BoundedLognormal

    source = "turn { delay mix { agentic 100%: lognormal(mean=2.5s, median=1.8s) } max 1s }"
    (warning,) = _warnings(source)
    share = float(re.search(r"clips ([0-9.]+)% of delays", warning.message).group(1)) / 100
    dist = compile_text(source)[0].params.inter_turn_delay.agentic_delay
    draws = BoundedLognormal.of(dist).sample((np.arange(100_000) + 0.5) / 100_000)
    assert share == pytest.approx((draws > 1000).mean(), abs=0.005)  # printed to 2 digits
    assert _warnings("turn { delay mix { } max 5min }") == []


def test_a_prefix_that_does_not_fit_because_of_the_default_groups_says_so():
    with pytest.raises(DiagnosticError) as info:
        compile_text("context 50k\n", "w.trace")
    (error,) = info.value.diagnostics
    assert error.code == "E106" and error.span.line == 1
    assert error.message.endswith("L1.5 (groups) is the default (20000 tokens), not set in this spec")
    assert "`groups 1 of 0`" in error.hint
    # switched off as the hint says, it fits; written by the user, it is not called a default
    assert compile_text("context 50k\nprefix { groups 1 of 0 }\n")[0].params.cache.layer1_5_tokens == 0
    with pytest.raises(DiagnosticError) as written:
        compile_text("context 50k\nprefix { groups 50 of 20k }\n")
    message = written.value.diagnostics[0].message
    assert "L1.5 (groups) is the default" not in message
    assert message.endswith("L1 (global) is the default (32000 tokens), not set in this spec")


def test_a_config_that_does_not_fit_because_of_a_default_layer_says_so(tmp_path):
    config = tmp_path / "small.json"
    config.write_text('{"max_prompt_tokens": 50000}\n')
    with pytest.raises(DiagnosticError) as info:
        load_spec(str(config))
    (error,) = info.value.diagnostics
    assert "not set in this spec" in error.message and "cache.layer1_5_tokens = 0" in error.hint
