"""`tracedsl run --workers N` and `--executor dask` write the same dataset.jsonl bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from tracedsl.cli import cli
from tracedsl.cli.exitcodes import IO, USAGE
from tracedsl.engine import executors
from tracedsl.engine.fast import CHUNK_SESSIONS

# Three chunks of the default chunk size, so two and three workers both get work.
SESSIONS = 2 * CHUNK_SESSIONS + 100


@pytest.fixture(autouse=True)
def pools_even_for_small_runs(monkeypatch):
    # Below the threshold the run would quietly stay in-process and test nothing here.
    monkeypatch.setattr(executors, "IN_PROCESS_BELOW_SESSIONS", 0)


def _run(output: Path, *options: str) -> str:
    result = CliRunner().invoke(
        cli,
        [
            "run",
            "default",
            "-n",
            str(SESSIONS),
            "--seed",
            "5",
            "--output",
            str(output),
            "--quiet",
            "--no-reports",
            *options,
        ],
    )
    assert result.exit_code == 0, result.output
    (dataset,) = output.glob("*/dataset.jsonl")
    return hashlib.sha256(dataset.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def one_worker_digest(tmp_path_factory) -> str:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(executors, "IN_PROCESS_BELOW_SESSIONS", 0)
        return _run(tmp_path_factory.mktemp("w1"), "--workers", "1")


@pytest.mark.parametrize("workers", ["2", "3"])
def test_workers_write_the_same_bytes(tmp_path, one_worker_digest, workers, monkeypatch):
    chosen: list = []
    real = executors.make_executor
    monkeypatch.setattr(
        executors, "make_executor", lambda **kw: chosen.append(real(**kw)) or chosen[-1]
    )
    assert _run(tmp_path, "--workers", workers) == one_worker_digest
    assert isinstance(chosen[0], executors.ProcessPool) and chosen[0].workers == int(workers)


def test_a_pool_run_with_spilled_checks_publishes_only_its_files(tmp_path, one_worker_digest, monkeypatch):
    # The workers' part files and the checker's spilled hash ids live in the run directory
    # while it is built; none may be left in what is published, and the manifest records
    # the digest of the bytes on disk.
    import json

    from tracedsl.output import blocks

    monkeypatch.setattr(blocks, "SPILL_AT", 1000)
    spilled: list = []
    real_save = blocks._Spill.save
    monkeypatch.setattr(blocks._Spill, "save", lambda self, arrays: spilled.append(1) or real_save(self, arrays))
    assert _run(tmp_path, "--workers", "2") == one_worker_digest
    assert spilled  # the ledger did go to disk
    (run_dir,) = tmp_path.iterdir()
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "cache_structure.json", "comparison.txt", "dataset.jsonl", "manifest.json", "quality.json",
        "sessions.jsonl"]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert json.dumps(manifest).count(one_worker_digest) == 1


def test_dask_executor_writes_the_same_bytes(tmp_path, one_worker_digest):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, processes=False, threads_per_worker=2, dashboard_address=None
    ) as cluster:
        digest = _run(tmp_path, "--executor", "dask", "--scheduler", cluster.scheduler_address)
    assert digest == one_worker_digest


@pytest.mark.parametrize(
    ("options", "message", "code"),
    [
        (["--scheduler", "tcp://127.0.0.1:9"], "only used with --executor dask", USAGE),
        (["--executor", "dask"], "needs --scheduler", USAGE),
        # The options are right; the cluster is out of reach when the run starts: an I/O failure.
        (["--executor", "dask", "--scheduler", "tcp://127.0.0.1:9"], "cannot reach the Dask", IO),
    ],
)
def test_bad_executor_options_stop_before_writing(tmp_path, options, message, code, monkeypatch):
    if "tcp://127.0.0.1:9" in options and "dask" in options:
        pytest.importorskip("distributed")
        monkeypatch.setattr(executors, "SCHEDULER_TIMEOUT_S", 1.0)
    result = CliRunner().invoke(
        cli, ["run", "default", "-n", "50", "--output", str(tmp_path), "--quiet", *options]
    )
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []  # nothing that looks like a run


def test_a_pool_prints_the_dataset_in_its_workers(tmp_path, one_worker_digest, monkeypatch):
    from tracedsl.output.jsonl import JsonlWriter

    printed_elsewhere: list[bool] = []
    real_write = JsonlWriter.write

    def spying(self, chunk, rendered=None):
        printed_elsewhere.append(rendered is not None)
        return real_write(self, chunk, rendered)

    monkeypatch.setattr(JsonlWriter, "write", spying)
    assert _run(tmp_path, "--workers", "2") == one_worker_digest
    assert printed_elsewhere == [True, True, True]  # every chunk came back printed (a part file)
    printed_elsewhere.clear()
    assert _run(tmp_path / "one", "--workers", "1") == one_worker_digest
    assert printed_elsewhere == [False, False, False]  # printed by the writer's thread


def _failing_run(tmp_path: Path) -> object:
    return CliRunner().invoke(
        cli, ["run", "default", "-n", str(SESSIONS), "--output", str(tmp_path), "--quiet"]
    )


def test_missing_dask_is_a_usage_error(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if absent
    result = CliRunner().invoke(
        cli, ["run", "default", "-n", "5", "--output", str(tmp_path), "--quiet",
              "--executor", "dask", "--scheduler", "tcp://127.0.0.1:9"],
    )
    assert result.exit_code == USAGE, result.output
    assert "pip install tracedsl[dask]" in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_lost_worker_is_an_io_error_and_publishes_nothing(tmp_path, monkeypatch):
    class LosesItsWorker(executors.InProcess):
        def __call__(self, fn, tasks):
            yield fn(next(iter(tasks)))
            raise executors.ExecutorError("a worker process died while sampling")

    monkeypatch.setattr(executors, "make_executor", lambda **options: LosesItsWorker())
    result = _failing_run(tmp_path)
    assert result.exit_code == IO, result.output
    assert "a worker process died" in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_write_failing_on_the_writer_thread_is_an_io_error(tmp_path, monkeypatch):
    from tracedsl.output.jsonl import JsonlWriter

    def full_disk(self, chunk, rendered=None):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(JsonlWriter, "write", full_disk)
    result = _failing_run(tmp_path)
    assert result.exit_code == IO, result.output
    assert "No space left on device" in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def _slow_render_to_part(chunk, directory):
    """render_to_part, late: the worker is still printing when the run stops."""
    import time

    from tracedsl.output import jsonl

    time.sleep(0.5)
    return jsonl.render_to_part.__wrapped__(chunk, directory)


def test_an_interrupted_pool_run_leaves_nothing_behind(tmp_path, monkeypatch):
    # Ctrl-C while the workers are printing into the run directory: they are stopped before
    # it is removed, so no part file (nor the directory holding it) is left. Without that
    # order a worker creating its part file while the directory is being removed leaves
    # both behind; being a race, this test caught it in about one run of three.
    import functools

    from tracedsl.output import jsonl
    from tracedsl.reports import ReportSet

    real = jsonl.render_to_part
    monkeypatch.setattr(jsonl, "render_to_part", functools.wraps(real)(_slow_render_to_part))

    def interrupt(self, chunk):
        raise KeyboardInterrupt

    monkeypatch.setattr(ReportSet, "add", interrupt)
    result = CliRunner().invoke(
        cli, ["run", "default", "-n", str(SESSIONS), "--output", str(tmp_path), "--quiet", "--workers", "2"]
    )
    assert result.exit_code != 0, result.output  # (130 from the tracedsl command; click says 1 here)
    assert list(tmp_path.iterdir()) == []


def test_aiperf_engine_rows_spilled_beside_the_dataset_are_gone_when_published(tmp_path, monkeypatch):
    from tracedsl.engine import aiperf_sampler

    def run(folder: Path) -> tuple[bytes, list[str]]:
        result = CliRunner().invoke(cli, ["run", "default", "-n", "300", "--engine", "aiperf", "--seed", "3",
                                          "--output", str(folder), "--quiet", "--no-reports"])
        assert result.exit_code == 0, result.output
        (run_dir,) = folder.iterdir()
        return (run_dir / "dataset.jsonl").read_bytes(), sorted(p.name for p in run_dir.iterdir())

    kept = run(tmp_path / "kept")
    spills: list = []
    real = aiperf_sampler._RowSpill
    monkeypatch.setattr(aiperf_sampler, "_RowSpill", lambda parent: spills.append(parent) or real(parent))
    monkeypatch.setattr(aiperf_sampler, "SPILL_ROWS", 500)
    assert run(tmp_path / "spilled") == kept
    assert len(spills) == 1 and Path(spills[0]).parent == tmp_path / "spilled"  # in the run directory
