"""load_spec accepts every input form, locates bad JSON precisely, and apply_overrides validates."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import FIXTURE_RUNS, fixture_dir
from tracedsl.diagnostics import DiagnosticError, Span
from tracedsl.ir import GenerationParams
from tracedsl.loading import apply_overrides, is_io_problem, load_spec


def _errors(source) -> list:
    with pytest.raises(DiagnosticError) as info:
        load_spec(source)
    return info.value.diagnostics


def _write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("run", FIXTURE_RUNS)
def test_configs_and_manifests_load_to_the_manifest_params(run):
    folder = fixture_dir(run)
    manifest = json.loads((folder / "manifest.json").read_text())
    from_config = load_spec(str(folder / "config.json"))
    from_manifest = load_spec(str(folder / "manifest.json"))
    assert from_config.params.generation_params() == manifest["generation_params"]
    assert from_manifest.params == from_config.params
    assert from_manifest.kind == "manifest"
    assert from_manifest.manifest_seed == manifest["seed"]
    assert from_manifest.manifest_num_sessions == manifest["num_sessions"]
    assert from_manifest.name == manifest["config_name"]
    assert len(from_manifest.source_sha256) == 64


def test_a_config_is_named_after_its_file(tmp_path):
    path = _write(tmp_path, "my_workload.json", '{"block_size": 256}')
    spec = load_spec(str(path))
    assert (spec.name, spec.kind, spec.params.block_size) == ("my_workload", "config", 256)
    assert spec.manifest_seed is None


def test_unknown_key_is_located_with_a_suggestion(tmp_path):
    path = _write(
        tmp_path, "c.json", '{\n  "cache": {"layer2": {"mean": 100, "median": 50, "maxx": 3}}\n}'
    )
    (diag,) = _errors(str(path))
    assert diag.path == "cache.layer2.maxx"
    assert diag.span == Span(2, 51)
    assert diag.hint == "did you mean 'max'?"


def test_every_field_problem_is_reported_with_its_position(tmp_path):
    text = '{\n  "block_size": "512",\n  "reset": {"base_probability": 2}\n}'
    diags = _errors(str(_write(tmp_path, "c.json", text)))
    where = {d.path: d.span for d in diags}
    assert where == {"block_size": Span(2, 17), "reset.base_probability": Span(3, 33)}


def test_cross_field_problem_points_at_every_field_it_involves(tmp_path):
    text = '{\n  "turns": {"mean": 12, "median": 10, "min": 2, "max": 40},\n  "reset": {}\n}'
    (diag,) = _errors(str(_write(tmp_path, "c.json", text)))
    assert diag.path == "turns" and diag.span == Span(2, 12)
    assert [r.span for r in diag.related] == [Span(3, 12)]


def test_legacy_spellings_are_accepted_with_warnings(tmp_path):
    text = json.dumps(
        {"maxPromptTokens": 150000, "restart_fraction": 0.2, "system_prompt_tokens": 5}
    )
    spec = load_spec(str(_write(tmp_path, "c.json", text)))
    assert spec.params.max_prompt_tokens == 150000
    assert spec.params.restart_initial_probability == 0.2
    assert sorted(w.path for w in spec.warnings) == [
        "maxPromptTokens",
        "restart_fraction",
        "system_prompt_tokens",
    ]
    assert all(not w.is_error for w in spec.warnings)


def test_restart_fraction_that_differs_is_an_error(tmp_path):
    text = json.dumps({"restart_fraction": 0.2, "restart_initial_probability": 0.3})
    (diag,) = _errors(str(_write(tmp_path, "c.json", text)))
    assert diag.path == "restart_fraction" and "differs" in diag.message


@pytest.mark.parametrize(
    ("text", "code", "words"),
    [
        ("", "E202", "empty"),
        ("   \n", "E202", "empty"),
        ("[1, 2]", "E206", "array"),
        ('"x"', "E206", "string"),
        ('{"a": ', "E203", "invalid JSON"),
        ('{"block_size": NaN}', "E203", "NaN"),
    ],
)
def test_malformed_json_gets_a_clear_message(tmp_path, text, code, words):
    (diag,) = _errors(str(_write(tmp_path, "c.json", text)))
    assert diag.code == code and words in diag.message


def test_broken_json_names_line_and_column(tmp_path):
    (diag,) = _errors(str(_write(tmp_path, "c.json", '{\n  "block_size": 512,\n}')))
    assert diag.span == Span(3, 1)


def test_binary_file_is_refused(tmp_path):
    path = tmp_path / "c.json"
    path.write_bytes(b'{"a": "\xff"}')
    (diag,) = _errors(str(path))
    assert diag.code == "E201" and diag.span == Span(1, 8)


def test_json_schema_is_refused(tmp_path):
    text = json.dumps({"$id": "https://example.com/spec.json", "properties": {}})
    (diag,) = _errors(str(_write(tmp_path, "spec.json", text)))
    assert "JSON Schema" in diag.message


def test_missing_file_is_an_io_problem():
    with pytest.raises(DiagnosticError) as info:
        load_spec("no/such/file.json")
    assert is_io_problem(info.value)


def test_manifest_with_bad_params_points_inside_generation_params(tmp_path):
    text = '{"seed": 1, "num_sessions": 3, "config_name": "x",\n "generation_params": {"block_size": 0}}'
    (diag,) = _errors(str(_write(tmp_path, "manifest.json", text)))
    assert diag.path == "generation_params.block_size" and diag.span == Span(2, 38)


def test_toml_nulls_come_back_as_none(tmp_path):
    text = "[generation_params.turns]\nmean = 12\nmedian = 10\nmin = 2\nmax = 40\nallow_truncation = true\n"
    text = 'format_version = 1\nworkload = "t"\n' + text
    spec = load_spec(str(_write(tmp_path, "spec.toml", text)))
    assert spec.params.reset is None and spec.params.turns.max_session_attempts is None
    assert spec.kind == "spec" and spec.name == "t"


def test_bad_toml_is_located(tmp_path):
    (diag,) = _errors(str(_write(tmp_path, "spec.toml", "format_version = \n")))
    assert diag.code == "E204" and diag.span is not None


def test_overrides_apply_and_rederive_mu_sigma():
    params = apply_overrides(
        GenerationParams(), ["cache.layer2.mean=20k", "inter_turn_delay.max=none"]
    )
    assert params.cache.layer2.mean == 20000
    assert params.cache.layer2.sigma == pytest.approx(math.sqrt(2 * math.log(20000 / 5000)))


def test_overrides_switch_to_turns_mode():
    params = apply_overrides(
        GenerationParams(),
        [
            "reset=none",
            "turns.mean=12",
            "turns.median=10",
            "turns.min=2",
            "turns.max=40",
            "turns.allow_truncation=true",
        ],
    )
    assert params.turns.allow_truncation and params.reset is None


@pytest.mark.parametrize(
    ("override", "path", "hint"),
    [
        ("cache.layr2.mean=1", "cache.layr2.mean", "did you mean 'layer2'?"),
        ("block_size=abc", "block_size", None),
        ("block_size", None, "e.g. --set cache.layer2.mean=20000"),
    ],
)
def test_bad_overrides_are_reported(override, path, hint):
    with pytest.raises(DiagnosticError) as info:
        apply_overrides(GenerationParams(), [override])
    (diag,) = info.value.diagnostics
    assert diag.file == "--set" and diag.path == path and diag.hint == hint


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["mean", "median", "max", "turns", "reset", "cache", "layer2", "x"]),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)
_FIELDS = [
    "new_tokens_per_turn",
    "generation_length",
    "inter_turn_delay",
    "reset",
    "turns",
    "cache",
    "max_prompt_tokens",
    "block_size",
    "restart_turn_range",
    "restart_fraction",
    "maxPromptTokens",
]


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.dictionaries(st.sampled_from(_FIELDS), _json_values, max_size=5) | _json_values)
def test_any_json_gives_diagnostics_not_exceptions(tmp_path, value):
    path = tmp_path / "fuzz.json"
    path.write_text(json.dumps(value))
    try:
        load_spec(str(path))
    except DiagnosticError:
        pass


@pytest.mark.parametrize(
    ("text", "span", "path", "spelling"),
    [
        ('{"block_size": NaN}', Span(1, 16), "block_size", "NaN"),
        ('{\n  "cache": {"layer2": {"mean": 1,\n    "max": -Infinity}}}', Span(3, 12),
         "cache.layer2.max", "-Infinity"),
        ('{"a": [1, 2, Infinity], "b": NaN}', Span(1, 14), "a.2", "Infinity"),  # the first one
        ("NaN", Span(1, 1), None, "NaN"),
    ],
)
def test_nan_and_infinity_are_refused_where_they_stand(tmp_path, text, span, path, spelling):
    (diag,) = _errors(str(_write(tmp_path, "c.json", text)))
    assert diag.code == "E203" and f"{spelling} is not valid JSON" in diag.message
    assert (diag.span, diag.path) == (span, path)


def _manifest_text(**top) -> str:
    manifest = {"seed": 1, "num_sessions": 3, "config_name": "x", "generation_params": {}}
    manifest.update(top)
    return json.dumps(manifest, indent=1)


@pytest.mark.parametrize(
    ("fields", "path", "words"),
    [
        ({"seed": -1}, "seed", "found -1"),
        ({"seed": 2**64}, "seed", "from 0 to 2**64-1"),
        ({"seed": True}, "seed", "found a boolean"),
        ({"seed": "7"}, "seed", 'found the string "7"'),
        ({"num_sessions": 0}, "num_sessions", "from 1 to 1,000,000,000"),
        ({"num_sessions": 3.0}, "num_sessions", "found 3.0"),
        ({"num_sessions": 10**9 + 1}, "num_sessions", "found 1000000001"),
        ({"requested_sessions": {}}, "requested_sessions", "found an object"),
        ({"config_name": ""}, "config_name", "non-empty string"),
    ],
)
def test_a_manifests_run_fields_are_checked_where_they_stand(tmp_path, fields, path, words):
    text = _manifest_text(**fields)
    (diag,) = _errors(str(_write(tmp_path, "manifest.json", text)))
    assert diag.path == path and words in diag.message
    line = text.splitlines()[diag.span.line - 1]
    assert line[diag.span.column - 1:].startswith(json.dumps(fields[path])), (line, diag.span)


def test_a_manifests_fields_and_params_are_reported_together(tmp_path):
    text = _manifest_text(seed=-1, num_sessions="3", generation_params={"block_size": 0})
    paths = [d.path for d in _errors(str(_write(tmp_path, "manifest.json", text)))]
    assert paths == ["seed", "num_sessions", "generation_params.block_size"]


def test_a_manifest_without_run_fields_leaves_them_to_the_run(tmp_path):
    loaded = load_spec(str(_write(tmp_path, "manifest.json", '{"generation_params": {}}')))
    assert (loaded.manifest_seed, loaded.manifest_num_sessions) == (None, None)
    assert loaded.name == "manifest" and loaded.kind == "manifest"
    extremes = _manifest_text(seed=2**64 - 1, num_sessions=10**9, config_name=None)
    loaded = load_spec(str(_write(tmp_path, "m2.json", extremes)))
    assert (loaded.manifest_seed, loaded.manifest_num_sessions) == (2**64 - 1, 10**9)


def test_a_spec_named_by_its_bundled_name_says_so(tmp_path):
    assert load_spec("default").bundled
    copy = _write(tmp_path, "default.trace", load_spec("default").source_path.read_text())
    assert not load_spec(str(copy)).bundled
