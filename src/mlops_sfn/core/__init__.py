"""What runs in AWS Lambda: items checked and planned, events routed, the checkpoints, the model copy.

The deployment zip is exactly this package plus the handlers (tools/package.py); it imports nothing
outside it but the standard library and boto3.
"""
