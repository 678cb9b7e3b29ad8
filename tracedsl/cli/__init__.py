"""The command line: click commands only; the only place that prints or exits."""

from __future__ import annotations

import os
import sys

import click

from tracedsl import __version__
from tracedsl.cli import exitcodes
from tracedsl.cli.report_commands import COMMANDS as REPORT_COMMANDS
from tracedsl.cli.run_commands import COMMANDS as RUN_COMMANDS
from tracedsl.cli.simulate_commands import COMMANDS as SIMULATE_COMMANDS
from tracedsl.cli.spec_commands import COMMANDS as SPEC_COMMANDS

_EPILOG = """\b
Exit codes: 0 ok; 1 the command found problems (validate, check, fmt --check);
2 bad arguments; 3 invalid input (a .trace, config, manifest or trace row);
4 a file could not be read or written; 5 the engine cannot run the spec;
130 interrupted; 70 a bug in tracedsl (TRACEDSL_DEBUG=1 shows the traceback).
"""


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=_EPILOG)
@click.version_option(__version__, prog_name="tracedsl")
def cli() -> None:
    """Write synthetic coding-agent traces in a small language and run them into Mooncake JSONL."""


for _command in (*SPEC_COMMANDS, *RUN_COMMANDS, *REPORT_COMMANDS, *SIMULATE_COMMANDS):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; an unexpected exception becomes a one-line message, not a traceback."""
    try:
        code = cli.main(args=argv, prog_name="tracedsl", standalone_mode=False)
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("tracedsl: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
        if os.environ.get("TRACEDSL_DEBUG"):
            raise
        click.echo(
            f"tracedsl: internal error: {type(exc).__name__}: {exc}\n"
            "  this is a bug in tracedsl; set TRACEDSL_DEBUG=1 to see the traceback",
            err=True,
        )
        sys.exit(exitcodes.INTERNAL)
    sys.exit(code if isinstance(code, int) else exitcodes.OK)
