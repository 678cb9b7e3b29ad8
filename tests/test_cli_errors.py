"""Bad input through every command: a located message, the right exit code, no traceback, nothing left.

Each case is data: the files to create, the command line, the exit code class
(tracedsl/cli/exitcodes.py) and the text that locates the problem (file:line:col or a field
path). Every case runs with an empty `out/` directory as its only output target; after the
command, `out/` must hold nothing (no run directory, no temporary one, no half-written file).
Cases marked xfail are bugs found while writing these tests: they flip when fixed.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from dataclasses import dataclass, field

import pytest
from click.testing import CliRunner

from tests.conftest import ROOT
from tracedsl.cli import cli
from tracedsl.cli.exitcodes import FAILED, INPUT, IO, USAGE

DIR = object()  # in `files`: create a directory under this name

CONFIG = {
    "new_tokens_per_turn": {"mean": 6000, "median": 4000, "max": 10000, "bias": 1.1},
    "generation_length": {"mean": 1000, "median": 800, "max": 1500},
    "inter_turn_delay": {
        "agentic_fraction": 0.7,
        "agentic_delay": {"mean": 2500, "median": 1800, "max": 10000},
        "human_delay": {"mean": 40000, "median": 25000, "max": 120000},
        "max": None,
    },
    "reset": {"base_probability": 0.01, "context_scaling": 1.5},
    "max_prompt_tokens": 167000,
    "block_size": 512,
    "cache": {
        "layer1_tokens": 32000,
        "layer1_5_tokens": 0,
        "layer2": {"mean": 15000, "median": 5000, "max": 30000},
        "layer1_5_groups": {"num_groups": 1, "zipf_alpha": 0.6},
    },
}

GOOD_ROWS = (
    '{"session_id":"s","input_length":1000,"output_length":5,"hash_ids":[0,1],"timestamp":0.0}\n'
    '{"session_id":"s","input_length":600,"output_length":5,"hash_ids":[0,1,2,3],"delay":1.5}\n'
)


def _config(**changes) -> bytes:
    """The reference's default config, indented like a hand-written file, with `changes` applied."""
    config = json.loads(json.dumps(CONFIG))
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = config
        for name in parents:
            node = node[name]
        if value is _DELETE:
            del node[leaf]
        else:
            node[leaf] = value
    return json.dumps(config, indent=2).encode()


def _manifest(**top) -> bytes:
    """A reference-shaped manifest.json (seed, num_sessions, config_name, generation_params)."""
    manifest = {"seed": 1, "num_sessions": 3, "config_name": "default", "generation_params": CONFIG}
    manifest.update(top)
    return json.dumps(manifest, indent=2).encode()


_DELETE = object()


@dataclass
class Case:
    id: str
    args: list[str]  # "{tmp}" is the test's directory; "{out}" the directory that must stay empty
    code: int
    where: str  # text that must appear in the output: the place of the problem
    files: dict = field(default_factory=dict)
    also: str = ""  # more text that must appear (a hint, the offending value)
    bug: str = ""  # non-empty: a known bug, the test is xfail(strict) with this reason


T = "{tmp}/w.trace"
TRACE_CASES = [
    Case("trace-typo-keyword", ["compile", T, "-o", "{out}/spec.json"], INPUT, "w.trace:2:1",
         {"w.trace": b'workload "x"\ncontxt 200k\n'}, also="did you mean 'context'"),
    Case("trace-wrong-unit", ["compile", T, "-o", "{out}/spec.json"], INPUT, "w.trace:2:9",
         {"w.trace": b'workload "x"\ncontext 5s\n'}),
    Case("trace-unknown-suffix", ["compile", T, "-o", "{out}/spec.json"], INPUT, "w.trace:2:13",
         {"w.trace": b'workload "x"\ncontext 200 kb\n'}),
    Case("trace-missing-brace", ["run", T, "-n", "2", "-o", "{out}"], INPUT, "w.trace:4:",
         {"w.trace": b'workload "x"\ncontext 200k\nprefix {\n  global 32k\n'}, also="end of file"),
    Case("trace-unicode", ["check", T], FAILED, "w.trace:2:14",
         {"w.trace": 'workload "é😀"\ncontext 200k é\n'.encode()}),
    Case("trace-binary", ["compile", T, "-o", "{out}/spec.json"], INPUT, "w.trace:3:115",  # \r ends line 2
         {"w.trace": bytes(range(256)) * 4}, also="not UTF-8"),
    Case("trace-directory", ["compile", T, "-o", "{out}/spec.json"], IO, "w.trace",
         {"w.trace": DIR}, also="directory"),
    Case("trace-missing-file", ["run", "{tmp}/nope.trace", "-n", "2", "-o", "{out}"], IO, "nope.trace"),
    Case("trace-probability-over-one", ["run", T, "-n", "2", "-o", "{out}"], INPUT, "w.trace:2:7",
         {"w.trace": b'workload "x"\nreset 150%\n'}, also="reset.base_probability"),
    Case("trace-float-too-large", ["compile", T, "-o", "{out}/spec.json"], INPUT, "w.trace:3:",
         {"w.trace": b'workload "x"\nturn {\n  new_tokens lognormal(mean=1e300, median=1)\n}\n'},
         also="too large"),
    Case("trace-fmt-syntax-error", ["fmt", T], INPUT, "w.trace:2:1",
         {"w.trace": b'workload "x"\ncontxt 200k\n'}),
    # A context past 2**63 compiles, then `run` dies in numpy with an internal error (exit 70).
    Case("trace-integer-past-int64", ["run", T, "-n", "2", "-o", "{out}"], INPUT, "w.trace:2:9",
         {"w.trace": b'workload "x"\ncontext 99999999999999999999999999999\n'},
         also="max_prompt_tokens"),
]

C = "{tmp}/c.json"
CONFIG_CASES = [
    Case("config-wrong-type", ["run", C, "-n", "2", "-o", "{out}"], INPUT, "c.json:32:17",
         {"c.json": _config(block_size="512")}, also="block_size"),
    Case("config-bool-for-int", ["run", C, "-n", "2", "-o", "{out}"], INPUT, "c.json:31:24",
         {"c.json": _config(max_prompt_tokens=True)}, also="max_prompt_tokens"),
    Case("config-float-for-int", ["compile", C, "-o", "{out}/spec.json"], INPUT, "c.json:31:24",
         {"c.json": _config(max_prompt_tokens=1.5)}, also="max_prompt_tokens"),
    Case("config-unknown-key", ["run", C, "-n", "2", "-o", "{out}"], INPUT, "c.json:",
         {"c.json": _config(blok_size=512)}, also="did you mean 'block_size'"),
    Case("config-nested-garbage", ["run", C, "-n", "2", "-o", "{out}"], INPUT, "c.json:34:22",
         {"c.json": _config(cache__layer1_tokens={"a": [1, {"b": None}]})},
         also="cache.layer1_tokens"),
    Case("config-stale-mu-sigma", ["run", C, "-n", "2", "-o", "{out}"], INPUT, "c.json:",
         {"c.json": _config(new_tokens_per_turn__mu=1.0, new_tokens_per_turn__sigma=0.5)},
         also="new_tokens_per_turn.sigma"),
    Case("config-array", ["compile", C], INPUT, "c.json:1:1", {"c.json": b"[1, 2]\n"},
         also="array"),
    Case("config-truncated", ["run", C, "-n", "2", "-o", "{out}"], INPUT, "c.json:",
         {"c.json": _config()[:-40]}, also="invalid JSON"),
    Case("config-nan", ["run", C, "-n", "2", "-o", "{out}"], INPUT, "c.json:32:17",
         {"c.json": _config().replace(b'"block_size": 512', b'"block_size": NaN')}, also="NaN"),
    Case("config-infinity-nested", ["compile", C, "-o", "{out}/spec.json"], INPUT, "c.json:34:22",
         {"c.json": _config().replace(b'"layer1_tokens": 32000', b'"layer1_tokens": -Infinity')},
         also="-Infinity"),
    Case("config-empty", ["run", C, "-n", "2", "-o", "{out}"], INPUT, "c.json", {"c.json": b""}),
    Case("toml-broken", ["run", "{tmp}/s.toml", "-n", "2", "-o", "{out}"], INPUT, "s.toml:1:",
         {"s.toml": b"[generation_params\nblock_size = 1\n"}, also="invalid TOML"),
    Case("manifest-params-array", ["run", "{tmp}/manifest.json", "-o", "{out}"], INPUT,
         "manifest.json:5:", {"manifest.json": _manifest(generation_params=[1])}),
    Case("manifest-negative-seed", ["run", "{tmp}/manifest.json", "-o", "{out}"], INPUT,
         "manifest.json:2:11", {"manifest.json": _manifest(seed=-1)}, also="seed must be"),
    Case("manifest-seed-past-64-bits", ["run", "{tmp}/manifest.json", "-o", "{out}"], INPUT,
         "manifest.json:2:11", {"manifest.json": _manifest(seed=2**70)}, also="2**64-1"),
    Case("manifest-count-as-string", ["run", "{tmp}/manifest.json", "-o", "{out}"], INPUT,
         "manifest.json:3:19", {"manifest.json": _manifest(num_sessions="3")},
         also='num_sessions must be a whole number of sessions from 1 to 1,000,000,000; found the '
              'string "3"'),
    Case("manifest-zero-sessions", ["run", "{tmp}/manifest.json", "-o", "{out}"], INPUT,
         "manifest.json:3:19", {"manifest.json": _manifest(num_sessions=0)}, also="found 0"),
    Case("manifest-count-past-a-billion", ["run", "{tmp}/manifest.json", "-o", "{out}"], INPUT,
         "manifest.json:3:19", {"manifest.json": _manifest(num_sessions=10**23)},
         also="num_sessions must be"),
    Case("manifest-requested-as-float", ["run", "{tmp}/manifest.json", "-o", "{out}"], INPUT,
         "manifest.json:51:25", {"manifest.json": _manifest(requested_sessions=2.5)},
         also="requested_sessions must be"),
    Case("manifest-seed-null", ["run", "{tmp}/manifest.json", "-o", "{out}"], INPUT,
         "manifest.json:2:11", {"manifest.json": _manifest(seed=None)}, also="found null"),
    Case("manifest-name-not-a-string", ["compile", "{tmp}/manifest.json"], INPUT,
         "manifest.json:4:", {"manifest.json": _manifest(config_name=7)}, also="config_name"),
    # Every problem of a manifest at once: its own fields and its params.
    Case("manifest-fields-and-params", ["run", "{tmp}/manifest.json", "-o", "{out}"], INPUT,
         "manifest.json:2:11", {"manifest.json": _manifest(
             seed=-1, generation_params={**CONFIG, "block_size": 0})}, also="block_size"),
]

J = "{tmp}/d.jsonl"
JSONL_FILES = {
    "bom": (b"\xef\xbb\xbf" + GOOD_ROWS.encode(), "d.jsonl:1:1", "byte-order mark"),
    "array": (b"[1, 2]\n", "d.jsonl:1:1", "array"),
    "nan": (GOOD_ROWS.replace('"output_length":5,"hash_ids":[0,1,2,3]',
                              '"output_length":NaN,"hash_ids":[0,1,2,3]').encode(),
            "d.jsonl:2:", "not valid JSON"),
    "empty": (b"", "d.jsonl", "no rows"),
    "truncated-last-line": (GOOD_ROWS.encode()[:-20], "d.jsonl:2:", "not valid JSON"),
    "binary": (bytes(range(256)) * 8, "d.jsonl:1:", "not valid JSON"),
}
JSONL_CASES = [
    Case(f"{command}-{name}", [command, J, *extra], code, where, {"d.jsonl": content}, also=also)
    for name, (content, where, also) in JSONL_FILES.items()
    for command, code, extra in (
        ("validate", FAILED, []),
        ("report", INPUT, ["-o", "{out}"]),
        ("simulate", INPUT, []),
    )
]

ARG_CASES = [
    Case("run-negative-sessions", ["run", "-n", "-5", "-o", "{out}"], USAGE, "--num-sessions"),
    Case("run-zero-sessions", ["run", "-n", "0", "-o", "{out}"], USAGE, "--num-sessions"),
    Case("run-negative-seed", ["run", "-n", "2", "--seed", "-1", "-o", "{out}"], USAGE, "--seed"),
    Case("run-zero-workers", ["run", "-n", "2", "--workers", "0", "-o", "{out}"], USAGE, "--workers"),
    Case("run-set-nonsense", ["run", "-n", "2", "--set", "nonsense", "-o", "{out}"], INPUT, "--set",
         also="PATH=VALUE"),
    Case("run-set-unknown-field", ["run", "-n", "2", "--set", "cache.layer1_token=3", "-o", "{out}"],
         INPUT, "cache.layer1_token", also="did you mean 'layer1_tokens'"),
    Case("run-set-nested-garbage", ["run", "-n", "2", "--set", 'cache={"a":1}', "-o", "{out}"],
         INPUT, "cache.a"),
    Case("run-set-infinite", ["run", "-n", "2", "--set", "cache.layer2.mean=1e999", "-o", "{out}"],
         INPUT, "cache.layer2.mean", also="less than or equal to"),
    Case("run-unknown-engine", ["run", "-n", "2", "--engine", "slow", "-o", "{out}"], USAGE, "--engine"),
    Case("run-output-is-a-file", ["run", "-n", "2", "-o", "{tmp}/afile"], USAGE, "afile",
         {"afile": b"x"}, also="is a file"),
    Case("run-output-under-a-file", ["run", "-n", "2", "-o", "{tmp}/afile/sub"], IO, "afile/sub",
         {"afile": b"x"}),
    # -o names a directory that does not exist yet: a bad option must not create it.
    Case("run-dask-without-scheduler", ["run", "-n", "2", "--executor", "dask", "-o", "{out}/new"],
         USAGE, "--scheduler"),
    Case("run-scheduler-without-dask", ["run", "-n", "2", "--scheduler", "tcp://h:1", "-o",
                                        "{out}/new"], USAGE, "--executor dask"),
    Case("run-prefix-over-max-isl", ["run", "-n", "2", "--max-isl", "1000", "-o", "{out}"], INPUT,
         "--max-isl"),
    Case("run-seed-past-64-bits", ["run", "-n", "2", "--seed", str(2**70), "-o", "{out}"], USAGE,
         "--seed", also="18446744073709551615"),
    Case("run-seed-at-64-bits", ["run", "-n", "2", "--seed", str(2**64), "-o", "{out}"], USAGE,
         "--seed"),
    Case("run-max-isl-past-int64", ["run", "-n", "2", "--max-isl", str(10**20), "-o", "{out}"], USAGE,
         "--max-isl", also="max_prompt_tokens: input should be less than or equal to"),
    Case("run-max-isl-past-the-ir-bound", ["run", "-n", "2", "--max-isl", str(10**12 + 1), "-o",
                                           "{out}"], USAGE, "--max-isl", also="1000000000000"),
    Case("run-max-osl-past-the-ir-bound", ["run", "-n", "2", "--max-osl", "1e20", "-o", "{out}"],
         USAGE, "--max-osl"),
    Case("run-max-osl-huge", ["run", "-n", "2", "--max-osl", str(10**400), "-o", "{out}"], USAGE,
         "--max-osl", also="generation_length.max"),
    Case("run-max-osl-zero", ["run", "-n", "2", "--max-osl", "0", "-o", "{out}"], USAGE,
         "--max-osl", also="greater than 0"),
    Case("run-sessions-past-a-billion", ["run", "-n", str(10**9 + 1), "-o", "{out}"], USAGE,
         "--num-sessions", also="1000000000"),
    Case("run-workers-past-the-bound", ["run", "-n", "2", "--workers", str(10**6), "-o", "{out}"],
         USAGE, "--workers"),
    Case("compile-output-under-a-file", ["compile", "default", "-o", "{tmp}/afile/spec.json"], IO,
         "afile/spec.json", {"afile": b"x"}),
    Case("schema-output-under-a-file", ["schema", "-o", "{tmp}/afile/s.json"], IO, "afile/s.json",
         {"afile": b"x"}),
    Case("report-output-is-a-file", ["report", "{tmp}/d.jsonl", "-o", "{tmp}/afile"], USAGE, "afile",
         {"afile": b"x", "d.jsonl": GOOD_ROWS.encode()}),
    Case("report-not-a-run-dir", ["report", "{tmp}/empty", "-o", "{out}"], IO, "empty",
         {"empty": DIR}, also="no dataset.jsonl"),
    Case("validate-directory", ["validate", "{tmp}/empty"], IO, "empty", {"empty": DIR}),
    Case("validate-block-size-past-the-ir-bound", ["validate", "{tmp}/d.jsonl", "--block-size",
                                                   str(10**24)], USAGE, "--block-size",
         {"d.jsonl": GOOD_ROWS.encode()}, also="block_size: input should be less than or equal to"),
    Case("simulate-zero-concurrency", ["simulate", "{tmp}/d.jsonl", "--concurrency", "0"], USAGE,
         "--concurrency", {"d.jsonl": GOOD_ROWS.encode()}),
]

ALL_CASES = TRACE_CASES + CONFIG_CASES + JSONL_CASES + ARG_CASES


def _params(cases):
    return [
        pytest.param(case, id=case.id,
                     marks=[pytest.mark.xfail(strict=True, reason=case.bug)] if case.bug else [])
        for case in cases
    ]


def _prepare(case: Case, tmp_path):
    for name, content in case.files.items():
        target = tmp_path / name
        if content is DIR:
            target.mkdir()
        else:
            target.write_bytes(content)
    out = tmp_path / "out"
    out.mkdir()
    args = [a.replace("{tmp}", str(tmp_path)).replace("{out}", str(out)) for a in case.args]
    return args, out


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    # Commands that default to the working directory (run -o .) must not touch the checkout.
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("case", _params(ALL_CASES))
def test_bad_input_is_located_and_leaves_nothing(case, tmp_path):
    args, out = _prepare(case, tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(cli, args)
    text = result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in text
    assert result.exit_code == case.code, text
    assert case.where in text, text
    assert case.also in text, text
    assert list(out.iterdir()) == [], "output left behind"
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "a file appeared beside the inputs"


def _one_megabyte_row(tmp_path):
    blocks = 150_000
    row = {"session_id": "big", "input_length": 512 * blocks, "output_length": 10,
           "hash_ids": list(range(10**6, 10**6 + blocks)), "timestamp": 0.0}
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps(row, separators=(",", ":")) + "\n")
    assert path.stat().st_size > 10**6
    return path


def test_a_one_megabyte_row_is_not_an_error(tmp_path):
    """A long but valid line is not an error: validate passes it, simulate reads it."""
    path = _one_megabyte_row(tmp_path)
    validate = CliRunner().invoke(cli, ["validate", str(path)])
    assert validate.exit_code == 0, validate.output
    simulate = CliRunner().invoke(cli, ["simulate", str(path), "--json"])
    assert simulate.exit_code == 0, simulate.output
    assert json.loads(simulate.stdout)


SMALL_TRACES = {
    "one-megabyte-row": None,
    "one-row": '{"session_id":"s","input_length":1000,"output_length":5,"hash_ids":[0,1],'
               '"timestamp":0.0}\n',
    "two-rows-one-session": '{"session_id":"s","input_length":1000,"output_length":5,'
                            '"hash_ids":[0,1],"timestamp":0.0}\n'
                            '{"session_id":"s","input_length":600,"output_length":5,'
                            '"hash_ids":[2,3],"delay":1.5}\n',
}


@pytest.mark.parametrize("name", SMALL_TRACES)
def test_report_reads_small_valid_traces(name, tmp_path):
    if SMALL_TRACES[name] is None:
        path = _one_megabyte_row(tmp_path)
    else:
        path = tmp_path / "small.jsonl"
        path.write_text(SMALL_TRACES[name])
    assert CliRunner().invoke(cli, ["validate", str(path)]).exit_code == 0
    report = CliRunner().invoke(cli, ["report", str(path), "-o", str(tmp_path / "rep"), "--no-html"])
    assert report.exit_code == 0, report.output
    assert (tmp_path / "rep" / "quality.json").is_file()


# The real entry point (python -m tracedsl, through tracedsl.cli.main) on a few cases: the
# same codes on stderr, and an internal error is one line, not a traceback.
ENTRY_POINT_CASES = [
    (["compile", "{tmp}/w.trace"], {"w.trace": b'workload "x"\ncontxt 1\n'}, INPUT, "w.trace:2:1"),
    (["validate", "{tmp}/d.jsonl"], {"d.jsonl": b"\xef\xbb\xbf{}\n"}, FAILED, "d.jsonl:1:1"),
    (["run", "-n", "2", "--workers", "0", "-o", "{out}"], {}, USAGE, "--workers"),
    (["run", "{tmp}/c.json", "-n", "2", "-o", "{out}"], {"c.json": _config(block_size="x")}, INPUT,
     "c.json:32:17"),
]


def _entry_point(args, tmp_path, limit_memory=False):
    def _limit():  # a runaway allocation must fail in the child, not take the machine down
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TRACEDSL_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "tracedsl", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120,
                          preexec_fn=_limit if limit_memory else None)


@pytest.mark.parametrize("args, files, code, where", ENTRY_POINT_CASES,
                         ids=["trace", "jsonl", "usage", "config"])
def test_entry_point_exit_codes_and_no_traceback(args, files, code, where, tmp_path):
    case = Case("entry", args, code, where, files)
    argv, out = _prepare(case, tmp_path)
    done = _entry_point(argv, tmp_path)
    assert done.returncode == code, done.stderr
    assert where in done.stdout + done.stderr and "Traceback" not in done.stderr + done.stdout
    assert list(out.iterdir()) == []


def test_absurd_session_count_is_refused_up_front(tmp_path):
    out = tmp_path / "out"
    done = _entry_point(["run", "-n", str(10**23), "-o", str(out), "-q", "--no-reports"],
                        tmp_path, limit_memory=True)
    assert done.returncode in (USAGE, INPUT), done.stderr
    assert "--num-sessions" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists() or list(out.iterdir()) == []
