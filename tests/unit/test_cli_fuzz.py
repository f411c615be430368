"""Every command that reads a file, fed what a user's disk may hold instead of the file it expects:
deep, huge, odd numbers, odd types, repeated keys, not UTF-8, a folder, a missing path. Each must
end with an exit code and its reason on stderr, never a traceback (issue 42). The inputs come from
a fixed list of known troublemakers and from Hypothesis, which generates JSON-like documents and
raw bytes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_sfn import cli
from tests.conftest import ITEMS

ITEM = str(ITEMS / "demo-dev-domain-cal-house-price.json")
# Each command, with FILE where the malformed file goes.
COMMANDS = [
    ["validate", "FILE"],
    ["plan", "FILE"],
    ["plan", ITEM, "--event", "FILE"],
    ["plan", ITEM, "--outputs", "FILE"],
    ["import", "aiops", "FILE"],
    ["import", "reusable-framework", "FILE"],
    ["local", "run", "FILE"],
    ["local", "run", ITEM, "--scp", "FILE"],
    ["run", "demo", "--outputs", "FILE"],
    ["runs", "--outputs", "FILE"],
    ["status", "demo-run", "--outputs", "FILE"],
    ["logs", "demo-run", "--outputs", "FILE"],
    ["rerun", "demo-run", "--from", "training", "--outputs", "FILE"],
    ["redrive", "demo-run", "--outputs", "FILE"],
    ["items", "diff", "FILE", "--outputs", "FILE"],
    ["items", "pull", "--outputs", "FILE"],
    ["items", "delete", "demo", "--outputs", "FILE"],
    ["approve", "demo-run", "--outputs", "FILE"],
    ["replay", "--outputs", "FILE"],
]
TROUBLE = {
    "empty": b"",
    "deep": b"[" * 5000 + b"]" * 5000,
    "huge integer": b'{"a": ' + b"9" * 5000 + b"}",
    "huge exponent": b'{"a": 1e999999}',
    "repeated key": b'{"a": 1, "a": 2}',
    "not UTF-8": b'\xff\xfe{"a": 1}',
    "a list": b"[1, 2, 3]",
    "a string": b'"text"',
    "null": b"null",
    "NaN": b'{"a": NaN}',
    "control characters": b'{"a": "\x00\x01"}',
    "outputs shaped, wrong values": json.dumps({"table_name": {"value": [1]}, "region": {"value": 7}}).encode(),
}


@pytest.fixture(autouse=True)
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """A closed local port as AWS, one attempt per call, and no local deployment: a command that gets as
    far as calling AWS fails fast, as it would without a network."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("MLOPS_STATE_MACHINE_ARN", raising=False)
    monkeypatch.setattr("mlops_sfn.local.deployment.load", lambda *_: None)
    monkeypatch.chdir(tmp_path)
    yield


def exits_cleanly(command: list[str], path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [str(path) if part == "FILE" else part for part in command]
    try:
        code = cli.main(args)
    except SystemExit as exit_:  # argparse's own refusal
        code = exit_.code if isinstance(exit_.code, int) else 2
    captured = capsys.readouterr()
    assert code in (0, 1, 2), (args, code, captured.err)
    assert "Traceback" not in captured.err + captured.out, (args, captured.err)
    if code:
        assert captured.err.strip(), (args, "a failure must say why")


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
@pytest.mark.parametrize("trouble", list(TROUBLE), ids=list(TROUBLE))
def test_a_troublesome_file_never_ends_in_a_traceback(
    command: list[str], trouble: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "input.json"
    path.write_bytes(TROUBLE[trouble])
    exits_cleanly(command, path, capsys)


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
@pytest.mark.parametrize("where", ["a folder", "a missing path"])
def test_a_folder_or_a_missing_path_never_ends_in_a_traceback(
    command: list[str], where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "folder" if where == "a folder" else tmp_path / "missing" / "input.json"
    if where == "a folder":
        path.mkdir()
    exits_cleanly(command, path, capsys)
    if where == "a folder" and command[0] != "validate":  # validate reads folders of items
        # every command refuses a folder where it reads a file the same way: a usage error, one wording
        args = [str(path) if part == "FILE" else part for part in command]
        with pytest.raises(SystemExit) as refused:
            cli.main(args)
        assert refused.value.code == 2
        assert f"{path}: a folder, not a file: name the file" in capsys.readouterr().err


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=JSON | st.binary(max_size=200), command=st.sampled_from(COMMANDS))
def test_any_document_never_ends_in_a_traceback(
    document: object, command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "generated.json"
    path.write_bytes(document if isinstance(document, bytes) else json.dumps(document).encode())
    exits_cleanly(command, path, capsys)
