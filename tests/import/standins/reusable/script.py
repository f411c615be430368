"""Stand-in for the reusable framework's script.py (SageMaker script mode): it read the train and
test channels (SM_CHANNEL_TRAIN, SM_CHANNEL_TEST), fitted a model on train, printed its error on
test, and saved the model in SM_MODEL_DIR. A missing channel fails the job, as it did upstream."""

import json
import os
from pathlib import Path


def rows(channel: str) -> list[list[str]]:
    files = sorted(Path(os.environ[f"SM_CHANNEL_{channel.upper()}"]).glob("*.csv"))
    if not files:
        raise SystemExit(f"no CSV in the {channel} channel")
    return [line.split(",") for path in files for line in path.read_text().splitlines()[1:]]


train, test = rows("train"), rows("test")
mean = sum(float(row[-1]) for row in train) / len(train)
error = sum(abs(float(row[-1]) - mean) for row in test) / len(test)
print(f"AE-at-50th-percentile: {error:.4f}")
Path(os.environ["SM_MODEL_DIR"], "model.json").write_text(json.dumps({"mean": mean}))
