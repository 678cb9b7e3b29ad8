"""Entry point for ``python -m tracedsl``."""

import os
import signal


def _stopped_while_starting(number: int, frame: object) -> None:
    # Nothing is made before main() takes the signals over: one line, and leave.
    name = "" if number == signal.SIGINT else f" ({signal.Signals(number).name})"
    os.write(2, f"tracedsl: interrupted{name}\n".encode())
    os._exit(128 + number)


# Until main() installs its own handlers (importing the CLI takes ~70 ms), a Ctrl-C or SIGTERM
# ends the process with the same one line, not a KeyboardInterrupt traceback.
for _number in (signal.SIGINT, signal.SIGTERM):
    if signal.getsignal(_number) is not signal.SIG_IGN:
        signal.signal(_number, _stopped_while_starting)

from tracedsl.cli import main  # noqa: E402 - after the handlers, on purpose

if __name__ == "__main__":
    main()
