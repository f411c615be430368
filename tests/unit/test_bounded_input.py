"""Bounded input: deep, huge or unreadable inputs get exit 1 and one line naming the limit, never a
traceback or a hang; AWS errors in the CLI too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_sfn.core.bounds import FILE_BYTES, nesting
from mlops_sfn.core.triggers import InvalidEvent, parse_parts
from tests.conftest import ITEMS, ROOT

DEMO_FILE = ITEMS / "demo-dev-domain-cal-house-price.json"


def run(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": "",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "y",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    command = [sys.executable, "-m", "mlops_sfn.cli", *map(str, args)]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        env=environment | {"AWS_MAX_ATTEMPTS": "1"},
        timeout=timeout,
    )


def deep(levels: int) -> dict[str, object]:
    item: dict[str, object] = {"consumption_pipeline_name": "deep"}
    node = item
    for _ in range(levels):
        node["a"] = {}
        node = node["a"]  # type: ignore[assignment]
    return item


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line]
    assert 1 <= len(lines) <= 2, lines  # the reason, and validate's count
    return lines[0]


def test_nesting_is_measured_without_recursion() -> None:
    assert nesting(deep(100_000)) == 100_001
    assert (nesting(1), nesting([]), nesting({"a": [1, {"b": []}]})) == (0, 1, 4)


def test_a_900_level_event_is_rejected_before_anything_recurses() -> None:
    event = {"consumption_pipeline_name": "p", "overrides": deep(900)}
    with pytest.raises(InvalidEvent, match="the event is nested more than 64 levels deep"):
        parse_parts(event)


@pytest.mark.parametrize("levels", [900, 5000])
def test_a_deep_sqs_body_spoils_only_its_own_record(levels: int) -> None:
    body = json.dumps({"consumption_pipeline_name": "p", "overrides": deep(900)}) if levels < 1000 else "[" * levels
    records = [
        {"eventSource": "aws:sqs", "messageId": "deep", "body": body},
        {"eventSource": "aws:sqs", "messageId": "fine", "body": json.dumps({"consumption_pipeline_name": "p"})},
    ]
    deep_part, fine_part = parse_parts({"Records": records})
    assert deep_part.problem is not None and "levels deep" in str(deep_part.problem)
    assert fine_part.trigger is not None and fine_part.trigger.pipeline == "p"


@pytest.mark.parametrize("command", ["validate", "plan"])
@pytest.mark.parametrize("levels", [40, 900, 5000])
def test_a_deeply_nested_item_file_is_one_line(tmp_path: Path, command: str, levels: int) -> None:
    path = tmp_path / "deep.json"
    path.write_text(json.dumps(deep(levels)) if levels < 1000 else '{"a":' * levels + "1" + "}" * levels)
    result = run(command, path)
    assert result.returncode == 1
    assert "levels deep" in one_line(result)


def test_validate_reports_a_deep_file_and_goes_on_with_the_folder(tmp_path: Path) -> None:
    (tmp_path / "deep.json").write_text(json.dumps(deep(900)))
    (tmp_path / "demo.json").write_text(DEMO_FILE.read_text())
    result = run("validate", tmp_path)
    assert result.returncode == 1 and "1 of 2 file(s) invalid" in result.stderr


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_a_repeated_key_or_a_number_python_cannot_read_is_one_line_naming_it(tmp_path: Path, command: str) -> None:
    # JSON parsers keep one value of a repeated key (Python's the last): the file would lose the other.
    repeated = tmp_path / "repeated.json"
    text = DEMO_FILE.read_text()
    assert '"enabled": true' in text  # the item says "enabled" once; the copy says it twice
    repeated.write_text(text.replace("{", '{"enabled": false, ', 1))
    assert "the key 'enabled' appears twice in one object: keep one" in one_line(run(command, repeated))
    huge = tmp_path / "huge-number.json"
    huge.write_text(text.replace("{", '{"n": ' + "9" * 5000 + ", ", 1))
    assert "a number too long to read" in one_line(run(command, huge))


def test_a_huge_item_file_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    path.write_text(" " * (FILE_BYTES + 1))
    assert f"at most {FILE_BYTES} bytes" in one_line(run("validate", path))


def test_plan_refuses_a_deep_event(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"consumption_pipeline_name": "p", "overrides": deep(900)}))
    result = run("plan", DEMO_FILE, "--event", event)
    assert result.returncode == 1 and "nested more than 64 levels deep" in one_line(result)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("command", [["validate"], ["plan"], ["import", "reusable-framework"]])
def test_no_command_reads_a_fifo(tmp_path: Path, command: list[str]) -> None:
    fifo = tmp_path / "x.json"
    os.mkfifo(fifo)
    result = run(*command, fifo, timeout=20)  # before the fix, validate blocked here for ever
    assert result.returncode == 1 and "not a regular file" in one_line(result)


def test_validate_of_a_folder_holding_a_fifo_reports_it_and_goes_on(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "x.json")
    (tmp_path / "demo.json").write_text(DEMO_FILE.read_text())
    result = run("validate", tmp_path, timeout=20)
    assert result.returncode == 1 and "x.json: not a regular file" in result.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["approve", ""], "TOKEN_OR_EXECUTION is empty"),
        (
            [
                "approve",
                "run-1",
                "--state-machine",
                "arn:aws:states:us-east-1:123456789012:stateMachine:m",
                "--endpoint-url",
                "http://127.0.0.1:9",
            ],
            "Could not connect to the endpoint URL",
        ),
        (
            [
                "replay",
                "--queue-url",
                "http://127.0.0.1:9/123456789012/none",
                "--function",
                "router",
                "--endpoint-url",
                "http://127.0.0.1:9",
            ],
            "Could not connect to the endpoint URL",
        ),
    ],
)
def test_aws_errors_and_empty_targets_are_one_line(args: list[str], words: str) -> None:
    result = run(*args)
    assert result.returncode in (1, 2)
    assert words in one_line(result) and result.stderr.startswith("mlops-sfn: error:")


def test_a_yaml_alias_bomb_is_refused_before_it_is_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nine lines whose aliases expand to 9**9 nodes (before the fix: 52 s, 2.9 GB, MemoryError); the
    bound is on expanded nodes, tested at its edge; an alias to its own holder is refused too."""
    from mlops_sfn.cli.importing import YAML_NODES, _load_yaml

    levels = ["a: &a [" + ", ".join(['"x"'] * 9) + "]"]
    levels += [f"{n}: &{n} [" + ", ".join([f"*{p}"] * 9) + "]" for p, n in zip("abcdefgh", "bcdefghi", strict=True)]
    bomb = tmp_path / "input.yaml"
    bomb.write_text("\n".join(levels) + "\n")
    result = run("import", "aiops", bomb, timeout=20)
    assert result.returncode == 1 and f"its aliases expand to more than {YAML_NODES} nodes" in one_line(result)

    # at the edge (of a smaller bound, the same code): a mapping of one list holding n scalars is
    # n + 3 nodes (mapping, key, list, scalars)
    from mlops_sfn.cli import importing

    monkeypatch.setattr(importing, "YAML_NODES", 1000)
    at_edge = "k: [" + ", ".join(["1"] * 997) + "]\n"
    assert len(_load_yaml(at_edge)["k"]) == 997
    with pytest.raises(ValueError, match="expand to more than 1000 nodes"):
        _load_yaml("k: [" + ", ".join(["1"] * 998) + "]\n")
    (tmp_path / "loop.yaml").write_text("a: &a [*a]\n")
    assert "refers to the node that holds it" in one_line(run("import", "aiops", tmp_path / "loop.yaml", timeout=20))
