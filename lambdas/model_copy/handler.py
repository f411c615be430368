"""AWS Lambda entry point of the model copy, invoked by the state machine's "Copy best model" state.

Event: {"source": <the best tuning job's model.tar.gz>, "target": <the run's model place>}, both
s3:// URLs. It copies in parts above a threshold, so models over CopyObject's 5 GB limit copy too.
The handler lives in the package, so `mlops-sfn local run` calls the same function from an install.
"""

from mlops_sfn.core.model_copy import handler

__all__ = ["handler"]
