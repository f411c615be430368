"""`mlops-sfn tfc plan|apply` against a stand-in for the Terraform Cloud API on 127.0.0.1.

The stand-in serves the calls the client makes (workspace lookup, configuration version, upload,
run, run status, apply action) with the API's shapes, and records them."""

from __future__ import annotations

import io
import json
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mlops_sfn import cli
from mlops_sfn.tools import tfc

pytestmark = pytest.mark.functional

TOKEN = "secret-token"


@dataclass
class FakeCloud:
    statuses: list[str]  # what GET /runs/<id> answers, in turn (the last repeats)
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    uploaded: bytes = b""
    applied: bool = False
    after_apply: list[str] = field(default_factory=lambda: ["applying", "applied"])
    address: str = ""

    def answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        self.calls.append((method, path, body))
        if path == "/api/v2/organizations/acme/workspaces/mlops-dev":
            return 200, {"data": {"id": "ws-1", "type": "workspaces"}}
        if path.startswith("/api/v2/organizations/"):
            return 404, {"errors": [{"status": "404", "title": "not found"}]}
        if method == "POST" and path == "/api/v2/workspaces/ws-1/configuration-versions":
            upload = f"{self.address}/upload/cv-1"
            return 201, {"data": {"id": "cv-1", "attributes": {"upload-url": upload, "status": "pending"}}}
        if path == "/api/v2/configuration-versions/cv-1":
            return 200, {"data": {"id": "cv-1", "attributes": {"status": "uploaded" if self.uploaded else "pending"}}}
        if method == "POST" and path == "/api/v2/runs":
            return 201, {"data": {"id": "run-1", "attributes": {"status": "pending"}}}
        if method == "GET" and path == "/api/v2/runs/run-1":
            queue = self.after_apply if self.applied else self.statuses
            status = queue.pop(0) if len(queue) > 1 else queue[0]
            return 200, {
                "data": {
                    "id": "run-1",
                    "attributes": {"status": status, "actions": {"is-confirmable": status == "planned"}},
                }
            }
        if method == "POST" and path == "/api/v2/runs/run-1/actions/apply":
            self.applied = True
            return 202, None
        return 404, {"errors": [{"status": "404"}]}


@pytest.fixture
def cloud() -> Iterator[FakeCloud]:
    fake = FakeCloud(statuses=["pending", "planning", "planned"])

    class Handler(BaseHTTPRequestHandler):
        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.path.startswith("/upload/"):
                assert "Authorization" not in self.headers  # the upload URL is pre-signed
                fake.uploaded = raw
                fake.calls.append((method, self.path, None))
                status, body = 200, None
            elif self.headers.get("Authorization") != f"Bearer {TOKEN}":
                status, body = 401, {"errors": [{"status": "401"}]}
            else:
                status, body = fake.answer(method, self.path, json.loads(raw) if raw else None)
            payload = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PUT(self) -> None:
            self._handle("PUT")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.address = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()


def settings(cloud: FakeCloud, workspace: str = "mlops-dev") -> tfc.Settings:
    return tfc.Settings(token=TOKEN, organization="acme", workspace=workspace, address=cloud.address)


def run(cloud: FakeCloud, apply: bool, **options: Any) -> str:
    return tfc.run(
        settings(cloud, **options), apply=apply, message="ci", poll_seconds=0.01, timeout=10, say=lambda _: None
    )


def test_apply_uploads_the_repository_creates_a_run_and_confirms_it_once_planned(cloud: FakeCloud) -> None:
    assert run(cloud, apply=True) == "applied"
    paths = [(method, path) for method, path, _ in cloud.calls]
    assert paths[:3] == [
        ("GET", "/api/v2/organizations/acme/workspaces/mlops-dev"),
        ("POST", "/api/v2/workspaces/ws-1/configuration-versions"),
        ("PUT", "/upload/cv-1"),
    ]
    assert paths.count(("POST", "/api/v2/runs/run-1/actions/apply")) == 1
    version = next(body for method, path, body in cloud.calls if path.endswith("/configuration-versions"))
    assert version["data"]["attributes"] == {"auto-queue-runs": False, "speculative": False}
    created = next(body for method, path, body in cloud.calls if path == "/api/v2/runs" and method == "POST")
    assert created["data"]["attributes"] == {"message": "ci", "plan-only": False}
    assert created["data"]["relationships"]["configuration-version"]["data"]["id"] == "cv-1"
    with tarfile.open(fileobj=io.BytesIO(cloud.uploaded), mode="r:gz") as archive:
        names = set(archive.getnames())
    assert {"main.tf", "deploy/main.tf", "modules/router/main.tf", "lambdas/functions.zip"} <= names
    assert not any(name.startswith((".venv", ".git/", ".mlops-local")) for name in names)


def test_plan_is_speculative_and_never_applied(cloud: FakeCloud) -> None:
    cloud.statuses = ["planning", "planned_and_finished"]
    assert run(cloud, apply=False) == "planned_and_finished"
    created = next(body for method, path, body in cloud.calls if path == "/api/v2/runs" and method == "POST")
    assert created["data"]["attributes"]["plan-only"] is True
    assert not any(path.endswith("/actions/apply") for _, path, _ in cloud.calls)


def test_a_run_with_no_changes_ends_without_an_apply(cloud: FakeCloud) -> None:
    cloud.statuses = ["planning", "planned_and_finished"]
    assert run(cloud, apply=True) == "planned_and_finished"
    assert not cloud.applied


def test_an_errored_run_fails_with_its_url(cloud: FakeCloud) -> None:
    cloud.statuses = ["planning", "errored"]
    with pytest.raises(
        tfc.TfcError,
        match=r"run run-1 ended errored: https://app.terraform.io/app/acme/workspaces/mlops-dev/runs/run-1",
    ):
        run(cloud, apply=True)


def test_an_unknown_workspace_fails_naming_the_call(cloud: FakeCloud) -> None:
    with pytest.raises(tfc.TfcError, match="GET /organizations/acme/workspaces/nope: HTTP 404"):
        run(cloud, apply=False, workspace="nope")


def test_missing_settings_are_named_and_nothing_is_called(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("TFC_TOKEN", "TF_API_TOKEN", "TFC_ORGANIZATION", "TFC_WORKSPACE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TFC_ORGANIZATION", "acme")
    assert cli.main(["tfc", "plan"]) == 1
    assert "set TFC_TOKEN, TFC_WORKSPACE" in capsys.readouterr().err


def test_the_cli_reads_its_settings_from_ci_variables(
    cloud: FakeCloud, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cloud.statuses = ["planned_and_finished"]
    monkeypatch.setenv("TFC_TOKEN", TOKEN)
    monkeypatch.setenv("TFC_ORGANIZATION", "acme")
    monkeypatch.setenv("TFC_WORKSPACE", "mlops-dev")
    monkeypatch.setenv("TFC_ADDRESS", cloud.address)
    monkeypatch.setenv("CI_COMMIT_TITLE", "Add the churn pipeline")
    monkeypatch.setattr(tfc.time, "sleep", lambda seconds: None)
    assert cli.main(["tfc", "plan"]) == 0
    created = next(body for method, path, body in cloud.calls if path == "/api/v2/runs" and method == "POST")
    assert created["data"]["attributes"]["message"] == "Add the churn pipeline"
