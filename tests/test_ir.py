"""The IR round-trips the reference's generation_params and enforces its rules."""

from __future__ import annotations

import json
import math

import pytest
from pydantic import ValidationError

from tests.conftest import FIXTURE_RUNS, fixture_dir
from tracedsl.ir import GenerationParams, Lognormal, ParamsError, params_warnings


@pytest.mark.parametrize("run", FIXTURE_RUNS)
def test_manifest_params_round_trip_exactly(run):
    manifest = json.loads((fixture_dir(run) / "manifest.json").read_text())
    params = GenerationParams.model_validate(manifest["generation_params"])
    # Same keys, same order, same values, same JSON types as the reference wrote.
    assert json.dumps(params.generation_params()) == json.dumps(manifest["generation_params"])


@pytest.mark.parametrize("run", FIXTURE_RUNS)
def test_config_resolves_to_manifest_params(run):
    folder = fixture_dir(run)
    config = json.loads((folder / "config.json").read_text())
    config = config.get("generation_params", config)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert GenerationParams.model_validate(config).generation_params() == manifest["generation_params"]


def test_mu_sigma_alone_fill_mean_and_median():
    dist = Lognormal.model_validate({"mu": math.log(800), "sigma": 0.5})
    assert dist.median == pytest.approx(800)
    assert dist.mean == pytest.approx(800 * math.exp(0.125))


def _issues(data) -> list:
    with pytest.raises(ValidationError) as info:
        GenerationParams.model_validate(data)
    found = []
    for err in info.value.errors():
        cause = err.get("ctx", {}).get("error")
        found.extend(cause.issues if isinstance(cause, ParamsError) else [err["msg"]])
    return found


def test_mu_sigma_disagreeing_with_mean_median_is_an_error_naming_both():
    issues = _issues({"generation_length": {"mean": 1000, "median": 800, "mu": 6.0, "sigma": 0.5}})
    assert len(issues) == 1
    assert set(issues[0].paths) == {"mu", "sigma", "mean", "median"}


def test_turns_with_reset_names_both():
    issues = _issues({"turns": {"mean": 12, "median": 10, "min": 2, "max": 40}, "reset": {}})
    assert any(set(i.paths) == {"turns", "reset"} for i in issues)


def test_prefix_that_cannot_fit_is_rejected_in_reset_mode_too():
    # The reference accepts this and writes one-turn sessions (flaw B16).
    issues = _issues({"max_prompt_tokens": 10000})
    assert any("max_prompt_tokens" in i.paths for i in issues)


def test_whole_blocks_count_toward_the_prefix():
    # 32000 + 20000 tokens is 63 + 40 = 103 blocks of 512 = 52736 tokens, not 52000.
    with pytest.raises(ValidationError):
        GenerationParams(max_prompt_tokens=52737)
    GenerationParams(max_prompt_tokens=52738)


def test_strings_and_booleans_are_not_numbers():
    with pytest.raises(ValidationError):
        GenerationParams.model_validate({"block_size": "512"})
    with pytest.raises(ValidationError):
        GenerationParams.model_validate({"block_size": True})


def test_constant_lognormal_warns():
    params = GenerationParams.model_validate({"generation_length": {"mean": 1000, "median": 1000}})
    assert any("generation_length" in w.message for w in params_warnings(params))


def test_turns_default_attempts_and_reset_switched_off():
    params = GenerationParams.model_validate({"turns": {"mean": 12, "median": 10, "min": 2, "max": 40}})
    assert params.reset is None
    assert params.turns.max_session_attempts == 100


def test_the_distribution_union_comes_from_the_family_registry():
    from tracedsl import families
    from tracedsl.ir import NewTokens
    from tracedsl.language.validate import validate_params

    assert issubclass(NewTokens, families.get(families.REFERENCE_KIND).model)
    # a missing kind is the reference's family; an unknown one names every known family
    assert GenerationParams.model_validate({"generation_length": {"mean": 5.0, "median": 3.0}}).generation_length.kind == "lognormal"
    _, problems = validate_params({"generation_length": {"kind": "gama", "mean": 5, "median": 3}})
    assert [p.message for p in problems] == [
        f"unknown distribution kind 'gama' (known: {', '.join(families.names())})"
    ]


def test_lognormal_from_mu_alone_names_sigma_and_an_overflow_names_mu():
    issues = _issues({"generation_length": {"mu": 6.0}})
    assert [(i.message, i.paths) for i in issues] == [
        ("sigma is missing: a lognormal takes mean and median, or mu and sigma", ("mu",))
    ]
    (overflow,) = _issues({"generation_length": {"mu": 800.0, "sigma": 1.0}})
    assert "overflows" in overflow.message and overflow.paths == ("mu",)
