output "upload_rule_arn" {
  description = "ARN of the rule matching uploads under the input prefix."
  value       = aws_cloudwatch_event_rule.uploads.arn
}

output "schedule_rule_arns" {
  description = "Pipeline name -> ARN of its schedule rule."
  value       = { for pipeline, rule in aws_cloudwatch_event_rule.schedules : pipeline => rule.arn }
}

output "drift_rule_arn" {
  description = "ARN of the rule matching the drift alarms' changes to ALARM."
  value       = aws_cloudwatch_event_rule.drift.arn
}
