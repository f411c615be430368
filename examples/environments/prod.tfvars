region              = "eu-west-1"
environment         = "prod"
default_image_uri   = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
items_pattern       = "*-prod-*.json"
notification_emails = ["ml-team@example.com"]
# Serve development's approved packages (docs/promotion.md): development's output as_model_source.
# model_source = {
#   account_id            = "111122223333"
#   sagemaker_name_prefix = "mlops-dev-"
#   bucket                = "mlops-dev-111122223333-eu-west-1"
#   kms_key_arn           = null
# }
