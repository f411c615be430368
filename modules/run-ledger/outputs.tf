output "table_name" {
  description = "The run ledger's table name (the router's LEDGER_TABLE, the state machine's ledger_table_name)."
  value       = aws_dynamodb_table.this.name
}

output "table_arn" {
  description = "The run ledger's table ARN."
  value       = aws_dynamodb_table.this.arn
}
