output "policy" {
  description = "The key policy (JSON) for the deployment's customer-managed key: set it as the key's policy, or merge its statements into yours."
  value       = jsonencode({ Version = "2012-10-17", Statement = local.statements })
}
