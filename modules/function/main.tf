# One Lambda function of the framework: its role (logs plus the caller's statements, and the
# deployment's KMS key when it has one), its log group, and the function from the shared zip.
# The router and the state machine's functions (quality gate, model copy, smoke test) are all built here.

resource "aws_iam_role" "this" {
  name = var.name
  tags = var.tags
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy" "this" {
  name = var.policy_name
  role = aws_iam_role.this.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      [{
        Sid      = "Logs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = "${aws_cloudwatch_log_group.this.arn}:*"
      }],
      var.statements,
      var.kms_key_arn == null || length(var.kms_actions) == 0 ? [] : [{
        Sid      = "EncryptedData"
        Effect   = "Allow"
        Action   = var.kms_actions
        Resource = var.kms_key_arn
      }],
    )
  })
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_lambda_function" "this" {
  # checkov:skip=CKV_AWS_115: a reservation would take from the account's pool; the callers retry throttles (Lambda for the router's events, the state machine for its functions)
  # checkov:skip=CKV_AWS_116: failures are kept by the caller: the router's on-failure destination, the state machine's Catch and failure notification
  # checkov:skip=CKV_AWS_117: the functions call only AWS APIs, through AWS's endpoints: no VPC
  # checkov:skip=CKV_AWS_272: code signing needs a signing profile, which is the account's choice
  function_name    = var.name
  role             = aws_iam_role.this.arn
  filename         = var.package
  source_code_hash = filebase64sha256(var.package)
  handler          = var.handler
  runtime          = var.runtime
  timeout          = var.timeout_seconds
  memory_size      = var.memory_mb
  kms_key_arn      = length(var.environment) == 0 ? null : var.kms_key_arn
  tags             = var.tags

  dynamic "environment" {
    for_each = length(var.environment) == 0 ? [] : [var.environment]
    content {
      variables = environment.value
    }
  }

  tracing_config {
    mode = "PassThrough"
  }

  depends_on = [aws_cloudwatch_log_group.this, aws_iam_role_policy.this]
}
