"""ReportSet: feed it every chunk of a trace, then write all the report files of a run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import orjson

from tracedsl.ir import GenerationParams
from tracedsl.output.sessions import link_counts
from tracedsl.reports.collect import Collector
from tracedsl.reports.comparison import comparison_text
from tracedsl.reports.quality import quality
from tracedsl.reports.reuse import LAYERS, STATUS
from tracedsl.trace import TraceChunk


class ReportSet:
    """Streaming accumulators for one trace; ``write`` renders quality.json, comparison.txt and HTML."""

    def __init__(self, params: GenerationParams | None, name: str, block_size: int,
                 engine: str = "fast") -> None:
        self.params = params
        self.engine = engine  # whose law the quality targets follow (each engine samples its own)
        self.name = name
        self.block_size = block_size
        self.collector = Collector(params, block_size)
        self._simulation = _simulation_sample()

    def add(self, chunk: TraceChunk) -> None:
        self.collector.add(chunk)
        if self._simulation is not None:
            self._simulation.add(chunk)

    def quality(self, sessions_index: Path | None = None) -> dict:
        """quality.json; with a sessions.jsonl, its ``session_links`` count the links by kind."""
        report = quality(self.collector, self.name, self.engine)
        if sessions_index is not None and Path(sessions_index).is_file():
            report["session_links"] = link_counts(sessions_index)
        return report

    def cache_structure(self) -> dict:
        collector = self.collector
        sessions = collector.sample_sessions()
        return {
            "block_size": self.block_size,
            "layers": [*LAYERS, "outputs"],
            "statuses": list(STATUS),
            "sample": {
                "sessions": len(sessions),
                "of_sessions": collector.sessions,
                "method": "per end reason, the sessions with the smallest 64-bit hash of their id "
                f"(up to {len(sessions) and max(len(v) for v in collector.sample.values())} each), "
                "among the sessions the reuse analysis covers; layers decided from that whole sample",
            },
            "encoding": "each turn lists the runs of blocks entering the prompt at that turn as "
            "[layer, status, blocks]; a turn's prompt is every earlier turn's blocks (carried) "
            "followed by these",
            "sessions": sessions,
        }

    def write(self, run_dir: Path, html: bool = True, sessions_index: Path | None = None) -> list[Path]:
        """Write every report file into run_dir; each appears whole or not at all.

        ``sessions_index``: the trace's sessions.jsonl, when it has one (links by kind).
        """
        run_dir = Path(run_dir)
        report = self.quality(sessions_index)
        structure = self.cache_structure()
        written = [
            _write(run_dir / "quality.json", orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)),
            _write(run_dir / "comparison.txt", comparison_text(
                report, self.name, self.collector.sessions, self.collector.rows, self.block_size
            ).encode()),
            _write(run_dir / "cache_structure.json", orjson.dumps(structure, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)),
        ]
        if html:
            from tracedsl.reports.html import render_cache_explorer, render_report

            written.append(_write(run_dir / "report.html",
                                  render_report(self.collector, report, self.name).encode()))
            written.append(_write(run_dir / "cache_explorer.html",
                                  render_cache_explorer(structure, self.name).encode()))
            if self._simulation is not None:
                # The simulation page belongs to tracedsl.reports.simulation (its own engineer).
                from tracedsl.reports.simulation import write_simulation_html

                written.append(write_simulation_html(
                    run_dir / "simulation.html", self._simulation, name=self.name,
                    block_size=self.block_size))
        return written


def _simulation_sample():
    if importlib.util.find_spec("tracedsl.reports.simulation") is None:
        return None
    from tracedsl.reports.simulation import SimulationSample

    return SimulationSample()


def _write(path: Path, data: bytes) -> Path:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)
    return path
