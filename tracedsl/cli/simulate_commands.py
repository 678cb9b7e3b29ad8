"""CLI commands: simulate (the KV-cache pressure simulation, headless)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tracedsl import pipeline
from tracedsl.cli.options import block_size_option

DEFAULTS = pipeline.SIMULATION_DEFAULTS
LAYERS = pipeline.SIMULATION_LAYERS


def _text(summary: dict, config, sample) -> str:
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


@click.command("simulate", short_help="Simulate KV-cache pressure when replaying a trace.")
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
@block_size_option()
@click.option(
    "--max-sessions",
    type=click.IntRange(min=0),
    default=None,
    help=f"Simulate the first N sessions in file order (0: all) [default: the page's "
    f"sample, at most {pipeline.SIMULATION_MAX_SESSIONS:,} sessions].",
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
    done = pipeline.simulate(
        target, block_size=block_size, max_sessions=max_sessions, record=as_json,  # text needs no series
        concurrency=concurrency, prefill_tps=prefill_tps, decode_tps=decode_tps, kv_gb=kv_gb,
        kv_bytes_per_token=kv_bytes_per_token,
    )
    if as_json:
        click.echo(json.dumps(done.to_json(), separators=(",", ":")))
    else:
        click.echo(_text(done.result.summary, done.config, done.sample))


COMMANDS: list = [simulate_command]
