output "notification_topic_arn" {
  description = "Topic for run summaries and alarms."
  value       = aws_sns_topic.notifications.arn
}

output "approval_topic_arn" {
  description = "Topic for approval requests."
  value       = aws_sns_topic.approvals.arn
}
