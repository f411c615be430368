"""The one place the local runtime reaches into moto: every moto name it uses comes from here.

Most are moto internals (its Step Functions interpreter, its backends' records), which change
between releases without notice, so the supported release is checked when this module loads and
a different one is refused with what to install. A moto upgrade is a port of the modules that use
these names, starting from this list.
"""

from __future__ import annotations

from typing import Any

import moto

SUPPORTED = (5, 2)  # moto 5.2.x: pyproject's `local` extra admits the same
TESTED = "5.2.6"  # the release uv.lock installs, which the suite runs on (tests/unit/test_lock.py checks)
_INSTALL = f"pip install 'moto[server]=={TESTED}' (make install does)"
_found = tuple(int(part) for part in moto.__version__.split(".")[:2])
if _found != SUPPORTED:
    raise ImportError(
        f"mlops-sfn's local runtime supports moto {SUPPORTED[0]}.{SUPPORTED[1]}.x (tested with {TESTED}), "
        f"found {moto.__version__}: {_INSTALL}"
    )

# The imports below are valid only for the release checked above.
try:
    from moto import mock_aws
    from moto.applicationautoscaling.models import ApplicationAutoscalingBackend, applicationautoscaling_backends
    from moto.awslambda.responses import LambdaResponse
    from moto.awslambda_simple.models import LambdaSimpleBackend, lambda_simple_backends
    from moto.cloudwatch.models import CloudWatchBackend
    from moto.core.exceptions import JsonRESTError
    from moto.core.responses import ActionResult, EmptyResult
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.events.models import EventPattern, Rule, events_backends
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.iam.models import iam_backends
    from moto.kms.models import kms_backends
    from moto.logs.models import LogsBackend
    from moto.s3.exceptions import S3ClientError
    from moto.s3.models import FakeBucket, S3Backend, s3_backends
    from moto.s3control.models import s3control_backends
    from moto.sagemaker.models import sagemaker_backends
    from moto.sagemaker.responses import SageMakerResponse
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse
    from moto.servicequotas.responses import ServiceQuotasResponse
    from moto.sns.models import sns_backends
    from moto.sqs.models import sqs_backends
    from moto.stepfunctions.exceptions import ValidationException
    from moto.stepfunctions.parser.api import ExecutionStatus, HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.common.retry.retrier_decl import RetrierDecl
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3 import (
        ResourceEvalS3 as ItemReaderS3,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
        DistributedIterationComponent,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.distributed_item_processor_worker import (  # noqa: E501
        DistributedItemProcessorWorker,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.result_writer_decl import (
        ResultWriter,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.state_map import StateMap
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils import (
        LambdaFunctionErrorException,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk as aws_sdk_task,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_dynamodb as dynamodb_task,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_sns as sns_task,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_unsupported as unsupported_task,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
        StateTaskServiceAwsSdk,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
        StateTaskServiceCallback,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (
        StateTaskServiceLambda,
    )
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackOutcomeTimedOut
    from moto.stepfunctions.parser.asl.eval.evaluation_details import EvaluationDetails, StateMachineDetails
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramError, ProgramStopped, ProgramTimedOut
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for
    from moto.stepfunctions.parser.backend.execution import Execution
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.stepfunctions.responses import StepFunctionResponse
except ImportError as error:  # an internal that moved within 5.2.x: name the release that has it
    raise ImportError(
        f"mlops-sfn's local runtime was tested with moto {TESTED}; moto {moto.__version__} does not match "
        f"({error}): {_INSTALL}"
    ) from error


def server_dispatcher() -> Any:
    """The moto server's WSGI application class (imported when a server starts: it brings Flask)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    return DomainDispatcherApplication


def serve(argv: list[str]) -> None:
    """moto's server (imported here, when a server starts: it brings Flask)."""
    from moto.server import main

    main(argv)


def sagemaker_backend(account: str, region: str) -> Any:
    return sagemaker_backends[account][region]


__all__ = [
    "ActionResult",
    "AmazonStateLanguageParser",
    "ApplicationAutoscalingBackend",
    "CallbackOutcomeTimedOut",
    "CloudWatchBackend",
    "CustomErrorName",
    "DistributedItemProcessorWorker",
    "DistributedIterationComponent",
    "DynamoType",
    "EmptyResult",
    "ErrorEqualsDecl",
    "EvaluationDetails",
    "EventDetails",
    "EventPattern",
    "Execution",
    "ExecutionStatus",
    "ExecutionWorker",
    "FailureEvent",
    "FailureEventException",
    "FakeBucket",
    "HistoryEventType",
    "IAMPolicy",
    "Item",
    "ItemReaderS3",
    "JsonRESTError",
    "LambdaFunctionErrorException",
    "LambdaResponse",
    "LambdaSimpleBackend",
    "LogsBackend",
    "PermissionResult",
    "ProgramError",
    "ProgramStopped",
    "ProgramTimedOut",
    "ResourceCondition",
    "ResultWriter",
    "RetrierDecl",
    "Rule",
    "S3Backend",
    "S3ClientError",
    "SageMakerResponse",
    "SageMakerRuntimeResponse",
    "ServiceQuotasResponse",
    "StateMachineDetails",
    "StateMap",
    "StateTaskServiceAwsSdk",
    "StateTaskServiceCallback",
    "StateTaskServiceLambda",
    "StatesErrorName",
    "StatesErrorNameType",
    "StepFunctionResponse",
    "StepFunctionsParserBackend",
    "TaskFailedEventDetails",
    "ValidationException",
    "WaitFunction",
    "applicationautoscaling_backends",
    "aws_sdk_task",
    "boto_client_for",
    "dynamodb_task",
    "events_backends",
    "iam_backends",
    "kms_backends",
    "lambda_simple_backends",
    "mock_aws",
    "retrier_decl",
    "s3_backends",
    "s3control_backends",
    "sagemaker_backend",
    "sagemaker_backends",
    "serve",
    "sns_backends",
    "sns_task",
    "sqs_backends",
    "state_task_factory",
    "unsupported_task",
]
