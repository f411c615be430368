output "share_rule_arn" {
  description = "The rule sending approvals to the consumer accounts' buses, or null without consumers."
  value       = local.sharing ? aws_cloudwatch_event_rule.share[0].arn : null
}
