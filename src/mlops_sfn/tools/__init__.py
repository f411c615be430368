"""Build and CI tooling that works on a repository checkout: the definition and role policy, the
Lambda zip, generated files and documentation sections, provider schemas, the Terraform toolchain, TFC runs.
"""
