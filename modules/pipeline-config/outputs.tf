output "table_name" {
  description = "Pipeline-config table name."
  value       = aws_dynamodb_table.this.name
}

output "table_arn" {
  description = "Pipeline-config table ARN."
  value       = aws_dynamodb_table.this.arn
}

output "pipelines" {
  description = "Names of the pipelines loaded from the item files."
  value       = sort(keys(local.items))
}

output "schedules" {
  description = "Pipeline name -> the schedule expression its item file declares (trigger.schedule)."
  value       = local.schedules
}
