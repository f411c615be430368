# The local stack's stand-in for modules/bucket-events: `aws_s3_bucket_notification.eventbridge` is
# unknown to provider 3.39, so `mlops_sfn.local.stack.enable_bucket_events` makes the same S3 call
# after the apply, keeping the bucket's other notifications.
