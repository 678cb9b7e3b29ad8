"""`run --set` with a spec.json path through a union follows the member the spec's value is.

A delay that is one law, turns that are a law, a slot holding a non-lognormal family: the path
(and the did-you-mean hints) take that member's keywords, not the union's first member's.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tests.conftest import ROOT
from tracedsl.cli import cli


def _run(tmp_path: Path, example: str, *sets: str):
    args = ["run", str(ROOT / "examples" / example), "-n", "5", "--no-reports", "-q", "-o", str(tmp_path)]
    for item in sets:
        args += ["--set", item]
    return CliRunner().invoke(cli, args)


def _params(tmp_path: Path) -> dict:
    (manifest,) = tmp_path.glob("*/manifest.json")
    return json.loads(manifest.read_text())["generation_params"]


def test_a_delay_law_takes_law_paths(tmp_path):
    result = _run(tmp_path, "delay-law.trace", "inter_turn_delay.law.value=800")
    assert result.exit_code == 0, result.output
    assert _params(tmp_path)["inter_turn_delay"]["law"] == {"kind": "constant", "value": 800.0, "min": None, "max": None}


def test_a_delay_law_takes_its_own_max(tmp_path):
    result = _run(tmp_path, "delay-law.trace", "inter_turn_delay.law.max=5000")
    assert result.exit_code == 0, result.output
    assert _params(tmp_path)["inter_turn_delay"]["law"]["max"] == 5000


def test_a_turns_law_takes_law_paths(tmp_path):
    result = _run(tmp_path, "turns-family.trace", "turns.law.max=30")
    assert result.exit_code == 0, result.output
    assert _params(tmp_path)["turns"]["law"]["max"] == 30


def test_a_turns_laws_max_is_written_as_the_language_writes_it(tmp_path):
    # `turns mix { … }`: the language's turns.max is the law's own bound (turns.law.max in spec.json)
    result = _run(tmp_path, "turns-family.trace", "turns.max=30")
    assert result.exit_code == 0, result.output
    assert _params(tmp_path)["turns"]["law"]["max"] == 30.0


def test_a_normal_slot_takes_its_sd(tmp_path):
    result = _run(tmp_path, "families.trace", "generation_length.sd=300")
    assert result.exit_code == 0, result.output
    assert _params(tmp_path)["generation_length"] == {"kind": "normal", "mean": 600.0, "sd": 300, "min": 30.0, "max": 2000.0}


def test_a_normal_slot_has_no_median_and_lists_its_keywords(tmp_path):
    result = _run(tmp_path, "families.trace", "generation_length.median=300")
    assert result.exit_code != 0
    assert "a normal has no 'median' (its keywords: mean, sd, min, max)" in result.output
    assert "sigma" not in result.output and "'mu'" not in result.output


def test_a_near_miss_in_a_normal_slot_suggests_the_normal_keyword(tmp_path):
    result = _run(tmp_path, "families.trace", "generation_length.sdd=300")
    assert result.exit_code != 0
    assert "did you mean 'sd'?" in result.output


def test_a_spec_json_unknown_key_hint_takes_the_member_the_value_is(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"generation_length": {"kind": "normal", "mean": 600, "sdd": 250}}))
    result = CliRunner().invoke(cli, ["run", str(spec), "-n", "5", "--no-reports", "-q", "-o", str(tmp_path / "out")])
    assert result.exit_code != 0
    assert "unknown key 'sdd' in generation_length" in result.output
    assert "did you mean 'sd'?" in result.output


def test_turns_keywords_reach_a_turn_law_as_the_language_writes_them(tmp_path):
    # `turns uniform(min=2, max=8) truncate`: turns.max is the law's max (the issue's own
    # example, class.chat.turns.max=12), at the top level and in a class
    from tracedsl import pipeline

    text = ('turns uniform(min=2, max=8) truncate\n'
            'class chat 100% { context 100k }\n')
    source = tmp_path / "t.trace"
    source.write_text(text)
    for override in ("turns.max=12", "class.chat.turns.max=12"):
        params = pipeline.plan_run(pipeline.RunOptions(spec=source, overrides=(override,))).params
        assert params.classes[0].params.turns.law.max == 12.0, override
    try:
        pipeline.plan_run(pipeline.RunOptions(spec=source, overrides=("class.chat.turns.shape=2",)))
    except pipeline.PipelineError as error:
        assert "turns is uniform: it takes min, max; not 'shape'" in str(error.diagnostics[0].message)
    else:
        raise AssertionError("a keyword the turns law does not take was accepted")
