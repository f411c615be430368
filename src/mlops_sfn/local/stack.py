"""A local AWS (a moto server on 127.0.0.1) and the framework's Terraform root staged to deploy into it.

`stage()` builds a folder that *is* the repository's root module (its files and folders linked,
not copied, except `modules/`, copied so that it can carry the local files) plus:
- `local_provider.tf`: the AWS provider pointed at the local endpoint, with fake credentials;
- `local_versions_override.tf` in the root and in every module: the AWS provider pinned to 3.39,
  the one build the offline toolchain has (the files themselves ask for 5.x or 6.x);
- SWAPPED: the modules whose resources 3.39 does not know get provider-3.39 stand-ins for those
  files, from `local/terraform/` (docs/terraform.md); `enable_bucket_events()` makes the one S3
  call modules/bucket-events makes;
- `local_runtime_override.tf` in the modules with Lambda functions: created with a runtime 3.39
  accepts, then set to the deployment's `lambda_runtime` by `set_runtimes()` after the apply;
- `local.auto.tfvars.json`: the root's variables for a local deployment.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ..checkout import ROOT
from ..tools import toolchain
from . import REGION

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}
# The access key and secret of the local AWS's default account (moto's for a key it does not know).
DEFAULT_KEY = (CREDENTIALS["AWS_ACCESS_KEY_ID"], CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
ROOT_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "contract.json")
ROOT_FOLDERS = ("statemachine", "lambdas", "dynamodb_items", "sagemaker-artifacts")
# Module -> its files replaced by provider-3.39 stand-ins (local/terraform/<module>/).
STAND_INS = Path(__file__).parent / "terraform"
SWAPPED = {
    "bucket": "aws_s3_bucket_versioning, _server_side_encryption_configuration and _lifecycle_configuration",
    "artifacts": "aws_s3_object",
    "bucket-events": "aws_s3_bucket_notification's eventbridge argument",
}
OFFLINE_PROVIDER = "3.39.0"
# Provider 3.39's names for the endpoints of every service the root uses.
ENDPOINTS = (
    "cloudwatch",
    "cloudwatchevents",
    "cloudwatchlogs",
    "dynamodb",
    "iam",
    "kms",
    "lambda",
    "s3",
    "sns",
    "sqs",
    "stepfunctions",
    "sts",
)
VARIABLES: dict[str, Any] = {
    "environment": "dev",
    "name_prefix": "mlops",
    "default_image_uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
    "lambda_runtime": "python3.12",  # the root's default: see RUNTIME_STAND_IN
}
# Provider 3.39 refuses runtimes newer than this one at plan time: the staged Lambda functions are
# created with it (local_runtime_override.tf), then given the deployment's runtime by set_runtimes().
RUNTIME_STAND_IN = "python3.8"
# Module -> the Lambda function resources it declares (modules/function builds every function).
FUNCTIONS = {"function": ("this",)}

_PROVIDER = """variable "local_endpoint" {
  description = "URL of the local AWS."
  type        = string
}

provider "aws" {
  region                      = "%(region)s"
  access_key                  = "%(access_key)s"
  secret_key                  = "%(secret_key)s"
  s3_force_path_style         = true
  insecure                    = true # the local AWS's certificate is self-signed (loopback only)
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_get_ec2_platforms      = true # otherwise it looks for EC2 and stalls

  endpoints {
%(endpoints)s
  }
}
"""

_PINNED = f"""# The local stack applies with the offline toolchain's provider (mlops_sfn.local.stack), and
# its Terraform, which may be 1.0.3 (then the staged copies have no `moved` blocks).
terraform {{
  required_version = ">= 1.0.3"
  required_providers {{
    aws = {{
      source  = "hashicorp/aws"
      version = "{OFFLINE_PROVIDER}"
    }}
  }}
}}
"""


RUNTIME_OVERRIDE = """# Provider 3.39 knows no newer runtime: created with this one, then set to var.lambda_runtime
# after the apply (mlops_sfn.local.stack.set_runtimes), which Terraform then leaves alone.
resource "aws_lambda_function" "{resource}" {{
  runtime = "{runtime}"
  lifecycle {{
    ignore_changes = [runtime]
  }}
}}
"""


def override_runtimes(module: Path, resources: tuple[str, ...]) -> None:
    """Have these aws_lambda_function resources of a staged module created with RUNTIME_STAND_IN."""
    overrides = "\n".join(RUNTIME_OVERRIDE.format(resource=name, runtime=RUNTIME_STAND_IN) for name in resources)
    (module / "local_runtime_override.tf").write_text(overrides)


def set_runtimes(lambda_client: Any, runtime: str) -> list[str]:
    """Give every function created with RUNTIME_STAND_IN the deployment's runtime; their names."""
    changed = []
    for page in lambda_client.get_paginator("list_functions").paginate():
        for function in page["Functions"]:
            if function.get("Runtime") == RUNTIME_STAND_IN:
                lambda_client.update_function_configuration(FunctionName=function["FunctionName"], Runtime=runtime)
                changed.append(function["FunctionName"])
    return changed


def staged_variables(folder: Path) -> dict[str, Any]:
    """The root variables `stage()` wrote for this folder."""
    variables: dict[str, Any] = json.loads((folder / "local.auto.tfvars.json").read_text())
    return variables


def pin_offline_provider(folder: Path) -> None:
    """Let a folder that asks for provider 5.x or 6.x be initialised with the offline 3.39."""
    (folder / "local_versions_override.tf").write_text(_PINNED)


# A `moved` block, with the comment lines just above it.
_MOVED = re.compile(r"^(?:#[^\n]*\n)*moved \{\n.*?^\}\n\n?", re.MULTILINE | re.DOTALL)


def fit_to_terraform(folder: Path, tools: Any) -> None:
    """A staged copy of modules, made fit for the toolchain's Terraform: 1.0.3 (the PyPI fallback)
    has no `moved` blocks, and a local deployment's state has nothing to move, so they are dropped."""
    if tools.has_moved_blocks:
        return
    for path in folder.rglob("*.tf"):
        text = path.read_text()
        kept = _MOVED.sub("", text)
        if kept != text:
            path.write_text(kept)


def terraform_environment(tools: Any, endpoint: str | None = None) -> dict[str, str]:
    """What Terraform runs with here: the offline toolchain's CLI config, fake credentials, and
    (for a staged root) the local AWS's endpoint."""
    environment = {**os.environ, **tools.environment(), **CREDENTIALS}
    if endpoint:
        environment["TF_VAR_local_endpoint"] = endpoint
    return environment


def write_local_provider(into: Path, credentials: tuple[str, str] = DEFAULT_KEY) -> None:
    """The provider a staged folder applies with: every endpoint the local AWS (var.local_endpoint), and
    the access key it signs with (the local AWS's default account's, unless another account's is given)."""
    endpoints = "\n".join(f"    {name} = var.local_endpoint" for name in ENDPOINTS)
    access_key, secret_key = credentials
    values = {"region": REGION, "endpoints": endpoints, "access_key": access_key, "secret_key": secret_key}
    (into / "local_provider.tf").write_text(_PROVIDER % values)


def stage(
    into: Path,
    variables: dict[str, Any] | None = None,
    root: Path = ROOT,
    provider: bool = True,
    credentials: tuple[str, str] | None = None,
) -> Path:
    """The root module, linked into `into`, with the local provider, override and variables.
    Without `provider`, only the override: the folder is then a module for another root (an example).
    With `credentials` (an access key and its secret), the provider signs with them: another account's
    deploys into that account of the local AWS (`account_credentials`)."""
    into.mkdir(parents=True, exist_ok=True)
    for name in (*ROOT_FILES, *ROOT_FOLDERS):
        link = into / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(root / name)
    if provider:
        write_local_provider(into, *([credentials] if credentials else []))
    pin_offline_provider(into)
    (into / "local_override.tf").unlink(missing_ok=True)  # what earlier versions staged
    modules = into / "modules"
    if modules.is_symlink():
        modules.unlink()
    shutil.rmtree(modules, ignore_errors=True)
    shutil.copytree(root / "modules", modules)
    fit_to_terraform(modules, toolchain.ensure())
    for folder in modules.iterdir():
        pin_offline_provider(folder)
    for swapped in SWAPPED:
        for stand_in in (STAND_INS / swapped).glob("*.tf"):
            shutil.copyfile(stand_in, modules / swapped / stand_in.name)
    for with_functions, resources in FUNCTIONS.items():
        if (modules / with_functions).is_dir():  # an earlier release, staged by a test, has none
            override_runtimes(modules / with_functions, resources)
    (into / "local.auto.tfvars.json").write_text(json.dumps({**VARIABLES, **(variables or {})}, indent=2) + "\n")
    return into


def account_credentials(iam: Any) -> tuple[str, str]:
    """An access key of a deployer user of the account `iam` (a client in that account) acts in: moto
    answers a request signed with an access key of an account's user in that account, as AWS does."""
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_user(UserName="mlops-local-deployer")
    for old in iam.list_access_keys(UserName="mlops-local-deployer")["AccessKeyMetadata"]:
        iam.delete_access_key(UserName="mlops-local-deployer", AccessKeyId=old["AccessKeyId"])
    key = iam.create_access_key(UserName="mlops-local-deployer")["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (made once per folder): the local AWS speaks TLS, and
    clients verify it against this file (boto3's verify=, AWS_CA_BUNDLE for processes)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    if cert.exists() and key.exists():
        return cert, key
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mlops-sfn local AWS")])
    now = datetime.datetime.now(datetime.UTC)
    issued = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key.chmod(0o600)
    cert.write_bytes(issued.public_bytes(serialization.Encoding.PEM))
    return cert, key


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class MotoServer:
    """A moto server in its own process, on https://127.0.0.1 and a free port; its log goes to `log`.

    HTTPS because the bucket policy denies requests without TLS, and moto enforces it; the
    certificate is made for this folder (`certificate()`). With `home`, the server also runs the
    local runtime (functions, executions, jobs: `mlops_sfn.local.server`), keeping its work there.
    `detach` starts it in a session of its own, so it outlives this process (`mlops-sfn local up`).
    """

    def __init__(self, log: Path, port: int | None = None, home: Path | None = None, detach: bool = False) -> None:
        self.port = port or free_port()
        self.endpoint = f"https://127.0.0.1:{self.port}"
        self.log = log
        self.home = home
        self.detach = detach
        self.cert, self.key = certificate(log.parent / "tls")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> MotoServer:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "mlops_sfn.local.server", "-H", "127.0.0.1", "-p", str(self.port)]
        command += ["-c", str(self.cert), "-k", str(self.key)]
        if self.home:
            command += ["--home", str(self.home)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **CREDENTIALS},
                start_new_session=self.detach,
            )
        context = ssl.create_default_context(cafile=str(self.cert))
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2, context=context):
                    break
            except (urllib.error.URLError, ConnectionError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the moto server did not start; see {self.log}") from None
                time.sleep(0.2)
        # Lambda functions are created without Docker (the local runtime runs them in-process).
        self.configure({"lambda": {"use_docker": False}})
        return self

    def configure(self, settings: dict[str, Any]) -> None:
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/config",
            data=json.dumps(settings).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10, context=ssl.create_default_context(cafile=str(self.cert))):
            pass

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def client(self, service: str) -> Any:
        return client(service, self.endpoint, self.cert)

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def client(service: str, endpoint: str, cert: Path, config: Any = None) -> Any:
    import boto3

    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        verify=str(cert),
        aws_access_key_id=DEFAULT_KEY[0],
        aws_secret_access_key=DEFAULT_KEY[1],
        config=config,
    )


def enable_bucket_events(s3: Any, bucket: str) -> None:
    """What modules/bucket-events does on AWS, keeping the bucket's other notifications."""
    current = s3.get_bucket_notification_configuration(Bucket=bucket)
    current.pop("ResponseMetadata", None)
    s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={**current, "EventBridgeConfiguration": {}}
    )
