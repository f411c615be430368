output "keys" {
  description = "Keys of the uploaded objects."
  value       = sort([for object in aws_s3_object.this : object.key])
}
