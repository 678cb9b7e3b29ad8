"""`tracedsl report`: rebuild every report of a run directory or of any Mooncake trace file."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import orjson

from tracedsl.ir import GenerationParams
from tracedsl.output.reader import read_trace
from tracedsl.output.rundir import locate_run
from tracedsl.reports.reportset import ReportSet

INFER_ROWS = 5000  # rows read to infer a foreign trace's block size
POWERS_OF_TWO = tuple(2**k for k in range(4, 15))


@dataclass(frozen=True)
class ReportJob:
    dataset: Path
    manifest: Path | None
    output: Path


def locate(source: Path, output: Path | None) -> ReportJob:
    """The trace, its manifest and where to write (the run directory rule: output.rundir.locate_run)."""
    found = locate_run(source)
    return ReportJob(found.dataset, found.manifest, output or found.dataset.parent)


def infer_block_size(dataset: Path) -> int | None:
    """The block size every row agrees with: (len(ids)-1)*bs < input_length <= len(ids)*bs."""
    lower, upper = 1.0, math.inf
    with open(dataset, "rb") as handle:
        for count, line in enumerate(handle):
            if count >= INFER_ROWS:
                break
            try:
                row = orjson.loads(line)
                blocks, tokens = len(row["hash_ids"]), int(row["input_length"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # the reader reports broken rows with their line numbers
            if blocks == 0:
                continue
            lower = max(lower, tokens / blocks)
            if blocks > 1:
                upper = min(upper, tokens / (blocks - 1))
    fitting = [size for size in POWERS_OF_TWO if lower <= size < upper]
    if fitting:
        return 512 if 512 in fitting else fitting[0]
    return math.ceil(lower) if lower < upper else None


def regenerate(job: ReportJob, params: GenerationParams | None, name: str, block_size: int,
               html: bool = True, engine: str = "fast") -> tuple[list[Path], ReportSet]:
    """Stream the trace through a ReportSet and write its files into the output directory."""
    reports = ReportSet(params, name, block_size, engine)
    for chunk in read_trace(job.dataset):
        reports.add(chunk)
    if reports.collector.rows == 0:
        raise ValueError(f"{job.dataset}: the trace has no rows")
    job.output.mkdir(parents=True, exist_ok=True)
    return reports.write(job.output, html=html), reports
