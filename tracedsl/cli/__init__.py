"""The command line: click commands only; the only place that prints or exits.

Its modules import nothing of tracedsl but the pipeline, the diagnostics and the exit codes
(tests/test_cli_imports.py); every failure reaches it as one DiagnosticError.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

import click

from tracedsl import pipeline
from tracedsl.cli import exitcodes
from tracedsl.cli.compare_commands import COMMANDS as COMPARE_COMMANDS
from tracedsl.cli.fit_commands import COMMANDS as FIT_COMMANDS
from tracedsl.cli.preset_commands import COMMANDS as PRESET_COMMANDS
from tracedsl.cli.printing import fail
from tracedsl.cli.report_commands import COMMANDS as REPORT_COMMANDS
from tracedsl.cli.run_commands import COMMANDS as RUN_COMMANDS
from tracedsl.cli.simulate_commands import COMMANDS as SIMULATE_COMMANDS
from tracedsl.cli.spec_commands import COMMANDS as SPEC_COMMANDS
from tracedsl.diagnostics import DiagnosticError

_EPILOG = """\b
Exit codes:
  0    ok
  1    the command found problems (validate, check, fmt --check, run --strict,
       compare: a figure outside tolerance)
  2    bad arguments
  3    invalid input (a .trace, config, manifest or trace row)
  4    a file could not be read or written
  5    the engine cannot run the spec
  70   a bug in tracedsl (TRACEDSL_DEBUG=1 shows the traceback)
  130  interrupted (Ctrl-C, SIGINT)
  143  terminated (SIGTERM)
"""


class _Commands(click.Group):
    """The command group; the one place a pipeline failure becomes a message and an exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DiagnosticError as error:
            if _CAUGHT:  # a failure while a signal stopped the command: the signal is the news
                raise _Interrupted(_CAUGHT[0]) from error
            fail(error)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]}, epilog=_EPILOG)
@click.version_option(pipeline.VERSION, prog_name="tracedsl")
def cli() -> None:
    """Write synthetic coding-agent traces in a small language and run them into Mooncake JSONL."""


for _command in (*SPEC_COMMANDS, *RUN_COMMANDS, *REPORT_COMMANDS, *SIMULATE_COMMANDS,
                 *COMPARE_COMMANDS, *FIT_COMMANDS, *PRESET_COMMANDS):
    cli.add_command(_command)


# --------------------------------------------------------------------------------------------
# Signals: Ctrl-C (SIGINT) and SIGTERM stop a command the same way. The first one raises
# _Interrupted in the main thread; the run's own cleanup (stop the workers, remove the hidden
# run directory) runs as it unwinds, later signals are ignored meanwhile, and main ends with
# one line and 128 + the signal's number. Pool workers ignore both (tracedsl/engine/executors.py).

# How long the cleanup may take before the process leaves anyway (it takes well under a second).
CLEANUP_LIMIT_S = 20.0

_CAUGHT: list[int] = []  # the signal that stopped this command, once one has
_FINISHING: list[bool] = []  # set once the command has ended: a signal now just leaves


class _Interrupted(BaseException):
    """Raised by the signal handler; a BaseException, so no ``except Exception`` swallows it
    and click does not turn it into its own Abort (which prints an empty line first)."""

    def __init__(self, number: int):
        super().__init__(number)
        self.number = number


def _on_signal(number: int, frame: object) -> None:
    if _FINISHING and not _CAUGHT:
        _leave(number)  # the command is done (its run published, or its error shown)
    if _CAUGHT:
        return  # already stopping: let the cleanup finish
    _CAUGHT.append(number)
    watchdog = threading.Thread(target=_leave_after, args=(number, CLEANUP_LIMIT_S),
                                name="cleanup-limit", daemon=True)
    watchdog.start()
    raise _Interrupted(number)


def _leave_after(number: int, seconds: float) -> None:
    import time

    time.sleep(seconds)
    _leave(number, f" (the cleanup did not finish in {seconds:g} s)")


def _catch_stop_signals() -> None:
    """Handle SIGINT and SIGTERM here; a signal this process was started ignoring stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        return
    for name in ("SIGINT", "SIGTERM"):
        number = getattr(signal, name, None)
        if number is None:
            continue
        current = signal.getsignal(number)
        if current is signal.SIG_IGN:  # nohup, a background job: the caller's choice
            continue
        signal.signal(number, _on_signal)


def _message(number: int) -> str:
    if number == getattr(signal, "SIGINT", None):
        return "tracedsl: interrupted"
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    return f"tracedsl: interrupted ({name})"


def _leave(number: int, detail: str = "") -> None:
    """One line on stderr, then exit 128 + ``number`` at once.

    os._exit, not sys.exit: the run's files are closed and removed by now, and the exit
    hooks of concurrent.futures join queue threads that may wait on a pipe no one reads.
    """
    with contextlib.suppress(BaseException):
        sys.stdout.flush()
    with contextlib.suppress(BaseException):
        sys.stderr.write(_message(number) + detail + "\n")
        sys.stderr.flush()
    os._exit(128 + number)


def _interrupted(number: int) -> None:
    """An interrupted command's end: no worker, no hidden run directory left, one line."""
    if not _CAUGHT:
        _CAUGHT.append(number)  # (a KeyboardInterrupt from before the handler was set)
    with contextlib.suppress(BaseException):
        pipeline.abandon_runs()
    _leave(number)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; an unexpected exception becomes a one-line message, not a traceback."""
    _catch_stop_signals()
    try:
        code = cli.main(args=argv, prog_name="tracedsl", standalone_mode=False)
    except _Interrupted as stop:
        _interrupted(stop.number)
    except (KeyboardInterrupt, click.exceptions.Abort):
        _interrupted(_CAUGHT[0] if _CAUGHT else signal.SIGINT)
    except click.ClickException as exc:
        if _CAUGHT:
            _interrupted(_CAUGHT[0])
        exc.show()
        sys.exit(exc.exit_code)
    except SystemExit:
        if _CAUGHT:
            _interrupted(_CAUGHT[0])
        raise
    except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
        if _CAUGHT:
            _interrupted(_CAUGHT[0])
        if os.environ.get("TRACEDSL_DEBUG"):
            raise
        click.echo(
            f"tracedsl: internal error: {type(exc).__name__}: {exc}\n"
            "  this is a bug in tracedsl; set TRACEDSL_DEBUG=1 to see the traceback",
            err=True,
        )
        sys.exit(exitcodes.INTERNAL)
    finally:
        # The handlers stay to the end of the process (its exit hooks may still take a while).
        _FINISHING.append(True)
    sys.exit(code if isinstance(code, int) else exitcodes.OK)
