"""The command line: click commands only; the only place that prints or exits.

Its modules import nothing of tracedsl but the pipeline, the diagnostics and the exit codes
(tests/test_cli_imports.py); every failure reaches it as one DiagnosticError.
"""

from __future__ import annotations

import os
import sys

import click

from tracedsl import pipeline
from tracedsl.cli import exitcodes
from tracedsl.cli.printing import fail
from tracedsl.cli.report_commands import COMMANDS as REPORT_COMMANDS
from tracedsl.cli.run_commands import COMMANDS as RUN_COMMANDS
from tracedsl.cli.simulate_commands import COMMANDS as SIMULATE_COMMANDS
from tracedsl.cli.spec_commands import COMMANDS as SPEC_COMMANDS
from tracedsl.diagnostics import DiagnosticError

_EPILOG = """\b
Exit codes:
  0    ok
  1    the command found problems (validate, check, fmt --check, run --strict)
  2    bad arguments
  3    invalid input (a .trace, config, manifest or trace row)
  4    a file could not be read or written
  5    the engine cannot run the spec
  70   a bug in tracedsl (TRACEDSL_DEBUG=1 shows the traceback)
  130  interrupted
"""


class _Commands(click.Group):
    """The command group; the one place a pipeline failure becomes a message and an exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DiagnosticError as error:
            fail(error)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]}, epilog=_EPILOG)
@click.version_option(pipeline.VERSION, prog_name="tracedsl")
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
