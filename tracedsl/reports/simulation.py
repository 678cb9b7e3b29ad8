"""simulation.html and the headless simulation: a bounded sample of sessions, rendered or run.

``SimulationSample`` keeps the first sessions of a trace in file order (a bounded number, so
the page stays small whatever the trace size); ``write_simulation_html`` embeds them in a
self-contained page whose JS runs the same model as ``simulate`` (simulation_model.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from tracedsl.reports.simulation_blocks import SimTrace, clean_delays
from tracedsl.reports.simulation_config import (
    LAYERS,
    MAX_ID_NUMBERS,
    MAX_ROWS,
    MAX_SESSIONS,
    SimulationConfig,
)
from tracedsl.reports.simulation_model import SimSession, SimulationResult, simulate
from tracedsl.trace import TraceChunk

__all__ = [
    "SimSession",
    "SimTrace",
    "SimulationConfig",
    "SimulationResult",
    "SimulationSample",
    "simulate",
    "write_simulation_html",
]

HERE = Path(__file__).resolve().parent
SESSION_ID_CHARS = 80


def _id_runs(hash_ids: np.ndarray, hash_offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's hash ids as runs of consecutive values: (runs before each row + 1, flat
    [start, count, start, count, ...])."""
    starts = np.ones(len(hash_ids), dtype=bool)
    starts[1:] = hash_ids[1:] != hash_ids[:-1] + 1
    row_firsts = hash_offsets[:-1][np.diff(hash_offsets) > 0]
    starts[row_firsts] = True  # a run never crosses rows
    where = np.flatnonzero(starts)
    ranges = np.empty(2 * len(where), dtype=np.int64)
    ranges[0::2] = hash_ids[where]
    ranges[1::2] = np.diff(np.append(where, len(hash_ids)))
    return np.searchsorted(where, hash_offsets), ranges


def _over(values: np.ndarray, bound: int | None) -> np.ndarray:
    if bound is None or bound <= 0:
        return np.zeros(len(values), dtype=bool)
    return values > bound


class SimulationSample:
    """The first sessions of a trace, in file order, within the page's bounds (streaming).

    ``add`` is called on every chunk of a run: it keeps whole column slices of the sessions
    that fit (decided for the whole chunk at once) and, once full, only counts sessions.
    """

    def __init__(
        self,
        max_sessions: int | None = MAX_SESSIONS,
        max_rows: int | None = MAX_ROWS,
        max_id_numbers: int | None = MAX_ID_NUMBERS,
        *,
        for_page: bool = True,
    ) -> None:
        self.max_sessions = max_sessions
        self.for_page = for_page  # False: keep sessions for simulate() only, skip the id runs
        self.max_rows = max_rows
        self.max_id_numbers = max_id_numbers
        self.total_sessions = 0
        self.full = False
        self._parts: list[dict] = []  # per chunk: the columns of the sessions taken
        self._sessions = 0
        self._rows = 0
        self._id_numbers = 0
        self._trace: SimTrace | None = None

    @property
    def num_sessions(self) -> int:
        return self._sessions

    @property
    def truncated(self) -> bool:
        return self._sessions < self.total_sessions

    def add(self, chunk: TraceChunk) -> None:
        """Take sessions from a chunk until a bound is reached; later sessions are only counted."""
        self.total_sessions += chunk.num_sessions
        if self.full or chunk.num_sessions == 0:
            return
        row_offsets = np.asarray(chunk.row_offsets, dtype=np.int64)
        hash_offsets = np.asarray(chunk.hash_offsets, dtype=np.int64)
        hash_ids = np.asarray(chunk.hash_ids).astype(np.int64, copy=False)
        if self.for_page:
            runs_before, ranges = _id_runs(hash_ids, hash_offsets)
            numbers = 2 * np.diff(runs_before[row_offsets])
        else:
            runs_before, ranges = np.zeros(len(hash_offsets), np.int64), np.zeros(0, np.int64)
            numbers = np.zeros(chunk.num_sessions, np.int64)
        # stop before the first session that would pass a bound (the very first always fits)
        over = (
            _over(self._sessions + np.arange(1, chunk.num_sessions + 1), self.max_sessions)
            | _over(self._rows + row_offsets[1:], self.max_rows)
            | _over(self._id_numbers + np.cumsum(numbers), self.max_id_numbers)
        )
        take = int(np.argmax(over)) if over.any() else chunk.num_sessions
        if take == 0 and self._sessions == 0:
            take = 1
        if take < chunk.num_sessions or (
            self.max_sessions and self._sessions + take >= self.max_sessions
        ):
            self.full = True
        if take == 0:
            return
        rows = int(row_offsets[take])
        ids = int(hash_offsets[rows])
        # copies, so the sample holds only its own sessions, never the chunks they came from
        self._parts.append(
            {
                "session_ids": [str(name) for name in chunk.session_ids[:take]],
                "restart": np.array(chunk.is_restart[:take], dtype=bool),
                "turns": np.diff(row_offsets[: take + 1]),
                "input": np.array(chunk.input_length[:rows], dtype=np.int64),
                "output": np.array(chunk.output_length[:rows], dtype=np.int64),
                "delay": np.array(chunk.delay_ms[:rows], dtype=np.float64),
                "counts": np.diff(hash_offsets[: rows + 1]),
                "ids": hash_ids[:ids].copy(),
                "runs": np.diff(runs_before[: rows + 1]),
                "ranges": ranges[: 2 * int(runs_before[rows])].copy(),
            }
        )
        self._sessions += take
        self._rows += rows
        self._id_numbers += int(numbers[:take].sum())
        self._trace = None

    def _joined(self, name: str, dtype=np.int64) -> np.ndarray:
        items = [part[name] for part in self._parts]
        return np.concatenate(items).astype(dtype, copy=False) if items else np.zeros(0, dtype)

    @property
    def trace(self) -> SimTrace:
        """The sampled sessions as one SimTrace (built once, when first asked for)."""
        if self._trace is None:
            row_offsets = np.concatenate(([0], np.cumsum(self._joined("turns"))))
            self._trace = SimTrace(
                session_ids=[name for part in self._parts for name in part["session_ids"]],
                is_restart=self._joined("restart", bool),
                row_offsets=row_offsets,
                input_length=self._joined("input"),
                output_length=self._joined("output"),
                delay_ms=clean_delays(self._joined("delay", np.float64), row_offsets),
                hash_offsets=np.concatenate(([0], np.cumsum(self._joined("counts")))),
                hash_ids=self._joined("ids"),
            )
        return self._trace

    def encoded(self) -> dict:
        """The sample as the page embeds it: columns, hash ids as [start, count] runs."""
        trace = self.trace
        return {
            "session_ids": [name[:SESSION_ID_CHARS] for name in trace.session_ids],
            "restart": trace.is_restart.astype(np.int8).tolist(),
            "turns": np.diff(trace.row_offsets).tolist(),
            "input": trace.input_length.tolist(),
            "output": trace.output_length.tolist(),
            "delay": trace.delay_ms.tolist(),
            "runs": self._joined("runs").tolist(),
            "ranges": self._joined("ranges").tolist(),
        }

    def describe(self) -> str:
        """One line saying which sessions were simulated."""
        shown = self._sessions
        if not self.truncated:
            return f"all {shown:,} sessions of the trace"
        return f"the first {shown:,} of {self.total_sessions:,} sessions in file order"


def _script_json(value: object) -> Markup:
    """JSON safe inside a <script> element: no '<', '>' or '&' survive unescaped."""
    # orjson: ~10x faster than json on the sample's columns; NaN cannot occur (delays are
    # cleaned, inputs validated), and it would become null, never bare NaN
    text = orjson.dumps(value).decode("utf-8")
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return Markup(text)


def _plain(value: float) -> str:
    """A number as a person types it: 64000, not 64000.0."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def _static(name: str) -> Markup:
    """A JS or CSS asset to inline; it must not close its own element."""
    text = (HERE / "static" / name).read_text(encoding="utf-8")
    if "</script" in text.lower() or "</style" in text.lower():
        raise ValueError(f"static/{name} contains a closing tag")
    return Markup(text)


def render_simulation_html(
    sample: SimulationSample, *, name: str, block_size: int, config: SimulationConfig | None = None
) -> str:
    """The page as a string: inputs, the embedded sample, the engine and the charts."""
    config = config or SimulationConfig(block_size=block_size)
    data = {
        "name": name,
        "sample": sample.describe(),
        "layers": list(LAYERS),
        "defaults": {
            "concurrency": config.concurrency,
            "prefill_tps": config.prefill_tps,
            "decode_tps": config.decode_tps,
            "kv_gb": config.kv_gb,
            "kv_bytes_per_token": config.kv_bytes_per_token,
            "block_size": block_size,
        },
        "trace": sample.encoded(),
    }
    template = _environment().get_template("simulation.html.j2")
    return template.render(
        name=name,
        sample_text=sample.describe(),
        defaults={key: _plain(value) for key, value in data["defaults"].items()},
        data_json=_script_json(data),
        engine_js=_static("sim_engine.js"),
        charts_js=_static("sim_charts.js"),
        page_js=_static("sim_page.js"),
        page_css=_static("sim_page.css"),
    )


def write_simulation_html(
    path: str | Path,
    sample: SimulationSample,
    *,
    name: str,
    block_size: int,
    config: SimulationConfig | None = None,
) -> Path:
    """Write simulation.html atomically (a temporary file renamed into place)."""
    path = Path(path)
    html = render_simulation_html(sample, name=name, block_size=block_size, config=config)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(html, encoding="utf-8")
    partial.replace(path)
    return path
