"""Create model: the SageMaker model that serves the run's model (batch transform and deploy use it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import fanout, iam
from ..asl import SAGEMAKER, SDK, Builder
from ..problems import Problem
from ..stage import Block, Item, Made, Stage, Statements, Where, model_sources, runs
from ..triggers import package_group
from .shared import MODEL_TAG, add_model_data, model_request

if TYPE_CHECKING:
    from ..settings import Settings


class CreateModel(Stage):
    name = "create_model"
    per_segment = True
    operation = "CreateModel"
    name_field = "ModelName"
    tag = MODEL_TAG
    resource = "model"
    described_as = "model"

    def defaults(self, item: Item, execution: str) -> dict[str, Any]:
        return model_request(item)

    def plan(self, item: Item, execution: str, settings: Settings) -> Block:
        request = self.request(item, execution)
        package = item["stages"]["create_model"].get("model_package")
        if package:  # served as registered, once the run has read it Approved (package_states)
            return {"request": request, "model_source": "model_package", "package": package}
        add_model_data([request["PrimaryContainer"]] if "PrimaryContainer" in request else request["Containers"])
        if fanout.serves(item):  # every segment's model behind one endpoint: {model_data_url} is their prefix
            request["PrimaryContainer"]["Mode"] = "MultiModel"
            return {"request": request, "model_source": "segments"}
        return {"request": request, "model_source": model_sources(item)[0]}

    def rules(self, item: Item) -> list[Problem]:
        block = item["stages"].get("create_model", {})
        own = block.get("request", {})
        problems = []
        if "ModelDataUrl" in own.get("PrimaryContainer", {}):
            problems.append(
                Problem(
                    "stages.create_model.request.PrimaryContainer.ModelDataUrl",
                    "set stages.create_model.model_data_url instead, so the rules about the model's source apply",
                )
            )
        config = item.get("trigger")
        trigger = config if isinstance(config, dict) else {}
        served = trigger.get("model_package_group")
        if isinstance(served, str) and served:
            package = block.get("model_package")
            if not runs(item, self.name) or not isinstance(package, str) or not package:
                problems.append(
                    Problem(
                        "stages.create_model.model_package",
                        f"trigger.model_package_group serves each approved package of {served!r}: name the one"
                        " served until the next approval (a versioned package ARN), with create_model running",
                    )
                )
            elif (group := package_group(package)) and group != served.lower():
                problems.append(
                    Problem(
                        "trigger.model_package_group",
                        f"is {served!r}, but stages.create_model.model_package is a package of {group!r}: serve"
                        " one group",
                    )
                )
        if not block.get("model_package"):
            return problems
        for field in ("PrimaryContainer", "Containers"):
            if field in own:
                problems.append(
                    Problem(
                        f"stages.create_model.request.{field}",
                        "a model package brings its own containers, as registered: remove it (or model_package)",
                    )
                )
        if runs(item, "register"):
            problems.append(Problem("stages.register", "the model package is registered already: switch register off"))
        if fanout.segments(item) or item.get("fanout"):
            problems.append(
                Problem(
                    "stages.create_model.model_package",
                    "a fanned-out run serves each segment's own model: remove it, or the fanout",
                )
            )
        return problems

    def check(self, block: Block, settings: Settings) -> list[Problem]:
        """A package the role's policy lets the run read: the deployment's own (its account, region and
        name prefix), or its model source's (root variable model_source: that account's groups starting
        with its prefix, shared with this account by their resource policy)."""
        package = block.get("package")
        if not package:
            return []
        field = "stages.create_model.model_package"
        region, account = package.split(":")[3:5]
        group = package.split("/")[-2]
        own = settings.account()
        if region == settings.region and account == own:
            prefix = settings.sagemaker_name_prefix
            where = "this deployment, whose names start with"
        elif region == settings.region and account == settings.model_source_account:
            prefix = settings.model_source_prefix
            where = f"the groups of model source {account} this deployment may serve: they start with"
        else:
            source = settings.model_source_account
            also = (
                f" or of its model source, account {source}"
                if source
                else " (set the root variable model_source to serve another account's)"
            )
            return [
                Problem(
                    field,
                    f"is in account {account}, {region}; this deployment serves packages of account {own},"
                    f" {settings.region}{also}: name one registered there",
                )
            ]
        if group.startswith(prefix):
            return []
        return [Problem(field, f"{group!r} is outside {where} {prefix!r}: name a package of one of those groups")]

    def states(self, b: Builder, then: str | None) -> str:
        return b.call(
            "Create model",
            self.name,
            f"{SAGEMAKER}createModel",
            input_path="$.stages.create_model.request",
            selector={"model_arn.$": "$.ModelArn"},
            result="$.results.create_model",
            then=then,
        )

    def permissions(self) -> Statements:
        return {
            "sagemaker:createModel": (
                iam.statement("CreateModel", ["sagemaker:CreateModel", *iam.TAGGING], iam.named(self)),
                iam.PASS_ROLE,
            ),
            "aws-sdk:sagemaker:describeModelPackage": (
                iam.statement(iam.PACKAGES_SID, ["sagemaker:DescribeModelPackage"], iam.PACKAGES),
                # a statement of its own: approval's UpdateModelPackage (ModelPackages) stays on the deployment's
                iam.statement("SourcePackages", ["sagemaker:DescribeModelPackage"], iam.SOURCE_PACKAGES),
            ),
        }

    def made(self, block: Block, result: dict[str, Any] | None = None) -> list[Made]:
        name = block.get("request", {}).get(self.name_field)
        # a model can be deleted: a rerun that reuses it must still find it
        return [Made(name, needed=bool(result), describe=("describe_model", "ModelName"))] if name else []

    def preview(self, block: Block) -> str:
        if block.get("package"):
            return f"{super().preview(block)}, from package {block['package']} (if Approved when the run reads it)"
        container = block["request"].get("PrimaryContainer", {})
        if container.get("Mode") == "MultiModel":
            return f"{super().preview(block)}, multi-model: each segment's model, under {container['ModelDataUrl']}"
        return super().preview(block)

    def report(self, result: dict[str, Any], block: Block, where: Where) -> str:
        served = f" from package {block['package']}" if block.get("package") else ""
        return f"{result.get('model_arn', '')}{served}"


def package_states(b: Builder, then: str) -> str:
    """A model served from a registered package: the package is read when the run reaches it, and
    only an Approved one goes on to `then` (an event or a command that named it proves nothing: it
    may have been rejected since). Not in a segment: the item rules refuse a package there."""
    b.call(
        "Check model package",
        CreateModel.name,
        f"{SDK}sagemaker:describeModelPackage",
        parameters={"ModelPackageName.$": "$.stages.create_model.package"},
        selector={"arn.$": "$.ModelPackageArn", "status.$": "$.ModelApprovalStatus"},
        result="$.results.model_package",
        then="Package approved?",
    )
    b.when(
        "Package approved?",
        "$.results.model_package.status",
        then,
        "Model package not approved",
        test={"StringEquals": "Approved"},
    )
    b.fail(
        "Model package not approved",
        CreateModel.name,
        "ModelPackageNotApproved",
        "States.Format('model package {} is {}, not Approved: nothing was created; approve it, or serve an"
        " approved one', $.results.model_package.arn, $.results.model_package.status)",
    )
    return "Check model package"


STAGE = CreateModel()
