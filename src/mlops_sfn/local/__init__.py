"""The framework on one machine: the state machine run in moto's interpreter, SageMaker answered locally.

`sagemaker.py` answers the SageMaker calls the state machine makes (moto keeps the records, a job
runner does the work), `integrations.py` plugs that into moto's Step Functions interpreter, and
`harness.py` runs one item's execution end to end and reports what happened.
"""

REGION = "us-east-1"  # the local AWS serves one region
