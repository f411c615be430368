"""`mlops-sfn promote PACKAGE_ARN --pipeline PIPELINE [--to FILE] [--dry-run]`: serve a registered,
approved model package with a pipeline of the serving deployment (its endpoint, strategy and
guardrails), through its router like `mlops-sfn run`. The run reads the package again when it
reaches it: one rejected in between is not served (create_model.ModelPackageNotApproved)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from botocore.exceptions import ClientError

from ..core import dynamodb_json
from ..core.plan import plan_execution
from ..core.problems import InvalidItem
from ..core.triggers import Manual
from ..operate import preview
from .common import INVALID, OK, input_file, problem, target
from .runs import _add_wait, outputs_option, start_run

TO_HELP = (
    "the serving deployment: its root's `terraform output -json` saved to a file (AWS_ENDPOINT_URL, as for"
    " any AWS SDK, selects another endpoint); default: the local deployment `mlops-sfn local up` started"
)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    promote = commands.add_parser(
        "promote",
        help="serve a registered, approved model package with PIPELINE of the deployment --to names"
        " (--dry-run: show what would be served where)",
    )
    promote.add_argument("package", metavar="PACKAGE_ARN", help="the model package version to serve")
    promote.add_argument(
        "--pipeline",
        required=True,
        metavar="PIPELINE",
        help="the serving deployment's item that serves it: its create_model, batch_transform and deploy run",
    )
    # --outputs too, as every other command names a deployment (and the hints say)
    promote.add_argument("--to", "--outputs", dest="outputs", type=input_file, metavar="FILE", help=TO_HELP)
    promote.add_argument("--dry-run", action="store_true", help="show the package and the run; start nothing")
    _add_wait(promote)
    promote.set_defaults(run=promote_package)


def promote_package(args: argparse.Namespace) -> int:
    deployment = target(args.outputs)
    try:
        package = deployment.client("sagemaker").describe_model_package(ModelPackageName=args.package)
    except ClientError as error:
        problem(f"mlops-sfn promote: {args.package}: {error.response['Error']['Message']}")
        return INVALID
    stored = deployment.client("dynamodb").get_item(
        TableName=deployment.output("table_name"), Key={"consumption_pipeline_name": {"S": args.pipeline}}
    )
    if "Item" not in stored:
        problem(
            f"mlops-sfn promote: no pipeline {args.pipeline} in {deployment.output('table_name')}: name one of its"
            f" items (mlops-sfn items pull --into FOLDER{outputs_option(args.outputs)} writes them all)"
        )
        return INVALID
    changes = {"stages": {"create_model": {"model_package": args.package}}}
    item = dynamodb_json.from_typed(stored["Item"])
    try:
        planned = plan_execution(item, Manual(pipeline=args.pipeline, overrides=changes), deployment.settings())
    except InvalidItem as error:
        problem(f"mlops-sfn promote: {args.pipeline} cannot serve the package: {error}")
        return INVALID
    status = package.get("ModelApprovalStatus", "")
    if args.json and args.dry_run:
        print(json.dumps({"package": _summary(package), "plan": planned}, default=str))
    elif not args.json:
        print(_describe(package, deployment.client("s3")))
        print(preview.text(planned, item.get("enabled", True) is not False))
    if status != "Approved":
        problem(
            f"mlops-sfn promote: {args.package} is {status or 'of no approval status'}, not Approved: only an"
            " approved package is served; promote an approved one, or approve this one in the model registry"
        )
        return INVALID
    if args.dry_run:
        return OK
    return start_run(_as_run(args))


def _as_run(args: argparse.Namespace) -> argparse.Namespace:
    """The run `mlops-sfn run PIPELINE --set create_model.model_package=ARN` would start."""
    return argparse.Namespace(
        command="promote",
        pipeline=args.pipeline,
        sets=[f"create_model.model_package={args.package}"],
        over_budget=False,
        wait=args.wait,
        timeout=args.timeout,
        json=args.json,
        outputs=args.outputs,
    )


def _summary(package: dict[str, Any]) -> dict[str, Any]:
    fields = ("ModelPackageArn", "ModelPackageGroupName", "ModelPackageVersion", "ModelApprovalStatus")
    more = ("ApprovalDescription", "CreationTime", "ModelMetrics", "CustomerMetadataProperties")
    return {key: package[key] for key in (*fields, *more) if key in package}


REPORT_BYTES = 1 << 20  # a model quality report is read whole up to this size, else named only


def _metrics(package: dict[str, Any], s3: Any) -> str:
    """The package's model quality statistics: its report's numbers ("regression_metrics.rmse.value =
    0.53"), read where the package names it; where it cannot be read, why."""
    statistics = package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {})
    uri = str(statistics.get("S3Uri", ""))
    if not uri.startswith("s3://"):
        return json.dumps(package["ModelMetrics"], default=str) if package.get("ModelMetrics") else "none recorded"
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        body = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{REPORT_BYTES - 1}")["Body"].read()
        report = json.loads(body)
    except ClientError as error:
        return f"{uri} (not readable here: {error.response['Error']['Code']})"
    except ValueError:
        return f"{uri} (not JSON, or larger than {REPORT_BYTES} bytes)"
    numbers = [f"{path} = {value}" for path, value in _numbers(report)]
    return f"{', '.join(numbers[:8]) or 'no numbers'} ({uri})"


def _numbers(value: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [found for key, entry in value.items() for found in _numbers(entry, f"{path}.{key}" if path else key)]
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return [(path, value)] if is_number else []


def _describe(package: dict[str, Any], s3: Any) -> str:
    summary = _summary(package)
    lines = [
        f"package:    {summary.get('ModelPackageArn', '')}",
        f"group:      {summary.get('ModelPackageGroupName', '')} version {summary.get('ModelPackageVersion', '')}",
        f"approval:   {summary.get('ModelApprovalStatus', '')}"
        + (f" ({summary['ApprovalDescription']})" if summary.get("ApprovalDescription") else ""),
        f"registered: {summary.get('CreationTime', '')}",
    ]
    lines.append(f"metrics:    {_metrics(package, s3)}")
    return "\n".join(lines)
