"""Prints the benchmark's one table and the ratios between cases measured in the same run."""

from __future__ import annotations

LEGEND = (
    "peak MB: the largest single process (ru_maxrss); tree MB: the whole process tree at its\n"
    "sampled peak (PSS every 50-250 ms). CLI cases are timed from outside, start-up included;\n"
    "sampling, sampling + dataset.jsonl, the floor and the reference's synthesis + write time\n"
    "only their own section, inside the process (imports and reading inputs excluded)."
)
HEADER = ("case", "engine", "sessions", "rows", "wall s", "cpu s", "peak MB", "tree MB", "rows/s")


def print_report(report: dict) -> None:
    machine = report["machine"]
    print(
        f"\ntracedsl benchmark, {report['date_utc']}, spec {report['spec']}, seed {report['seed']}"
        f"\n{machine['nproc']} cores, {machine['memory_total_gib']} GiB, {machine['cpu_model']}, "
        f"Python {machine['python']}, numpy {machine['numpy']}, commit {machine['commit']}, "
        f"load average {machine.get('load_average_1m_at_start')} at start, "
        f"{machine.get('load_average_1m')} at end\n"
    )
    print_table(report["results"])
    print()
    print(_legend(report))
    print()
    for line in ratio_lines(report["results"]):
        print(line)


def print_table(results: list[dict]) -> None:
    rows = [HEADER] + [_cells(result) for result in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    for index, row in enumerate(rows):
        print(
            "  ".join(
                cell.ljust(w) if i < 2 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if index == 0:
            print("  ".join("-" * w for w in widths))
    failed = [result for result in results if not result["ok"]]
    for result in failed:
        print(
            f"FAILED {result['case']} [{result['engine']}] at {result['sessions']}: "
            f"{result.get('error', '')}"
        )


def _cells(result: dict) -> tuple[str, ...]:
    if not result["ok"]:
        return (
            result["case"],
            result["engine"],
            f"{result['sessions']:,}",
            "FAILED",
            "",
            "",
            "",
            "",
            "",
        )
    rate = result["rows_per_s"]
    return (
        result["case"],
        result["engine"],
        f"{result['sessions']:,}",
        f"{result['rows']:,}" if result["rows"] is not None else "?",
        f"{result['wall_s']:.2f}",
        f"{result['cpu_s']:.2f}",
        f"{result['peak_rss_mb']:.0f}",
        f"{result['peak_tree_pss_mb']:.0f}",
        f"{rate:,.0f}" if rate else "?",
    )


def _find(results: list[dict], case: str, engine: str, sessions: int) -> dict | None:
    for result in results:
        if (
            result["ok"]
            and result["case"].startswith(case)
            and result["engine"] == engine
            and result["sessions"] == sessions
        ):
            return result
    return None


def _faster(slow: dict, fast: dict) -> str:
    """How many times faster, by wall time and by CPU time (CPU is steadier on a busy machine)."""
    return (
        f"wall {slow['wall_s'] / fast['wall_s']:.1f}x, "
        f"CPU {slow['cpu_s'] / fast['cpu_s']:.1f}x faster"
    )


def ratio_lines(results: list[dict]) -> list[str]:
    """The side-by-side ratios the issues set targets for, from this run's cases only."""
    lines = ["ratios (same run):"]
    sizes = sorted({result["sessions"] for result in results})
    for sessions in sizes:
        ref_cli = _find(results, "reference CLI", "reference", sessions)
        ref_phases = _find(results, "reference synthesis", "reference", sessions)
        floor = _find(results, "write-only floor", "-", sessions)
        for engine in ("fast", "aiperf"):
            cli = _find(results, "tracedsl run (CLI", engine, sessions)
            both = _find(results, "sampling + dataset", engine, sessions)
            if cli and ref_cli:
                lines.append(
                    f"  {sessions:>9,}  {engine:<6} end to end vs reference CLI: "
                    f"{_faster(ref_cli, cli)}"
                )
            if both and ref_phases:
                lines.append(
                    f"  {sessions:>9,}  {engine:<6} sampling+write vs reference "
                    f"synthesis+write: {_faster(ref_phases, both)}"
                )
            if both and floor:
                lines.append(
                    f"  {sessions:>9,}  {engine:<6} sampling+write / write-only floor: "
                    f"wall {both['wall_s'] / floor['wall_s']:.2f}x, "
                    f"CPU {both['cpu_s'] / floor['cpu_s']:.2f}x"
                )
    for sessions in sizes:
        one = _find(results, "tracedsl run --workers 1", "fast", sessions)
        two = _find(results, "tracedsl run --workers 2", "fast", sessions)
        if one and two:
            lines.append(
                f"  {sessions:>9,}  fast   --workers 2 vs 1 (end to end): "
                f"wall {one['wall_s'] / two['wall_s']:.2f}x faster "
                f"({one['wall_s']:.2f} s -> {two['wall_s']:.2f} s); "
                f"CPU of the tracedsl process {_seconds(one.get('main_cpu_s'))} -> "
                f"{_seconds(two.get('main_cpu_s'))}; all processes {one['cpu_s']:.2f} s -> "
                f"{two['cpu_s']:.2f} s"
            )
    memory = [
        (r["sessions"], r["peak_tree_pss_mb"])
        for r in results
        if r["ok"] and r["case"].startswith("tracedsl run (CLI") and r["engine"] == "fast"
    ]
    if memory:
        listed = ", ".join(f"{sessions:,}: {mb:.0f} MB" for sessions, mb in memory)
        lines.append(f"  memory, fast engine end to end (tree PSS peak): {listed}")
    return lines


def _legend(report: dict) -> str:
    repeat = report.get("repeat", 1)
    if repeat <= 1:
        return LEGEND
    return LEGEND + (
        f"\nThe two end-to-end CLI cases (tracedsl run and the reference CLI) ran {repeat} times"
        "\neach; the table gives the run with the median wall time."
    )


def _seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f} s"


def markdown(report: dict) -> str:
    """The same table and ratios as Markdown, for docs/performance.md."""
    machine = report["machine"]
    lines = [
        f"Measured {report['date_utc']} on {machine['nproc']} cores, "
        f"{machine['memory_total_gib']} GiB, {machine['cpu_model']}; Python {machine['python']}, "
        f"numpy {machine['numpy']}, orjson {machine['orjson']}; commit {machine['commit']}; "
        f"load average {machine.get('load_average_1m_at_start')} at start, "
        f"{machine.get('load_average_1m')} at end; "
        f"spec `{report['spec']}`, seed {report['seed']}.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join("---" if i < 2 else "---:" for i in range(len(HEADER))) + "|",
    ]
    lines += ["| " + " | ".join(_cells(result)) + " |" for result in report["results"]]
    lines += ["", _legend(report).replace("\n", " "), ""]
    lines += [f"- {line.strip()}" for line in ratio_lines(report["results"])[1:]]
    return "\n".join(lines) + "\n"
