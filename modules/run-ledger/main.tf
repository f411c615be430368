# The run ledger (step caching, docs/caching.md): one record per stage a run completed with
# caching on, keyed by the stage's cache key. The state machine writes records, the router reads them.
resource "aws_dynamodb_table" "this" {
  name         = var.name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "cache_key"
  tags         = var.tags

  attribute {
    name = "cache_key"
    type = "S"
  }

  # Each record carries its end (the item's cache.expire_after). DynamoDB deletes expired items
  # some time after, so the router also compares expires_at with the time.
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = var.point_in_time_recovery
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }
}
