"""One base error: every error mlops-sfn raises on purpose extends core.problems.Error, and the CLI's
main() turns one that a command did not report into one line and the error's exit code."""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil

import pytest

import mlops_sfn
from mlops_sfn import cli
from mlops_sfn.cli.common import USAGE, UsageError
from mlops_sfn.core.problems import Error
from mlops_sfn.operate.rerun import RerunRefused

# Errors that cannot extend it: moto's form, answered as AWS answers; and the worker's, whose file a
# child process runs alone, importing only the standard library.
OTHER_FORMS = {"ExecutionNotRedrivable", "WorkerError"}


def _package_errors() -> list[type[BaseException]]:
    found = []
    for module in pkgutil.walk_packages(mlops_sfn.__path__, "mlops_sfn."):
        if module.name.endswith("__main__"):  # runs the CLI when imported
            continue
        loaded = importlib.import_module(module.name)
        for _, value in inspect.getmembers(loaded, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == loaded.__name__:
                found.append(value)
    return found


def test_every_error_the_package_defines_extends_the_base() -> None:
    errors = _package_errors()
    assert len(errors) > 20  # the walk found them
    outside = [e.__qualname__ for e in errors if not issubclass(e, Error) and e.__name__ not in OTHER_FORMS]
    assert outside == []


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (RerunRefused("the quality gate was not met in run-1: rerun from evaluation or earlier"), 1),
        (UsageError("no such file"), USAGE),
    ],
)
def test_an_error_no_command_reported_is_one_line_and_its_exit_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: Error, code: int
) -> None:
    def command(args: argparse.Namespace) -> int:
        raise error

    class Parsed:
        def parse_args(self, argv: list[str] | None) -> argparse.Namespace:
            return argparse.Namespace(run=command, checkout=False, command="rerun")

    monkeypatch.setattr(cli, "parser", Parsed)
    assert cli.main([]) == code
    assert capsys.readouterr().err == f"mlops-sfn: error: {error}\n"
