variable "environment" {
  description = "Deployment environment; it selects the switches in locals.environments (main.tf)."
  type        = string

  validation {
    condition     = contains(["dev", "uat", "prod"], var.environment)
    error_message = "The environment must be one of dev, uat, prod."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name: <name_prefix>-<environment>-..."
  type        = string
  default     = "mlops"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,18}[a-z0-9]$", var.name_prefix))
    error_message = "The name_prefix must be 2-20 lowercase letters, digits and '-', starting with a letter, e.g. \"mlops\"."
  }
}

variable "bucket_name" {
  description = "An existing bucket to use; null creates one named <name_prefix>-<environment>-<account>-<region> (versioned, encrypted, public access blocked, TLS only)."
  type        = string
  default     = null
}

variable "create_bucket_notification" {
  description = "Manage the bucket's notification configuration to turn on S3 -> EventBridge delivery. That resource owns the whole configuration and would delete notifications set elsewhere, so null (the default) means true for the bucket the framework creates and false for an existing bucket: turn EventBridge on there once, keeping its other notifications (docs/deploying.md, \"An existing bucket\")."
  type        = bool
  default     = null
}

variable "input_prefix" {
  description = "Key prefix whose uploads start runs; every item's trigger.prefix lies under it."
  type        = string
  default     = "input/"

  validation {
    # Characters S3 does not URL-encode in its events: the rule's prefix filter sees the encoded key.
    condition     = can(regex("^([A-Za-z0-9._-]+/)+$", var.input_prefix))
    error_message = "The input_prefix must be a key prefix ending in '/', without a leading '/', of letters, digits and ._- (S3 URL-encodes other characters in its events, so the rule would not match), e.g. \"input/\"."
  }
}

variable "items_folder" {
  description = "Folder of the pipeline items and their typed/ copies (run `mlops-sfn generate` after editing an item); null is ./dynamodb_items."
  type        = string
  default     = null
}

variable "items_pattern" {
  description = "Which item files to load, as a glob in items_folder, e.g. \"*-prod-*.json\"."
  type        = string
  default     = "*.json"
}

variable "items_ownership" {
  description = "\"seeded\": items are written once, then owned by console and API edits, which an apply never reverts; \"terraform\": every apply makes the table match the files."
  type        = string
  default     = "seeded"

  validation {
    condition     = contains(["seeded", "terraform"], var.items_ownership)
    error_message = "The items_ownership must be \"seeded\" or \"terraform\"."
  }
}

variable "schedules" {
  description = "Pipeline name -> EventBridge schedule expression; added to (and overriding) the trigger.schedule of the item files."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for expression in values(var.schedules) : can(regex("^(rate|cron)\\(.+\\)$", expression))])
    error_message = "Each schedule must be an EventBridge expression, e.g. \"rate(1 day)\" or \"cron(0 6 * * ? *)\"."
  }
}

variable "artifacts_folder" {
  description = "Folder uploaded under input_prefix (code and data, keys keeping their relative paths); null is ./sagemaker-artifacts."
  type        = string
  default     = null
}

variable "notification_emails" {
  description = "Addresses for run summaries and alarms (each confirms by email)."
  type        = list(string)
  default     = []
}

variable "approval_emails" {
  description = "Addresses for model approval requests (each confirms by email)."
  type        = list(string)
  default     = []
}

variable "default_image_uri" {
  description = "Container image for stages whose item names none, e.g. a SageMaker scikit-learn image of your region."
  type        = string

  validation {
    condition     = can(regex("^[^\\s]+/[^\\s]+(:[^\\s]+|@sha256:[0-9a-f]{64})$", var.default_image_uri))
    error_message = "The default_image_uri must be an image URI with a tag or digest, e.g. \"<account>.dkr.ecr.<region>.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3\"."
  }
}

variable "sagemaker_name_prefix" {
  description = "Endpoints and model package groups that items may create, update or register in start with this (lower-case: SageMaker's ARNs hold names lower-case); null means \"<name_prefix>-<environment>-\". Items naming others are refused, and the pipeline role may touch no others."
  type        = string
  default     = null

  validation {
    # Lower-case only: SageMaker writes endpoint, model package and schedule names lower-case in their
    # ARNs and IAM matches resource patterns case-sensitively, so a prefix with capitals in the pipeline
    # role's policy would match none of them (no AWS page states it; seen in philschmid/cdk-samples#2
    # and yet-another-cloudwatch-exporter#1178).
    condition     = var.sagemaker_name_prefix == null || can(regex("^[a-z0-9][a-z0-9-]{0,31}$", var.sagemaker_name_prefix))
    error_message = "The sagemaker_name_prefix must be 1-32 lower-case letters, digits and '-' that start a SageMaker name, e.g. \"ml-team-dev-\" (SageMaker's ARNs hold names lower-case, and the pipeline role is scoped by them)."
  }
}

variable "image_repository_arns" {
  description = "ECR repositories, besides the default image's registry, that jobs and models may pull images from, e.g. [\"arn:aws:ecr:eu-west-1:123456789012:repository/my-training-image\"]."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.image_repository_arns : can(regex("^arn:[a-z-]+:ecr:[a-z0-9-]+:[0-9]{12}:repository/.+$", arn))])
    error_message = "The image_repository_arns must be ECR repository ARNs, e.g. \"arn:aws:ecr:eu-west-1:123456789012:repository/my-image\"."
  }
}

variable "data_buckets" {
  description = "Buckets besides the framework's that runs read data from (datasets, models, code), by name: the SageMaker role may list and read them, and validate and the router accept them as inputs. What a run writes stays in the framework's bucket."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for name in var.data_buckets : can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", name))])
    error_message = "The data_buckets must be bucket names (not ARNs or s3:// URLs), e.g. \"team-datasets\"."
  }
}

variable "model_consumer_accounts" {
  description = "Accounts (12 digits) that serve the models this deployment trains and registers, e.g. production: each model package group a run registers in gets a resource policy that lets them read its packages (DescribeModelPackageGroup, DescribeModelPackage, ListModelPackages), and nothing else."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for account in var.model_consumer_accounts : can(regex("^[0-9]{12}$", account))])
    error_message = "The model_consumer_accounts must be 12-digit account IDs, e.g. \"444455556666\"."
  }
}

variable "model_source" {
  description = "The deployment whose approved model packages this one may serve (e.g. development's, for production), as that deployment's output as_model_source gives it: {account_id, sagemaker_name_prefix, bucket, kms_key_arn (null for none)}. The state machine role may read that account's packages of groups with that prefix, the SageMaker role its bucket's run outputs (runs/*) and decrypt with its key; the source shares them by listing this account in its model_consumer_accounts. null for none."
  type = object({
    account_id            = string
    sagemaker_name_prefix = string
    bucket                = string
    kms_key_arn           = string
  })
  default = null

  validation {
    condition = var.model_source == null ? true : alltrue([
      can(regex("^[0-9]{12}$", var.model_source.account_id)),
      can(regex("^[a-z0-9][a-z0-9-]{0,31}$", var.model_source.sagemaker_name_prefix)),
      can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.model_source.bucket)),
    ])
    error_message = "The model_source must be the source deployment's output as_model_source: account_id 12 digits, sagemaker_name_prefix as that deployment's (e.g. \"mlops-dev-\"), bucket a bucket name, kms_key_arn a key ARN or null."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the bucket, table, topics, queue and logs; null uses AWS-managed encryption. It must exist before the deployment with the policy modules/key-policy computes (output kms_key_policy): CloudWatch Logs, alarms and EventBridge use it."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Days logs are kept; null takes the environment's (dev 14, uat 90, prod 365)."
  type        = number
  default     = null
}

variable "lambda_runtime" {
  description = "Python runtime of the router and quality-gate functions."
  type        = string
  default     = "python3.12"

  # Lambda runtimes the code is written for and that are not deprecated (python3.11 was, in 2026);
  # python3.13 needs provider 5.76 or later.
  validation {
    condition     = contains(["python3.12", "python3.13"], var.lambda_runtime)
    error_message = "The lambda_runtime must be python3.12 or python3.13."
  }
}

variable "report_batch_item_failures" {
  description = "Set true only if you connect an SQS queue to the router with an event source mapping whose function_response_types is [\"ReportBatchItemFailures\"] (docs/concepts.md, \"Triggers\"): failed records are then returned to SQS one by one. The framework itself wires no SQS source."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for every resource: those Terraform creates, and those each run creates (jobs, models, endpoint configs and endpoints, model package groups, monitoring schedules and job definitions, alarms), which also carry the run's own mlops-sfn:pipeline, mlops-sfn:execution and mlops-sfn:stage. Also the provider's default_tags in deploy/."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for key in keys(var.tags) : substr(lower(key), 0, 4) != "aws:" && length(key) <= 128])
    error_message = "The tags' keys must be at most 128 characters and not start with \"aws:\" (AWS's own)."
  }
}

variable "required_tags" {
  description = "Tag keys every item must set in its tags (for example [\"cost-center\"]): validate (REQUIRED_TAGS) and the router refuse an item without one, naming it."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for key in var.required_tags : length(key) >= 1 && length(key) <= 128 && substr(lower(key), 0, 4) != "aws:" && substr(lower(key), 0, 10) != "mlops-sfn:"])
    error_message = "The required_tags must be tag keys of 1-128 characters that do not start with \"aws:\" or \"mlops-sfn:\" (the run sets its own)."
  }
}
