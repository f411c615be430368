"""The router's log: one JSON line per decision on stdout."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any


def log(**fields: Any) -> None:
    """One JSON line on stdout: CloudWatch Logs keeps it as one event, Logs Insights parses its fields."""
    record = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), **fields}
    sys.stdout.write(json.dumps(record, default=str, sort_keys=False) + "\n")
    sys.stdout.flush()
