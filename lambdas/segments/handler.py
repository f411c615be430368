"""AWS Lambda entry point of the segments summary, invoked by the state machine's "Summarize segments"
state once a fanned-out run's Distributed Map ended.

Event: {"results": {"Bucket", "Prefix"}} where the Map wrote its segments' outcomes. Returns their
counts, the first failures by name and one line about them, bounded whatever the number of segments:
what the run's notification says of its segments.
The handler lives in the package, so `mlops-sfn local run` calls the same function from an install.
"""

from mlops_sfn.core.fanout import handler

__all__ = ["handler"]
