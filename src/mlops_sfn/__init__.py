"""Configuration-driven SageMaker pipelines on Step Functions."""

__version__ = "0.1.0"
