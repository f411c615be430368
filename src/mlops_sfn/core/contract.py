"""What Python and Terraform must agree on, written once: `mlops-sfn generate` writes it to
contract.json at the root, which the modules read with jsondecode(file(...)), and the tests import it.

- ROUTER_ENVIRONMENT: the router module's input -> the environment variable the router reads it from;
- HANDLERS: each function's handler, as the Lambda zip lays them out (package.py);
- SCHEDULE_INPUT_TEMPLATE: what a schedule rule sends the router (an input transformer template;
  `<pipeline>` is replaced by the pipeline's name as a JSON string), parsed by triggers.py;
- DRIFT_ALARM_INFIX: a pipeline's drift alarm is <sagemaker_name_prefix><infix><pipeline>
  (monitoring.py); the drift rule matches alarms starting with the prefix and the infix.
- MONITORING_METRIC_NAMESPACE: where the data-quality analyzer publishes its drift metrics, which
  the drift alarm watches (monitoring.py) and the SageMaker role may write to (modules/sagemaker-role);
- DEFINITION_VARIABLES: the template variables of the state machine's definition and role policy,
  which the state-machine module fills.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROUTER_ENVIRONMENT = {
    "table_name": "PIPELINE_TABLE",
    "state_machine_arn": "STATE_MACHINE_ARN",
    "bucket": "ARTIFACT_BUCKET",
    "sagemaker_role_arn": "SAGEMAKER_ROLE_ARN",
    "default_image_uri": "DEFAULT_IMAGE_URI",
    "sagemaker_name_prefix": "SAGEMAKER_NAME_PREFIX",
    "image_repository_arns": "IMAGE_REPOSITORY_ARNS",
    "data_buckets": "DATA_BUCKETS",
    "kms_key_arn": "KMS_KEY_ARN",
    "deployment_tags": "DEPLOYMENT_TAGS",
    "required_tags": "REQUIRED_TAGS",
    "model_consumer_accounts": "MODEL_CONSUMER_ACCOUNTS",
    "model_source_account": "MODEL_SOURCE_ACCOUNT",
    "model_source_prefix": "MODEL_SOURCE_PREFIX",
    "report_batch_item_failures": "REPORT_BATCH_ITEM_FAILURES",
    "ledger_table_name": "LEDGER_TABLE",
}
HANDLERS = {
    "router": "router.handler.handler",
    "quality_gate": "quality_gate.handler.handler",
    "model_copy": "model_copy.handler.handler",
    "smoke_test": "smoke_test.handler.handler",
    "segments": "segments.handler.handler",
}
SCHEDULE_INPUT_TEMPLATE = (
    '{"detail-type": "Scheduled Event", "source": "aws.events", "time": <time>, "resources": <resources>, '
    '"detail": {"consumption_pipeline_name": <pipeline>}}'
)
DRIFT_ALARM_INFIX = "drift-"
# The "CloudWatch Metrics" page of Model Monitor names the namespace two ways; the bias and
# model-quality pages, the SageMaker Python SDK and the console use this one, without a leading "/".
MONITORING_METRIC_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
# The state machine definition's template variables, which the state-machine module passes to
# templatefile() (tools/statemachine.py writes the template; the role policy's template takes them too).
DEFINITION_VARIABLES = {
    "notification_topic_arn": "SNS topic for failure and success summaries",
    "approval_topic_arn": "SNS topic that carries approval requests (with their task tokens)",
    "quality_gate_function_arn": "Lambda function that compares the evaluation metric with the threshold",
    "model_copy_function_arn": "Lambda function that copies the best tuning job's model into the run folder",
    "smoke_test_function_arn": "Lambda function that invokes the deployed endpoint once and summarises its answer",
    "segments_function_arn": "Lambda function that summarises a fanned-out run's segments for its notification",
    "ledger_table_name": "DynamoDB table of the run ledger, where succeeded stages are recorded for step caching",
}
FILE = "contract.json"


def document() -> dict[str, Any]:
    return {
        "router_environment": ROUTER_ENVIRONMENT,
        "handlers": HANDLERS,
        "schedule_input_template": SCHEDULE_INPUT_TEMPLATE,
        "drift_alarm_infix": DRIFT_ALARM_INFIX,
        "monitoring_metric_namespace": MONITORING_METRIC_NAMESPACE,
        "definition_variables": sorted(DEFINITION_VARIABLES),
    }


def text() -> str:
    return json.dumps(document(), indent=2) + "\n"


def router_environment(values: dict[str, str]) -> dict[str, str]:
    """The router's environment for these module inputs (tests and the local harness)."""
    return {ROUTER_ENVIRONMENT[name]: value for name, value in values.items()}


def path(root: Path) -> Path:
    return root / FILE
