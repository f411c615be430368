"""A stand-in for the HCP Terraform API on 127.0.0.1, written from HashiCorp's API documentation.

It serves the calls `mlops-sfn tfc` makes with the API's JSON:API shapes and behaves as documented
(https://developer.hashicorp.com/terraform/cloud-docs/api-docs/run and .../configuration-versions):
- a run walks through the statuses its test scripts, one per read; it is confirmable
  (`actions.is-confirmable`) only once every stage after the plan is done and never when plan-only;
- a run created without `auto-apply` inherits the workspace's, and an auto-applying run is
  confirmed by HCP Terraform itself: a later confirmation gets 409, as does any action its
  state does not allow;
- a run waits `pending` while another run holds the workspace (its current run);
- an applied run writes the workspace's current state version (`current-state-version`, whose
  `run` relationship names it); a workspace nothing was applied to answers 404 there;
- a configuration version is `pending` until uploaded, then `uploaded` or `errored`;
- 404 for what the token cannot see; scripted faults (429 with Retry-After, 5xx, a dropped
  connection) answer a request before it is served.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "secret-token"
PLAN_TOKEN = "plan-only-token"
# may be confirmed: a plan done, every stage after it done, or a policy a person overrode; and a saved
# plan ("planned_and_saved ... can be confirmed", HashiCorp's run states)
WAITING = {"planned", "cost_estimated", "policy_checked", "post_plan_completed", "policy_overridden"}
WAITING |= {"planned_and_saved"}
DECIDING = {"policy_override", "tf_policy_override", "post_plan_awaiting_decision"}
ENDED = {"applied", "planned_and_finished", "planned_and_saved", "errored", "discarded", "canceled", "force_canceled"}
ENDED |= {"policy_soft_failed"}
CANCELABLE = {"pending", "plan_queued", "planning", "cost_estimating", "policy_checking", "post_plan_running"}
CANCELABLE |= {"apply_queued", "applying"}


@dataclass
class Run:
    id: str
    workspace: str
    version: str
    plan_only: bool
    auto_apply: bool
    message: str
    script: list[str]  # statuses to come, one per read
    after_confirm: list[str]
    status: str = "pending"
    confirmed: bool = False
    additions: int = 1
    changes: int = 0
    destructions: int = 0
    plan_status: str = "finished"
    apply_status: str = "unreachable"
    log: list[str] = field(default_factory=list)
    policy: str = "passed"
    comments: list[str] = field(default_factory=list)

    @property
    def actions(self) -> dict[str, bool]:
        waiting = self.status in WAITING and not self.script and not self.plan_only
        return {
            "is-confirmable": waiting and not self.confirmed,
            "is-discardable": waiting or self.status in DECIDING,
            "is-cancelable": self.status in CANCELABLE,
            "is-force-cancelable": False,
        }


@dataclass
class Cloud:
    """One organisation, `acme`, with the workspaces a test declares; what happened is kept for asserts."""

    workspaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, Run] = field(default_factory=dict)
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    faults: list[tuple[str, str, int | str]] = field(default_factory=list)  # (method, path prefix, status|"drop")
    scripts: list[list[str]] = field(default_factory=list)  # statuses of the next runs created, in turn
    after_confirm: list[str] = field(default_factory=lambda: ["confirmed", "apply_queued", "applying", "applied"])
    version_script: list[str] = field(default_factory=lambda: ["uploaded"])
    uploads: dict[str, bytes] = field(default_factory=dict)
    address: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def workspace(self, name: str, auto_apply: bool = False) -> dict[str, Any]:
        self.workspaces[name] = {
            "id": f"ws-{name}",
            "name": name,
            "auto-apply": auto_apply,
            "current": None,
            "state_run": None,  # the run that wrote its current state version
        }
        return self.workspaces[name]

    def run_made(
        self, workspace: str, statuses: list[str], message: str = "", plan_only: bool = False, version: str = ""
    ) -> Run:
        """A run as if someone had queued it (in the UI, or an earlier pipeline)."""
        ws = self.workspaces[workspace]
        run = Run(
            id=f"run-{len(self.runs) + 1}",
            workspace=ws["id"],
            version=version,
            plan_only=plan_only,
            auto_apply=bool(ws["auto-apply"]),
            message=message,
            script=[],
            after_confirm=list(self.after_confirm),
        )
        run.status, *run.script = statuses
        self.runs[run.id] = run
        if not plan_only and ws["current"] is None:
            ws["current"] = run.id
        return run

    # -- the API ---------------------------------------------------------------------------------

    def answer(self, method: str, path: str, body: Any, token: str | None) -> tuple[int, Any]:
        self.calls.append((method, path, body))
        parts = path.split("?")[0].strip("/").split("/")[2:]  # after api/v2
        by_id = {ws["id"]: ws for ws in self.workspaces.values()}
        if token not in (TOKEN, PLAN_TOKEN):
            return 401, _error(401, "unauthorized")
        match parts:
            case ["organizations", "acme", "workspaces", name] if name in self.workspaces:
                return 200, self._workspace(self.workspaces[name])
            case ["workspaces", ws_id] if ws_id in by_id:
                return 200, self._workspace(by_id[ws_id])
            case ["workspaces", ws_id, "current-state-version"] if ws_id in by_id and by_id[ws_id]["state_run"]:
                run_id = by_id[ws_id]["state_run"]
                relations = {"run": {"data": {"id": run_id, "type": "runs"}}}
                return 200, {"data": {"id": f"sv-{run_id}", "type": "state-versions", "relationships": relations}}
            case ["workspaces", ws_id, "configuration-versions"] if method == "POST" and ws_id in by_id:
                version_id = f"cv-{len(self.versions) + 1}"
                attributes = body["data"]["attributes"]
                self.versions[version_id] = {"status": "pending", "speculative": attributes.get("speculative")}
                self.versions[version_id]["auto-queue-runs"] = attributes.get("auto-queue-runs")
                return 201, self._version(version_id)
            case ["configuration-versions", version_id] if version_id in self.versions:
                return 200, self._version(version_id)
            case ["runs"] if method == "POST":
                return self._create(body, token)
            case ["runs", run_id] if run_id in self.runs:
                return 200, self._read(self.runs[run_id])
            case ["runs", run_id, "actions", action] if method == "POST" and run_id in self.runs:
                return self._act(self.runs[run_id], action, body)
            case ["runs", run_id, "policy-checks"] if run_id in self.runs:
                check = {"id": f"polchk-{run_id}", "type": "policy-checks", "attributes": {}}
                check["attributes"]["status"] = policy = self.runs[run_id].policy
                failed = {"soft-failed": policy == "soft_failed", "hard-failed": policy == "hard_failed"}
                counts = {name: int(value) for name, value in failed.items()} | {"advisory-failed": 0, "passed": 1}
                check["attributes"]["result"] = {"result": policy == "passed", **counts}
                return 200, {"data": [check]}
            case ["plans", plan_id] if plan_id.replace("plan-", "run-") in self.runs:
                run = self.runs[plan_id.replace("plan-", "run-")]
                return 200, self._plan(run)
            case ["applies", apply_id] if apply_id.replace("apply-", "run-") in self.runs:
                run = self.runs[apply_id.replace("apply-", "run-")]
                attributes = {"status": run.apply_status, "log-read-url": f"{self.address}/logs/{run.id}"}
                return 200, {"data": {"id": apply_id, "type": "applies", "attributes": attributes}}
        return 404, _error(404, "not found")

    def _workspace(self, ws: dict[str, Any]) -> dict[str, Any]:
        current = {"data": {"id": ws["current"], "type": "runs"} if ws["current"] else None}
        attributes = {"name": ws["name"], "auto-apply": ws["auto-apply"]}
        relations = {"current-run": current}
        return {"data": {"id": ws["id"], "type": "workspaces", "attributes": attributes, "relationships": relations}}

    def _version(self, version_id: str) -> dict[str, Any]:
        version = self.versions[version_id]
        attributes = {
            "status": version["status"],
            "upload-url": f"{self.address}/upload/{version_id}",
            "error-message": version.get("error-message"),
            "speculative": version.get("speculative"),
            "auto-queue-runs": version.get("auto-queue-runs"),
        }
        return {"data": {"id": version_id, "type": "configuration-versions", "attributes": attributes}}

    def _create(self, body: dict[str, Any], token: str | None) -> tuple[int, Any]:
        data = body["data"]
        attributes, relations = data["attributes"], data["relationships"]
        ws = next(ws for ws in self.workspaces.values() if ws["id"] == relations["workspace"]["data"]["id"])
        plan_only = bool(attributes.get("plan-only"))
        if token == PLAN_TOKEN and not plan_only:  # a team with "plan" access queues plan-only runs alone
            return 403, _error(403, "forbidden")
        version = relations["configuration-version"]["data"]["id"]
        if self.versions.get(version, {}).get("status") != "uploaded":
            return 422, _error(422, "configuration version is not uploaded")
        default = ["planning", "planned_and_finished" if plan_only else "planned"]
        statuses = self.scripts.pop(0) if self.scripts else default
        run = self.run_made(ws["name"], ["pending", *statuses], str(attributes.get("message")), plan_only, version)
        inherited = attributes.get("auto-apply")
        run.auto_apply = bool(ws["auto-apply"] if inherited is None else inherited)
        return 201, self._read(run, advance=False)

    def _read(self, run: Run, advance: bool = True) -> dict[str, Any]:
        ws = next(ws for ws in self.workspaces.values() if ws["id"] == run.workspace)
        blocked = not run.plan_only and ws["current"] not in (None, run.id)
        if advance and run.script and not (run.status == "pending" and blocked):
            run.status = run.script.pop(0)
        if run.status == "applied":
            ws["state_run"] = run.id
        if run.status in ENDED and ws["current"] == run.id:
            ws["current"] = None
        if ws["current"] is None and not run.plan_only and run.status not in ENDED:
            ws["current"] = run.id
        if run.actions["is-confirmable"] and run.auto_apply:  # HCP Terraform confirms it itself
            self._confirm(run)
        relations = {
            "plan": {"data": {"id": run.id.replace("run-", "plan-"), "type": "plans"}},
            "apply": {"data": {"id": run.id.replace("run-", "apply-"), "type": "applies"}},
            "workspace": {"data": {"id": run.workspace, "type": "workspaces"}},
            "configuration-version": {"data": {"id": run.version, "type": "configuration-versions"}},
        }
        attributes = {
            "status": run.status,
            "actions": run.actions,
            "message": run.message,
            "plan-only": run.plan_only,
            "auto-apply": run.auto_apply,
            "has-changes": bool(run.additions or run.changes or run.destructions),
        }
        return {"data": {"id": run.id, "type": "runs", "attributes": attributes, "relationships": relations}}

    def _confirm(self, run: Run) -> None:
        run.confirmed = True
        run.status, *run.script = run.after_confirm

    def _act(self, run: Run, action: str, body: Any) -> tuple[int, Any]:
        allowed = {"apply": "is-confirmable", "discard": "is-discardable", "cancel": "is-cancelable"}
        if action not in allowed or not run.actions[allowed[action]]:
            return 409, _error(409, "transition not allowed")
        run.comments.append((body or {}).get("comment", ""))
        if action == "apply":
            self._confirm(run)
        else:
            run.status, run.script = ("discarded" if action == "discard" else "canceled"), []
            ws = next(ws for ws in self.workspaces.values() if ws["id"] == run.workspace)
            if ws["current"] == run.id:  # the queue moves on
                ws["current"] = None
        return 202, None

    def _plan(self, run: Run) -> dict[str, Any]:
        attributes = {
            "status": run.plan_status,
            "resource-additions": run.additions,
            "resource-changes": run.changes,
            "resource-destructions": run.destructions,
            "has-changes": bool(run.additions or run.changes or run.destructions),
            "log-read-url": f"{self.address}/logs/{run.id}",
        }
        return {"data": {"id": run.id.replace("run-", "plan-"), "type": "plans", "attributes": attributes}}

    def upload(self, version_id: str, data: bytes) -> int:
        if version_id not in self.versions:
            return 404
        self.uploads[version_id] = data
        status, *rest = self.version_script
        self.versions[version_id]["status"] = status
        if status == "errored":
            self.versions[version_id]["error-message"] = "Configuration version upload failed: no .tf files found"
        self.version_script = rest or [status]
        return 200

    def fault(self, method: str, path: str) -> int | str | None:
        for index, (want_method, prefix, answer) in enumerate(self.faults):
            if want_method == method and path.startswith(prefix):
                del self.faults[index]
                return answer
        return None


def _error(status: int, title: str) -> dict[str, Any]:
    return {"errors": [{"status": str(status), "title": title}]}


@contextmanager
def serving() -> Iterator[Cloud]:
    cloud = Cloud()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            with cloud.lock:
                fault = cloud.fault(method, self.path)
                if fault == "drop":  # the connection closes with no answer
                    cloud.calls.append((method, self.path, "dropped"))
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if fault is not None:
                    cloud.calls.append((method, self.path, fault))
                    status, body, headers = int(fault), _error(int(fault), "fault"), {"Retry-After": "0"}
                elif self.path.startswith("/upload/"):  # pre-signed: no token
                    status, body, headers = cloud.upload(self.path.rsplit("/", 1)[-1], raw), None, {}
                    cloud.calls.append((method, self.path, "Authorization" in self.headers))
                elif self.path.startswith("/logs/"):
                    run = cloud.runs[self.path.rsplit("/", 1)[-1]]
                    self._send(200, "\n".join(run.log).encode(), {"Content-Type": "text/plain"})
                    return
                else:
                    token = (self.headers.get("Authorization") or "").removeprefix("Bearer ") or None
                    status, body = cloud.answer(method, self.path, json.loads(raw) if raw else None, token)
                    headers = {}
            payload = json.dumps(body).encode() if body is not None else b""
            self._send(status, payload, {"Content-Type": "application/vnd.api+json", **headers})

        def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
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
    cloud.address = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield cloud
    finally:
        server.shutdown()
        server.server_close()
