region              = "eu-west-1"
environment         = "prod"
default_image_uri   = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
items_pattern       = "*-prod-*.json"
notification_emails = ["ml-team@example.com"]
