"""AWS Lambda entry point of the router (Python 3.12+ runtime; runs on 3.11 too).

The deployment zip holds this file next to the `mlops_sfn` package; boto3 comes from the runtime.
Configuration is read and checked here, once per container (cold start): a missing or malformed
variable fails the start with a ConfigurationError naming it, before any event is touched.
"""

from typing import Any

from mlops_sfn.core.router import Router

ROUTER = Router.from_environment()


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Returns {"started", "duplicates", "skipped", "executions"}; raises mlops_sfn.core.router.RejectedEvent."""
    return ROUTER.handle(event, getattr(context, "aws_request_id", None))
