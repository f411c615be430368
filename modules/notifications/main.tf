# Run summaries (failure, success) and alarms.
resource "aws_sns_topic" "notifications" {
  name              = "${var.name}-notifications"
  kms_master_key_id = var.kms_key_arn
  tags              = var.tags
}

# Approval requests carry task tokens: encrypted always (only the state machine's role publishes).
resource "aws_sns_topic" "approvals" {
  name              = "${var.name}-approvals"
  kms_master_key_id = var.kms_key_arn == null ? "alias/aws/sns" : var.kms_key_arn
  tags              = var.tags
}

resource "aws_sns_topic_subscription" "notifications" {
  for_each  = toset(var.notification_emails)
  topic_arn = aws_sns_topic.notifications.arn
  protocol  = "email"
  endpoint  = each.value
}

resource "aws_sns_topic_subscription" "approvals" {
  for_each  = toset(var.approval_emails)
  topic_arn = aws_sns_topic.approvals.arn
  protocol  = "email"
  endpoint  = each.value
}
