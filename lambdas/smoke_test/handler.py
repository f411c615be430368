"""AWS Lambda entry point of the smoke test, invoked by the state machine's "Smoke test" state.

Event: {"endpoint": <the deployed endpoint>, "content_type": ..., "body": <the item's payload>}.
Returns a bounded summary of the answer (content type, variant, size, first characters), never the
whole body, so no answer can exceed the state's payload quota.
The handler lives in the package, so `mlops-sfn local run` calls the same function from an install.
"""

from mlops_sfn.core.smoke_test import handler

__all__ = ["handler"]
