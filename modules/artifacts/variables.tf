variable "bucket" {
  description = "Bucket to upload to."
  type        = string
}

variable "folder" {
  description = "Local folder whose files are uploaded, keeping their relative paths."
  type        = string
}

variable "prefix" {
  description = "Key prefix the files are uploaded under (ends in '/')."
  type        = string
}

variable "tags" {
  description = "Tags for the objects."
  type        = map(string)
  default     = {}
}
