"""The one problem type every check reports (a field path and what is wrong with it), and the one
error base every error mlops-sfn raises on purpose extends (`Error`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    path: str  # e.g. "stages.training.request.ResourceConfig.InstanceCount"; "" for the whole item
    message: str  # what is wrong, and what is allowed

    def __str__(self) -> str:
        return f"{self.path or '(item)'}: {self.message}"


class Error(Exception):
    """An error mlops-sfn raises on purpose, its message written for the person who reads it: the CLI
    prints it in one line and exits with `exit_code` (1: invalid input, a failed run, a refusal)."""

    exit_code = 1


class InvalidItem(Error):
    """A pipeline item that must not start an execution."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def join(path: str, key: str | int) -> str:
    """Extend a field path: join("a", "b") -> "a.b", join("a", 0) -> "a[0]"."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def describe(value: object) -> str:
    """A short rendering of a value of the wrong type, for messages."""
    kind = json_type(value)
    if kind in ("object", "array"):
        return kind
    text = repr(value)
    return f"{kind} {text if len(text) <= 60 else text[:57] + '...'}"


def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
