"""AWS Lambda entry point of the smoke test, invoked by the state machine's "Smoke test" state.

Event: {"endpoint": <the deployed endpoint>, "test": <the deploy block's smoke_test: content_type,
body, and on a fanned-out run's multi-model endpoint target_model or models, the prefix of its models>}.
Returns a bounded summary of the answer (content type, variant, size, first characters), never the
whole body, so no answer can exceed the state's payload quota.
The handler lives in the package, so `mlops-sfn local run` calls the same function from an install.
"""

from mlops_sfn.core.smoke_test import handler

__all__ = ["handler"]
