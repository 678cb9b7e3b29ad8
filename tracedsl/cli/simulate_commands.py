"""CLI commands: simulate (the KV-cache pressure simulation, headless)."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import click

from tracedsl.cli import exitcodes

# only the pure-Python config at start-up: numpy, the model and the reader load when it runs
from tracedsl.reports.simulation_config import (
    DEFAULT_BLOCK_SIZE,
    LAYERS,
    MAX_SESSIONS,
    SimulationConfig,
)

DEFAULTS = SimulationConfig()


def _fail(message: str, code: int) -> None:
    click.echo(f"tracedsl simulate: error: {message}", err=True)
    sys.exit(code)


def _locate(target: Path) -> tuple[Path, int | None]:
    """The dataset to read and, for a run directory, the block size its manifest records."""
    if not target.exists():
        _fail(f"{target}: no such file or directory", exitcodes.IO)
    if target.is_file():
        return target, None
    dataset = target / "dataset.jsonl"
    if not dataset.is_file():
        _fail(f"{target}: not a run directory (no dataset.jsonl in it)", exitcodes.IO)
    manifest = target / "manifest.json"
    if manifest.is_file():
        try:
            params = json.loads(manifest.read_text(encoding="utf-8")).get("generation_params")
            block_size = params.get("block_size") if isinstance(params, dict) else None
        except (OSError, ValueError, AttributeError) as exc:
            _fail(f"{manifest}: cannot read the manifest: {exc}", exitcodes.INPUT)
        if isinstance(block_size, int) and not isinstance(block_size, bool) and block_size > 0:
            return dataset, block_size
    return dataset, None


def _read_sample(dataset: Path, max_sessions: int | None):
    from tracedsl.diagnostics import DiagnosticError, render
    from tracedsl.output.reader import read_trace
    from tracedsl.reports.simulation import SimulationSample

    # the default is exactly the page's sample, so both show the same figures
    sample = (
        SimulationSample()
        if max_sessions is None
        else SimulationSample(max_sessions, max_rows=None, max_id_numbers=None, for_page=False)
    )
    try:
        for chunk in read_trace(dataset):
            sample.add(chunk)
    except DiagnosticError as exc:
        for diagnostic in exc.diagnostics:
            click.echo(render(diagnostic), err=True)
        sys.exit(exitcodes.INPUT)
    except OSError as exc:
        _fail(f"{dataset}: {exc.strerror or exc}", exitcodes.IO)
    if not sample.num_sessions:
        _fail(f"{dataset}: the trace has no rows to simulate", exitcodes.INPUT)
    return sample


def _text(summary: dict, config: SimulationConfig, sample) -> str:
    """The figures as the page labels them, one per line."""
    per_block = config.kv_bytes_per_token * config.block_size
    lines = [
        f"simulated {sample.describe()}",
        f"inputs: concurrency {config.concurrency}, prefill {config.prefill_tps:g} tok/s, "
        f"decode {config.decode_tps:g} tok/s per request, KV {config.kv_gb:g} GB, "
        f"{config.kv_bytes_per_token} bytes/token, block size {config.block_size}",
        f"sessions: {summary['sessions']:,} ({summary['restarts']:,} restart continuations)",
        f"requests: {summary['requests']:,}",
        f"duration: {summary['duration_s']:.1f} s",
        f"prefix-cache hit rate: {100 * summary['hit_rate']:.2f}%"
        f" (unbounded cache: {100 * summary['unbounded_hit_rate']:.2f}%)",
        f"prompt tokens: {summary['prompt_tokens']:,} = {summary['hit_tokens']:,} hit"
        f" + {summary['miss_tokens']:,} prefilled",
        f"mean TTFT (wait + prefill): {summary['mean_ttft_ms']:.1f} ms;"
        f" max {summary['max_ttft_ms']:.1f} ms",
        f"mean wait for prefill: {summary['mean_prefill_wait_ms']:.1f} ms",
        f"prefill server busy: {summary['prefill_busy_ms'] / 1000:.1f} s",
        f"peak active requests: {summary['peak_active_requests']:,}",
        f"peak prompt tokens in flight: {summary['peak_prompt_tokens_in_flight']:,}",
        f"KV capacity: {summary['capacity_blocks']:,} blocks"
        f" ({summary['capacity_blocks'] * per_block / 1e9:.2f} GB)",
        f"peak resident blocks: {summary['peak_resident_blocks']:,}"
        f" ({summary['peak_kv_gb']:.2f} GB)",
        f"peak blocks over capacity (all pinned): {summary['peak_overflow_blocks']:,}",
        "evicted blocks: "
        + ", ".join(f"{name} {summary[f'evicted_{name}_blocks']:,}" for name in LAYERS),
        "re-prefilled after eviction: "
        + ", ".join(f"{name} {summary[f'refetched_{name}_blocks']:,}" for name in LAYERS),
    ]
    return "\n".join(lines)


@click.command("simulate")
@click.argument("target", metavar="RUN_DIR|DATASET", type=click.Path(path_type=Path))
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=DEFAULTS.concurrency,
    show_default=True,
    help="Sessions in flight at once (closed loop).",
)
@click.option(
    "--prefill-tps",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULTS.prefill_tps,
    show_default=True,
    help="Prefill throughput of the one prefill server, tokens/s.",
)
@click.option(
    "--decode-tps",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULTS.decode_tps,
    show_default=True,
    help="Decode throughput of each request, tokens/s.",
)
@click.option(
    "--kv-gb",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULTS.kv_gb,
    show_default=True,
    help="KV-cache capacity, GB (1e9 bytes).",
)
@click.option(
    "--kv-bytes-per-token",
    type=click.IntRange(min=1),
    default=DEFAULTS.kv_bytes_per_token,
    show_default=True,
    help="KV-cache bytes per token (all layers).",
)
@click.option(
    "--block-size",
    type=click.IntRange(min=1),
    default=None,
    help="Tokens per hash id [default: the run's block size, else 512].",
)
@click.option(
    "--max-sessions",
    type=click.IntRange(min=0),
    default=None,
    help=f"Simulate the first N sessions in file order (0: all) [default: the page's "
    f"sample, at most {MAX_SESSIONS:,} sessions].",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the summary, time series and requests as JSON."
)
def simulate_command(
    target,
    concurrency,
    prefill_tps,
    decode_tps,
    kv_gb,
    kv_bytes_per_token,
    block_size,
    max_sessions,
    as_json,
):
    """Simulate KV-cache pressure when replaying a trace: the figures simulation.html shows."""
    dataset, run_block_size = _locate(target)
    config = SimulationConfig(
        concurrency=concurrency,
        prefill_tps=prefill_tps,
        decode_tps=decode_tps,
        kv_gb=kv_gb,
        kv_bytes_per_token=kv_bytes_per_token,
        block_size=block_size or run_block_size or DEFAULT_BLOCK_SIZE,
    )
    from tracedsl.reports.simulation_model import simulate

    sample = _read_sample(dataset, max_sessions)
    result = simulate(sample.trace, config, record=as_json)  # text needs no series
    if as_json:
        payload = {
            "dataset": str(dataset),
            "sample": sample.describe(),
            "config": asdict(config),
            **result.to_json(),
        }
        click.echo(json.dumps(payload, separators=(",", ":")))
    else:
        click.echo(_text(result.summary, config, sample))


COMMANDS: list = [simulate_command]
