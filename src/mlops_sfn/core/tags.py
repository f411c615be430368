"""Tags on everything a run creates: which pipeline, run, stage (and segment) made it, and who pays.

Every Create call the state machine makes whose API takes Tags carries the run's own tags
(`mlops-sfn:pipeline`, `mlops-sfn:execution`, `mlops-sfn:stage`, and `mlops-sfn:segment` in a
fanned-out run), the deployment's tags (the root variable `tags`, which the router reads from its
environment) and the item's `tags`; for one key, the run's win over the item's, the item's over the
deployment's. The root variable `required_tags` names keys every item must set (`rules`).

What AWS documents, followed here:
- SageMaker's and CloudWatch's Tags take at most 50 tags, keys of 1-128 and values of 0-256
  characters of letters, spaces, digits and `_.:/=+-@` (botocore's TagList, TagKey, TagValue);
  keys starting with `aws:` are AWS's own ("Tagging AWS resources", General Reference).
- CreateModelPackage: "If you supply ModelPackageGroupName, your model package belongs to the model
  group you specify and uses the tags associated with the model group. In this case, you cannot
  supply a tag argument": a registered package is tagged through its group.
- CreateHyperParameterTuningJob: "Tags that you specify for the tuning job are also added to all
  training jobs that the tuning job launches".
- PutMetricAlarm: tags apply when the alarm is created; "if you are using this operation to update
  an existing alarm, any tags you specify in this parameter are ignored".
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Any

from . import sagemaker_api
from .problems import Problem

if TYPE_CHECKING:
    from .settings import Settings

PREFIX = "mlops-sfn:"
PIPELINE, EXECUTION, STAGE, SEGMENT = (f"{PREFIX}{key}" for key in ("pipeline", "execution", "stage", "segment"))
RUN_KEYS = (PIPELINE, EXECUTION, STAGE)  # on every resource a run creates (SEGMENT only in a segment's)
MAX_TAGS = 50  # SageMaker's TagList and CloudWatch's Tags: at most 50
RESERVED = ("aws:", PREFIX)  # AWS's own keys, and the framework's


def of_run(
    item: dict[str, Any], settings: Settings, execution: str, stage: str, segment: str | None = None
) -> list[dict[str, str]]:
    """The Tags of what `stage` creates in run `execution` (of `segment`), as SageMaker takes them."""
    own = {PIPELINE: item["consumption_pipeline_name"], EXECUTION: execution, STAGE: stage}
    if segment is not None:
        own[SEGMENT] = segment
    merged = settings.tags() | dict(item.get("tags", {})) | own
    return [{"Key": key, "Value": str(value)} for key, value in merged.items()]


def takes_tags(operation: str) -> bool:
    """Whether a request of this API carries Tags (a SageMaker API, or CloudWatch's PutMetricAlarm)."""
    if operation == "PutMetricAlarm":
        return True
    return "Tags" in sagemaker_api.input_shape(operation).members


def apply(requests: list[tuple[str, dict[str, Any]]], tags: list[dict[str, str]]) -> None:
    """Put `tags` in each request whose API takes them, but a versioned model package's (its group's
    tags are its own, and SageMaker refuses Tags beside ModelPackageGroupName)."""
    for operation, request in requests:
        if operation == "CreateModelPackage" and "ModelPackageGroupName" in request:
            continue
        if takes_tags(operation):
            request["Tags"] = [dict(tag) for tag in tags]


def without_tags(value: Any) -> Any:
    """`value` with every Tags field left out: a stage's cache key and a rerun's comparison do not
    depend on which run (or team) a resource is tagged for."""
    if isinstance(value, dict):
        return {key: without_tags(entry) for key, entry in value.items() if key != "Tags"}
    if isinstance(value, list):
        return [without_tags(entry) for entry in value]
    return value


def retagged(value: Any, execution: str) -> Any:
    """`value` with the run tag of every Tags list naming `execution` (a rerun's resources are its own)."""
    if isinstance(value, dict):
        found = {key: retagged(entry, execution) for key, entry in value.items()}
        if isinstance(found.get("Tags"), list):
            found["Tags"] = [
                tag | {"Value": execution} if tag.get("Key") == EXECUTION else tag for tag in found["Tags"]
            ]
        return found
    if isinstance(value, list):
        return [retagged(entry, execution) for entry in value]
    return value


def _allowed(character: str) -> bool:
    """Tags' pattern, [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]* (TagKey, TagValue), which Python's re cannot
    compile: a letter, a separator (space), a number, or one of _.:/=+-@."""
    return unicodedata.category(character)[0] in "LZN" or character in "_.:/=+-@"


def _as_aws_takes(key: str, value: Any, path: str, key_path: str) -> list[Problem]:
    """A tag's key and value within SageMaker's TagKey and TagValue (lengths, characters)."""
    key_shape = sagemaker_api.shape_at("AddTags", "Tags", "member", "Key")
    value_shape = sagemaker_api.shape_at("AddTags", "Tags", "member", "Value")
    problems = sagemaker_api.check_value(key_shape, key, key_path)
    problems += sagemaker_api.check_value(value_shape, value, path)
    for text, where in ((key, key_path), (value, path)):
        odd = sorted({c for c in str(text) if not _allowed(c)})
        if odd:
            problems.append(
                Problem(where, f"{''.join(odd)!r} may not be in a tag: letters, spaces, digits and _.:/=+-@ may")
            )
    return problems


def rules(item: dict[str, Any], settings: Settings) -> list[Problem]:
    """The item's tags as AWS takes them, the deployment's required keys set, and no more than 50 a
    resource with the deployment's and the run's own."""
    own: dict[str, Any] = item.get("tags", {})
    problems = []
    for key, value in own.items():
        path = f"tags.{key}"
        reserved = next((prefix for prefix in RESERVED if key.lower().startswith(prefix)), None)
        if reserved:
            whose = "AWS's" if reserved == "aws:" else "the framework's: every run sets them"
            problems.append(Problem(path, f"keys starting with {reserved!r} are {whose}; name the tag otherwise"))
            continue
        problems += _as_aws_takes(key, value, path, f"{path} (the key)")
    for key, value in settings.tags().items():  # what Terraform's validation cannot know of SageMaker's rules
        where = f"tags (the deployment's tag {key!r}, root variable tags)"
        problems += _as_aws_takes(key, value, where, where)
    missing = [key for key in settings.required_tag_keys() if key not in own]
    if missing:
        example = ", ".join(f'"{key}": "..."' for key in missing)
        problems.append(
            Problem(
                "tags",
                f"this deployment requires every item to set {', '.join(missing)} (its required_tags, which"
                f' validate reads from REQUIRED_TAGS): add "tags": {{{example}}}',
            )
        )
    count = len(settings.tags().keys() | own.keys() | {*RUN_KEYS, SEGMENT})
    if count > MAX_TAGS:
        problems.append(
            Problem(
                "tags",
                f"a resource of this run would carry {count} tags (the deployment's, the item's and the"
                f" framework's {len(RUN_KEYS) + 1}); SageMaker and CloudWatch take at most {MAX_TAGS}: remove some",
            )
        )
    return problems
