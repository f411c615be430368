region              = "eu-west-1"
environment         = "dev"
default_image_uri   = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
items_pattern       = "*-dev-*.json"
notification_emails = ["ml-team@example.com"]
# Production serves the packages development registers and approves (docs/promotion.md):
# model_consumer_accounts = ["444455556666"]
