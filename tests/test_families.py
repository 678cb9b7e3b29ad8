"""Distribution families: one module each in one registry; each engine's law, and what users get told."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from tracedsl import families
from tracedsl.diagnostics import DiagnosticError
from tracedsl.engine import RunRequest, get_engine
from tracedsl.families.lognormal import ReferenceLognormal, TruncatedLognormal
from tracedsl.ir import GenerationParams, Lognormal, NewTokens
from tracedsl.language.lower import compile_text
from tracedsl.reports import targets

ROOT = Path(__file__).resolve().parents[1]
ALPHA = 1e-3


# --------------------------------------------------------------------------------------------
# The registry is the one list of families


def test_the_registry_lists_lognormal_and_is_frozen_once_the_ir_is_built():
    assert families.names()[0] == "lognormal"  # the reference's family, first
    assert len(set(families.names())) == len(families.names())
    assert families.family_of(Lognormal) is families.get("lognormal")
    assert families.family_of(NewTokens(mean=2, median=1)).name == "lognormal"
    with pytest.raises(RuntimeError, match="register families before importing"):
        families.register(families.get("lognormal"))


def test_no_module_outside_the_families_package_switches_on_a_family_name():
    # A family's name may appear only in its own module (and the registry's import of it):
    # everything else asks the registry, so adding a family edits no other module.
    quoted = re.compile(r"""["']lognormal["']""")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "tracedsl").rglob("*.py"))
        if "families" not in path.relative_to(ROOT / "tracedsl").parts[:1]
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if quoted.search(line)
    ]
    assert not offenders, f"name the family through tracedsl.families instead: {offenders}"


def test_a_family_added_from_outside_is_accepted_everywhere_without_editing_another_file(tmp_path):
    # A fresh interpreter: register tests/flat_family.py, then import the IR and use the family
    # in the language, the IR, its JSON Schema, the fast engine, the targets and decompile.
    script = textwrap.dedent(
        """
        import json, sys
        import numpy as np
        from tracedsl import families
        import flat_family
        families.register(flat_family.FAMILY)

        from tracedsl.engine import RunRequest
        from tracedsl.engine.fast import FastEngine
        from tracedsl.io import spec_schema
        from tracedsl.ir import GenerationParams
        from tracedsl.language.decompile import decompile
        from tracedsl.language.lower import compile_text
        from tracedsl.reports import targets

        text = "turn {\\n  output flat(low=1k, high=3k)\\n  new_tokens flat(low=100, high=200) bias 2\\n}\\n"
        workload, warnings = compile_text(text, "flat.trace")
        params = workload.params
        assert params.generation_length.kind == "flat", params.generation_length
        assert params.new_tokens_per_turn.bias == 2.0
        dumped = params.generation_params()
        assert dumped["generation_length"]["kind"] == "flat"
        assert GenerationParams.model_validate(json.loads(json.dumps(dumped))) == params

        printed = decompile(workload)
        assert "output flat(low=1k, high=3k)" in printed, printed
        assert compile_text(printed, "again.trace")[0] == workload

        assert "Flat" in spec_schema()["$defs"]

        rows = [c for c in FastEngine().generate(RunRequest(params, 200, 7))]
        outputs = np.concatenate([c.output_length for c in rows])
        assert outputs.min() >= 1000 and outputs.max() <= 3000, (outputs.min(), outputs.max())
        expected = targets.generation_length(params).mean
        assert abs(outputs.mean() - expected) / expected < 0.02, (outputs.mean(), expected)
        from tracedsl.engine import EngineError, get_engine
        try:
            list(get_engine("aiperf").generate(RunRequest(params, 5, 7)))
        except EngineError as exc:
            assert "AIPerf 0.13.0 has no flat distribution" in str(exc), exc
        else:
            raise AssertionError("the aiperf engine ran a family AIPerf does not have")
        print("ok", expected)
        """
    )
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok 1999.5")


# --------------------------------------------------------------------------------------------
# The lognormal's two laws


def _scipy_truncated(dist: Lognormal, scale: float = 1.0):
    """The exact truncated lognormal, from scipy (independent of our code)."""
    mu, sigma = dist.mu + math.log(scale), dist.sigma
    law = stats.lognorm(s=sigma, scale=math.exp(mu))
    low = dist.min if dist.min is not None else 0.0
    high = dist.max if dist.max is not None else math.inf
    f_low, f_high = law.cdf(low), law.cdf(high)
    z_low = (math.log(low) - mu) / sigma if low > 0 else -math.inf
    z_high = (math.log(high) - mu) / sigma if math.isfinite(high) else math.inf
    norm = stats.norm
    mean = math.exp(mu + sigma**2 / 2) * (norm.cdf(z_high - sigma) - norm.cdf(z_low - sigma)) / (
        norm.cdf(z_high) - norm.cdf(z_low)
    )
    return law, f_low, f_high, mean


CASES = [
    Lognormal(mean=15000, median=5000, max=30000),
    Lognormal(mean=2500, median=1800, max=10000),
    Lognormal(mean=6000, median=4000, min=3000, max=9000),
    Lognormal(mean=1000, median=800),
    Lognormal(mean=500, median=300, min=2000, max=2600),  # 1.4% of the mass, in the upper tail
]


@pytest.mark.parametrize("dist", CASES)
def test_the_exact_law_is_scipys_truncated_lognormal(dist):
    exact = families.law(dist, "fast")
    assert isinstance(exact, TruncatedLognormal)
    law, f_low, f_high, mean = _scipy_truncated(dist)
    draws = exact.sample(np.random.default_rng(11).random(20_000))
    assert stats.kstest(draws, lambda x: (law.cdf(x) - f_low) / (f_high - f_low)).pvalue > ALPHA
    assert exact.mean == pytest.approx(mean, rel=1e-4)
    assert exact.median == pytest.approx(law.ppf(f_low + 0.5 * (f_high - f_low)), rel=1e-6)
    assert exact.mass == pytest.approx(f_high - f_low, rel=1e-6)
    for q in (0.1, 0.9):
        x = exact.quantile(q)
        assert x == pytest.approx(law.ppf(f_low + q * (f_high - f_low)), rel=1e-6)
        assert exact.cdf(x) == pytest.approx(q, abs=1e-6)


def test_scale_moves_the_law_but_not_its_bounds():
    dist = NewTokens(mean=6000, median=4000, max=9000, bias=1.3)
    exact = families.law(dist, "fast", dist.bias)
    _, _, _, mean = _scipy_truncated(dist, 1.3)
    assert exact.mean == pytest.approx(mean, rel=1e-4)
    assert exact.quantile(1 - 1e-12) <= 9000


def _reference_draws(dist: Lognormal, size: int, seed: int) -> np.ndarray:
    """The reference's sampler, written independently: redraw out-of-range values 100 rounds, clip."""
    rng = np.random.default_rng(seed)
    low = dist.min if dist.min is not None else -np.inf
    high = dist.max if dist.max is not None else np.inf
    values = rng.lognormal(dist.mu, dist.sigma, size)
    for _ in range(100):
        bad = (values < low) | (values > high)
        if not bad.any():
            break
        values[bad] = rng.lognormal(dist.mu, dist.sigma, bad.sum())
    return np.clip(values, low, high)


def test_the_reference_law_puts_the_mass_that_fails_every_round_on_the_bound():
    # [2000, 2600] holds 1.4% of the mass: 0.986^101 = 24% of the reference's draws are 2000.
    dist = CASES[-1]
    reference = families.law(dist, "aiperf")
    assert isinstance(reference, ReferenceLognormal)
    draws = _reference_draws(dist, 200_000, seed=12)
    at_bound = float(np.mean(draws == 2000))
    assert reference.stuck_low == pytest.approx(at_bound, abs=0.005)
    assert reference.stuck_high == pytest.approx(float(np.mean(draws == 2600)), abs=0.002)
    assert 0.2 < reference.stuck_low < 0.3 and 0 < reference.stuck_high < 0.01
    assert reference.mean == pytest.approx(draws.mean(), rel=2e-3)
    assert reference.median == pytest.approx(np.median(draws), rel=2e-3)
    assert reference.cdf(2000) == pytest.approx(at_bound, abs=0.005)
    # and the exact law has no atom there: the two engines' targets differ
    assert families.law(dist, "fast").mean > reference.mean + 40


def test_where_the_bounds_hold_most_of_the_mass_the_two_laws_agree():
    dist = CASES[0]  # layer2's [0, 30k] holds 89%: 0.11^101 is nil
    assert families.law(dist, "aiperf").mean == pytest.approx(families.law(dist, "fast").mean, rel=1e-12)


def test_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="unknown engine"):
        families.law(CASES[0], "reference")


@pytest.mark.parametrize("engine", ["fast", "aiperf"])
def test_each_engines_targets_follow_its_own_law(engine):
    # Outputs on an interval holding 1.4% of the mass: the fast engine draws the truncated
    # law, the aiperf engine rejects 100 times and clips. Each run's mean meets its own target.
    params = GenerationParams.model_validate(
        {"generation_length": {"mean": 500.0, "median": 300.0, "min": 2000.0, "max": 2600.0}}
    )
    chunks = list(get_engine(engine).generate(RunRequest(params, 400, 3)))
    outputs = np.concatenate([c.output_length for c in chunks]).astype(float)
    own = targets.generation_length(params, engine).mean
    other = targets.generation_length(params, "aiperf" if engine == "fast" else "fast").mean
    assert abs(outputs.mean() - own) < abs(outputs.mean() - other)
    assert outputs.mean() == pytest.approx(own, rel=0.005)
    assert abs(own - other) / own > 0.015


# --------------------------------------------------------------------------------------------
# What a user is told about a lognormal's parameters


def _diagnostics(body: str) -> list:
    with pytest.raises(DiagnosticError) as caught:
        compile_text(f"turn {{\n  output lognormal({body})\n}}\n", "t.trace")
    return caught.value.diagnostics


@pytest.mark.parametrize(
    ("body", "says", "column"),
    [
        ("mu=6", "sigma is missing", 23),
        ("sigma=1", "mu is missing", 26),
        ("mean=5", "median is missing", 25),
        ("", "a lognormal needs mean and median, or mu and sigma", 10),
    ],
)
def test_a_half_given_pair_names_what_is_missing(body, says, column):
    (diagnostic,) = _diagnostics(body)
    assert says in diagnostic.message and "required" not in diagnostic.message
    assert (diagnostic.span.line, diagnostic.span.column) == (2, column)


def test_mu_that_overflows_says_so_at_mu():
    (diagnostic,) = _diagnostics("mu=800, sigma=1")
    assert "overflows" in diagnostic.message and "mu=800" in diagnostic.message
    assert (diagnostic.span.line, diagnostic.span.column) == (2, 23)  # the 800


def test_mu_sigma_beyond_the_largest_value_say_so_at_them():
    (diagnostic,) = _diagnostics("mu=20, sigma=5")  # median e^20 is fine, the mean e^32.5 is not
    assert "give a mean of" in diagnostic.message and "1e12" in diagnostic.message
    assert diagnostic.span.column == 23
    assert [r.span.column for r in diagnostic.related] == [33]  # and at sigma's 5


def test_the_same_messages_for_a_spec_json():
    from pydantic import ValidationError

    from tracedsl.language.validate import validate_params

    params, problems = validate_params({"generation_length": {"mu": 6.0}})
    assert params is None
    assert [p.message for p in problems] == [
        "generation_length: sigma is missing: a lognormal takes mean and median, or mu and sigma"
    ]
    assert problems[0].paths == ("generation_length.mu",)
    with pytest.raises(ValidationError):
        GenerationParams.model_validate({"generation_length": {"mu": 800.0, "sigma": 1.0}})
