output "keys" {
  description = "Keys of the uploaded objects."
  value       = sort([for object in aws_s3_bucket_object.this : object.key])
}
