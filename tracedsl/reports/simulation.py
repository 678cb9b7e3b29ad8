"""simulation.html and the headless simulation: a bounded sample of sessions, rendered or run.

``SimulationSample`` keeps the first sessions of a trace in file order (a bounded number, so
the page stays small whatever the trace size); ``write_simulation_html`` embeds them in a
self-contained page whose JS runs the same model as ``simulate`` (simulation_model.py).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from tracedsl.reports.simulation_model import (
    LAYERS,
    SimSession,
    SimulationConfig,
    SimulationResult,
    simulate,
)
from tracedsl.trace import TraceChunk

__all__ = [
    "SimSession",
    "SimulationConfig",
    "SimulationResult",
    "SimulationSample",
    "simulate",
    "write_simulation_html",
]

HERE = Path(__file__).resolve().parent
# The page's bounds: the first sessions in file order, stopping before the first session that
# would pass any of these (the first session always fits). ~2000 sessions of a default
# coding-agent trace is about 1.5 MB of page and simulates in well under a second in JS.
MAX_SESSIONS = 2000
MAX_ROWS = 40_000
MAX_ID_NUMBERS = 400_000  # numbers in the range-compressed hash ids
SESSION_ID_CHARS = 80


def _id_ranges(ids: np.ndarray) -> list[int]:
    """Hash ids as flat [start, count, start, count, ...] runs of consecutive values."""
    if len(ids) == 0:
        return []
    breaks = np.flatnonzero(np.diff(ids) != 1) + 1
    starts = np.concatenate(([0], breaks))
    counts = np.diff(np.concatenate((starts, [len(ids)])))
    out = np.empty(2 * len(starts), dtype=np.int64)
    out[0::2] = ids[starts]
    out[1::2] = counts
    return out.tolist()


class SimulationSample:
    """The first sessions of a trace, in file order, within the page's bounds (streaming)."""

    def __init__(
        self,
        max_sessions: int | None = MAX_SESSIONS,
        max_rows: int | None = MAX_ROWS,
        max_id_numbers: int | None = MAX_ID_NUMBERS,
        *,
        for_page: bool = True,
    ) -> None:
        self.max_sessions = max_sessions
        self.for_page = for_page  # False: keep sessions for simulate() only, skip the encoding
        self.max_rows = max_rows
        self.max_id_numbers = max_id_numbers
        self.sessions: list[SimSession] = []
        self.encoded: list[list] = []
        self.total_sessions = 0
        self.full = False
        self._rows = 0
        self._id_numbers = 0

    @property
    def truncated(self) -> bool:
        return len(self.sessions) < self.total_sessions

    def add(self, chunk: TraceChunk) -> None:
        """Take sessions from a chunk until a bound is reached; later sessions are only counted."""
        self.total_sessions += chunk.num_sessions
        if self.full:
            return
        for index in range(chunk.num_sessions):
            first, last = int(chunk.row_offsets[index]), int(chunk.row_offsets[index + 1])
            ids = [chunk.row_hash_ids(row).astype(np.int64) for row in range(first, last)]
            ranges = [_id_ranges(row_ids) for row_ids in ids] if self.for_page else []
            numbers = sum(len(r) for r in ranges)
            if self.sessions and (
                _over(len(self.sessions) + 1, self.max_sessions)
                or _over(self._rows + last - first, self.max_rows)
                or _over(self._id_numbers + numbers, self.max_id_numbers)
            ):
                self.full = True
                return
            delays = [
                0.0 if not math.isfinite(d) or d < 0 else float(d)
                for d in chunk.delay_ms[first:last].tolist()
            ]
            delays[0] = 0.0  # closed loop: a session starts when a slot frees up
            session = SimSession(
                session_id=str(chunk.session_ids[index]),
                is_restart=bool(chunk.is_restart[index]),
                input_length=[int(v) for v in chunk.input_length[first:last].tolist()],
                output_length=[int(v) for v in chunk.output_length[first:last].tolist()],
                delay_ms=delays,
                hash_ids=ids,
            )
            self.sessions.append(session)
            if not self.for_page:
                self._rows += last - first
                continue
            self.encoded.append(
                [
                    session.session_id[:SESSION_ID_CHARS],
                    1 if session.is_restart else 0,
                    [
                        [i, o, d, r]
                        for i, o, d, r in zip(
                            session.input_length,
                            session.output_length,
                            delays,
                            ranges,
                            strict=True,
                        )
                    ],
                ]
            )
            self._rows += last - first
            self._id_numbers += numbers

    def describe(self) -> str:
        """One line saying which sessions were simulated."""
        shown = len(self.sessions)
        if not self.truncated:
            return f"all {shown:,} sessions of the trace"
        return f"the first {shown:,} of {self.total_sessions:,} sessions in file order"


def _over(value: int, bound: int | None) -> bool:
    return bound is not None and bound > 0 and value > bound


def _script_json(value: object) -> Markup:
    """JSON safe inside a <script> element: no '<', '>' or '&' survive unescaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
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
        "sessions": sample.encoded,
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
