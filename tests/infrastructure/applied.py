"""The staged root applied into a local AWS with tftest: what the apply tests share."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import tftest

from mlops_sfn.local import stack
from mlops_sfn.tools import toolchain


def apply(root: Path, server: stack.MotoServer) -> tftest.TerraformTest:
    """init and apply `root` (from `stack.stage`) into `server`; the caller destroys."""
    tools = toolchain.ensure()
    environment = stack.terraform_environment(tools, server.endpoint)
    tf = tftest.TerraformTest(str(root), binary=str(tools.terraform), env=environment)
    tf.setup(cleanup_on_exit=False)
    tf.apply()
    stack.set_runtimes(server.client("lambda"), stack.staged_variables(root)["lambda_runtime"])
    return tf


def key_policy(folder: Path, server: stack.MotoServer, consumers: Sequence[str] = ()) -> str:
    """The policy modules/key-policy computes for the local AWS's account and region and the root's
    model_consumer_accounts (it creates nothing)."""
    shutil.copytree(stack.ROOT / "modules" / "key-policy", folder)
    stack.write_local_provider(folder)
    stack.pin_offline_provider(folder)
    tools = toolchain.ensure()
    tf = tftest.TerraformTest(
        str(folder), binary=str(tools.terraform), env=stack.terraform_environment(tools, server.endpoint)
    )
    tf.setup(cleanup_on_exit=False)
    tf.apply(tf_vars={"model_consumer_accounts": json.dumps(list(consumers))})
    return str(tf.output()["policy"])
