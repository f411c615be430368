"""The local AWS's server process: moto's server plus the fills the framework needs inside it.

Run as `python -m mlops_sfn.local.server [--home DIR] -H 127.0.0.1 -p PORT -c CERT -k KEY`
(`MotoServer` does). Every fill is small, documented where it lives, and tested:
- bucket policies (here): moto 5.2 evaluates a bucket policy's Deny statements without their
  conditions, so the bucket's TLS-only statement (Deny when aws:SecureTransport is false) would
  deny every request. This server only speaks TLS, so a statement that applies only without TLS
  never applies here.
- UpdateItem's AttributeUpdates (here): moto 5.2 stores a PUT of a BOOL (or B, BS) as a string
  and drops a NULL; AWS stores the value as given. Terraform's provider updates a table item
  this way, so a Terraform-owned item would come back with "enabled": "True".
- CreateLogGroup with a KMS key the key's policy does not let CloudWatch Logs use is refused, as
  AWS refuses it (`resource_policies.install`).
With `--home` (the runtime of `mlops-sfn local up`), also:
- EventBridge delivery as AWS does it (`events`), Lambda targets included;
- Lambda functions that run their deployment package (`functions.LocalLambda`), for EventBridge,
  `lambda:invoke` from the state machine and the Invoke API (`aws lambda invoke`);
- executions run by moto's Step Functions interpreter with the integrations it lacks
  (`integrations`), SageMaker jobs that run the scripts (`jobs.ScriptJobs`) and endpoints that
  answer InvokeEndpoint with the real model (`jobs.LocalEndpoints`).
The server's own calls (the state machine's tasks, the job runner) go straight to its backends
(moto's in-process mock); the processes it starts (functions, scripts) call it over HTTPS.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from . import REGION

WITHOUT_TLS = {"Bool": {"aws:SecureTransport": "false"}}
GUARDRAILS = "guardrails.json"  # in the runtime folder, written by `local up --deny/--scp` before the server starts


def applies_only_without_tls(statement: dict[str, Any]) -> bool:
    return statement.get("Condition") == WITHOUT_TLS


def install() -> None:
    from . import quotas, resource_policies
    from .motoport import DynamoType, FakeBucket, IAMPolicy, Item, PermissionResult

    def get_permission(bucket: Any, action: str, resource: str) -> Any:
        if bucket.policy is None:
            return PermissionResult.NEUTRAL
        document = json.loads(bucket.policy)
        statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
        kept = [statement for statement in statements if not applies_only_without_tls(statement)]
        if not kept:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps({**document, "Statement": kept})).is_action_permitted(action, resource)

    FakeBucket.get_permission = get_permission  # type: ignore[method-assign,assignment]

    original_updates = Item.update_with_attribute_updates

    def update_with_attribute_updates(item: Any, attribute_updates: dict[str, Any]) -> None:
        rest = {}
        for name, update in attribute_updates.items():
            if update.get("Action", "PUT") == "PUT" and "Value" in update:
                item.attrs[name] = DynamoType(update["Value"])  # as given, whatever its type
            else:
                rest[name] = update
        original_updates(item, rest)

    Item.update_with_attribute_updates = update_with_attribute_updates  # type: ignore[method-assign,assignment]
    resource_policies.install()  # a log group's key must let CloudWatch Logs use it
    quotas.install()  # ListServiceQuotas, which moto lacks


def process_environment(endpoint: str, ca_bundle: str) -> dict[str, str]:
    """What a function's or a script's process gets: this local AWS as its AWS, and nothing of ours."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_CA_BUNDLE": ca_bundle,
    }


class Deployed(Mapping[str, Callable[[Any, Any], Any]]):
    """The state machine's view of the deployed functions (integrations.Local.functions): a function
    ARN gives a callable that invokes it in the local Lambda."""

    def __init__(self, lambdas: Any) -> None:
        self.lambdas = lambdas

    def __getitem__(self, arn: str) -> Callable[[Any, Any], Any]:
        parts = arn.split(":")
        if len(parts) < 7 or parts[2] != "lambda":
            raise KeyError(arn)
        account, region = parts[4], parts[3]
        try:
            self.lambdas._function(arn, account, region)
        except Exception:
            raise KeyError(arn) from None
        return lambda event, context: self.lambdas.invoke(arn, event, account, region)

    def __iter__(self) -> Iterator[str]:
        return iter(())  # looked up by ARN only

    def __len__(self) -> int:
        return 0


def install_runtime(home: Path, endpoint: str, ca_bundle: str) -> Any:
    """The fills of `mlops-sfn local up`; returns the active integrations context (kept for the process)."""
    from . import accounts, events
    from .functions import LocalLambda
    from .integrations import Local, installed
    from .jobs import LocalEndpoints, ScriptJobs
    from .motoport import mock_aws, sagemaker_backends
    from .sagemaker import LocalSageMaker, install_package_events, install_registry, install_tags

    mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}).start()
    environment = process_environment(endpoint, ca_bundle)
    guardrails_file = home / GUARDRAILS
    guardrails = json.loads(guardrails_file.read_text()) if guardrails_file.exists() else []
    lambdas = LocalLambda(home, environment, guardrails)
    events.install(lambdas.invoke_async)
    _serve_functions(lambdas)
    install_registry()
    install_tags()

    # what SageMaker sends EventBridge of a package: the package-approval rule hands approvals to the router
    describe = lambda arn, region: accounts.client("sagemaker", region).describe_model_package(  # noqa: E731
        ModelPackageName=arn  # answered from the registry of the account the ARN names
    )
    install_package_events(describe)

    jobs = ScriptJobs(home, lambda service, account: accounts.client(service, REGION, account), environment)
    _serve_endpoints(LocalEndpoints(jobs))
    local = Local(
        sagemaker=LocalSageMaker(jobs, accounts.client, lambda account, region: sagemaker_backends[account][region]),
        functions=Deployed(lambdas),
        wait_scale=0.0,  # the execution input keeps AWS's waits; here nothing needs them
        guardrails=guardrails,
    )
    check_callers(local)
    active = installed(local)
    active.__enter__()
    return active


def _serve_functions(lambdas: Any) -> None:
    """Lambda's Invoke answered by the local functions (moto would need Docker)."""
    from .functions import Unmarshalable
    from .motoport import JsonRESTError, LambdaResponse, LambdaSimpleBackend
    from .worker import WorkerError

    def invoke(
        backend: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
    ) -> bytes:
        function = backend.get_function(function_name, qualifier)
        try:
            event: Any = json.loads(body or b"{}")
        except RecursionError as error:  # valid JSON nested deeper than the runtime's parser goes
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
            event = Unmarshalable(text, str(error))
        except ValueError as error:
            # Lambda API reference, Invoke: InvalidRequestContentException (HTTP 400), "The request body
            # could not be parsed as JSON".
            message = f"Could not parse request body into json: {error}"
            raise JsonRESTError("InvalidRequestContentException", message) from None
        if headers.get("X-Amz-Invocation-Type") == "Event":
            lambdas.invoke_async(function.function_arn, event, backend.account_id, backend.region_name)
            return b""
        try:
            payload = json.dumps(lambdas.invoke(function.function_arn, event, backend.account_id, backend.region_name))
        except WorkerError as error:
            response_headers["x-amz-function-error"] = "Unhandled"
            payload = json.dumps({"errorMessage": str(error), "errorType": error.error_type, "stackTrace": error.trace})
        response_headers["Content-Length"] = str(len(payload))
        return payload.encode()

    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign,assignment]
    any_param = LambdaResponse._get_param

    def param(self: Any, name: str, if_none: Any = None) -> Any:
        # Invoke's Qualifier is a query parameter (Lambda API reference, Invoke); moto also looks for
        # it in the body, the event, whose parsing must be left to the runtime (above).
        if name == "qualifier":
            found = self.querystring.get(name)
            return found[0] if found else if_none
        return any_param(self, name, if_none)

    LambdaResponse._get_param = param  # type: ignore[method-assign,assignment]


def _serve_endpoints(endpoints: Any) -> None:
    """SageMaker Runtime's InvokeEndpoint answered by the local endpoints."""
    from .motoport import JsonRESTError, SageMakerRuntimeResponse
    from .worker import WorkerError

    class ModelError(JsonRESTError):
        code = 424

    def invoke_endpoint(self: Any) -> Any:
        name = self._get_param("EndpointName") or self.path.split("/")[2]
        body = self.body.decode("utf-8") if isinstance(self.body, bytes) else self.body
        try:
            answer, content_type = endpoints.invoke(
                name,
                body,
                self.headers.get("Content-Type"),
                self.headers.get("Accept"),
                self.headers.get("X-Amzn-SageMaker-Target-Model"),  # InvokeEndpoint's TargetModel
                self.current_account,
            )
        except LookupError as error:
            raise JsonRESTError("ValidationError", str(error)) from None
        except WorkerError as error:
            raise ModelError(
                "ModelError", f"Received client error from the model: {error.error_type}: {error}"
            ) from None
        return 200, {"Content-Type": content_type}, answer

    SageMakerRuntimeResponse.invoke_endpoint = invoke_endpoint  # type: ignore[method-assign]

    def invoke_endpoint_async(self: Any) -> Any:
        name = self._get_param("EndpointName") or self.path.split("/")[2]
        try:
            inference, output, failure = endpoints.invoke_async(
                name,
                self.headers.get("X-Amzn-SageMaker-InputLocation", ""),
                self.headers.get("X-Amzn-SageMaker-Content-Type"),
                self.headers.get("X-Amzn-SageMaker-Accept"),
                self.current_account,
            )
        except LookupError as error:
            raise JsonRESTError("ValidationError", str(error)) from None
        headers = {"X-Amzn-SageMaker-OutputLocation": output, "X-Amzn-SageMaker-FailureLocation": failure}
        return 202, headers, json.dumps({"InferenceId": inference})  # accepted: answered from the queue

    SageMakerRuntimeResponse.invoke_endpoint_async = invoke_endpoint_async  # type: ignore[method-assign]


def check_callers(local: Any) -> None:
    """Every request a deployed function's code makes is decided as the function's role (callers.py)."""
    import io

    from werkzeug.datastructures import EnvironHeaders

    from . import accounts, callers, task_permissions
    from .motoport import server_dispatcher

    application = server_dispatcher()
    dispatch = application.__call__
    policies = task_permissions.role_policies

    def checked(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        headers = EnvironHeaders(environ)
        signed = callers.signer(headers)
        if signed is None:
            return dispatch(self, environ, start_response)
        role, region, service = signed
        # made in the role's account, as a role's temporary credentials are (accounts.py)
        environ[f"HTTP_{accounts.HEADER.upper().replace('-', '_')}"] = role.split(":")[4]
        if not local.check_permissions:
            return dispatch(self, environ, start_response)
        body = b""
        if service != "s3":  # a JSON request's body names what it acts on; S3's path does
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
        method, path, query = environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
        try:
            wanted = callers.calls(service, region, role.split(":")[4], method, path, query, headers, body)
        except NotImplementedError as unknown:  # loud: a function's new call needs its rule here
            status, response_headers, text = 500, {"Content-Type": "text/plain"}, str(unknown).encode()
        else:
            message = callers.refusal(role, wanted, policies, local.guardrails)
            if message is None and not callers.unlisted(role, wanted, policies, local.guardrails):
                return dispatch(self, environ, start_response)
            if message is None:  # a missing key is 403 to a role that may not list the bucket
                answered: list[Any] = []

                def keep(*response: Any) -> Any:
                    answered.append(response)
                    return lambda _: None  # WSGI's write(), unused by the backends

                body = b"".join(dispatch(self, environ, keep))
                if not answered[0][0].startswith("404"):
                    start_response(*answered[0])
                    return [body]
                message = "Access Denied"
            status, response_headers, text = callers.denied(service, message)
            text = b"" if method == "HEAD" else text  # S3 answers a HEAD with no body
        reasons = {400: "Bad Request", 403: "Forbidden", 500: "Internal Server Error"}
        start_response(f"{status} {reasons[status]}", [*response_headers.items(), ("Content-Length", str(len(text)))])
        return [text]

    application.__call__ = checked


def main(argv: list[str] | None = None) -> None:
    from .motoport import serve

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--home", type=Path)
    ours, rest = parser.parse_known_args(argv)
    install()
    if ours.home:
        settings = argparse.ArgumentParser(add_help=False)
        settings.add_argument("-p", "--port", type=int, default=5000)
        settings.add_argument("-c", "--ssl-cert")
        known, _ = settings.parse_known_args(rest)
        # Held for the process's life: a collected context manager would undo the integrations.
        runtime = install_runtime(ours.home, f"https://127.0.0.1:{known.port}", known.ssl_cert)
    serve(rest)
    if ours.home:
        runtime.__exit__(None, None, None)


if __name__ == "__main__":
    main(sys.argv[1:])
