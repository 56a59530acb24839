"""User errors on the command line: one line on stderr naming what is wrong, the traceback only
with ``--debug``; shared by ``ctlearn`` and every ``python -m sims.NAME``.

The rule: an exception is a user error when it is of a kind the library raises to refuse what it
was given or to report how a run ended: ``ValueError`` (a bad value or option, a damaged file,
a dataset that is not there), ``TypeError`` (a value of the wrong type, as the estimators and
``TrainConfig`` report it), ``OSError`` (a missing, unreadable or locked file or folder), and the
divergence stops ``TrainingDiverged`` and ``SimulationDiverged``. Everything else (``KeyError``,
``AttributeError``, ``IndexError``, ``AssertionError``, XLA's ``RuntimeError``, ...) is a bug and
keeps its traceback. A bug that happens to raise one of the user kinds prints one line too:
``--debug`` shows its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

DEBUG_OPTION = "--debug"

T = TypeVar("T")


def prepare_parser(parser: argparse.ArgumentParser) -> None:
    """Makes ``parser`` a command's parser under the module's rule: it declares ``--debug``
    (show the traceback of an error), and its own refusals (an unknown option, a value argparse
    cannot convert, ``parser.error`` calls) are one line too, ``PROG: error: MESSAGE (see
    --help)`` with status 2, instead of the usage followed by the message."""
    parser.add_argument(
        DEBUG_OPTION,
        action="store_true",
        help="show the traceback of an error (default: one line naming what is wrong)",
    )

    def error(message: str) -> NoReturn:
        parser.exit(2, f"{parser.prog}: error: {message} (see --help)\n")

    parser.error = error  # argparse reports every refusal through this method


def is_user_error(error: BaseException) -> bool:
    """Whether ``error`` is a user error (the rule in the module docstring)."""
    # Imported here: the command line's import stays light until an error needs the classes.
    from .dynamics import SimulationDiverged
    from .train import TrainingDiverged

    kinds = (ValueError, TypeError, OSError, TrainingDiverged, SimulationDiverged)
    return isinstance(error, kinds)


def one_line(error: BaseException) -> str:
    """The message of ``error`` on one line: a message listing several reasons (one per line,
    possibly as ``- item``) has them joined with ``"; "`` (with a space after a line that ends
    with a colon, which introduces them); an empty message is the error's type."""
    lines = [line.strip().removeprefix("- ") for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    for previous, line in zip(lines, lines[1:]):
        text += (" " if previous.endswith(":") else "; ") + line
    return text


def report_user_error(prog: str, error: BaseException, *, debug: bool) -> bool:
    """Prints ``PROG: error: MESSAGE`` (one line) on stderr and returns True for a user error;
    returns False, printing nothing, for anything else or when ``debug`` asks for the traceback:
    the ``except`` block that caught ``error`` then re-raises it."""
    if debug or not is_user_error(error):
        return False
    print(f"{prog}: error: {one_line(error)}", file=sys.stderr)
    return True


def run_main(entry: Callable[[], T], *, prog: str | None = None) -> T:
    """Runs a command's ``entry`` (its ``main``, parsing ``sys.argv``) for an
    ``if __name__ == "__main__":`` block and returns what it returns. A user error is printed
    as one line and exits with status 2 (as argparse's own refusals do); Ctrl-C prints one line
    and exits with 130. ``--debug`` among the arguments (the command's parser declares it with
    ``prepare_parser``) lets both raise with their traceback. ``prog`` defaults to argparse's
    name for the command (the script's file name), so that both kinds of refusal start alike."""
    prog = prog or os.path.basename(sys.argv[0])
    arguments = sys.argv[1:]
    if "--" in arguments:  # what follows "--" is positional, never an option
        arguments = arguments[: arguments.index("--")]
    debug = DEBUG_OPTION in arguments
    try:
        return entry()
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"\n{prog}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as error:
        if not report_user_error(prog, error, debug=debug):
            raise
        raise SystemExit(2) from None
