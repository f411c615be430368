output "role_arn" {
  description = "ARN of the role SageMaker jobs and models run as."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of that role."
  value       = aws_iam_role.this.name
}
