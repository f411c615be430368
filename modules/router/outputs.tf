output "function_arn" {
  description = "ARN of the router function."
  value       = module.function.arn
}

output "function_name" {
  description = "Name of the router function."
  value       = module.function.name
}

output "dead_letter_queue_url" {
  description = "URL of the queue holding rejected and undeliverable events."
  value       = aws_sqs_queue.dead_letters.id
}

output "dead_letter_queue_arn" {
  description = "ARN of that queue."
  value       = aws_sqs_queue.dead_letters.arn
}
