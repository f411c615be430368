"""mlops-sfn: check, preview and import pipeline items, run them locally, operate them.

One module per command (or per group of commands that share their options); each `register`s its
parser with the function it runs. This module holds the one error path: problems go to stderr,
and the exit codes are those of `common` (0 success, 1 invalid input or a failed run, 2 usage).
"""

from __future__ import annotations

import argparse
import os
import sys

from botocore.exceptions import BotoCoreError, ClientError

from ..checkout import ROOT
from ..core.problems import Error
from . import approval, importing, items, local, logs, plan, prices, promote, replay, runs, smoke, tooling, validate
from .common import INTERRUPTED, INVALID, UsageError

COMMANDS = (validate, plan, importing, local, runs, logs, items, replay, approval, promote, smoke, prices, tooling)


def parser() -> argparse.ArgumentParser:
    found = argparse.ArgumentParser(prog="mlops-sfn", description=__doc__.splitlines()[0])
    found.set_defaults(checkout=False)
    commands = found.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    return found


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.checkout and not (ROOT / "main.tf").is_file():
            command = " ".join(filter(None, [args.command, getattr(args, "local_command", None)]))
            raise UsageError(
                f"`mlops-sfn {command}` works on a checkout of the mlops-sfn repository: clone it and"
                " run make install there (an installed package has validate, plan, import, local run,"
                " replay, approve and reject)"
            )
        code: int = args.run(args)
        return code
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly. Point stdout at /dev/null so that Python's
        # flush at exit does not raise again (Python's signal module documentation, "SIGPIPE").
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return INVALID
    except Error as error:  # what a command did not report itself: one line, the error's exit code
        print(f"mlops-sfn: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:  # Ctrl-C: one line, and the shell's code for SIGINT (128 + 2)
        print("mlops-sfn: interrupted", file=sys.stderr)
        return INTERRUPTED
    except (BotoCoreError, ClientError) as error:  # no credentials, no endpoint, no such queue, a refusal
        print(f"mlops-sfn: error: {error}", file=sys.stderr)
        return INVALID
