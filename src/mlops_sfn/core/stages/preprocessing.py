"""Preprocessing: a processing job on the run's data, before training."""

from __future__ import annotations

from ..stage import ProcessingStage


class Preprocessing(ProcessingStage):
    name = "preprocessing"
    tag = "prep"


STAGE = Preprocessing()
