"""Inference (SageMaker scikit-learn serving): the four functions the serving stack calls.

Requests are CSV, one record of the eight features per line; responses are one price per line.
"""

import io
from pathlib import Path

import joblib
import numpy as np


def model_fn(model_dir):
    return joblib.load(Path(model_dir) / "model.joblib")


def input_fn(body, content_type):
    if content_type != "text/csv":
        raise ValueError(f"content type {content_type!r}: send text/csv")
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    return np.loadtxt(io.StringIO(text), delimiter=",", ndmin=2)


def predict_fn(data, model):
    return model.predict(data)


def output_fn(prediction, accept):
    if accept not in ("text/csv", "*/*", None):
        raise ValueError(f"accept {accept!r}: ask for text/csv")
    return "\n".join(f"{value:.4f}" for value in prediction) + "\n", "text/csv"
