# What is uploaded, and as what. Kept apart from main.tf so the local stack's provider-3.39
# stand-in (src/mlops_sfn/local/terraform/artifacts/main.tf) replaces only the resource.
locals {
  content_types = {
    csv  = "text/csv"
    json = "application/json"
    md   = "text/markdown"
    py   = "text/x-python"
    txt  = "text/plain"
  }
  # The source hash is kept as metadata because an ETag is not an MD5 under SSE-KMS, and a changed
  # hash uploads the file again.
  objects = {
    for file in fileset(var.folder, "**") : file => {
      source       = "${var.folder}/${file}"
      content_type = lookup(local.content_types, lower(element(split(".", file), length(split(".", file)) - 1)), "application/octet-stream")
      md5          = filemd5("${var.folder}/${file}")
    }
  }
}
