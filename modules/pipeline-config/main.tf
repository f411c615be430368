locals {
  # Each selected item file, read once.
  plain = { for file in fileset(var.items_folder, var.items_pattern) : file => jsondecode(file("${var.items_folder}/${file}")) }
  # Pipeline name -> item file. Two files naming one pipeline fail here ("Duplicate object key").
  files = { for file, item in local.plain : item.consumption_pipeline_name => file }
  # HCL cannot turn nested JSON into DynamoDB JSON, so the generated typed copy is loaded.
  items = { for name, file in local.files : name => file("${var.items_folder}/typed/${file}") }
  schedules = {
    for file, item in local.plain : item.consumption_pipeline_name => item.trigger.schedule
    if can(item.trigger.schedule)
  }
}

# One item per pipeline, read by the router at every trigger.
resource "aws_dynamodb_table" "this" {
  name         = var.name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "consumption_pipeline_name"
  tags         = var.tags

  attribute {
    name = "consumption_pipeline_name"
    type = "S"
  }

  point_in_time_recovery {
    enabled = var.point_in_time_recovery
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }
}

# Two resources because ignore_changes cannot be switched by a variable.
resource "aws_dynamodb_table_item" "owned" {
  for_each   = var.items_ownership == "terraform" ? local.items : {}
  table_name = aws_dynamodb_table.this.name
  hash_key   = aws_dynamodb_table.this.hash_key
  item       = each.value
}

resource "aws_dynamodb_table_item" "seeded" {
  for_each   = var.items_ownership == "seeded" ? local.items : {}
  table_name = aws_dynamodb_table.this.name
  hash_key   = aws_dynamodb_table.this.hash_key
  item       = each.value

  lifecycle {
    ignore_changes = [item]
  }
}
