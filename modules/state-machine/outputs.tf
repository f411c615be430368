output "state_machine_arn" {
  description = "ARN of the pipeline state machine."
  value       = aws_sfn_state_machine.this.arn
}

output "state_machine_role_arn" {
  description = "ARN of the state machine's role."
  value       = aws_iam_role.state_machine.arn
}

output "quality_gate_function_arn" {
  description = "ARN of the quality-gate function."
  value       = module.quality_gate.arn
}

output "model_copy_function_arn" {
  description = "ARN of the function that copies the best tuning job's model into the run folder."
  value       = module.model_copy.arn
}

output "smoke_test_function_arn" {
  description = "ARN of the function that invokes the deployed endpoint once and summarises its answer."
  value       = module.smoke_test.arn
}

output "segments_function_arn" {
  description = "ARN of the function that summarises a fanned-out run's segments for its notification."
  value       = module.segments.arn
}

output "log_group_name" {
  description = "Log group of the execution history."
  value       = aws_cloudwatch_log_group.state_machine.name
}
